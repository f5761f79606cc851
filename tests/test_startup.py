"""Startup: the database is created and migrated by the app, misconfiguration is one line,
and the run command serves on the embedded PostgreSQL and stops it again.

Each test that starts the app uses a fresh database name on the test server, so "the
database does not exist yet" is really true, and drops it afterwards; those are marked
url_form. The launcher's tests always run on an embedded server of their own (a temporary
instance directory), whatever the test server is.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time

import psutil
import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from config import ConfigError, load_settings
from database import DatabaseUnavailable
from tests.conftest import app_settings
from tests.helpers import STRONG_PASSWORD
from tests.processes import (
    PROJECT_ROOT,
    STRONG_SECRET_KEY,
    error_lines,
    free_port,
    launched_server,
    process_env,
    run_in_project,
    wait_for_http_ok,
)

UNREACHABLE_URL = "postgresql+psycopg2://postgres@127.0.0.1:1/soc"
EXPECTED_TABLES = {"users", "auth_tokens", "incidents", "audit_log", "alembic_version"}
CREATE_APP_AT = (
    "import sys, time\n"
    "from app import create_app\n"
    "time.sleep(max(0.0, float(sys.argv[1]) - time.time()))\n"
    "create_app()\n"
)


def database_exists(server_url: str, name: str) -> bool:
    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            found = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            )
            return found.first() is not None
    finally:
        engine.dispose()


def schema_state(database_url: str) -> tuple[set[str], set[str]]:
    """(table names, alembic revisions) of the database at ``database_url``."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
            revisions = set(connection.scalars(text("SELECT version_num FROM alembic_version")))
            return tables, revisions
    finally:
        engine.dispose()


def migration_heads() -> set[str]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from database import MIGRATIONS_DIRECTORY

    config = Config()
    config.set_main_option("script_location", MIGRATIONS_DIRECTORY)
    return set(ScriptDirectory.from_config(config).get_heads())


def start_app(database_url: str):
    from app import create_app
    from models import db

    application = create_app(app_settings(database_url))
    with application.app_context():
        db.engine.dispose()
    return application


@pytest.mark.url_form
def test_missing_database_is_created_with_its_tables(database_server_url, fresh_database_url):
    name = make_url(fresh_database_url).database
    assert not database_exists(database_server_url, name)

    start_app(fresh_database_url)

    assert database_exists(database_server_url, name)
    tables, revisions = schema_state(fresh_database_url)
    assert tables >= EXPECTED_TABLES
    assert revisions == migration_heads()


@pytest.mark.url_form
def test_starting_again_is_a_no_op_that_keeps_the_data(fresh_database_url):
    start_app(fresh_database_url)
    engine = create_engine(fresh_database_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (username, password_hash, role, is_active, created_at) "
                "VALUES ('kept', 'x', 'viewer', true, now())"
            )
        )
    before = schema_state(fresh_database_url)

    start_app(fresh_database_url)

    assert schema_state(fresh_database_url) == before
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM users WHERE username = 'kept'")) == 1
    engine.dispose()


@pytest.mark.url_form
def test_two_processes_starting_at_once_both_succeed(fresh_database_url):
    env = process_env(APP_ENV="testing", DATABASE_URL=fresh_database_url)
    start_at = str(time.time() + 3)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", CREATE_APP_AT, start_at],
            cwd=PROJECT_ROOT,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]

    outcomes = [(process.wait(timeout=60), process.stderr.read()) for process in processes]

    assert outcomes == [(0, ""), (0, "")]
    _, revisions = schema_state(fresh_database_url)
    assert revisions == migration_heads()


def test_unreachable_server_raises_database_unavailable_naming_host_and_port():
    from app import create_app

    with pytest.raises(DatabaseUnavailable, match=r"127\.0\.0\.1:1\b"):
        create_app(app_settings(UNREACHABLE_URL))


def test_unreachable_server_ends_the_process_with_one_line_and_exit_4():
    env = process_env(DATABASE_URL=UNREACHABLE_URL, SECRET_KEY=STRONG_SECRET_KEY)

    result = run_in_project(["-c", "from app import create_app; create_app()"], env)

    assert result.returncode == 4
    assert result.stderr.startswith("error: cannot reach PostgreSQL at 127.0.0.1:1:")
    assert result.stderr.count("\n") == 1


def run_gunicorn_until_exit(env: dict[str, str]) -> subprocess.CompletedProcess:
    env["GUNICORN_BIND"] = f"127.0.0.1:{free_port()}"
    return run_in_project(["-m", "gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"], env)


def test_gunicorn_with_unreachable_server_stops_with_one_line_and_no_traceback():
    env = process_env(DATABASE_URL=UNREACHABLE_URL, SECRET_KEY=STRONG_SECRET_KEY)

    result = run_gunicorn_until_exit(env)

    assert result.returncode == 4
    assert len(error_lines(result.stderr)) == 1
    assert error_lines(result.stderr)[0].startswith(
        "error: cannot reach PostgreSQL at 127.0.0.1:1:"
    )
    assert "Traceback" not in result.stderr


