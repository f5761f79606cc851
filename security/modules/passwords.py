"""Changing a password: one's own (the current one proves it), an admin's reset (a
one-time reset token, or a change forced at the next login), and spending a reset token.

The policy and the hashing are :mod:`security.modules.users` (:func:`set_password`). A
change ends the user's other sessions: whoever had the old password may have opened them.
A wrong current password counts toward the login lockout like a failed login
(:mod:`security.modules.blocks`), so a stolen token cannot be used to guess it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select

from models import PasswordReset, User, db, utcnow
from security.errors import Conflict, Unauthenticated
from security.events import Actor, EventType, emit
from security.modules import audit, blocks
from security.modules.principals import hash_secret
from security.modules.sessions import revoke_sessions
from security.modules.users import local_password_allowed, set_password, verify_password

RESET_TOKEN_PREFIX = "spr_"  # noqa: S105 - a public marker naming what the token is for


class WrongPassword(Unauthenticated):
    """The current password (or the reset token) does not match."""


@dataclass(frozen=True)
class IssuedReset:
    """What an admin's reset answers: the raw token once (None for a forced change)."""

    user_id: int
    mode: str
    reset_token: str | None
    expires_at: datetime | None


class NoLocalPassword(Conflict):
    """A single-sign-on account while ``SSO_LOCAL_PASSWORDS`` is ``disabled``."""


def ensure_local_password(user: User) -> None:
    """Single-sign-on accounts have no password here to change, reset or set, unless
    ``SSO_LOCAL_PASSWORDS=allowed`` (:func:`~security.modules.users.local_password_allowed`).
    """
    if not local_password_allowed(user):
        raise NoLocalPassword(
            f"{user.username!r} signs in through single sign-on: local passwords are "
            "disabled for such accounts (SSO_LOCAL_PASSWORDS)."
        )


def change_password(
    user: User, current: str, new: str, ip: str, *, keep_session: int | None = None
) -> None:
    """Replace ``user``'s password after checking the current one (guarded and counted like
    a login); every session but ``keep_session`` ends."""
    ensure_local_password(user)
    blocks.ensure_login_allowed(user.username, ip)
    if not verify_password(user, current):
        blocks.record_failed_login(user.username, ip)
        audit.record("user.password_change", outcome="failure", actor_id=user.id)
        db.session.commit()  # the failure counts although the request answers 401
        raise WrongPassword("The current password is wrong.")
    blocks.forget_account_failures(user.username)
    actor = Actor(user.id, user.username)
    set_password(user, new, actor=actor)
    revoke_sessions(user, keep=keep_session, actor=actor, reason="password_changed")


def user_named(username: str, ip: str) -> User:
    """The account a token-less password change names. An unknown name is refused like a
    wrong password, after the same guard and counted the same way, so names cannot be
    probed."""
    user = db.session.scalars(
        select(User).where(func.lower(User.username) == username.lower())
    ).first()
    if user is not None:
        return user
    blocks.ensure_login_allowed(username, ip)
    blocks.record_failed_login(username, ip)
    audit.record("user.password_change", outcome="failure", actor=username[:64])
    db.session.commit()  # the failure counts although the request answers 401
    raise WrongPassword("The current password is wrong.")


def reset_password(user: User, mode: str, actor: Actor | None = None) -> IssuedReset:
    """An admin's reset of ``user`` (the caller commits): every session ends, and either a
    one-time token valid for ``PASSWORD_RESET_TTL_SECONDS`` is issued (earlier unspent
    ones are void) or the next login must choose a new password."""
    ensure_local_password(user)
    revoke_sessions(user, actor=actor, reason="password_reset")
    user.must_change_password = True
    token, expires_at = None, None
    if mode == "token":
        token = RESET_TOKEN_PREFIX + secrets.token_urlsafe(32)
        expires_at = utcnow() + timedelta(seconds=current_app.config["PASSWORD_RESET_TTL_SECONDS"])
        _void_unspent_resets(user)
        db.session.add(
            PasswordReset(user_id=user.id, token_hash=hash_secret(token), expires_at=expires_at)
        )
    db.session.flush()
    emit(
        EventType.USER_PASSWORD_RESET,
        user.id,
        {"username": user.username, "mode": mode},
        actor=actor,
    )
    return IssuedReset(user.id, mode, token, expires_at)


def _void_unspent_resets(user: User) -> None:
    unspent = select(PasswordReset).where(
        PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None)
    )
    for reset in db.session.scalars(unspent.with_for_update(of=PasswordReset)):
        reset.used_at = utcnow()


def complete_reset(raw_token: str, new_password: str) -> User:
    """Spend a reset token: the new password is set (under the whole policy) and the token
    can never be used again. An unknown, spent or expired token is :class:`WrongPassword`;
    a single-sign-on account's while local passwords are disabled, :class:`NoLocalPassword`.
    """
    statement = select(PasswordReset).where(PasswordReset.token_hash == hash_secret(raw_token))
    reset = db.session.scalars(statement.with_for_update(of=PasswordReset)).first()
    if reset is None or reset.used_at is not None or reset.expires_at <= utcnow():
        audit.record_now("user.password_reset_use", outcome="failure")
        raise WrongPassword("The reset token is unknown, spent or expired.")
    user = reset.user
    ensure_local_password(user)  # the setting may have changed since the token was issued
    set_password(user, new_password, actor=Actor(user.id, user.username))
    reset.used_at = utcnow()
    return user
