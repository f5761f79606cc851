"""The admins' second-factor policy (``/auth/mfa-policy``): requiring a factor of a role
takes a session of that role without one down to its own account on its next request, and
lifting it restores access; only admins read or change it (If-Match, a version); an admin
cannot lock their own role out; every change is one event and one audit entry."""

from __future__ import annotations

from collections.abc import Iterator

import pyotp
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from config import ConfigError, identity_settings
from models import AuditEntry, MfaPolicy, db
from security import events
from tests.test_events import Recorder


@pytest.fixture(autouse=True)
def encryption_key(app, monkeypatch):
    monkeypatch.setitem(app.config, "ENCRYPTION_KEYS", (Fernet.generate_key().decode(),))


@pytest.fixture
def recorder(app) -> Iterator[Recorder]:
    recording = Recorder()
    with events.committed.connected_to(recording, sender=app):
        yield recording


def patch_policy(user, roles: list[str], version: int):
    return user.client.patch(
        "/auth/mfa-policy", json={"required_roles": roles}, headers={"If-Match": f'"{version}"'}
    )


def enable_factor(user) -> None:
    totp = pyotp.parse_uri(user.client.post("/auth/mfa/enrol").get_json()["otpauth_uri"])
    assert user.client.post("/auth/mfa/confirm", json={"code": totp.now()}).status_code == 200


def test_until_an_admin_edits_it_no_role_requires_a_factor(admin, analyst):
    answer = admin.client.get("/auth/mfa-policy")
    assert answer.status_code == 200
    assert answer.get_json()["required_roles"] == []
    assert (answer.get_json()["version"], answer.headers["ETag"]) == (1, '"1"')
    assert analyst.client.get("/incidents").status_code == 200


def test_requiring_a_factor_takes_a_role_down_at_once_and_lifting_it_restores(admin, analyst):
    assert analyst.client.get("/incidents").status_code == 200  # its token is now cached
    changed = patch_policy(admin, ["analyst"], 1)
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["required_roles"] == ["analyst"]
    assert (changed.get_json()["version"], changed.get_json()["updated_by"]) == (2, "admin1")
    refused = analyst.client.get("/incidents")
    assert refused.status_code == 403
    assert "second factor" in refused.get_json()["detail"]
    me = analyst.client.get("/auth/me")
    assert (me.status_code, me.get_json()["permissions"]) == (200, [])
    assert admin.client.get("/incidents").status_code == 200  # another role is untouched
    assert patch_policy(admin, [], 2).status_code == 200
    assert analyst.client.get("/incidents").status_code == 200


def test_a_user_of_a_required_role_regains_access_by_enabling_a_factor(admin, analyst):
    assert patch_policy(admin, ["analyst", "viewer"], 1).status_code == 200
    assert analyst.client.get("/incidents").status_code == 403
    enable_factor(analyst)
    assert analyst.client.get("/incidents").status_code == 200


def test_only_admins_read_or_change_the_policy(app, admin, analyst):
    assert analyst.client.get("/auth/mfa-policy").status_code == 403
    assert patch_policy(analyst, ["viewer"], 1).status_code == 403
    with app.app_context():
        assert db.session.get(MfaPolicy, 1) is None
    assert admin.client.get("/auth/mfa-policy").get_json()["required_roles"] == []


def test_a_stale_version_or_an_unknown_role_is_refused(admin):
    assert patch_policy(admin, ["viewer"], 1).status_code == 200
    stale = patch_policy(admin, ["analyst"], 1)
    assert stale.status_code == 412
    assert stale.get_json()["current_version"] == 2
    assert patch_policy(admin, ["auditor"], 2).status_code == 400
    unknown_field = admin.client.patch(
        "/auth/mfa-policy", json={"required_roles": [], "version": 9}
    )
    assert unknown_field.status_code == 400
    assert admin.client.get("/auth/mfa-policy").get_json()["required_roles"] == ["viewer"]


def test_an_admin_without_a_factor_cannot_require_one_of_admins(admin):
    refused = patch_policy(admin, ["admin"], 1)
    assert refused.status_code == 409
    assert admin.client.get("/incidents").status_code == 200
    enable_factor(admin)
    assert patch_policy(admin, ["admin"], 1).status_code == 200
    assert admin.client.get("/incidents").status_code == 200


def test_api_keys_are_not_login_sessions_and_keep_working(admin, analyst):
    issued = analyst.client.post("/api-keys", json={"name": "soar", "scopes": ["iocs:read"]})
    key = issued.get_json()["key"]
    assert patch_policy(admin, ["analyst"], 1).status_code == 200
    assert analyst.client.with_token(key).get("/iocs/check?value=198.51.100.7").status_code == 200


def test_a_change_is_one_event_and_one_audit_entry_and_no_change_is_none(app, admin, recorder):
    assert patch_policy(admin, ["viewer", "analyst", "viewer"], 1).status_code == 200
    assert patch_policy(admin, ["analyst", "viewer"], 2).status_code == 200  # the same set
    assert recorder.seen() == [("mfa_policy.update", 1)]
    assert recorder.events[0].data == {"changes": {"required_roles": [[], ["analyst", "viewer"]]}}
    with app.app_context():
        entry = db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "mfa_policy.update")
        ).one()
        assert (entry.actor, entry.object_type, entry.object_id) == ("admin1", "mfa_policy", "1")


def test_the_retired_environment_setting_is_refused_not_ignored():
    with pytest.raises(ConfigError, match="mfa-policy"):
        identity_settings({"MFA_REQUIRED_ROLES": "analyst"})
    assert "MFA_REQUIRED_ROLES" not in identity_settings({})
