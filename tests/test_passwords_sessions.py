"""Passwords and sessions: changing one's own password (other sessions end), an admin's
reset (a one-time expiring token, or a change forced at next login), ``flask
reset-password``, the policy's username and breached-password rules, and the caller's
sessions: listed with their details, ended one by one, never someone else's."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from models import AuditEntry, PasswordReset, db, utcnow
from security.modules.users import password_policy_violations
from tests.helpers import STRONG_PASSWORD, login

NEW_PASSWORD = "Quartz-Meadow-71!"


def test_policy_refuses_the_username_inside_the_password():
    problems = password_policy_violations("Xx-Analyst1-2024!", "analyst1")
    assert "must not contain the username" in problems


def test_policy_refuses_common_breached_passwords_whatever_their_case():
    # "mega_pizdetz666" is on the shipped list; it passes every other rule once capitalised.
    assert password_policy_violations("Mega_Pizdetz666") == ["must not be a commonly used password"]
    assert password_policy_violations(NEW_PASSWORD, "viewer1") == []


def test_register_refuses_a_password_containing_the_username(admin):
    answer = admin.client.post(
        "/auth/register",
        json={"username": "dana", "password": "Dana-Is-Great-42", "role": "viewer"},
    )
    assert answer.status_code == 422
    assert "must not contain the username" in answer.get_json()["errors"]["password"]


def test_own_change_ends_the_other_sessions_but_keeps_this_one(viewer, client):
    other = client.with_token(login(client, "viewer1"))
    answer = viewer.client.post(
        "/auth/password", json={"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert answer.status_code == 204, answer.get_json()
    assert viewer.client.get("/auth/me").status_code == 200
    assert other.get("/auth/me").status_code == 401
    assert login(client, "viewer1", NEW_PASSWORD)


def test_own_change_with_a_wrong_current_password_is_401_and_counts(app, viewer):
    answer = viewer.client.post(
        "/auth/password", json={"current_password": "Wrong-One-123!", "new_password": NEW_PASSWORD}
    )
    assert answer.status_code == 401
    with app.app_context():
        failures = db.session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "user.password_change", AuditEntry.outcome == "failure"
            )
        ).all()
    assert len(failures) == 1


def test_own_change_is_under_the_policy(viewer):
    answer = viewer.client.post(
        "/auth/password", json={"current_password": STRONG_PASSWORD, "new_password": "short"}
    )
    assert answer.status_code == 422


def test_admin_reset_token_is_one_time(admin, viewer, client):
    issued = admin.client.post(f"/users/{viewer.id}/password-reset", json={"mode": "token"})
    assert issued.status_code == 200
    token = issued.get_json()["reset_token"]
    assert viewer.client.get("/auth/me").status_code == 401  # the reset ended the sessions
    body = {"reset_token": token, "new_password": NEW_PASSWORD}
    assert client.post("/auth/password/reset", json=body).status_code == 204
    assert login(client, "viewer1", NEW_PASSWORD)
    again = {"reset_token": token, "new_password": "Another-Fine-88?"}
    assert client.post("/auth/password/reset", json=again).status_code == 401


def test_expired_reset_token_is_refused(app, admin, viewer, client):
    issued = admin.client.post(f"/users/{viewer.id}/password-reset", json={"mode": "token"})
    with app.app_context():
        past = utcnow() - timedelta(seconds=1)
        db.session.execute(update(PasswordReset).values(expires_at=past))
        db.session.commit()
    body = {"reset_token": issued.get_json()["reset_token"], "new_password": NEW_PASSWORD}
    assert client.post("/auth/password/reset", json=body).status_code == 401


def test_forced_change_blocks_login_until_the_password_is_changed(admin, viewer, client):
    issued = admin.client.post(f"/users/{viewer.id}/password-reset", json={"mode": "force_change"})
    assert issued.get_json()["reset_token"] is None
    credentials = {"username": "viewer1", "password": STRONG_PASSWORD}
    assert client.post("/auth/login", json=credentials).status_code == 403
    change = {
        "username": "viewer1",
        "current_password": STRONG_PASSWORD,
        "new_password": NEW_PASSWORD,
    }
    assert client.post("/auth/password", json=change).status_code == 204
    assert login(client, "viewer1", NEW_PASSWORD)


def test_token_less_change_for_an_unknown_user_is_401(client):
    change = {"username": "nobody", "current_password": "x", "new_password": NEW_PASSWORD}
    assert client.post("/auth/password", json=change).status_code == 401


def test_reset_password_command_prints_a_one_time_token(app, viewer, client):
    result = app.test_cli_runner().invoke(args=["reset-password", "viewer1"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().split()[-1]
    body = {"reset_token": token, "new_password": NEW_PASSWORD}
    assert client.post("/auth/password/reset", json=body).status_code == 204


def test_sessions_list_their_details_and_mark_the_current_one(viewer, client):
    client.with_token(None).post(
        "/auth/login",
        json={"username": "viewer1", "password": STRONG_PASSWORD},
        headers={"User-Agent": "soar-agent/2.1"},
    )
    items = viewer.client.get("/auth/sessions").get_json()["items"]
    assert len(items) == 2
    assert {item["user_agent"] for item in items} >= {"soar-agent/2.1"}
    assert {item["client_address"] for item in items} == {"127.0.0.1"}
    assert [item["current"] for item in items].count(True) == 1


def test_a_session_is_ended_by_its_id(viewer, client):
    other = client.with_token(login(client, "viewer1"))
    items = viewer.client.get("/auth/sessions").get_json()["items"]
    other_id = next(item["id"] for item in items if not item["current"])
    assert viewer.client.delete(f"/auth/sessions/{other_id}").status_code == 204
    assert other.get("/auth/me").status_code == 401
    assert viewer.client.get("/auth/me").status_code == 200


def test_someone_elses_session_is_404_and_stays_open(viewer, analyst):
    their = analyst.client.get("/auth/sessions").get_json()["items"][0]["id"]
    assert viewer.client.delete(f"/auth/sessions/{their}").status_code == 404
    assert analyst.client.get("/auth/me").status_code == 200
