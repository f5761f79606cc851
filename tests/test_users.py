"""User administration (``/users``): the list, one account, an admin's edit with If-Match,
what a deactivation or demotion ends at once, the last admin, and who may do any of it."""

from __future__ import annotations

import time

from sqlalchemy import select

from auth import VERIFIED_TOKEN_SECONDS
from models import ApiKey, AuditEntry, AuthToken, User, db
from tests.helpers import make_user


def edit(client, user_id: int, body: dict, version: int = 1):
    return client.patch(f"/users/{user_id}", json=body, headers={"If-Match": f'"{version}"'})


def test_location_of_a_registered_user_resolves(admin):
    created = admin.client.post(
        "/auth/register",
        json={"username": "newcomer", "password": "Zebra-Lantern-93!", "role": "viewer"},
    )
    assert created.status_code == 201
    answer = admin.client.get(created.headers["Location"])
    assert answer.status_code == 200
    assert answer.get_json()["username"] == "newcomer"
    assert answer.headers["ETag"] == '"1"'


def test_list_filters_by_role_and_activation_and_pages(app, admin, client):
    for index in range(3):
        make_user(app, client, f"viewer-{index}", "viewer")
    viewers = admin.client.get("/users?role=viewer&limit=2").get_json()
    assert [user["role"] for user in viewers["items"]] == ["viewer", "viewer"]
    rest = admin.client.get(f"/users?role=viewer&limit=2&cursor={viewers['next_cursor']}")
    assert len(rest.get_json()["items"]) == 1
    assert admin.client.get("/users?active=false").get_json()["items"] == []


def test_non_admins_cannot_list_read_or_edit_users(admin, analyst, viewer):
    for caller in (analyst, viewer):
        assert caller.client.get("/users").status_code == 403
        assert caller.client.get(f"/users/{admin.id}").status_code == 403
        # privilege escalation: granting oneself admin is refused, and nothing changes
        assert edit(caller.client, caller.id, {"role": "admin"}).status_code == 403
    with_roles = admin.client.get("/users").get_json()["items"]
    assert {user["username"]: user["role"] for user in with_roles}["analyst1"] == "analyst"


def test_edit_changes_role_and_profile_and_bumps_the_version(admin, viewer):
    answer = edit(
        admin.client,
        viewer.id,
        {"role": "analyst", "display_name": "Val Viewer", "email": "val@example.org"},
    )
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert (body["role"], body["display_name"], body["version"]) == ("analyst", "Val Viewer", 2)
    assert answer.headers["ETag"] == '"2"'
    assert edit(admin.client, viewer.id, {"role": "viewer"}, version=1).status_code == 412


def test_edit_refuses_fields_outside_its_list(admin, viewer):
    for field, value in (
        ("username", "renamed"),
        ("password_hash", "x"),
        ("mfa_secret", "x"),
        ("id", 99),
        ("version", 9),
        ("must_change_password", False),
    ):
        answer = edit(admin.client, viewer.id, {field: value})
        assert answer.status_code == 400, field
    assert admin.client.get(f"/users/{viewer.id}").get_json()["username"] == "viewer1"


def test_unknown_user_is_404(admin):
    assert admin.client.get("/users/999999").status_code == 404
    assert edit(admin.client, 999999, {"role": "viewer"}).status_code == 404


def test_deactivation_ends_sessions_and_revokes_api_keys_at_once(app, admin, analyst):
    issued = analyst.client.post("/api-keys", json={"name": "soar", "scopes": ["iocs:read"]})
    key = issued.get_json()["key"]
    assert analyst.client.with_token(key).get("/auth/me").status_code == 200
    assert analyst.client.get("/auth/me").status_code == 200
    answer = edit(admin.client, analyst.id, {"is_active": False})
    assert answer.status_code == 200
    assert analyst.client.get("/auth/me").status_code == 401
    assert analyst.client.with_token(key).get("/auth/me").status_code == 401
    with app.app_context():
        tokens = db.session.scalars(select(AuthToken).where(AuthToken.user_id == analyst.id))
        assert all(token.revoked_at is not None for token in tokens)
        keys = db.session.scalars(select(ApiKey).where(ApiKey.user_id == analyst.id))
        assert all(key.revoked_at is not None for key in keys)
        actions = set(db.session.scalars(select(AuditEntry.action)))
    assert {"user.update", "auth.logout", "apikey.revoke"} <= actions
    # reactivating does not bring the revoked key back
    edit(admin.client, analyst.id, {"is_active": True}, version=2)
    assert analyst.client.with_token(key).get("/auth/me").status_code == 401


def test_demotion_ends_sessions_and_shrinks_api_keys(admin, analyst):
    issued = analyst.client.post(
        "/api-keys", json={"name": "soar", "scopes": ["iocs:read", "iocs:write"]}
    )
    key = issued.get_json()["key"]
    assert edit(admin.client, analyst.id, {"role": "viewer"}).status_code == 200
    assert analyst.client.get("/auth/me").status_code == 401
    me = analyst.client.with_token(key).get("/auth/me").get_json()
    assert me["permissions"] == ["iocs:read"]


def test_a_raised_role_keeps_the_session(admin, viewer):
    assert edit(admin.client, viewer.id, {"role": "analyst"}).status_code == 200
    time.sleep(VERIFIED_TOKEN_SECONDS)
    assert viewer.client.get("/auth/me").get_json()["role"] == "analyst"


def test_the_last_active_admin_cannot_be_deactivated_or_demoted(app, admin, client):
    for change in ({"is_active": False}, {"role": "analyst"}):
        answer = edit(admin.client, admin.id, change)
        assert answer.status_code == 409, answer.get_json()
    with app.app_context():
        user = db.session.get(User, admin.id)
        assert (user.role, user.is_active, user.version) == ("admin", True, 1)
    second = make_user(app, client, "admin2", "admin")
    assert edit(admin.client, second.id, {"role": "analyst"}).status_code == 200
    assert edit(admin.client, admin.id, {"is_active": False}).status_code == 409


def test_an_admin_can_step_down_when_another_remains(app, admin, client):
    make_user(app, client, "admin2", "admin")
    assert edit(admin.client, admin.id, {"role": "analyst"}).status_code == 200


def test_admin_signs_a_user_out_everywhere(admin, viewer):
    answer = admin.client.delete(f"/users/{viewer.id}/sessions")
    assert answer.status_code == 200
    assert len(answer.get_json()["revoked"]) == 1
    assert viewer.client.get("/auth/me").status_code == 401