@pytest.mark.url_form
def test_gunicorn_without_secret_key_stops_with_one_line_naming_it(fresh_database_url):
    env = process_env(DATABASE_URL=fresh_database_url)

    result = run_gunicorn_until_exit(env)

    assert result.returncode == 2
    assert len(error_lines(result.stderr)) == 1
    assert error_lines(result.stderr)[0].startswith("error: SECRET_KEY is not set")
    assert "Traceback" not in result.stderr


def test_missing_secret_key_in_production_ends_the_process_with_one_line_and_exit_2():
    env = process_env(DATABASE_URL=UNREACHABLE_URL)

    result = run_in_project(["-c", "from app import create_app; create_app()"], env)

    assert result.returncode == 2
    assert result.stderr.startswith("error: SECRET_KEY is not set")
    assert result.stderr.count("\n") == 1


@pytest.mark.url_form
@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_database_urls_naming_no_driver_run_on_the_projects_driver(
    database_server_url, fresh_database_url, scheme
):
    # The forms hosting providers hand out; SQLAlchemy alone would load psycopg 3 for them.
    url = fresh_database_url.replace("postgresql+psycopg2://", f"{scheme}://", 1)
    assert load_settings(env={"DATABASE_URL": url, "APP_ENV": "testing"}).database_url == (
        fresh_database_url
    )

    start_app(url)

    assert database_exists(database_server_url, make_url(fresh_database_url).database)


def test_production_settings_without_secret_key_are_refused():
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        load_settings(env={"DATABASE_URL": UNREACHABLE_URL})


@pytest.mark.parametrize("weak_key", ["changeme", "x" * 31])
def test_production_settings_with_a_weak_secret_key_are_refused(weak_key):
    with pytest.raises(ConfigError, match="SECRET_KEY is too weak"):
        load_settings(env={"DATABASE_URL": UNREACHABLE_URL, "SECRET_KEY": weak_key})


def test_production_settings_accept_a_strong_secret_key():
    settings = load_settings(env={"DATABASE_URL": UNREACHABLE_URL, "SECRET_KEY": STRONG_SECRET_KEY})

    assert (settings.environment, settings.secret_key) == ("production", STRONG_SECRET_KEY)


def test_taxii_deadlines_default_to_ten_minutes_a_poll_and_two_a_page():
    settings = load_settings(env={"DATABASE_URL": UNREACHABLE_URL, "SECRET_KEY": STRONG_SECRET_KEY})

    assert settings.taxii_poll_deadline_seconds == 600
    assert settings.taxii_page_deadline_seconds == 120


@pytest.mark.parametrize(
    ("deadlines", "named"),
    [
        ({"TAXII_POLL_DEADLINE_SECONDS": "3600"}, "TAXII_POLL_DEADLINE_SECONDS must be at most"),
        (
            {"TAXII_POLL_DEADLINE_SECONDS": "60", "TAXII_PAGE_DEADLINE_SECONDS": "120"},
            "TAXII_PAGE_DEADLINE_SECONDS",
        ),
        ({"TAXII_PAGE_DEADLINE_SECONDS": "0"}, "TAXII_PAGE_DEADLINE_SECONDS must be at least 1"),
    ],
)
def test_taxii_deadlines_past_the_feed_lease_or_the_poll_are_refused(deadlines, named):
    env = {"DATABASE_URL": UNREACHABLE_URL, "SECRET_KEY": STRONG_SECRET_KEY, **deadlines}
    with pytest.raises(ConfigError, match=named):
        load_settings(env=env)


def test_launcher_keeps_one_generated_secret_key_readable_only_by_its_owner(tmp_path):
    from launcher import fill_in_kept_keys

    first, again = {}, {}
    fill_in_kept_keys(first, tmp_path / "instance")
    fill_in_kept_keys(again, tmp_path / "instance")

    assert again["SECRET_KEY"] == first["SECRET_KEY"]
    assert len(first["SECRET_KEY"]) >= 48
    assert (tmp_path / "instance" / "secret_key").stat().st_mode & 0o777 == 0o600
    load_settings(env={"DATABASE_URL": UNREACHABLE_URL, "SECRET_KEY": first["SECRET_KEY"]})


def test_launcher_keeps_one_encryption_key_so_secrets_decrypt_after_a_restart(tmp_path):
    from cryptography.fernet import Fernet

    from launcher import fill_in_kept_keys

    first_start, second_start = {}, {}
    fill_in_kept_keys(first_start, tmp_path / "instance")
    token = Fernet(first_start["ENCRYPTION_KEY"]).encrypt(b"feed password")
    fill_in_kept_keys(second_start, tmp_path / "instance")

    assert Fernet(second_start["ENCRYPTION_KEY"]).decrypt(token) == b"feed password"
    assert (tmp_path / "instance" / "encryption_key").stat().st_mode & 0o777 == 0o600
    settings = load_settings(
        env={"DATABASE_URL": UNREACHABLE_URL, "APP_ENV": "testing", **second_start}
    )
    assert settings.encryption_keys == (first_start["ENCRYPTION_KEY"],)


