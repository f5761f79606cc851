"""``flask create-admin``: the password prompt, ``--password-stdin`` and the exit codes.

Exit codes a script relies on: 0 created, 1 user exists, 2 usage, 3 password rejected by
the policy, 4 database unreachable, 130 interrupted (Ctrl-C). The ``--password-stdin`` path
runs the real CLI in a process against the test database; the hidden double prompt runs
through click's runner. Help needs neither settings nor a database.
"""

from __future__ import annotations

import select as selectors
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import select

from tests.helpers import STRONG_PASSWORD, create_user_row
from tests.processes import (
    PROJECT_ROOT,
    STRONG_SECRET_KEY,
    error_lines,
    flask_create_admin,
    process_env,
    run_in_project,
)

# The CLI gets the database URL from its environment (see the url_form marker).
pytestmark = pytest.mark.url_form


@pytest.fixture
def cli_env(app, database_url: str) -> dict[str, str]:
    """The environment of an operator's shell pointed at the (migrated) test database."""
    return process_env(APP_ENV="testing", DATABASE_URL=database_url, SECRET_KEY=STRONG_SECRET_KEY)


def find_user(app, username: str):
    from models import User, db

    with app.app_context():
        return db.session.scalars(select(User).where(User.username == username)).first()


def audit_actions(app) -> list[tuple[str, str | None]]:
    from models import db
    from models.audit import AuditEntry

    with app.app_context():
        rows = db.session.execute(select(AuditEntry.action, AuditEntry.actor)).all()
        return [tuple(row) for row in rows]


def test_password_stdin_creates_an_admin_who_can_log_in(app, client, cli_env):
    result = flask_create_admin("alice", cli_env, "--password-stdin", stdin=STRONG_PASSWORD + "\n")

    assert result.returncode == 0, result.stderr
    assert "created admin 'alice'" in result.stdout
    user = find_user(app, "alice")
    assert user.role == "admin"
    response = client.post("/auth/login", json={"username": "alice", "password": STRONG_PASSWORD})
    assert response.status_code == 200


def test_created_admin_is_recorded_in_the_audit_log(app, cli_env):
    flask_create_admin("alice", cli_env, "--password-stdin", stdin=STRONG_PASSWORD + "\n")

    assert ("user.create", "cli") in audit_actions(app)


def test_existing_username_exits_1_and_keeps_the_account(app, cli_env):
    original_id = create_user_row(app, "alice", "viewer")

    result = flask_create_admin("ALICE", cli_env, "--password-stdin", stdin=STRONG_PASSWORD + "\n")

    assert result.returncode == 1
    assert error_lines(result.stderr) == ["error: The username 'ALICE' is already taken."]
    user = find_user(app, "alice")
    assert (user.id, user.role) == (original_id, "viewer")


def test_weak_password_exits_3_and_creates_nothing(app, cli_env):
    result = flask_create_admin("alice", cli_env, "--password-stdin", stdin="short\n")

    assert result.returncode == 3
    assert error_lines(result.stderr)[0].startswith("error: password rejected:")
    assert find_user(app, "alice") is None


def test_invalid_username_is_a_usage_error_with_exit_2(app, cli_env):
    result = flask_create_admin("no spaces allowed", cli_env, "--password-stdin", stdin="x\n")

    assert result.returncode == 2
    assert "invalid username" in result.stderr
    assert find_user(app, "no spaces allowed") is None


def test_missing_username_is_a_usage_error_with_exit_2(cli_env):
    result = flask_create_admin("--password-stdin", cli_env)

    assert result.returncode == 2
    assert "Missing argument" in result.stderr


def test_unreachable_database_exits_4_with_one_line_naming_the_server():
    env = process_env(
        APP_ENV="testing",
        DATABASE_URL="postgresql+psycopg2://postgres@127.0.0.1:1/soc",
        SECRET_KEY=STRONG_SECRET_KEY,
    )

    result = flask_create_admin("alice", env, "--password-stdin", stdin=STRONG_PASSWORD + "\n")

    assert result.returncode == 4
    assert len(error_lines(result.stderr)) == 1
    assert "cannot reach PostgreSQL at 127.0.0.1:1" in result.stderr
    assert "Traceback" not in result.stderr


def run_prompt(app, username: str, answers: list[str]):
    """``create-admin USERNAME`` answering the hidden prompts with ``answers``.

    The command relies on the app context that the ``flask`` CLI pushes; the runner does not.
    """
    with app.app_context():
        return app.test_cli_runner().invoke(
            args=["create-admin", username], input="".join(f"{a}\n" for a in answers)
        )


def test_prompt_asks_twice_and_creates_the_admin(app):
    result = run_prompt(app, "carol", [STRONG_PASSWORD, STRONG_PASSWORD])

    assert result.exit_code == 0, result.output
    assert result.output.count("Password:") == 1
    assert "Repeat for confirmation:" in result.output
    assert STRONG_PASSWORD not in result.output
    assert find_user(app, "carol").role == "admin"


def test_prompt_with_mismatched_passwords_creates_nothing(app):
    result = run_prompt(app, "carol", [STRONG_PASSWORD, "Another-Horse-42-Battery"])

    assert result.exit_code != 0
    assert "do not match" in result.output
    assert find_user(app, "carol") is None


def test_prompt_rejects_a_weak_password_with_exit_3(app):
    result = run_prompt(app, "carol", ["password", "password"])

    assert result.exit_code == 3
    assert find_user(app, "carol") is None


def test_taken_username_is_refused_before_the_password_is_asked_for(app):
    create_user_row(app, "carol", "viewer")

    result = run_prompt(app, "Carol", [])

    assert result.exit_code == 1
    assert "already taken" in result.output
    assert "Password" not in result.output


def wait_for_output(stream, marker: bytes, seconds: float) -> bytes:
    """What ``stream`` (a pipe) says until ``marker`` shows, within ``seconds``."""
    seen, deadline = b"", time.monotonic() + seconds
    while marker not in seen and time.monotonic() < deadline:
        ready, _, _ = selectors.select([stream], [], [], 0.5)
        if ready:
            seen += stream.read1(4096)
    assert marker in seen, seen
    return seen


def test_ctrl_c_at_the_password_prompt_exits_130_without_a_traceback(app, cli_env):
    command = [sys.executable, "-m", "flask", "--app", "app:create_app", "create-admin", "dave"]
    process = subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        env=cli_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_output(process.stdout, b"Password", 30)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 130
    finally:
        if process.poll() is None:
            process.kill()
        process.stdin.close()
    assert b"Traceback" not in process.stdout.read()
    process.stdout.close()
    assert find_user(app, "dave") is None


@pytest.mark.parametrize("arguments", [["--help"], ["taxii-poll", "--help"], ["db", "--help"]])
def test_flask_help_works_without_settings_or_database(arguments):
    result = run_in_project(["-m", "flask", "--app", "app:create_app", *arguments], process_env())

    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout and "error" not in result.stderr.lower()


def test_flask_help_lists_the_admin_commands_without_settings():
    result = run_in_project(["-m", "flask", "--app", "app:create_app", "--help"], process_env())

    assert {"create-admin", "taxii-poll", "prune-usage", "db"} <= {
        line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")
    }
