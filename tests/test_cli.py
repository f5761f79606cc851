"""``flask create-admin``: the password prompt, ``--password-stdin`` and the exit codes.

Exit codes a script relies on: 0 created, 1 user exists, 2 usage, 3 password rejected by
the policy, 4 database unreachable. The ``--password-stdin`` path runs the real CLI in a
process against the test database; the hidden double prompt runs through click's runner.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.helpers import STRONG_PASSWORD, create_user_row
from tests.processes import STRONG_SECRET_KEY, error_lines, flask_create_admin, process_env


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
