"""Credentials: the environment's secrets, API keys, their usage log, and what looks suspicious.

Lives here:
- the environment credentials (:data:`ENV_CREDENTIALS`), checked in constant time against
  the app's config (``config.py`` reads and validates them at startup; outside an app,
  ``security.initialize()`` builds one); an unset or empty one makes its check fail;
- API keys: ``sak_<8 characters>_<secret>``. The prefix finds the key and is shown in
  lists; only the SHA-256 of the secret is stored, and the secret is shown once, when the
  key is issued or rotated. Scopes must lie within the owner's permissions when the key
  is issued, and at every use a key grants only the scopes its owner's role still has;
- rotation: a new secret at once, and the old one keeps working for a grace period
  (``API_KEY_ROTATION_GRACE_SECONDS``, default 24 hours, at most 7 days, 0 for none), so
  clients can be redeployed without an outage. Rotating again during the grace period
  ends the older secret's grace at once: at most two secrets are ever valid;
- the usage log (``credential_usage``), written for every verification, successful or
  not, with the reason a use failed, and the analysis of it
  (:func:`analyze_for_suspicious_activity`). It keeps ``CREDENTIAL_USAGE_RETENTION_DAYS``
  (default 90) days: :func:`prune_credential_usage` deletes older entries whenever a key
  is issued or rotated, and ``flask prune-usage`` does it on demand (e.g. from cron), so
  the log stays bounded even where keys rarely change;
- :func:`require_api_key`, a decorator for any Flask view.

Does not live here: login tokens (:mod:`auth`; ``create_app()`` registers
:func:`resolve_api_key` beside the token resolver), roles (:mod:`.principals`), HTTP
resources.

Functions add to the caller's transaction and leave the commit to it, except the bearer
resolver and the decorator, which run before any other work of the request and commit the
usage they log (a failed authentication must still leave its trace).
"""

from __future__ import annotations

import functools
import logging
import re
import secrets
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from flask import Response, current_app, g, has_request_context, request
from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    delete,
    distinct,
    extract,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import SQLAlchemyError

from config import ENV_CREDENTIAL_NAMES, MAX_ROTATION_GRACE_SECONDS
from models import ApiKey, CredentialUsage, User, db, utcnow
from models.vocabulary import OUTCOMES
from security.errors import Forbidden, Invalid, Unauthenticated
from security.events import EventType, emit
from security.modules.lookup import first_or_404
from security.modules.principals import (
    LAST_USED_RESOLUTION,
    Principal,
    bearer_credential,
    hash_secret,
    permission_granted,
    permissions_for_role,
)
from security.modules.utils import constant_time_equals

ENV_CREDENTIALS = ENV_CREDENTIAL_NAMES
API_KEY_PREFIX = "sak_"
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
_PREFIX_LENGTH = len(API_KEY_PREFIX) + 8
# The usage log's note for a key opened by a mapped client certificate, not its secret.
CERTIFICATE_USE = "client_certificate"
MAX_ROTATION_GRACE = timedelta(seconds=MAX_ROTATION_GRACE_SECONDS)
SCOPE_PATTERN = re.compile(r"^(?:\*|[a-z][a-z0-9_-]{0,31}):(?:\*|[a-z]{1,16})$")
MAX_SCOPES = 32
logger = logging.getLogger("soc.credentials")
# The usage-log reason of a key use its request was refused (403) after authentication.
REFUSED_USE_REASON = "forbidden"
# Failure reasons that mean "someone still holds a credential that was taken away".
WITHDRAWN_REASONS = {
    "revoked": ("use_after_revocation", "high", "a revoked key was presented"),
    "rotated_out": ("use_after_rotation", "high", "a rotated-out secret was presented"),
    "expired": ("use_after_expiry", "medium", "an expired key was presented"),
}


class CredentialError(Invalid, ValueError):
    """A credential operation that cannot be done as asked; the message says why and
    ``field`` which input of an API-key request it concerns."""


# --- environment credentials --------------------------------------------------------------


def _environment_secret(name: str) -> str | None:
    """The configured secret, from the app's validated config (``config.py`` reads the
    environment once, at startup); None when unset."""
    return current_app.config.get(name) or None


