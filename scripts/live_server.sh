# Sourced by scripts/run_newman.sh and scripts/fuzz_api.sh: a real gunicorn server on a free
# 127.0.0.1 port, against a fresh database, with one admin; stopped and dropped on exit.
#
#   source scripts/live_server.sh
#   start_live_server          # sets BASE_URL, ADMIN_USERNAME, ADMIN_PASSWORD
#   admin_token                # prints a bearer token for the admin
#
# The database server is TEST_DATABASE_URL's; without it, the embedded PostgreSQL of the tests
# (instance/pgdata-test), held for as long as the script runs.
# Extra settings for the app (rate limits, lockout thresholds) are ordinary environment
# variables exported before start_live_server.

PROJECT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$PROJECT_ROOT/.venv/bin/python}"
LIVE_LOG_DIR="${LIVE_LOG_DIR:-$(mktemp -d)}"
ADMIN_USERNAME="${ADMIN_USERNAME:-admin}"
ADMIN_PASSWORD="${ADMIN_PASSWORD:-Console-Passw0rd!2026}"  # never containing the username (policy)
LIVE_SERVER_PID=""
LIVE_DATABASE_URL=""
LIVE_DATABASE_SERVER_URL="${TEST_DATABASE_URL:-}"

_free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

_database_url_for() {
    LIVE_DATABASE_SERVER_URL="$LIVE_DATABASE_SERVER_URL" "$PYTHON" - "$1" <<'PY'
import os, sys
from sqlalchemy.engine import make_url
server = make_url(os.environ["LIVE_DATABASE_SERVER_URL"])
url = server.set(drivername="postgresql+psycopg2", database=sys.argv[1])
print(url.render_as_string(hide_password=False))
PY
}

_drop_database() {
    "$PYTHON" - "$1" <<'PY'
import sys
import psycopg2
from psycopg2 import sql
from sqlalchemy.engine import make_url
url = make_url(sys.argv[1])
connection = psycopg2.connect(dbname="postgres", user=url.username, password=url.password,
                              host=url.host or url.query.get("host"), port=url.port)
connection.autocommit = True
with connection.cursor() as cursor:
    cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(url.database)))
PY
}

_hold_embedded_database() {
    # A process holding a handle on the embedded server prints its URL, then waits for its
    # standard input (this shell's end of the coprocess) to close.
    coproc EMBEDDED_DATABASE { cd "$PROJECT_ROOT" && exec "$PYTHON" embedded_db.py instance/pgdata-test; }
    read -r LIVE_DATABASE_SERVER_URL <&"${EMBEDDED_DATABASE[0]}" || {
        echo "error: the embedded PostgreSQL did not start" >&2
        return 1
    }
}

_release_embedded_database() {
    if [ -n "${EMBEDDED_DATABASE_PID:-}" ]; then
        local pid=$EMBEDDED_DATABASE_PID
        exec {EMBEDDED_DATABASE[1]}>&-
        wait "$pid" 2>/dev/null || true
    fi
}

stop_live_server() {
    if [ -n "$LIVE_SERVER_PID" ] && kill -0 "$LIVE_SERVER_PID" 2>/dev/null; then
        kill -TERM "$LIVE_SERVER_PID"
        wait "$LIVE_SERVER_PID" 2>/dev/null || true
    fi
    LIVE_SERVER_PID=""
    if [ -n "$LIVE_DATABASE_URL" ]; then
        _drop_database "$LIVE_DATABASE_URL" || echo "warning: could not drop the live database" >&2
        LIVE_DATABASE_URL=""
    fi
    _release_embedded_database
}

start_live_server() {
    local port database
    port="$(_free_port)"
    database="soc_live_$("$PYTHON" -c 'import secrets; print(secrets.token_hex(6))')"
    trap stop_live_server EXIT
    if [ -z "$LIVE_DATABASE_SERVER_URL" ]; then
        _hold_embedded_database
    fi
    LIVE_DATABASE_URL="$(_database_url_for "$database")"
    export APP_ENV="${APP_ENV:-production}"
    export SECRET_KEY="${SECRET_KEY:-$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(48))')}"
    export DATABASE_URL="$LIVE_DATABASE_URL"
    export GUNICORN_BIND="127.0.0.1:$port"
    (cd "$PROJECT_ROOT" && printf '%s\n' "$ADMIN_PASSWORD" |
        "$PROJECT_ROOT/.venv/bin/flask" --app 'app:create_app()' create-admin "$ADMIN_USERNAME" \
            --password-stdin >"$LIVE_LOG_DIR/create-admin.log" 2>&1) || {
        cat "$LIVE_LOG_DIR/create-admin.log" >&2
        return 1
    }
    (cd "$PROJECT_ROOT" && exec "$PROJECT_ROOT/.venv/bin/gunicorn" -c gunicorn.conf.py \
        'app:create_app()' >"$LIVE_LOG_DIR/gunicorn.log" 2>&1) &
    LIVE_SERVER_PID=$!
    BASE_URL="http://127.0.0.1:$port"
    for _ in $(seq 1 100); do
        if curl -fsS "$BASE_URL/ready" >/dev/null 2>&1; then
            echo "live server: $BASE_URL (database $database, logs in $LIVE_LOG_DIR)"
            return 0
        fi
        kill -0 "$LIVE_SERVER_PID" 2>/dev/null || break
        sleep 0.2
    done
    echo "error: the live server did not become ready; its log:" >&2
    tail -n 40 "$LIVE_LOG_DIR/gunicorn.log" >&2
    return 1
}

admin_token() {
    curl -fsS -X POST "$BASE_URL/auth/login" -H 'Content-Type: application/json' \
        --data "$("$PYTHON" -c 'import json, sys; print(json.dumps({"username": sys.argv[1], "password": sys.argv[2]}))' "$ADMIN_USERNAME" "$ADMIN_PASSWORD")" |
        "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}
