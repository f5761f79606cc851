"""User accounts: the password policy, password hashing, and creating a user.

Passwords are argon2id via passlib. Creating a user lives here, not in a resource, because
both ``POST /auth/register`` and ``flask create-admin`` create users the same way, and so
does setting a new password (:func:`set_password`, for ``flask set-password`` and a
password-change endpoint): the policy, including its history (the last
``PASSWORD_HISTORY_SIZE`` passwords, kept as argon2 hashes, cannot be set again) and its
optional maximum age (``PASSWORD_MAX_AGE_DAYS``), is enforced here once; the policy also
refuses a password containing the username or one of the 20,000 most common breached
passwords (``security/data/common-passwords.txt.gz``, see its licence file beside it).
Logging in (tokens, the brute-force guard) is ``auth.py``'s business.

Administering users (the list, an admin's edit of role, activation and profile, and what
a deactivation or demotion ends at once) is :mod:`security.modules.user_admin`.
"""

from __future__ import annotations

import gzip
import secrets
import string
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TypeGuard

from flask import current_app
from passlib.context import CryptContext
from sqlalchemy import delete, func, select

from models import PasswordHistoryEntry, User, db, utcnow
from security.errors import Conflict, Forbidden, Invalid
from security.events import Actor, EventType, emit

PASSWORD_MIN_LENGTH = 12
PASSWORD_MAX_LENGTH = 1024
COMMON_PASSWORDS_FILE = Path(__file__).resolve().parent.parent / "data" / "common-passwords.txt.gz"
# A username shorter than this inside a password is chance, not a choice ("bob" in "bobsled").
USERNAME_IN_PASSWORD_MIN = 3

password_context = CryptContext(
    schemes=["argon2"],
    argon2__type="ID",
    argon2__memory_cost=19456,
    argon2__time_cost=2,
    argon2__parallelism=1,
)
# Verified against when the username is unknown, so both failures take the same time.
_UNKNOWN_USER_HASH = password_context.hash(secrets.token_urlsafe(16))


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common breached passwords, lower-cased, read once per process."""
    with gzip.open(COMMON_PASSWORDS_FILE, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip().lower() for line in lines if line.strip())


def password_policy_violations(password: str, username: str | None = None) -> list[str]:
    """Every rule the password breaks (empty when it is acceptable); nothing is truncated.

    Case does not rescue a common password or the username: ``Password123!`` is as
    guessable as ``password123!``."""
    problems = []
    lowered = password.lower()
    if username and len(username) >= USERNAME_IN_PASSWORD_MIN and username.lower() in lowered:
        problems.append("must not contain the username")
    if lowered in common_passwords():
        problems.append("must not be a commonly used password")
    if len(password) < PASSWORD_MIN_LENGTH:
        problems.append(f"must be at least {PASSWORD_MIN_LENGTH} characters")
    if len(password) > PASSWORD_MAX_LENGTH:
        problems.append(f"must be at most {PASSWORD_MAX_LENGTH} characters")
    if not any(c.islower() for c in password):
        problems.append("must contain a lower-case letter")
    if not any(c.isupper() for c in password):
        problems.append("must contain an upper-case letter")
    if not any(c.isdigit() for c in password):
        problems.append("must contain a digit")
    if not any(c in string.punctuation or not c.isalnum() for c in password):
        problems.append("must contain a special character")
    return problems


class PasswordRefused(Invalid):
    """A new password the policy refuses; ``errors["password"]`` lists every rule it breaks."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("The password does not meet the policy.", errors={"password": problems})


class PasswordExpired(Forbidden):
    """The password is older than ``PASSWORD_MAX_AGE_DAYS``: it must be replaced first."""


def hash_password(password: str) -> str:
    return password_context.hash(password)


def verify_password(user: User | None, password: str) -> TypeGuard[User]:
    """Check a password in constant-ish time whether or not the user exists; rehash if the
    stored hash uses outdated parameters. True means ``user`` is an active user."""
    if user is None or len(password) > PASSWORD_MAX_LENGTH:
        password_context.verify(password[:PASSWORD_MAX_LENGTH], _UNKNOWN_USER_HASH)
        return False
    valid, new_hash = password_context.verify_and_update(password, user.password_hash)
    if valid and new_hash:
        user.password_hash = new_hash
    return valid and user.is_active and local_password_allowed(user)