def verify_env_credential(
    name: str, given: Any, *, component: str = "security", operation: str = "verify"
) -> bool:
    """Check ``given`` against the environment credential ``name`` in constant time."""
    if name not in ENV_CREDENTIALS:
        raise CredentialError(f"{name!r} is not one of {', '.join(ENV_CREDENTIALS)}")
    expected = _environment_secret(name)
    valid = (
        expected is not None and isinstance(given, str) and constant_time_equals(given, expected)
    )
    log_credential_usage(
        name,
        component,
        operation,
        outcome="success" if valid else "failure",
        reason=None if valid else ("unset" if expected is None else "wrong_secret"),
    )
    return valid


def verify_api_key(key: Any, *, component: str = "security", operation: str = "verify") -> bool:
    """True for a valid API key: a stored ``sak_`` key, or the ``API_KEY`` environment secret."""
    if isinstance(key, str) and key.startswith(API_KEY_PREFIX):
        return authenticate_api_key(key, component=component, operation=operation) is not None
    return verify_env_credential("API_KEY", key, component=component, operation=operation)


def verify_db_password(
    password: Any, *, component: str = "security", operation: str = "verify"
) -> bool:
    """True when ``password`` is the configured ``DB_PASSWORD`` (unset: always False)."""
    return verify_env_credential("DB_PASSWORD", password, component=component, operation=operation)


# --- usage log ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CredentialRef:
    """Which credential a usage entry is about: its kind, a printable name, the key's id."""

    kind: str
    name: str
    api_key_id: int | None = None


def credential_ref(credential: ApiKey | CredentialRef | str) -> CredentialRef:
    """Name a credential for the log. Never more than an API key's public prefix is kept."""
    if isinstance(credential, CredentialRef):
        return credential
    if isinstance(credential, ApiKey):
        return CredentialRef("api_key", credential.prefix, credential.id)
    if credential.startswith(API_KEY_PREFIX):
        prefix = credential[:_PREFIX_LENGTH]
        key_id = db.session.scalar(select(ApiKey.id).where(ApiKey.prefix == prefix))
        return CredentialRef("api_key", prefix, key_id)
    kind = "env" if credential in ENV_CREDENTIALS else "other"
    return CredentialRef(kind, credential[:64])


def _client_ip() -> str | None:
    return request.remote_addr if has_request_context() else None


def log_credential_usage(
    credential: ApiKey | CredentialRef | str,
    component: str,
    operation: str,
    *,
    outcome: str = "success",
    reason: str | None = None,
    ip: str | None = None,
) -> CredentialUsage:
    """Record one use of a credential (an environment name, an API key, or any name)."""
    if outcome not in OUTCOMES:
        raise CredentialError(f"outcome must be one of {', '.join(OUTCOMES)}")
    ref = credential_ref(credential)
    entry = CredentialUsage(
        credential_kind=ref.kind,
        credential_name=ref.name,
        api_key_id=ref.api_key_id,
        component=component[:64],
        operation=operation[:128],
        ip=(ip or _client_ip() or None),
        outcome=outcome,
        reason=reason,
        occurred_at=utcnow(),
    )
    db.session.add(entry)
    return entry


def _usage_filter(credential: ApiKey | CredentialRef | str | None) -> Any:
    if credential is None:
        return True
    ref = credential_ref(credential)
    if ref.api_key_id is not None:
        return CredentialUsage.api_key_id == ref.api_key_id
    return and_(
        CredentialUsage.credential_kind == ref.kind, CredentialUsage.credential_name == ref.name
    )


def get_recent_usage(
    credential: ApiKey | CredentialRef | str | None = None,
    *,
    since: datetime | None = None,
    outcome: str | None = None,
    limit: int = 100,
) -> list[CredentialUsage]:
    """The newest usage entries, for one credential or all, optionally since a time."""
    statement = select(CredentialUsage).where(_usage_filter(credential))
    if since is not None:
        statement = statement.where(CredentialUsage.occurred_at >= since)
    if outcome is not None:
        statement = statement.where(CredentialUsage.outcome == outcome)
    statement = statement.order_by(CredentialUsage.occurred_at.desc(), CredentialUsage.id.desc())
    return list(db.session.scalars(statement.limit(limit)))


def prune_credential_usage(now: datetime | None = None) -> int:
    """Delete usage entries older than the retention period (none when it is ``forever``);
    returns how many. One statement on the ``occurred_at`` index, cheap enough to run on
    every key change."""
    days = current_app.config["CREDENTIAL_USAGE_RETENTION_DAYS"]
    if days is None:
        return 0
    cutoff = (now or utcnow()) - timedelta(days=days)
    pruned = db.session.execute(delete(CredentialUsage).where(CredentialUsage.occurred_at < cutoff))
    return cast(CursorResult, pruned).rowcount  # a DELETE's result is a CursorResult


