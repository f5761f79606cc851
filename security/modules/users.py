"""User accounts: the password policy, password hashing, and creating a user.

Passwords are argon2id via passlib. Creating a user lives here, not in a resource, because
both ``POST /auth/register`` and ``flask create-admin`` create users the same way. Logging
in (tokens, the brute-force guard) is ``auth.py``'s business.
"""

from __future__ import annotations

import secrets
import string
from typing import TypeGuard

from passlib.context import CryptContext
from sqlalchemy import func, select

from models import User, db
from security.errors import Conflict

PASSWORD_MIN_LENGTH = 12
PASSWORD_MAX_LENGTH = 1024

password_context = CryptContext(
    schemes=["argon2"],
    argon2__type="ID",
    argon2__memory_cost=19456,
    argon2__time_cost=2,
    argon2__parallelism=1,
)
# Verified against when the username is unknown, so both failures take the same time.
_UNKNOWN_USER_HASH = password_context.hash(secrets.token_urlsafe(16))


def password_policy_violations(password: str) -> list[str]:
    """Every rule the password breaks (empty when it is acceptable); nothing is truncated."""
    problems = []
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
    return valid and user.is_active


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
