"""The second factor: TOTP (RFC 6238, ``pyotp``) with ten one-time recovery codes.

Enrolment is two steps: :func:`begin_enrolment` stores a new secret (Fernet-encrypted with
``security/outbound/secrets.py``) and returns its ``otpauth://`` URI once;
:func:`confirm_enrolment` turns the factor on when a code from it is right, and returns
the recovery codes once (only their SHA-256 is stored: each is 80 random bits, so a fast
hash is enough). A TOTP code is accepted in the current 30-second step or the one either
side (clock drift), and only once: the step of the last accepted code is kept, and a code
of that step or an earlier one is a replay.

A login with a second factor is two requests: the password answers a challenge
(:func:`start_challenge`, valid for ``MFA_CHALLENGE_SECONDS``), and
:func:`complete_challenge` takes the challenge and a code. A wrong code counts toward the
login lockout exactly like a wrong password (:mod:`security.modules.blocks`).
"""

from __future__ import annotations

import hmac
import secrets
import time
from datetime import timedelta

import pyotp
from flask import current_app
from sqlalchemy import delete, select

from models import MfaChallenge, MfaRecoveryCode, User, db, utcnow
from security.errors import Conflict, Invalid, Unauthenticated, Unavailable
from security.events import Actor, EventType, emit
from security.modules import audit, blocks
from security.modules.principals import hash_secret
from security.outbound.secrets import EncryptionUnavailable, decrypt_secret, encrypt_secret

RECOVERY_CODE_COUNT = 10
ISSUER_NAME = "SOC Incident API"
STEP_SECONDS = 30
# Steps either side of now a code may come from: one absorbs a phone's clock drift.
DRIFT_STEPS = 1
CHALLENGE_PREFIX = "smc_"


class WrongCode(Invalid):
    """A TOTP or recovery code that does not match (or was already used)."""

    def __init__(self) -> None:
        super().__init__("The code is wrong or was already used.", errors={"code": ["wrong"]})


class ChallengeRefused(Unauthenticated):
    """The login challenge is unknown, used or expired, or its code is wrong."""


def begin_enrolment(user: User) -> tuple[str, str]:
    """Give ``user`` a new, not yet active, TOTP secret; returns ``(otpauth URI, secret)``,
    which are never shown again. :class:`Conflict` when a factor is already on."""
    if user.mfa_enabled:
        raise Conflict("A second factor is already enabled: disable it first.")
    secret = pyotp.random_base32()
    try:
        user.mfa_secret = encrypt_secret({"totp": secret}).decode()
    except EncryptionUnavailable as error:
        raise Unavailable("A second factor needs ENCRYPTION_KEY to store its secret.") from error
    emit(EventType.USER_MFA_ENROLLED, user.id, {"username": user.username})
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=ISSUER_NAME)
    return uri, secret


def confirm_enrolment(user: User, code: str) -> list[str]:
    """Turn the enrolled factor on with a right code; returns the ten recovery codes."""
    if user.mfa_enabled:
        raise Conflict("The second factor is already enabled.")
    if user.mfa_secret is None:
        raise Conflict("Start the enrolment first (POST /auth/mfa/enrol).")
    step = _matching_step(user, code)
    if step is None:
        raise WrongCode()
    user.mfa_enabled_at = utcnow()
    user.mfa_last_step = step
    codes = _new_recovery_codes(user)
    emit(EventType.USER_MFA_ENABLED, user.id, {"username": user.username})
    return codes


def disable(user: User, *, by_admin: bool, actor: Actor | None = None) -> None:
    """Turn the factor off and forget its secret and recovery codes (audited, with who)."""
    if user.mfa_secret is None:
        raise Conflict(f"{user.username!r} has no second factor.")
    user.mfa_secret = None
    user.mfa_enabled_at = None
    user.mfa_last_step = None
    db.session.execute(delete(MfaRecoveryCode).where(MfaRecoveryCode.user_id == user.id))
    emit(
        EventType.USER_MFA_DISABLED,
        user.id,
        {"username": user.username, "by_admin": by_admin},
        actor=actor,
    )


