"""``/api-keys``: issuing, using, revoking, rotating keys; their usage log and findings."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from auth import hash_secret
from models import ApiKey, AuditEntry, CredentialUsage, User, db, utcnow
from tests.helpers import add_credential_usage, make_user


def issue(user, scopes=("iocs:read",), **fields) -> dict:
    response = user.client.post("/api-keys", json={"name": "ci", "scopes": list(scopes), **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def as_key(user, key: str):
    return user.client.with_token(key)


def test_issued_key_is_shown_once_and_only_its_hash_is_stored(app, analyst):
    response = analyst.client.post("/api-keys", json={"name": "ci", "scopes": ["iocs:read"]})
    body = response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    assert body["key"].startswith(body["prefix"] + "_") and len(body["prefix"]) == 12
    assert "key" not in analyst.client.get(f"/api-keys/{body['id']}").get_json()
    with app.app_context():
        stored = db.session.get(ApiKey, body["id"])
        secret = body["key"][len(body["prefix"]) + 1 :]
        assert stored.secret_hash == hash_secret(secret)
        assert secret not in (stored.prefix, stored.name)


def test_key_authenticates_with_its_scopes_only(analyst):
    key = issue(analyst, scopes=["iocs:read"])["key"]
    me = as_key(analyst, key).get("/auth/me").get_json()
    assert (me["credential_type"], me["permissions"], me["username"]) == (
        "api_key",
        ["iocs:read"],
        "analyst1",
    )


def test_key_with_iocs_read_cannot_write(analyst):
    client = as_key(analyst, issue(analyst, scopes=["iocs:read"])["key"])
    assert client.get("/iocs/check?value=10.1.2.3").status_code == 200
    assert client.post("/iocs", json={"value": "evil.example.com"}).status_code == 403


def test_key_with_iocs_write_can_write(analyst):
    client = as_key(analyst, issue(analyst, scopes=["iocs:write"])["key"])
    assert client.post("/iocs", json={"value": "evil.example.com"}).status_code == 201


def test_scopes_beyond_the_owners_permissions_are_refused(analyst):
    response = analyst.client.post("/api-keys", json={"name": "x", "scopes": ["users:admin"]})
    assert response.status_code == 422
    assert "users:admin" in response.get_json()["detail"]


def test_malformed_scope_is_refused(analyst):
    response = analyst.client.post("/api-keys", json={"name": "x", "scopes": ["everything"]})
    assert response.status_code == 422


def test_a_key_cannot_mint_a_more_powerful_key(analyst):
    client = as_key(analyst, issue(analyst, scopes=["apikeys:write"])["key"])
    response = client.post("/api-keys", json={"name": "escalate", "scopes": ["iocs:write"]})
    assert response.status_code == 422


def test_viewer_cannot_create_keys(app, viewer):
    response = viewer.client.post("/api-keys", json={"name": "x", "scopes": ["iocs:read"]})
    assert response.status_code == 403
    with app.app_context():
        assert db.session.scalars(select(ApiKey)).all() == []


def test_revoked_key_gets_401(analyst):
    issued = issue(analyst)
    assert analyst.client.delete(f"/api-keys/{issued['id']}").status_code == 204
    response = as_key(analyst, issued["key"]).get("/iocs/check?value=10.1.2.3")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert analyst.client.get(f"/api-keys/{issued['id']}").get_json()["state"] == "revoked"


def test_expired_key_gets_401(app, analyst):
    soon = (utcnow() + timedelta(minutes=5)).isoformat()
    issued = issue(analyst, expires_at=soon)
    with app.app_context():
        db.session.execute(
            update(ApiKey)
            .where(ApiKey.id == issued["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
    assert as_key(analyst, issued["key"]).get("/auth/me").status_code == 401


def test_expiry_in_the_past_is_refused(analyst):
    response = analyst.client.post(
        "/api-keys",
        json={"name": "x", "scopes": ["iocs:read"], "expires_at": "2020-01-01T00:00:00Z"},
    )
    assert response.status_code == 422


def test_wrong_secret_for_a_real_prefix_gets_401(analyst):
    issued = issue(analyst)
    forged = issued["prefix"] + "_" + "A" * 43
    assert as_key(analyst, forged).get("/auth/me").status_code == 401


def test_rotation_issues_a_new_secret_and_keeps_the_old_one_for_the_grace_period(analyst):
    issued = issue(analyst)
    rotated = analyst.client.post(f"/api-keys/{issued['id']}/rotate")
    assert rotated.status_code == 200
    body = rotated.get_json()
    assert body["key"] != issued["key"] and body["prefix"] == issued["prefix"]
    assert body["previous_valid_until"] is not None
    assert as_key(analyst, body["key"]).get("/auth/me").status_code == 200
    assert as_key(analyst, issued["key"]).get("/auth/me").status_code == 200


def test_rotated_out_secret_gets_401(analyst):
    issued = issue(analyst)
    rotated = analyst.client.post(f"/api-keys/{issued['id']}/rotate", json={"grace_seconds": 0})
    assert as_key(analyst, issued["key"]).get("/auth/me").status_code == 401
    assert as_key(analyst, rotated.get_json()["key"]).get("/auth/me").status_code == 200


def test_rotating_twice_ends_the_oldest_secret_at_once(analyst):
    issued = issue(analyst)
    url = f"/api-keys/{issued['id']}/rotate"
    second = analyst.client.post(url).get_json()["key"]
    third = analyst.client.post(url).get_json()["key"]
    assert as_key(analyst, issued["key"]).get("/auth/me").status_code == 401
    assert as_key(analyst, second).get("/auth/me").status_code == 200
    assert as_key(analyst, third).get("/auth/me").status_code == 200


def test_revoked_key_cannot_be_rotated(analyst):
    issued = issue(analyst)
    analyst.client.delete(f"/api-keys/{issued['id']}")
    assert analyst.client.post(f"/api-keys/{issued['id']}/rotate").status_code == 422


def test_someone_elses_key_is_404_but_an_admin_manages_it(app, client, analyst, admin):
    other = make_user(app, client, "analyst2", "analyst")
    issued = issue(analyst)
    assert other.client.get(f"/api-keys/{issued['id']}").status_code == 404
    assert other.client.delete(f"/api-keys/{issued['id']}").status_code == 404
    assert other.client.get("/api-keys").get_json()["items"] == []
    assert admin.client.get(f"/api-keys/{issued['id']}").status_code == 200
    assert admin.client.delete(f"/api-keys/{issued['id']}").status_code == 204


def test_key_loses_scopes_its_owner_no_longer_has(app, analyst):
    key = issue(analyst, scopes=["iocs:write"])["key"]
    with app.app_context():
        db.session.execute(update(User).where(User.username == "analyst1").values(role="viewer"))
        db.session.commit()
    response = as_key(analyst, key).post("/iocs", json={"value": "evil.example.com"})
    assert response.status_code == 403


def test_usage_lists_successes_and_failed_attempts(analyst):
    issued = issue(analyst)
    as_key(analyst, issued["key"]).get("/iocs/check?value=10.1.2.3")
    analyst.client.post(f"/api-keys/{issued['id']}/rotate", json={"grace_seconds": 0})
    as_key(analyst, issued["key"]).get("/auth/me")
    items = analyst.client.get(f"/api-keys/{issued['id']}/usage").get_json()["items"]
    assert [(item["outcome"], item["reason"]) for item in items] == [
        ("failure", "rotated_out"),
        ("success", None),
    ]
    assert items[1]["operation"] == "GET /iocs/check"
    listed = analyst.client.get(f"/api-keys/{issued['id']}").get_json()
    assert listed["last_used_at"] is not None


def test_findings_report_use_after_rotation_and_revocation(analyst):
    issued = issue(analyst)
    analyst.client.post(f"/api-keys/{issued['id']}/rotate", json={"grace_seconds": 0})
    as_key(analyst, issued["key"]).get("/auth/me")
    analyst.client.delete(f"/api-keys/{issued['id']}")
    as_key(analyst, issued["key"]).get("/auth/me")
    findings = analyst.client.get(f"/api-keys/{issued['id']}/findings").get_json()["items"]
    kinds = {finding["kind"]: finding for finding in findings}
    assert {"use_after_rotation", "use_after_revocation"} <= set(kinds)
    assert kinds["use_after_revocation"]["severity"] == "high"
    assert kinds["use_after_rotation"]["evidence"] == {"attempts": 1}


def test_key_writes_are_audited(app, analyst):
    issued = issue(analyst)
    analyst.client.post(f"/api-keys/{issued['id']}/rotate")
    analyst.client.delete(f"/api-keys/{issued['id']}")
    with app.app_context():
        actions = db.session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.action.like("apikey.%"))
            .order_by(AuditEntry.id)
        ).all()
        logged = db.session.scalars(select(CredentialUsage.credential_name)).all()
    assert actions == ["apikey.create", "apikey.rotate", "apikey.revoke"]
    assert all(name == issued["prefix"] for name in logged)


def _usage_operations(app) -> set[str]:
    with app.app_context():
        return set(db.session.scalars(select(CredentialUsage.operation)))


def test_issuing_a_key_prunes_usage_older_than_the_retention_period(app, analyst):
    add_credential_usage(app, 91)
    add_credential_usage(app, 89)
    issue(analyst)
    assert _usage_operations(app) == {"89 days ago"}


def test_rotating_a_key_prunes_usage_within_a_shorter_configured_retention(
    app, analyst, monkeypatch
):
    key_id = issue(analyst)["id"]
    monkeypatch.setitem(app.config, "CREDENTIAL_USAGE_RETENTION_DAYS", 7)
    add_credential_usage(app, 8)
    add_credential_usage(app, 6)
    assert analyst.client.post(f"/api-keys/{key_id}/rotate").status_code == 200
    assert _usage_operations(app) == {"6 days ago"}


def test_prune_usage_command_deletes_old_entries_and_says_how_many(app):
    add_credential_usage(app, 120)
    add_credential_usage(app, 1)
    result = app.test_cli_runner().invoke(args=["prune-usage"])
    assert result.exit_code == 0, result.output
    assert "pruned 1 credential usage entries" in result.output
    assert _usage_operations(app) == {"1 days ago"}


def test_a_use_refused_with_403_is_logged_as_denied(analyst):
    issued = issue(analyst, scopes=["iocs:read"])
    client = as_key(analyst, issued["key"])
    assert client.post("/iocs", json={"value": "evil.example.com"}).status_code == 403
    assert client.get("/iocs/check?value=10.1.2.3").status_code == 200
    items = analyst.client.get(f"/api-keys/{issued['id']}/usage").get_json()["items"]
    assert [(item["operation"], item["outcome"], item["reason"]) for item in items] == [
        ("GET /iocs/check", "success", None),
        ("POST /iocs", "denied", "forbidden"),
    ]