# --- API keys -----------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedKey:
    """A key just issued or rotated, with its full value: shown once, never stored."""

    key: ApiKey
    secret: str


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


def validate_scopes(
    scopes: Iterable[str], owner: User, principal: Principal | None = None
) -> list[str]:
    """Scopes must be ``area:action`` strings within the owner's permissions (and, when a
    principal acts, within its own: a key cannot mint a more powerful key)."""
    wanted = sorted(set(scopes))
    if not wanted or len(wanted) > MAX_SCOPES:
        raise CredentialError(f"give 1 to {MAX_SCOPES} scopes", field="scopes")
    malformed = [scope for scope in wanted if not SCOPE_PATTERN.match(scope)]
    if malformed:
        raise CredentialError(
            f"scopes must look like 'area:action': {', '.join(malformed)}", field="scopes"
        )
    granted = permissions_for_role(owner.role)
    excess = [
        scope
        for scope in wanted
        if not permission_granted(granted, scope)
        or (principal is not None and not principal.can(scope))
    ]
    if excess:
        raise CredentialError(
            f"scopes exceed the owner's permissions: {', '.join(excess)}", field="scopes"
        )
    return wanted


def create_api_key(
    owner: User,
    name: str,
    scopes: Iterable[str],
    *,
    expires_at: datetime | None = None,
    principal: Principal | None = None,
) -> IssuedKey:
    """Issue a key for ``owner``; the returned :class:`IssuedKey` holds the only copy of it."""
    checked = validate_scopes(scopes, owner, principal)
    now = utcnow()
    if expires_at is not None and expires_at <= now:
        raise CredentialError("expires_at must be in the future", field="scopes")
    prefix = API_KEY_PREFIX + "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(8))
    secret = _new_secret()
    key = ApiKey(
        user=owner,
        name=name.strip(),
        prefix=prefix,
        secret_hash=hash_secret(secret),
        scopes=checked,
        created_at=now,
        expires_at=expires_at,
    )
    db.session.add(key)
    db.session.flush()
    prune_credential_usage(now)
    emit(
        EventType.API_KEY_ISSUED,
        key.id,
        {"prefix": prefix, "owner": owner.username, "scopes": checked},
    )
    return IssuedKey(key, f"{prefix}_{secret}")


def visible_api_keys(principal: Principal) -> Select:
    """Keys the principal manages: its own; an admin's, everyone's."""
    statement = select(ApiKey)
    if principal.is_admin:
        return statement
    return statement.where(ApiKey.user_id == principal.user_id)


def get_visible_api_key(principal: Principal, key_id: int, *, lock: bool = False) -> ApiKey:
    """The key, or :class:`security.errors.NotFound` whether it is missing or someone else's."""
    statement = visible_api_keys(principal).where(ApiKey.id == key_id)
    return first_or_404(statement, f"API key {key_id} does not exist.", lock=lock)


def revoke_api_key(key: ApiKey) -> None:
    """End the key (both secrets) for good; revoking twice changes nothing."""
    if key.revoked_at is not None:
        return
    key.revoked_at = utcnow()
    key.previous_valid_until = None
    emit(EventType.API_KEY_REVOKED, key.id)


def rotation_grace() -> timedelta:
    """How long a rotated-out secret keeps working (``API_KEY_ROTATION_GRACE_SECONDS``,
    validated by ``config.py``: 0 to 7 days, default 24 hours)."""
    return timedelta(seconds=current_app.config["API_KEY_ROTATION_GRACE_SECONDS"])


