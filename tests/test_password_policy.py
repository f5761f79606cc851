"""The password policy's history and maximum age, through the engine's one way of setting a
password (``security.modules.users.set_password``, which ``flask set-password`` and a
password-change endpoint use)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from models import AuditEntry, PasswordHistoryEntry, User, db, utcnow
from security.modules.users import PasswordRefused, set_password, verify_password
from tests.helpers import STRONG_PASSWORD, create_user_row

PASSWORDS = [f"Correct-Horse-{number}-Battery" for number in range(1, 8)]


def change(app, user_id: int, password: str) -> None:
    with app.app_context():
        set_password(db.session.get(User, user_id), password)
        db.session.commit()


def refusal(app, user_id: int, password: str) -> list[str]:
    with app.app_context(), pytest.raises(PasswordRefused) as refused:
        set_password(db.session.get(User, user_id), password)
    return refused.value.errors["password"]


@pytest.fixture
def user_id(app) -> int:
    return create_user_row(app, "rotating", "analyst", password=PASSWORDS[0])


def test_the_current_password_cannot_be_set_again(app, user_id):
    assert refusal(app, user_id, PASSWORDS[0]) == ["must not be one of your last 5 passwords"]


def test_reusing_any_of_the_last_five_passwords_is_refused_with_a_clear_message(app, user_id):
    for password in PASSWORDS[1:5]:
        change(app, user_id, password)
    for password in PASSWORDS[:5]:
        assert refusal(app, user_id, password) == ["must not be one of your last 5 passwords"]


def test_a_password_older_than_the_last_five_may_be_set_again(app, user_id):
    for password in PASSWORDS[1:6]:
        change(app, user_id, password)
    change(app, user_id, PASSWORDS[0])
    with app.app_context():
        assert verify_password(db.session.get(User, user_id), PASSWORDS[0])


def test_only_the_hashes_the_check_needs_are_kept(app, user_id):
    for password in PASSWORDS[1:7]:
        change(app, user_id, password)
    with app.app_context():
        hashes = db.session.scalars(select(PasswordHistoryEntry.password_hash)).all()
    assert len(hashes) == 4
    assert all(stored.startswith("$argon2id$") for stored in hashes)
    assert not any(password in stored for stored in hashes for password in PASSWORDS)


def test_the_history_size_is_configurable(app, user_id, monkeypatch):
    monkeypatch.setitem(app.config, "PASSWORD_HISTORY_SIZE", 2)
    change(app, user_id, PASSWORDS[1])
    assert refusal(app, user_id, PASSWORDS[0]) == ["must not be one of your last 2 passwords"]
    change(app, user_id, PASSWORDS[2])
    change(app, user_id, PASSWORDS[0])


def test_a_weak_password_is_refused_for_the_policy_not_the_history(app, user_id):
    assert refusal(app, user_id, "short") == [
        "must be at least 12 characters",
        "must contain an upper-case letter",
        "must contain a digit",
        "must contain a special character",
    ]


def test_a_new_password_replaces_the_old_one_and_is_audited(app, user_id):
    change(app, user_id, PASSWORDS[1])
    with app.app_context():
        user = db.session.get(User, user_id)
        assert verify_password(user, PASSWORDS[1])
        assert not verify_password(user, PASSWORDS[0])
        entry = db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "user.password_change")
        ).one()
        assert entry.object_id == str(user_id)
        assert PASSWORDS[1] not in str(entry.details)


def test_the_set_password_command_refuses_a_recent_password_with_exit_3(app, user_id):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["set-password", "rotating", "--password-stdin"], input=PASSWORDS[0] + "\n"
    )
    assert result.exit_code == 3
    assert "must not be one of your last 5 passwords" in result.output
    result = runner.invoke(
        args=["set-password", "rotating", "--password-stdin"], input=PASSWORDS[1] + "\n"
    )
    assert result.exit_code == 0, result.output


def test_no_maximum_age_by_default(app, client, user_id):
    age_password(app, user_id, days=3650)
    login = client.post("/auth/login", json={"username": "rotating", "password": PASSWORDS[0]})
    assert login.status_code == 200


def test_a_password_past_the_maximum_age_cannot_log_in(app, client, user_id, monkeypatch):
    monkeypatch.setitem(app.config, "PASSWORD_MAX_AGE_DAYS", 90)
    age_password(app, user_id, days=91)
    login = client.post("/auth/login", json={"username": "rotating", "password": PASSWORDS[0]})
    assert login.status_code == 403
    assert "expired" in login.get_json()["detail"]
    change(app, user_id, PASSWORDS[1])
    login = client.post("/auth/login", json={"username": "rotating", "password": PASSWORDS[1]})
    assert login.status_code == 200


def age_password(app, user_id: int, days: int) -> None:
    with app.app_context():
        db.session.get(User, user_id).password_changed_at = utcnow() - timedelta(days=days)
        db.session.commit()


def test_a_new_user_has_no_history_and_a_fresh_password(app):
    user_id = create_user_row(app, "fresh", "viewer", password=STRONG_PASSWORD)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(PasswordHistoryEntry)) == 0
        changed = db.session.get(User, user_id).password_changed_at
        assert utcnow() - changed < timedelta(minutes=1)