def disable_own(user: User, code: str) -> None:
    """The user turns their own factor off, proving it with a current or recovery code."""
    if not user.mfa_enabled:
        raise Conflict("No second factor is enabled.")
    if not accept_code(user, code):
        raise WrongCode()
    disable(user, by_admin=False)


def accept_code(user: User, code: str) -> bool:
    """Whether ``code`` is a TOTP code not yet used or an unspent recovery code of the
    enabled factor; accepting it spends it."""
    if not user.mfa_enabled:
        return False
    step = _matching_step(user, code)
    if step is not None:
        if user.mfa_last_step is not None and step <= user.mfa_last_step:
            return False  # a replay: this code (or a later one) was already accepted
        user.mfa_last_step = step
        return True
    return _spend_recovery_code(user, code)


def _matching_step(user: User, code: str) -> int | None:
    """The time step whose code ``code`` is, within the allowed drift, else None."""
    if user.mfa_secret is None or len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(decrypt_secret(user.mfa_secret.encode())["totp"])
    now_step = int(time.time() // STEP_SECONDS)
    found = None
    for step in range(now_step - DRIFT_STEPS, now_step + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            found = step  # no early exit: every candidate is compared
    return found


def _normalised(code: str) -> str:
    return code.strip().replace("-", "").lower()


def _new_recovery_codes(user: User) -> list[str]:
    db.session.execute(delete(MfaRecoveryCode).where(MfaRecoveryCode.user_id == user.id))
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = secrets.token_hex(10)
        codes.append(f"{raw[:10]}-{raw[10:]}")
        db.session.add(MfaRecoveryCode(user_id=user.id, code_hash=hash_secret(raw)))
    db.session.flush()
    return codes


def _spend_recovery_code(user: User, code: str) -> bool:
    statement = select(MfaRecoveryCode).where(
        MfaRecoveryCode.user_id == user.id,
        MfaRecoveryCode.code_hash == hash_secret(_normalised(code)),
        MfaRecoveryCode.used_at.is_(None),
    )
    recovery = db.session.scalars(statement.with_for_update()).first()
    if recovery is None:
        return False
    recovery.used_at = utcnow()
    emit(EventType.USER_MFA_RECOVERY_USED, user.id, {"recovery_code_id": recovery.id})
    return True


def start_challenge(user: User, ip: str | None) -> tuple[str, MfaChallenge]:
    """The proof a right password gives, to be completed with a code; raw value once."""
    raw = CHALLENGE_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    seconds = current_app.config["MFA_CHALLENGE_SECONDS"]
    challenge = MfaChallenge(
        user_id=user.id,
        challenge_hash=hash_secret(raw),
        created_at=now,
        expires_at=now + timedelta(seconds=seconds),
        created_ip=ip,
    )
    db.session.add(challenge)
    db.session.flush()
    return raw, challenge


def complete_challenge(raw: str, code: str, ip: str) -> User:
    """The user whose challenge ``raw`` is, once ``code`` is right; the challenge is spent.

    The brute-force guard answers first (429 while the account or address is blocked); a
    wrong code is a failed login for the guard, audited and committed before the refusal.
    """
    statement = select(MfaChallenge).where(MfaChallenge.challenge_hash == hash_secret(raw))
    challenge = db.session.scalars(statement.with_for_update(of=MfaChallenge)).first()
    if challenge is None or challenge.used_at is not None or challenge.expires_at <= utcnow():
        audit.record_now("auth.mfa", outcome="failure", details={"reason": "challenge"})
        raise ChallengeRefused("The login challenge is unknown, used or expired: log in again.")
    user = challenge.user
    blocks.ensure_login_allowed(user.username, ip)
    if not user.is_active or not accept_code(user, code):
        blocks.record_failed_login(user.username, ip)
        audit.record("auth.mfa", outcome="failure", actor_id=user.id, actor=user.username)
        db.session.commit()  # the failure counts although the request answers 401
        raise ChallengeRefused("The code is wrong or was already used.")
    challenge.used_at = utcnow()
    blocks.forget_account_failures(user.username)
    return user