def test_launcher_leaves_keys_set_in_the_environment_alone(tmp_path):
    from launcher import fill_in_kept_keys

    env = {"SECRET_KEY": STRONG_SECRET_KEY, "ENCRYPTION_KEY": "set-by-the-deployer"}
    fill_in_kept_keys(env, tmp_path / "instance")

    assert env == {"SECRET_KEY": STRONG_SECRET_KEY, "ENCRYPTION_KEY": "set-by-the-deployer"}
    assert not (tmp_path / "instance").exists()


def postgres_processes_for(pgdata) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        if process.info["name"] == "postgres" and str(pgdata) in (process.info["cmdline"] or []):
            found.append(process)
    return found


@pytest.mark.slow
def test_run_command_serves_on_embedded_postgres_and_stops_it_on_sigterm(tmp_path):
    instance = tmp_path / "instance"
    port = free_port()
    with launched_server(instance, port, tmp_path / "launcher.log") as launcher:
        wait_for_http_ok(f"http://127.0.0.1:{port}/health", time.monotonic() + 10, launcher)
        assert postgres_processes_for(instance / "pgdata")

        launcher.send_signal(signal.SIGTERM)
        assert launcher.wait(timeout=30) == 0

    assert postgres_processes_for(instance / "pgdata") == []
    assert (instance / "secret_key").stat().st_mode & 0o777 == 0o600


@pytest.mark.slow
def test_launcher_create_admin_uses_the_embedded_database_and_stops_it(tmp_path):
    env = process_env(SOC_INSTANCE_DIR=str(tmp_path / "instance"))
    create = ["launcher.py", "create-admin", "alice", "--password-stdin"]

    first = run_in_project(create, env, stdin=STRONG_PASSWORD + "\n")
    again = run_in_project(create, env, stdin=STRONG_PASSWORD + "\n")

    assert (first.returncode, again.returncode) == (0, 1), first.stderr + again.stderr
    assert "already taken" in again.stderr
    assert postgres_processes_for(tmp_path / "instance" / "pgdata") == []


def test_launcher_flask_help_starts_no_database(tmp_path):
    env = process_env(SOC_INSTANCE_DIR=str(tmp_path / "instance"))

    for arguments in (["flask"], ["flask", "--help"], ["flask", "taxii-poll", "--help"]):
        result = run_in_project(["launcher.py", *arguments], env)
        assert result.returncode == 0, result.stderr
        assert "Usage:" in result.stdout
    assert not (tmp_path / "instance" / "pgdata").exists()


@pytest.mark.slow
def test_launcher_flask_runs_admin_commands_beside_a_running_server(tmp_path):
    instance = tmp_path / "instance"
    port = free_port()
    env = process_env(SOC_INSTANCE_DIR=str(instance))
    with launched_server(instance, port, tmp_path / "launcher.log") as server:
        current = run_in_project(["launcher.py", "flask", "db", "current"], env)
        pruned = run_in_project(["launcher.py", "flask", "prune-usage"], env)
        polled = run_in_project(["launcher.py", "flask", "taxii-poll"], env)

        assert current.returncode == 0, current.stderr
        assert set(current.stdout.split()) & migration_heads()
        assert (pruned.returncode, polled.returncode) == (0, 0), pruned.stderr + polled.stderr
        assert "pruned 0 credential usage entries" in pruned.stdout
        assert "left running for the other process using it" in pruned.stderr
        wait_for_http_ok(f"http://127.0.0.1:{port}/ready", time.monotonic() + 10, server)
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0

    assert postgres_processes_for(instance / "pgdata") == []
    assert (instance / "encryption_key").stat().st_mode & 0o777 == 0o600


@pytest.mark.slow
def test_ctrl_c_at_the_launchers_create_admin_prompt_exits_130(tmp_path):
    env = process_env(SOC_INSTANCE_DIR=str(tmp_path / "instance"))
    launcher = subprocess.Popen(
        [sys.executable, "launcher.py", "create-admin", "bob"],
        cwd=PROJECT_ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        seen, deadline = b"", time.monotonic() + 120
        while b"Password" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([launcher.stdout], [], [], 0.5)
            seen += launcher.stdout.read1(4096) if ready else b""
        assert b"Password" in seen, seen
        os.killpg(launcher.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
        assert launcher.wait(timeout=30) == 130
    finally:
        if launcher.poll() is None:
            launcher.kill()
        launcher.stdin.close()
    assert b"Traceback" not in seen + launcher.stdout.read()
    launcher.stdout.close()
    assert postgres_processes_for(tmp_path / "instance" / "pgdata") == []