def local_password_allowed(user: User) -> bool:
    """Whether ``user`` may sign in, or be given a password, here: always for a local
    account; for a single-sign-on account only with ``SSO_LOCAL_PASSWORDS=allowed`` (by
    default the identity provider is their only way in, so its MFA and offboarding hold).
    """
    return not user.is_sso or current_app.config["SSO_LOCAL_PASSWORDS"] == "allowed"


def username_taken_message(username: str) -> str | None:
    """Why ``username`` cannot be used (taken, case-insensitively), or None if it can."""
    taken = db.session.scalar(select(User.id).where(func.lower(User.username) == username.lower()))
    return None if taken is None else f"The username {username!r} is already taken."


def create_user(username: str, password: str, role: str) -> User:
    """Add a user (the caller commits); :class:`Conflict` if the name is taken,
    case-insensitively."""
    taken = username_taken_message(username)
    if taken is not None:
        raise Conflict(taken)
    user = User(username=username, password_hash=hash_password(password), role=role)
    db.session.add(user)
    db.session.flush()
    return user


def history_size() -> int:
    """How many of a user's latest passwords (the current one included) cannot be set."""
    return current_app.config["PASSWORD_HISTORY_SIZE"]


def set_password(user: User, password: str, *, actor: Actor | None = None) -> None:
    """Give ``user`` a new password (the caller commits), or raise :class:`PasswordRefused`
    naming every rule it breaks; one of the last :func:`history_size` passwords is refused.

    The replaced password's hash joins the history, which keeps only what the check needs.
    ``actor`` defaults to the request's principal (the user themselves, or an admin).
    """
    problems = password_policy_violations(password, user.username)
    if not problems and _recently_used(user, password):
        problems.append(f"must not be one of your last {history_size()} passwords")
    if problems:
        raise PasswordRefused(problems)
    now = utcnow()
    db.session.add(
        PasswordHistoryEntry(
            user_id=user.id, password_hash=user.password_hash, set_at=user.password_changed_at
        )
    )
    user.password_hash = hash_password(password)
    user.password_changed_at = now
    user.must_change_password = False
    db.session.flush()
    _forget_older_passwords(user)
    emit(EventType.USER_PASSWORD_CHANGED, user.id, {"username": user.username}, actor=actor)


def _earlier_hashes(user: User) -> list[str]:
    """The hashes of the passwords before the current one that the history still covers."""
    return list(
        db.session.scalars(
            select(PasswordHistoryEntry.password_hash)
            .where(PasswordHistoryEntry.user_id == user.id)
            .order_by(PasswordHistoryEntry.set_at.desc(), PasswordHistoryEntry.id.desc())
            .limit(history_size() - 1)
        )
    )


def _recently_used(user: User, password: str) -> bool:
    """Whether ``password`` is the current one or one of the earlier ones still remembered;
    each argon2 hash carries its own salt, so each is verified (no lookup by hash)."""
    if len(password) > PASSWORD_MAX_LENGTH:
        return False
    hashes = [user.password_hash, *_earlier_hashes(user)]
    return any(password_context.verify(password, stored) for stored in hashes)


def _forget_older_passwords(user: User) -> None:
    """Delete the history the check no longer reads: only hashes that are needed are kept."""
    kept = select(PasswordHistoryEntry.id).where(PasswordHistoryEntry.user_id == user.id)
    kept = kept.order_by(PasswordHistoryEntry.set_at.desc(), PasswordHistoryEntry.id.desc())
    db.session.execute(
        delete(PasswordHistoryEntry).where(
            PasswordHistoryEntry.user_id == user.id,
            PasswordHistoryEntry.id.not_in(kept.limit(history_size() - 1)),
        )
    )


def password_expired(user: User, now: datetime | None = None) -> bool:
    """Whether the password is older than ``PASSWORD_MAX_AGE_DAYS`` (0, the default, is off)."""
    days = current_app.config["PASSWORD_MAX_AGE_DAYS"]
    if not days:
        return False
    return (now or utcnow()) - user.password_changed_at > timedelta(days=days)


def ensure_password_current(user: User) -> None:
    """Refuse (:class:`PasswordExpired`) a login with a password past its maximum age."""
    if password_expired(user):
        raise PasswordExpired(
            "The password has expired (PASSWORD_MAX_AGE_DAYS); an admin sets a new one "
            "with flask set-password."
        )
