"""The TOTP second factor: enrolment (secret encrypted, URI once), confirmation, the
two-step login, replay, expired challenges, recovery codes, lockout, disabling (own with a
code, or an admin's, audited) and roles that require it."""

from __future__ import annotations

import time
from datetime import timedelta

import pyotp
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, update

from models import AuditEntry, MfaChallenge, MfaRecoveryCode, User, db, utcnow
from security.modules.mfa import STEP_SECONDS
from tests.helpers import STRONG_PASSWORD, login

CREDENTIALS = {"username": "viewer1", "password": STRONG_PASSWORD}


@pytest.fixture(autouse=True)
def encryption_key(app, monkeypatch):
    monkeypatch.setitem(app.config, "ENCRYPTION_KEYS", (Fernet.generate_key().decode(),))


@pytest.fixture
def enrolled(app, viewer) -> dict:
    """viewer1 with the factor on: its TOTP and recovery codes."""
    enrolment = viewer.client.post("/auth/mfa/enrol")
    assert enrolment.status_code == 200, enrolment.get_json()
    totp = pyotp.parse_uri(enrolment.get_json()["otpauth_uri"])
    confirmed = viewer.client.post("/auth/mfa/confirm", json={"code": totp.now()})
    assert confirmed.status_code == 200, confirmed.get_json()
    return {"totp": totp, "codes": confirmed.get_json()["recovery_codes"], "user": viewer}


def challenge(client) -> str:
    answer = client.with_token(None).post("/auth/login", json=CREDENTIALS)
    assert answer.status_code == 202, answer.get_json()
    assert answer.get_json()["mfa_required"] is True
    return answer.get_json()["challenge"]


def second_step(client, raw: str, code: str):
    return client.with_token(None).post("/auth/mfa", json={"challenge": raw, "code": code})


def next_step_code(totp: pyotp.TOTP) -> str:
    """A code of the next time step (accepted: one step of drift either side)."""
    return totp.at(time.time() + STEP_SECONDS)


def test_secret_is_stored_encrypted_and_the_uri_shown_once(app, viewer):
    enrolment = viewer.client.post("/auth/mfa/enrol").get_json()
    secret = enrolment["secret"]
    assert enrolment["otpauth_uri"].startswith("otpauth://totp/")
    with app.app_context():
        stored = db.session.get(User, viewer.id).mfa_secret
    assert secret not in stored
    me = viewer.client.get(f"/users/{viewer.id}")
    assert secret not in me.get_data(as_text=True)


def test_enrolment_without_an_encryption_key_is_503_not_a_clear_secret(app, monkeypatch, viewer):
    monkeypatch.setitem(app.config, "ENCRYPTION_KEYS", ())
    assert viewer.client.post("/auth/mfa/enrol").status_code == 503
    with app.app_context():
        assert db.session.get(User, viewer.id).mfa_secret is None


def test_confirmation_with_a_wrong_code_is_refused(viewer):
    viewer.client.post("/auth/mfa/enrol")
    assert viewer.client.post("/auth/mfa/confirm", json={"code": "000000"}).status_code == 422


def test_recovery_codes_are_ten_and_stored_hashed(app, enrolled):
    assert len(enrolled["codes"]) == 10
    with app.app_context():
        hashes = list(db.session.scalars(select(MfaRecoveryCode.code_hash)))
    assert len(hashes) == 10
    assert not set(enrolled["codes"]) & set(hashes)


def test_login_is_two_steps_with_the_factor(client, enrolled):
    raw = challenge(client)
    answer = second_step(client, raw, next_step_code(enrolled["totp"]))
    assert answer.status_code == 200, answer.get_json()
    token = answer.get_json()["access_token"]
    assert client.with_token(token).get("/auth/me").status_code == 200


def test_a_wrong_code_is_refused(client, enrolled):
    assert second_step(client, challenge(client), "123456").status_code == 401


def test_a_code_is_accepted_only_once(client, enrolled):
    code = next_step_code(enrolled["totp"])
    assert second_step(client, challenge(client), code).status_code == 200
    assert second_step(client, challenge(client), code).status_code == 401


def test_a_code_older_than_the_last_accepted_is_a_replay(client, enrolled):
    assert (
        second_step(client, challenge(client), next_step_code(enrolled["totp"])).status_code == 200
    )
    assert second_step(client, challenge(client), enrolled["totp"].now()).status_code == 401


def test_an_expired_challenge_is_refused(app, client, enrolled):
    raw = challenge(client)
    with app.app_context():
        db.session.execute(update(MfaChallenge).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert second_step(client, raw, next_step_code(enrolled["totp"])).status_code == 401


def test_a_challenge_is_spent_by_its_login(client, enrolled):
    raw = challenge(client)
    assert second_step(client, raw, next_step_code(enrolled["totp"])).status_code == 200
    assert second_step(client, raw, enrolled["codes"][0]).status_code == 401


def test_recovery_codes_work_once_each(app, client, enrolled):
    first, second = enrolled["codes"][:2]
    assert second_step(client, challenge(client), first).status_code == 200
    assert second_step(client, challenge(client), first).status_code == 401
    assert second_step(client, challenge(client), second).status_code == 200
    with app.app_context():
        used = db.session.scalars(select(AuditEntry.action)).all()
    assert used.count("user.mfa_recovery_use") == 2


def test_guessing_codes_ends_in_lockout(client, enrolled):
    raw = challenge(client)
    answers = [second_step(client, raw, f"{guess:06d}").status_code for guess in range(6)]
    assert answers[:5] == [401] * 5
    assert answers[5] == 429
    # the right code does not get through the block either
    assert second_step(client, raw, next_step_code(enrolled["totp"])).status_code == 429


def test_disabling_needs_a_code(app, enrolled):
    client = enrolled["user"].client
    assert client.post("/auth/mfa/disable", json={"code": "000000"}).status_code == 422
    assert client.post("/auth/mfa/disable", json={"code": enrolled["codes"][0]}).status_code == 204
    with app.app_context():
        user = db.session.get(User, enrolled["user"].id)
        assert (user.mfa_secret, user.mfa_enabled_at) == (None, None)
    assert client.with_token(None).post("/auth/login", json=CREDENTIALS).status_code == 200


def test_an_admin_disables_a_factor_and_it_is_audited(app, admin, enrolled, client):
    assert admin.client.delete(f"/users/{enrolled['user'].id}/mfa").status_code == 204
    with app.app_context():
        entry = db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "user.mfa_disable")
        ).one()
        assert (entry.actor, entry.details["by_admin"]) == ("admin1", True)
    assert login(client, "viewer1")


def test_a_role_that_requires_mfa_grants_nothing_until_enrolled(admin, analyst):
    required = admin.client.patch("/auth/mfa-policy", json={"required_roles": ["analyst"]})
    assert required.status_code == 200, required.get_json()
    refused = analyst.client.get("/incidents")
    assert refused.status_code == 403
    assert "second factor" in refused.get_json()["detail"]
    totp = pyotp.parse_uri(analyst.client.post("/auth/mfa/enrol").get_json()["otpauth_uri"])
    assert analyst.client.post("/auth/mfa/confirm", json={"code": totp.now()}).status_code == 200
    assert analyst.client.get("/incidents").status_code == 200
