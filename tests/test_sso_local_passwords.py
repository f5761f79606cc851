"""``SSO_LOCAL_PASSWORDS``: whether a single-sign-on account may also use a local password.
``disabled`` (the default): its password logs nobody in; a change, an admin's reset and
spending a reset token are 409, and ``flask set-password``/``reset-password`` exit 5.
``allowed``: an admin's reset gives it one, and login and a change then work as for any
account. Accounts are made SSO in the database here; the whole provider flow is
``tests/test_sso.py``."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from config import ConfigError, identity_settings
from models import User, db
from tests.helpers import STRONG_PASSWORD, create_user_row

NEW_PASSWORD = "Quartz-Meadow-71!"
LATER_PASSWORD = "Lantern-Basalt-83?"


@pytest.fixture
def sso_user(app) -> int:
    """erin: an analyst who signs in through the provider, and who has a password hash
    known to the test (so a refusal is the setting's, not a wrong password's)."""
    user_id = create_user_row(app, "erin", "analyst")
    with app.app_context():
        db.session.execute(
            update(User)
            .where(User.id == user_id)
            .values(sso_issuer="http://127.0.0.1:18110", sso_subject="erin")
        )
        db.session.commit()
    return user_id


@pytest.fixture
def allowed(app, monkeypatch):
    monkeypatch.setitem(app.config, "SSO_LOCAL_PASSWORDS", "allowed")


def log_in(client, password: str = STRONG_PASSWORD):
    return client.with_token(None).post(
        "/auth/login", json={"username": "erin", "password": password}
    )


def change(client, current: str, new: str, token: str | None = None):
    body = {"current_password": current, "new_password": new}
    if token is None:
        body["username"] = "erin"
    return client.with_token(token).post("/auth/password", json=body)


def test_the_setting_defaults_to_disabled_and_refuses_other_values():
    assert identity_settings({})["SSO_LOCAL_PASSWORDS"] == "disabled"
    assert identity_settings({"SSO_LOCAL_PASSWORDS": "allowed"})["SSO_LOCAL_PASSWORDS"] == "allowed"
    with pytest.raises(ConfigError):
        identity_settings({"SSO_LOCAL_PASSWORDS": "sometimes"})


def test_disabled_the_password_logs_nobody_in(app, client, sso_user):
    assert app.config["SSO_LOCAL_PASSWORDS"] == "disabled"
    assert log_in(client).status_code == 401


def test_disabled_a_change_and_an_admin_reset_are_409(client, admin, sso_user):
    assert change(client, STRONG_PASSWORD, NEW_PASSWORD).status_code == 409
    for mode in ("token", "force_change"):
        reset = admin.client.post(f"/users/{sso_user}/password-reset", json={"mode": mode})
        assert reset.status_code == 409, mode
        assert "SSO_LOCAL_PASSWORDS" in reset.get_json()["detail"]


def test_allowed_login_and_a_change_work(client, sso_user, allowed):
    answer = log_in(client)
    assert answer.status_code == 200, answer.get_json()
    token = answer.get_json()["access_token"]
    assert change(client, STRONG_PASSWORD, NEW_PASSWORD, token).status_code == 204
    assert log_in(client, NEW_PASSWORD).status_code == 200


def test_allowed_an_admin_reset_gives_the_account_a_password(client, admin, sso_user, allowed):
    reset = admin.client.post(f"/users/{sso_user}/password-reset", json={"mode": "token"})
    assert reset.status_code == 200, reset.get_json()
    body = {"reset_token": reset.get_json()["reset_token"], "new_password": NEW_PASSWORD}
    assert client.with_token(None).post("/auth/password/reset", json=body).status_code == 204
    assert log_in(client, NEW_PASSWORD).status_code == 200


def test_disabling_later_voids_a_password_and_a_reset_token_issued_while_allowed(
    app, client, admin, sso_user, monkeypatch
):
    monkeypatch.setitem(app.config, "SSO_LOCAL_PASSWORDS", "allowed")
    reset = admin.client.post(f"/users/{sso_user}/password-reset", json={"mode": "token"})
    raw = reset.get_json()["reset_token"]
    monkeypatch.setitem(app.config, "SSO_LOCAL_PASSWORDS", "disabled")
    body = {"reset_token": raw, "new_password": LATER_PASSWORD}
    assert client.with_token(None).post("/auth/password/reset", json=body).status_code == 409
    assert log_in(client, LATER_PASSWORD).status_code == 401
    assert log_in(client).status_code == 401


def test_the_commands_honour_the_setting(app, client, sso_user, monkeypatch):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["reset-password", "erin"]).exit_code == 5
    set_password = ["set-password", "erin", "--password-stdin"]
    assert runner.invoke(args=set_password, input=NEW_PASSWORD + "\n").exit_code == 5
    assert log_in(client, NEW_PASSWORD).status_code == 401
    monkeypatch.setitem(app.config, "SSO_LOCAL_PASSWORDS", "allowed")
    assert runner.invoke(args=set_password, input=NEW_PASSWORD + "\n").exit_code == 0
    assert log_in(client, NEW_PASSWORD).status_code == 200