def rotate_credential(
    credential: ApiKey | int | str, *, grace: timedelta | None = None
) -> IssuedKey:
    """Give an API key a new secret; the old one works for ``grace`` (default:
    :func:`rotation_grace`). Environment credentials are rotated where they are set, in the
    environment, so asking for one raises :class:`CredentialError`."""
    if isinstance(credential, str):
        raise CredentialError(
            f"{credential!r} is not an API key; environment credentials are rotated by "
            "changing the environment and restarting",
            field="key",
        )
    key = credential if isinstance(credential, ApiKey) else db.session.get(ApiKey, credential)
    if key is None:
        raise CredentialError(f"API key {credential} does not exist", field="key")
    now = utcnow()
    if key.state(now) != "active":
        raise CredentialError(
            f"API key {key.prefix} is {key.state(now)} and cannot be rotated", field="key"
        )
    grace = rotation_grace() if grace is None else grace
    if not timedelta(0) <= grace <= MAX_ROTATION_GRACE:
        raise CredentialError(
            f"the grace period must be between 0 and {MAX_ROTATION_GRACE}", field="key"
        )
    secret = _new_secret()
    key.previous_secret_hash = key.secret_hash
    key.previous_valid_until = now + grace
    key.secret_hash = hash_secret(secret)
    key.rotated_at = now
    prune_credential_usage(now)
    emit(
        EventType.API_KEY_ROTATED,
        key.id,
        {"prefix": key.prefix, "grace_seconds": int(grace.total_seconds())},
    )
    return IssuedKey(key, f"{key.prefix}_{secret}")


def _state_refusal(key: ApiKey, now: datetime) -> str | None:
    """Why the key opens nothing now, whatever proves it was presented; None if it may."""
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    if not key.user.is_active:
        return "owner_inactive"
    return None


def _refusal(key: ApiKey, digest: str, now: datetime) -> tuple[str | None, str | None]:
    """``(refusal, note)``: why the secret does not open the key (None: it does), and a
    note for a successful use worth knowing about (the pre-rotation secret)."""
    current = constant_time_equals(digest, key.secret_hash)
    previous = key.previous_secret_hash is not None and constant_time_equals(
        digest, key.previous_secret_hash
    )
    if not current and not previous:
        return "wrong_secret", None
    state = _state_refusal(key, now)
    if state is not None:
        return state, None
    if not current and (key.previous_valid_until is None or key.previous_valid_until <= now):
        return "rotated_out", None
    return None, None if current else "previous_secret"


def authenticate_api_key(
    raw: str, *, component: str = "api", operation: str = "authenticate"
) -> ApiKey | None:
    """The key that ``raw`` opens, or None; every attempt is logged with its reason."""
    prefix, separator = raw[:_PREFIX_LENGTH], raw[_PREFIX_LENGTH : _PREFIX_LENGTH + 1]
    secret = raw[_PREFIX_LENGTH + 1 :]
    if separator != "_" or not secret:
        _log_unknown_key(prefix, component, operation)
        return None
    key = _key_named(prefix, component, operation)
    if key is None:
        return None
    return _logged_use(key, component, operation, *_refusal(key, hash_secret(secret), utcnow()))


def authenticate_api_key_by_certificate(
    prefix: str, *, component: str, operation: str
) -> ApiKey | None:
    """The key an admin mapped a verified client certificate to (``CLIENT_CERTIFICATE_KEYS``),
    or None. The certificate, checked at the TLS handshake, stands for the secret; the key's
    revocation, expiry and owner still apply, and the use is logged like any other."""
    key = _key_named(prefix, component, operation)
    if key is None:
        return None
    return _logged_use(key, component, operation, _state_refusal(key, utcnow()), CERTIFICATE_USE)


def _key_named(prefix: str, component: str, operation: str) -> ApiKey | None:
    """The key with this prefix; an unknown one is logged as such."""
    key = db.session.scalars(select(ApiKey).where(ApiKey.prefix == prefix)).first()
    if key is None:
        _log_unknown_key(prefix, component, operation)
    return key


def _log_unknown_key(prefix: str, component: str, operation: str) -> None:
    log_credential_usage(
        CredentialRef("api_key", prefix),
        component,
        operation,
        outcome="failure",
        reason="unknown_key",
    )


def _logged_use(
    key: ApiKey, component: str, operation: str, refusal: str | None, note: str | None
) -> ApiKey | None:
    """Log one use of ``key`` (refused when ``refusal`` says why); the key if it was not."""
    entry = log_credential_usage(
        key,
        component,
        operation,
        outcome="failure" if refusal else "success",
        reason=refusal or note,
    )
    if refusal:
        return None
    if has_request_context():
        # The request may still be refused (403) after this; the entry's id lets
        # record_refused_api_key_use() log that use as denied.
        db.session.flush()
        g.api_key_usage_id = entry.id
    now, ip = utcnow(), _client_ip()
    # Like login tokens: rewriting the key's row on every request would serialise
    # concurrent requests made with one key on its row lock (the usage log has every use).
    stale = key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION
    if stale or key.last_used_ip != ip:
        key.last_used_at, key.last_used_ip = now, ip
    return key


