"""Who is calling and what they may do: passwords and logins, bearer tokens, roles and permissions.

Passwords are argon2id via passlib; bearer tokens are 256-bit random strings of which only
the SHA-256 is stored. Permissions are ``area:action`` strings derived from the role
(:data:`ROLE_PERMISSIONS`, the one table of who may do what); :func:`authorize` is the one
gate every resource passes through (ARCHITECTURE.md, "Request flow").
"""

from __future__ import annotations

import hashlib
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeGuard

from flask import current_app, g, request
from passlib.context import CryptContext
from sqlalchemy import func, select

from errors import ApiError
from models import AuthToken, User, db, utcnow
from security.modules import audit, brute_force

PASSWORD_MIN_LENGTH = 12
PASSWORD_MAX_LENGTH = 1024
TOKEN_PREFIX = "sat_"  # noqa: S105 - a public marker telling tokens from API keys, not a secret
# Refreshing last_used_at on every request would turn every read into a write.
LAST_USED_RESOLUTION = timedelta(seconds=60)

password_context = CryptContext(
    schemes=["argon2"],
    argon2__type="ID",
    argon2__memory_cost=19456,
    argon2__time_cost=2,
    argon2__parallelism=1,
)
# Verified against when the username is unknown, so both failures take the same time.
_UNKNOWN_USER_HASH = password_context.hash(secrets.token_urlsafe(16))

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"*:*"}),
    "analyst": frozenset(
        {
            "*:read",
            "incidents:write",
            "iocs:write",
            "rules:write",
            "comments:write",
            "apikeys:write",
            "events:write",
            "alerts:write",
        }
    ),
    "viewer": frozenset({"*:read"}),
}


def permissions_for_role(role: str) -> frozenset[str]:
    return ROLE_PERMISSIONS.get(role, frozenset())


def permission_granted(granted: frozenset[str] | set[str], permission: str) -> bool:
    """Whether ``permission`` (``area:action``) is covered, wildcards included.

    ``*:read`` does not cover ``area:admin``: admin-only areas use the ``admin`` action.
    """
    area, _, action = permission.partition(":")
    candidates = {permission, f"{area}:*", f"*:{action}", "*:*"}
    return not candidates.isdisjoint(granted)


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
    stored hash uses outdated parameters. True means ``user`` is a (active) user."""
    if user is None or len(password) > PASSWORD_MAX_LENGTH:
        password_context.verify(password[:PASSWORD_MAX_LENGTH], _UNKNOWN_USER_HASH)
        return False
    valid, new_hash = password_context.verify_and_update(password, user.password_hash)
    if valid and new_hash:
        user.password_hash = new_hash
    return valid and user.is_active


def verify_login(username: str, password: str, ip: str, *, action: str = "auth.login") -> User:
    """The user a username and password belong to, checked the one way every login is.

    The brute-force guard answers first (429 while blocked); a wrong or unknown pair is
    counted against the account and the IP, audited as a failed ``action`` and committed
    (the 401 that follows would otherwise roll the count back). On success the account's
    failures are forgotten; the caller records the success and commits.
    """
    brute_force.ensure_login_allowed(username, ip)
    user = db.session.scalars(
        select(User).where(func.lower(User.username) == username.lower())
    ).first()
    if not verify_password(user, password):
        brute_force.record_failed_login(username, ip)
        audit.record(
            action,
            outcome="failure",
            actor_id=user.id if user else None,
            actor=username[:64],
        )
        db.session.commit()
        raise ApiError(401, "Invalid username or password.")
    brute_force.forget_account_failures(username)
    return user


def hash_secret(secret: str) -> str:
    """SHA-256 of a high-entropy secret; fine for tokens (not for passwords)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_token(user: User, ip: str | None) -> tuple[str, AuthToken]:
    """Create a bearer token; the raw value is returned once and never stored."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    token = AuthToken(
        user=user,
        token_hash=hash_secret(raw),
        created_at=now,
        expires_at=now + timedelta(seconds=current_app.config["TOKEN_TTL_SECONDS"]),
        created_ip=ip,
    )
    db.session.add(token)
    return raw, token


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: a user acting through a login token or an API key.

    ``user_id`` and ``username`` are read once, when the principal is made: the error path
    (logging, auditing) reads them after a failed write, when touching ``user`` would load
    it from a session that must first be rolled back, and fail again.
    """

    user: User
    permissions: frozenset[str]
    credential_type: str
    credential_id: int
    user_id: int = field(init=False)
    username: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "user_id", self.user.id)
        object.__setattr__(self, "username", self.user.username)

    @property
    def is_admin(self) -> bool:
        return self.user.role == "admin"

    def can(self, permission: str) -> bool:
        return permission_granted(self.permissions, permission)


# Other credential kinds (API keys) register a resolver for their prefix here.
CredentialResolver = Callable[[str], "Principal | None"]
credential_resolvers: dict[str, CredentialResolver] = {}


def _resolve_login_token(raw: str) -> Principal | None:
    token = db.session.scalars(
        select(AuthToken).where(AuthToken.token_hash == hash_secret(raw))
    ).first()
    now = utcnow()
    if token is None or token.revoked_at is not None or token.expires_at <= now:
        return None
    if not token.user.is_active:
        return None
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        token.last_used_at = now
        db.session.commit()
    return Principal(token.user, permissions_for_role(token.user.role), "token", token.id)


credential_resolvers[TOKEN_PREFIX] = _resolve_login_token


def bearer_credential() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def authenticate() -> Principal:
    """The request's principal, or 401 (audited) when the credential is missing or invalid."""
    if g.get("principal") is not None:
        return g.principal
    raw = bearer_credential()
    principal = None
    if raw is not None and len(raw) <= 512:
        resolver = next(
            (resolve for prefix, resolve in credential_resolvers.items() if raw.startswith(prefix)),
            None,
        )
        principal = resolver(raw) if resolver else None
    if principal is None:
        if raw is not None:
            audit.record_now("auth.invalid_credential", outcome="failure")
        raise ApiError(401, "A valid bearer token or API key is required.")
    g.principal = principal
    return principal


def authorize(permission: str) -> Principal:
    """Authenticate, then require ``permission``; a refusal is 403 and is audited."""
    principal = authenticate()
    if not principal.can(permission):
        audit.record_now(
            "auth.permission_denied",
            outcome="denied",
            details={"permission": permission, "method": request.method, "path": request.path},
        )
        raise ApiError(403, f"This action needs the {permission!r} permission.")
    return principal


def revoke_token(principal: Principal) -> None:
    """End the login token the request came with (API keys are revoked via their own API)."""
    token = db.session.get(AuthToken, principal.credential_id)
    if principal.credential_type == "token" and token is not None and token.revoked_at is None:
        token.revoked_at = utcnow()
