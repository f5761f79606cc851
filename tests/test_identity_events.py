"""Every identity change is one domain event (and so one audit entry): an admin's edit and
what a deactivation ends, a password change or reset, the second factor's steps, a
recovery code spent; a refused change announces nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pyotp
import pytest
from cryptography.fernet import Fernet

from security import events
from tests.helpers import STRONG_PASSWORD
from tests.test_events import Recorder


@pytest.fixture
def recorder(app, monkeypatch) -> Iterator[Recorder]:
    monkeypatch.setitem(app.config, "ENCRYPTION_KEYS", (Fernet.generate_key().decode(),))
    recording = Recorder()
    with events.committed.connected_to(recording, sender=app):
        yield recording


def test_deactivation_is_one_edit_then_one_event_per_session_and_key(admin, analyst, recorder):
    key_id = analyst.client.post("/api-keys", json={"name": "k", "scopes": ["iocs:read"]})
    recorder.take()
    admin.client.patch(
        f"/users/{analyst.id}", json={"is_active": False}, headers={"If-Match": '"1"'}
    )
    edit = recorder.events[0]
    seen = recorder.take()
    assert seen[0] == ("user.update", analyst.id)
    assert [kind for kind, _ in seen[1:]] == ["auth.logout", "apikey.revoke"]
    assert seen[2] == ("apikey.revoke", key_id.get_json()["id"])
    assert edit.data["changes"] == {"is_active": [True, False]}


def test_a_refused_edit_announces_nothing(admin, recorder):
    admin.client.patch(f"/users/{admin.id}", json={"role": "viewer"})
    assert recorder.seen() == []


def test_a_password_change_is_one_event_plus_the_sessions_it_ends(viewer, client, recorder):
    client.post("/auth/login", json={"username": "viewer1", "password": STRONG_PASSWORD})
    recorder.take()
    viewer.client.post(
        "/auth/password",
        json={"current_password": STRONG_PASSWORD, "new_password": "Quartz-Meadow-71!"},
    )
    assert [kind for kind, _ in recorder.take()] == ["user.password_change", "auth.logout"]


def test_an_admin_reset_is_one_event_plus_the_sessions_it_ends(admin, viewer, recorder):
    admin.client.post(f"/users/{viewer.id}/password-reset", json={"mode": "force_change"})
    kinds = [kind for kind, _ in recorder.seen()]
    assert kinds == ["auth.logout", "user.password_reset"]
    assert recorder.events[1].subject_id == viewer.id


def test_the_second_factor_steps_are_one_event_each(admin, viewer, client, recorder):
    uri = viewer.client.post("/auth/mfa/enrol").get_json()["otpauth_uri"]
    totp = pyotp.parse_uri(uri)
    codes = viewer.client.post("/auth/mfa/confirm", json={"code": totp.now()}).get_json()
    challenge = client.post(
        "/auth/login", json={"username": "viewer1", "password": STRONG_PASSWORD}
    ).get_json()["challenge"]
    client.post("/auth/mfa", json={"challenge": challenge, "code": codes["recovery_codes"][0]})
    admin.client.delete(f"/users/{viewer.id}/mfa")
    kinds = [kind for kind, _ in recorder.seen()]
    assert kinds == [
        "user.mfa_enrol",
        "user.mfa_enable",
        "user.mfa_recovery_use",
        "auth.login",
        "user.mfa_disable",
    ]
    assert recorder.events[-1].data == {"username": "viewer1", "by_admin": True}
