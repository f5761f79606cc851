"""Who is calling the API and what they may do: logins, bearer tokens, the credential
resolvers, and the :func:`authorize` gate every resource passes through.

Bearer tokens are 256-bit random strings of which only the SHA-256 is stored. The
principal, roles and permissions (``area:action`` strings derived from the role) are the
engine's vocabulary (:mod:`security.modules.principals`); passwords are
:mod:`security.modules.users`'. Which credential kinds an app accepts is what its
``create_app()`` registers with :func:`register_credential_resolver`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Flask, current_app, g, request
from sqlalchemy import func, select

from errors import ApiError
from models import AuthToken, User, db, utcnow
from security.events import Actor, EventType, actor_of, emit
from security.modules import audit, blocks, mfa_policy
from security.modules.client_certificates import resolve_client_certificate
from security.modules.principals import (
    LAST_USED_RESOLUTION,
    Principal,
    bearer_credential,
    hash_secret,
    permissions_for_role,
)
from security.modules.users import PasswordExpired, ensure_password_current, verify_password

TOKEN_PREFIX = "sat_"  # noqa: S105 - a public marker telling tokens from API keys, not a secret
CredentialResolver = Callable[[str], "Principal | None"]
_RESOLVERS = "soc.credential_resolvers"
_VERIFIED_TOKENS = "soc.verified_tokens"
# How long a verified login token is trusted without asking the database again: the most a
# revocation, logout or deactivation elsewhere can take to reach this process.
VERIFIED_TOKEN_SECONDS = 0.5
# Longer bearer values are refused unread: an identity provider's signed JWT (with its
# claims) is the longest credential accepted.
MAX_BEARER_LENGTH = 8192


def verify_login(username: str, password: str, ip: str, *, action: str = "auth.login") -> User:
    """The user a username and password belong to, checked the one way every login is.

    The brute-force guard answers first (429 while blocked); a wrong or unknown pair is
    counted against the account and the IP, audited as a failed ``action`` and committed
    (the 401 that follows would otherwise roll the count back). On success the account's
    failures are forgotten, and a password past ``PASSWORD_MAX_AGE_DAYS`` is refused
    (audited); the caller records the success and commits.
    """
    blocks.ensure_login_allowed(username, ip)
    user = db.session.scalars(
        select(User).where(func.lower(User.username) == username.lower())
    ).first()
    if not verify_password(user, password):
        blocks.record_failed_login(username, ip)
        audit.record(
            action,
            outcome="failure",
            actor_id=user.id if user else None,
            actor=username[:64],
        )
        db.session.commit()
        raise ApiError(401, "Invalid username or password.")
    blocks.forget_account_failures(username)
    try:
        ensure_password_current(user)
    except PasswordExpired:
        audit.record_now(
            action,
            outcome="denied",
            actor_id=user.id,
            actor=user.username,
            details={"reason": "password_expired"},
        )
        raise
    return user


def issue_token(user: User, ip: str | None) -> tuple[str, AuthToken]:
    """Create a bearer token (a session: an event); the raw value is returned once and
    never stored."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    token = AuthToken(
        user=user,
        token_hash=hash_secret(raw),
        created_at=now,
        expires_at=now + timedelta(seconds=current_app.config["TOKEN_TTL_SECONDS"]),
        created_ip=ip,
        user_agent=(request.headers.get("User-Agent") or "")[:255] or None,
    )
    db.session.add(token)
    db.session.flush()
    emit(EventType.SESSION_CREATED, token.id, actor=Actor(user.id, user.username))
    return raw, token


def register_credential_resolver(app: Flask, prefix: str, resolver: CredentialResolver) -> None:
    """Let ``app`` accept bearer credentials starting with ``prefix``: ``resolver`` turns
    one into its principal (None when it is not valid)."""
    app.extensions.setdefault(_RESOLVERS, {})[prefix] = resolver


def _resolver_for(raw: str) -> CredentialResolver | None:
    resolvers: dict[str, CredentialResolver] = current_app.extensions.get(_RESOLVERS, {})
    return next((resolve for prefix, resolve in resolvers.items() if raw.startswith(prefix)), None)


@dataclass(frozen=True)
class VerifiedToken:
    """A login token found valid in the database, and when (monotonic clock)."""

    principal: Principal
    expires_at: datetime
    verified_at: float