def key_permissions(key: ApiKey) -> frozenset[str]:
    """What a key grants now: its scopes that its owner's role still covers."""
    granted = permissions_for_role(key.user.role)
    return frozenset(scope for scope in key.scopes if permission_granted(granted, scope))


def resolve_api_key(raw: str) -> Principal | None:
    """Bearer resolver for ``sak_`` keys (``create_app()`` registers it with
    ``auth.register_credential_resolver``)."""
    key = authenticate_api_key(
        raw, component="http", operation=f"{request.method} {request.path}"[:128]
    )
    db.session.commit()
    if key is None:
        return None
    return Principal.of(key.user, key_permissions(key), "api_key", key.id)


def record_refused_api_key_use(response: Response) -> Response:
    """After-request hook: a request its API key opened but that was refused with 403 (a
    scope or permission it lacks) is logged as ``denied``, not as the success its
    authentication was. It writes in its own transaction: the request's session may have
    failed."""
    usage_id = g.pop("api_key_usage_id", None)
    if usage_id is None or response.status_code != 403:
        return response
    try:
        with db.engine.begin() as connection:
            connection.execute(
                update(CredentialUsage)
                .where(CredentialUsage.id == usage_id)
                .values(
                    outcome="denied",
                    reason=func.coalesce(CredentialUsage.reason, REFUSED_USE_REASON),
                )
            )
    except SQLAlchemyError:
        # The refusal stands; only its log entry keeps saying "success".
        logger.warning("could not mark credential usage %s as denied", usage_id, exc_info=True)
    return response


def _presented_key() -> str | None:
    return bearer_credential() or request.headers.get("X-API-Key") or None


def require_api_key(view: Callable | None = None, *, scope: str | None = None) -> Callable:
    """Decorator for any Flask view: a valid API key (``Authorization: Bearer`` or
    ``X-API-Key``: a stored key, or the ``API_KEY`` environment secret), or
    :class:`~security.errors.Unauthenticated` (the app answers it 401). With ``scope``, a
    stored key must also grant it (:class:`~security.errors.Forbidden`, 403, otherwise);
    the environment secret is all-powerful, like the seed's. A stored key's principal is
    put in ``flask.g.principal``."""

    def decorate(function: Callable) -> Callable:
        @functools.wraps(function)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            presented = _presented_key()
            principal = None
            if presented is not None and len(presented) <= 512:
                if presented.startswith(API_KEY_PREFIX):
                    principal = resolve_api_key(presented)
                    valid = principal is not None
                else:
                    valid = verify_api_key(presented, component="http", operation=request.path)
                    db.session.commit()
            else:
                valid = False
            if not valid:
                raise Unauthenticated("A valid API key is required.")
            if principal is not None:
                g.principal = principal
                if scope is not None and not principal.can(scope):
                    raise Forbidden(f"This API key lacks the {scope!r} scope.")
            return function(*args, **kwargs)

        return guarded

    return decorate(view) if view is not None else decorate


# --- suspicious activity ------------------------------------------------------------------


@dataclass(frozen=True)
class SuspicionPolicy:
    """Thresholds for :func:`analyze_for_suspicious_activity`; business hours are UTC."""

    window: timedelta = timedelta(hours=24)
    max_distinct_ips: int = 5
    burst_per_minute: int = 120
    max_failures: int = 10
    business_hours: tuple[int, int] = (7, 19)
    business_days: frozenset[int] = frozenset({1, 2, 3, 4, 5})


def _finding(ref: CredentialRef, kind: str, severity: str, reason: str, **evidence: Any) -> dict:
    return {
        "credential": {"kind": ref.kind, "name": ref.name, "api_key_id": ref.api_key_id},
        "kind": kind,
        "severity": severity,
        "reason": reason,
        "evidence": evidence,
    }


def _off_hours(policy: SuspicionPolicy) -> Any:
    moment = func.timezone("UTC", CredentialUsage.occurred_at)
    start, end = policy.business_hours
    return or_(
        extract("isodow", moment).notin_(sorted(policy.business_days)),
        extract("hour", moment) < start,
        extract("hour", moment) >= end,
    )


