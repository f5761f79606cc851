#!/usr/bin/env bash
# Run both Postman collections with newman against a real gunicorn server on a fresh
# database; exit non-zero on any failed assertion.
#
#   scripts/run_newman.sh [extra newman arguments]
#
# Installs newman from postman/package-lock.json (npm ci) when it is missing. The server
# runs with the default brute-force guard (LOGIN_MAX_FAILURES=5) and a login rate limit
# high enough for the collections' own logins (RATELIMIT_LOGIN="100 per minute"); the OWASP
# collection's loop caps (environment: lockoutMaxAttempts, rateLimitMaxAttempts) match. Its
# CORS checks need an allowed origin: the first of CORS_ORIGINS (default one set below).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/live_server.sh

NEWMAN=postman/node_modules/.bin/newman
if [ ! -x "$NEWMAN" ]; then
    npm ci --prefix postman --no-audit --no-fund --loglevel=error
fi

export LOGIN_MAX_FAILURES="${LOGIN_MAX_FAILURES:-5}"
export RATELIMIT_LOGIN="${RATELIMIT_LOGIN:-100 per minute}"
export RATELIMIT_REGISTER="${RATELIMIT_REGISTER:-100 per minute}"
# The OWASP collection checks that this origin gets a CORS grant and that others do not.
export CORS_ORIGINS="${CORS_ORIGINS:-https://console.soc.example}"
# The functional collection registers this server's own TAXII collection as a feed, and
# receivers on 127.0.0.1; nothing else may be reached, so no request leaves the machine.
export OUTBOUND_ALLOWED_HOSTS="${OUTBOUND_ALLOWED_HOSTS:-127.0.0.1}"
export OUTBOUND_ONLY_ALLOWED_HOSTS=true
export ENCRYPTION_KEY="${ENCRYPTION_KEY:-$("$PYTHON" -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')}"
start_live_server

status=0
for collection in soc-incidents-api soc-incidents-api-owasp-tests; do
    echo "== newman: $collection"
    "$NEWMAN" run "postman/$collection.postman_collection.json" \
        --environment postman/local.postman_environment.json \
        --env-var "baseUrl=$BASE_URL" \
        --env-var "adminUsername=$ADMIN_USERNAME" \
        --env-var "adminPassword=$ADMIN_PASSWORD" \
        --env-var "corsAllowedOrigin=${CORS_ORIGINS%%,*}" \
        --reporters cli --color off --disable-unicode \
        "$@" || status=1
done
exit "$status"