class VerifiedTokenCache:
    """Login tokens this process found valid less than :data:`VERIFIED_TOKEN_SECONDS` ago.

    Most requests are a burst of calls with one token (a SOAR enriching alerts), and
    reading the token, its user and its state from PostgreSQL was a round trip on every
    one. A token verified this recently is trusted without one; a revocation, a logout, an
    expiry, a deactivation or a role change made anywhere (another worker, another
    instance, an operator's SQL) takes effect here once the entry is that old, with no
    signal that could be lost. A logout through this process also drops its entry at once.
    Entries are keyed by the token's hash, never the raw token.
    """

    def __init__(self, seconds: float = VERIFIED_TOKEN_SECONDS, capacity: int = 10_000) -> None:
        self.seconds = seconds
        self.capacity = capacity
        self._entries: dict[str, VerifiedToken] = {}

    def get(self, digest: str) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if time.monotonic() - entry.verified_at >= self.seconds or entry.expires_at <= utcnow():
            self._entries.pop(digest, None)
            return None
        return entry.principal

    def put(self, digest: str, principal: Principal, expires_at: datetime) -> None:
        if len(self._entries) >= self.capacity:
            self._entries.clear()  # stale entries only cost a lookup each; keep it simple
        self._entries[digest] = VerifiedToken(principal, expires_at, time.monotonic())

    def forget(self, digest: str | None = None) -> None:
        """Drop one token's entry, or every entry."""
        if digest is None:
            self._entries.clear()
        else:
            self._entries.pop(digest, None)


def _verified_tokens() -> VerifiedTokenCache:
    return current_app.extensions[_VERIFIED_TOKENS]


def resolve_login_token(raw: str) -> Principal | None:
    """Bearer resolver for the ``sat_`` login tokens :func:`issue_token` hands out."""
    digest = hash_secret(raw)
    cached = _verified_tokens().get(digest)
    if cached is not None:
        return cached
    # The second-factor policy comes in the same statement: no round trip of its own.
    statement = select(AuthToken, mfa_policy.required_roles_column())
    found = db.session.execute(statement.where(AuthToken.token_hash == digest)).first()
    if found is None:
        return None
    token, required_roles = found
    now = utcnow()
    if token.revoked_at is not None or token.expires_at <= now:
        return None
    if not token.user.is_active:
        return None
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        token.last_used_at = now
        db.session.commit()
    permissions = session_permissions(token.user, required_roles or ())
    principal = Principal.of(token.user, permissions, "token", token.id)
    _verified_tokens().put(digest, principal, token.expires_at)
    return principal


def session_permissions(user: User, required_roles: Collection[str]) -> frozenset[str]:
    """What a login session of ``user`` grants: their role's permissions, or nothing but
    their own account (``/auth/me``, enrolling a second factor, logging out) while their
    role is one of the admins' ``required_roles`` (``/auth/mfa-policy``,
    :mod:`security.modules.mfa_policy`) and they have no second factor enabled."""
    if user.role in required_roles and not user.mfa_enabled:
        return frozenset()
    return permissions_for_role(user.role)


def register_login_tokens(app: Flask) -> None:
    """Accept the ``sat_`` login tokens, with this process's cache of verified ones."""
    app.extensions[_VERIFIED_TOKENS] = VerifiedTokenCache()
    register_credential_resolver(app, TOKEN_PREFIX, resolve_login_token)


def authenticate() -> Principal:
    """The request's principal, or 401 (audited) when the credential is missing or invalid.

    A bearer credential decides when there is one; without one, a verified client
    certificate mapped to an API key (``CLIENT_CERTIFICATE_KEYS``) stands for that key."""
    if g.get("principal") is not None:
        return g.principal
    raw = bearer_credential()
    principal = None
    if raw is not None and len(raw) <= MAX_BEARER_LENGTH:
        resolver = _resolver_for(raw)
        principal = resolver(raw) if resolver else None
    elif raw is None:
        principal = resolve_client_certificate()
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
        if not principal.permissions and principal.credential_type == "token":
            raise ApiError(403, "Your role requires a second factor: enrol at /auth/mfa/enrol.")
        raise ApiError(403, f"This action needs the {permission!r} permission.")
    return principal


def forget_verified_tokens() -> None:
    """Stop trusting this process's verified tokens at once, after sessions were ended in
    bulk (a deactivation, a password change): the next request re-reads each one."""
    _verified_tokens().forget()


def revoke_token(principal: Principal) -> bool:
    """End the login token the request came with (an event); False when the request came
    with an API key, which a logout leaves valid (keys are revoked via their own API). This
    process stops accepting the token at once, every other one within
    :data:`VERIFIED_TOKEN_SECONDS`."""
    if principal.credential_type != "token":
        return False
    token = db.session.get(AuthToken, principal.credential_id)
    if token is None or token.revoked_at is not None:
        return False
    token.revoked_at = utcnow()
    _verified_tokens().forget(token.token_hash)
    emit(EventType.SESSION_REVOKED, token.id, actor=actor_of(principal))
    return True
