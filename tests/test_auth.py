"""Login, logout, tokens, registration and the account lockout."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from models import AuditEntry, AuthToken, User, db, utcnow
from tests.helpers import STRONG_PASSWORD, create_user_row, login


def audit_actions(app, action: str) -> list[AuditEntry]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def test_login_returns_bearer_token_with_expiry(app, client):
    create_user_row(app, "alice", "analyst")
    response = client.post("/auth/login", json={"username": "alice", "password": STRONG_PASSWORD})
    assert response.status_code == 200
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    assert body["expires_at"].endswith("Z")
    assert body["user"]["role"] == "analyst"
    assert "password_hash" not in body["user"]


def test_token_is_stored_only_as_sha256(app, client):
    create_user_row(app, "alice", "analyst")
    token = login(client, "alice")
    with app.app_context():
        stored = db.session.scalars(select(AuthToken)).one()
        assert token not in stored.token_hash
        assert len(stored.token_hash) == 64


def test_password_is_stored_as_argon2id(app):
    create_user_row(app, "alice", "analyst")
    with app.app_context():
        user = db.session.scalars(select(User)).one()
        assert user.password_hash.startswith("$argon2id$")


def test_wrong_password_and_unknown_user_answer_alike(app, client):
    create_user_row(app, "alice", "analyst")
    wrong_password = client.post("/auth/login", json={"username": "alice", "password": "nope"})
    unknown_user = client.post("/auth/login", json={"username": "bob", "password": "nope"})
    assert wrong_password.status_code == unknown_user.status_code == 401
    assert wrong_password.get_json()["detail"] == unknown_user.get_json()["detail"]


def test_me_describes_the_caller(analyst):
    response = analyst.client.get("/auth/me")
    assert response.status_code == 200
    assert response.get_json()["username"] == "analyst1"
    assert "incidents:write" in response.get_json()["permissions"]


def test_missing_token_is_401_with_www_authenticate(client):
    response = client.get("/auth/me")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.mimetype == "application/problem+json"


def test_malformed_token_is_401(client):
    response = client.with_token("sat_not-a-real-token").get("/auth/me")
    assert response.status_code == 401


def test_revoked_token_is_401(analyst):
    assert analyst.client.post("/auth/logout").status_code == 204
    assert analyst.client.get("/auth/me").status_code == 401


def test_expired_token_is_401(app, analyst):
    with app.app_context():
        token = db.session.scalars(select(AuthToken)).one()
        token.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    assert analyst.client.get("/auth/me").status_code == 401


def test_deactivated_user_token_is_401(app, analyst):
    with app.app_context():
        db.session.get(User, analyst.id).is_active = False
        db.session.commit()
    assert analyst.client.get("/auth/me").status_code == 401


def test_admin_registers_user_with_role(admin, client):
    response = admin.client.post(
        "/auth/register",
        json={"username": "newbie", "password": STRONG_PASSWORD, "role": "viewer"},
    )
    assert response.status_code == 201
    assert response.get_json()["role"] == "viewer"
    assert login(client, "newbie")


def test_analyst_cannot_register_users(app, analyst):
    response = analyst.client.post(
        "/auth/register",
        json={"username": "sneaky", "password": STRONG_PASSWORD, "role": "admin"},
    )
    assert response.status_code == 403
    with app.app_context():
        assert db.session.scalar(select(User).where(User.username == "sneaky")) is None
    assert audit_actions(app, "auth.permission_denied")


def test_register_rejects_weak_password_with_every_reason(admin):
    response = admin.client.post(
        "/auth/register", json={"username": "weakling", "password": "short", "role": "viewer"}
    )
    assert response.status_code == 422
    reasons = response.get_json()["errors"]["password"]
    assert any("12 characters" in reason for reason in reasons)
    assert any("upper-case" in reason for reason in reasons)


def test_register_rejects_duplicate_username_case_insensitively(admin):
    body = {"username": "ADMIN1", "password": STRONG_PASSWORD, "role": "viewer"}
    response = admin.client.post("/auth/register", json=body)
    assert response.status_code == 409


def test_register_rejects_unknown_role(admin):
    body = {"username": "someone", "password": STRONG_PASSWORD, "role": "root"}
    response = admin.client.post("/auth/register", json=body)
    assert response.status_code == 400
    assert "role" in response.get_json()["errors"]


def test_long_password_is_not_truncated(app, client):
    long_password = "Aa1!" + "x" * 200
    with app.app_context():
        from security.modules.users import create_user

        create_user("longpw", long_password, "viewer")
        db.session.commit()
    almost = long_password[:-1] + "y"
    assert (
        client.post("/auth/login", json={"username": "longpw", "password": almost}).status_code
        == 401
    )
    assert (
        client.post(
            "/auth/login", json={"username": "longpw", "password": long_password}
        ).status_code
        == 200
    )


def test_five_wrong_passwords_lock_the_account(app, client):
    create_user_row(app, "alice", "analyst")
    for _ in range(5):
        response = client.post("/auth/login", json={"username": "alice", "password": "wrong"})
        assert response.status_code == 401
    locked = client.post("/auth/login", json={"username": "alice", "password": STRONG_PASSWORD})
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) > 0
    assert audit_actions(app, "auth.block_created")
    assert audit_actions(app, "auth.login_blocked")


def test_successful_login_resets_the_account_count(app, client):
    create_user_row(app, "alice", "analyst")
    for _ in range(4):
        client.post("/auth/login", json={"username": "alice", "password": "wrong"})
    assert login(client, "alice")
    for _ in range(4):
        client.post("/auth/login", json={"username": "alice", "password": "wrong"})
    assert login(client, "alice")


def test_failed_logins_are_audited(app, client):
    client.post("/auth/login", json={"username": "ghost", "password": "wrong"})
    entries = audit_actions(app, "auth.login")
    assert [(e.outcome, e.actor) for e in entries] == [("failure", "ghost")]