def _usage_summary(condition: Any, since: datetime, policy: SuspicionPolicy) -> list[Any]:
    success = CredentialUsage.outcome == "success"
    counted: dict[str, ColumnElement[Any]] = {
        "ips": func.count(distinct(CredentialUsage.ip)).filter(success),
        "ip_list": func.array_agg(distinct(CredentialUsage.ip)).filter(success),
        "wrong_secret": func.count().filter(CredentialUsage.reason == "wrong_secret"),
        "previous_secret": func.count().filter(CredentialUsage.reason == "previous_secret"),
        "off_hours": func.count().filter(success, _off_hours(policy)),
        **{
            reason: func.count().filter(CredentialUsage.reason == reason)
            for reason in WITHDRAWN_REASONS
        },
    }
    statement = (
        select(
            CredentialUsage.credential_kind,
            CredentialUsage.credential_name,
            func.max(CredentialUsage.api_key_id).label("api_key_id"),
            *(expression.label(name) for name, expression in counted.items()),
        )
        .where(condition, CredentialUsage.occurred_at >= since)
        .group_by(CredentialUsage.credential_kind, CredentialUsage.credential_name)
    )
    return list(db.session.execute(statement))


def _bursts(condition: Any, since: datetime, policy: SuspicionPolicy) -> dict[tuple, int]:
    minute = func.date_trunc("minute", CredentialUsage.occurred_at)
    per_minute = (
        select(
            CredentialUsage.credential_kind,
            CredentialUsage.credential_name,
            func.count().label("uses"),
        )
        .where(condition, CredentialUsage.occurred_at >= since)
        .group_by(CredentialUsage.credential_kind, CredentialUsage.credential_name, minute)
        .having(func.count() > policy.burst_per_minute)
        .subquery()
    )
    rows = db.session.execute(
        select(
            per_minute.c.credential_kind, per_minute.c.credential_name, func.max(per_minute.c.uses)
        ).group_by(per_minute.c.credential_kind, per_minute.c.credential_name)
    )
    return {(kind, name): uses for kind, name, uses in rows}


def _findings_for(row: Any, burst: int | None, policy: SuspicionPolicy) -> list[dict]:
    """Apply each rule to one credential's summary; ``(hit, kind, severity, reason,
    evidence)`` per rule, kept when it hits."""
    start, end = policy.business_hours
    withdrawn = [
        (count, kind, severity, f"{sentence} {count} times", {"attempts": count})
        for reason, (kind, severity, sentence) in WITHDRAWN_REASONS.items()
        if (count := getattr(row, reason))
    ]
    rules = [
        (
            row.ips > policy.max_distinct_ips,
            "many_ips",
            "medium",
            f"used from {row.ips} addresses (more than {policy.max_distinct_ips})",
            {"distinct_ips": row.ips, "ips": sorted(ip for ip in row.ip_list or () if ip)[:20]},
        ),
        (
            burst is not None,
            "burst",
            "medium",
            f"{burst} uses in one minute (more than {policy.burst_per_minute})",
            {"max_per_minute": burst},
        ),
        *withdrawn,
        (
            row.wrong_secret >= policy.max_failures,
            "repeated_failures",
            "high",
            f"{row.wrong_secret} attempts with a wrong secret",
            {"attempts": row.wrong_secret},
        ),
        (
            row.previous_secret,
            "old_secret_in_use",
            "low",
            "clients still use the secret from before the last rotation",
            {"uses": row.previous_secret},
        ),
        (
            row.off_hours,
            "off_hours",
            "low",
            f"{row.off_hours} uses outside business hours ({start}:00-{end}:00 UTC, working days)",
            {"uses": row.off_hours},
        ),
    ]
    ref = CredentialRef(row.credential_kind, row.credential_name, row.api_key_id)
    return [
        _finding(ref, kind, severity, reason, **evidence)
        for hit, kind, severity, reason, evidence in rules
        if hit
    ]


def analyze_for_suspicious_activity(
    credential: ApiKey | CredentialRef | str | None = None,
    *,
    policy: SuspicionPolicy | None = None,
    now: datetime | None = None,
) -> list[dict]:
    """Findings about one credential (or all) in the policy's window, each with a reason.

    Looked for: use from many addresses, bursts, presenting a revoked, expired or
    rotated-out secret, repeated wrong secrets, the pre-rotation secret still in use, and
    use outside business hours.
    """
    policy = policy or SuspicionPolicy()
    since = (now or utcnow()) - policy.window
    condition = _usage_filter(credential)
    bursts = _bursts(condition, since, policy)
    findings = []
    for row in _usage_summary(condition, since, policy):
        burst = bursts.get((row.credential_kind, row.credential_name))
        findings.extend(_findings_for(row, burst, policy))
    return findings
