"""The brute-force guard: N failed logins per account or per IP in a window block that subject.

Counts live in PostgreSQL (``login_failures``, ``auth_blocks``), so every gunicorn worker
and every instance sees the same count and the same blocks. A per-subject advisory lock
serialises concurrent failures, so a burst cannot slip past the threshold. A block
created and a block lifted are events (``auth.block_created``, ``auth.block_lifted``);
the failures that lead to one are counted, not announced.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import Select, delete, func, select, text

from models import AuthBlock, LoginFailure, db, utcnow
from security.errors import Conflict, NotFound, TooManyAttempts
from security.events import Actor, EventType, actor_of, emit
from security.modules import audit
from security.modules.principals import Principal


@dataclass(frozen=True)
class GuardPolicy:
    max_failures: int
    window: timedelta
    block_duration: timedelta

    @classmethod
    def from_config(cls) -> GuardPolicy:
        config = current_app.config
        return cls(
            max_failures=config["LOGIN_MAX_FAILURES"],
            window=timedelta(seconds=config["LOGIN_FAILURE_WINDOW_SECONDS"]),
            block_duration=timedelta(seconds=config["LOGIN_BLOCK_SECONDS"]),
        )


def _subjects(username: str, ip: str) -> list[tuple[str, str]]:
    return [("account", username.lower()), ("ip", ip)]


def active_block(username: str, ip: str, now: datetime | None = None) -> AuthBlock | None:
    """The block that currently stops this account or IP, if any (longest-lasting first)."""
    now = now or utcnow()
    conditions = [
        (AuthBlock.scope == scope) & (AuthBlock.subject == subject)
        for scope, subject in _subjects(username, ip)
    ]
    return db.session.scalars(
        select(AuthBlock)
        .where(AuthBlock.lifted_at.is_(None), AuthBlock.blocked_until > now)
        .where(conditions[0] | conditions[1])
        .order_by(AuthBlock.blocked_until.desc())
        .limit(1)
    ).first()


def blocked_error(block: AuthBlock, now: datetime | None = None) -> TooManyAttempts:
    """Refused until the block ends (429 with Retry-After); the detail does not say which
    subject is blocked, to avoid probing."""
    seconds = max(1, math.ceil((block.blocked_until - (now or utcnow())).total_seconds()))
    return TooManyAttempts("Too many failed logins; try again later.", retry_after=seconds)


def ensure_login_allowed(username: str, ip: str) -> None:
    """Raise 429 when the account or the client's IP is blocked."""
    block = active_block(username, ip)
    if block is not None:
        audit.record_now(
            "auth.login_blocked",
            outcome="denied",
            actor=username[:64],
            details={"scope": block.scope, "block_id": block.id},
        )
        raise blocked_error(block)


def _count_failures(column, subject: str, since: datetime) -> int:
    return db.session.execute(
        select(func.count())
        .select_from(LoginFailure)
        .where(column == subject, LoginFailure.occurred_at > since)
    ).scalar_one()


def record_failed_login(username: str, ip: str) -> list[AuthBlock]:
    """Count a failure for the account and the IP; block those that reach the threshold.

    Runs in the caller's transaction; the caller commits (the failure must be kept even
    though the request itself answers 401).
    """
    policy = GuardPolicy.from_config()
    now = utcnow()
    db.session.add(LoginFailure(username=username.lower()[:255], ip=ip, occurred_at=now))
    db.session.flush()
    created = []
    columns = {"account": LoginFailure.username, "ip": LoginFailure.ip}
    for scope, subject in _subjects(username, ip):
        db.session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
            {"key": f"login:{scope}:{subject}"},
        )
        failures = _count_failures(columns[scope], subject, now - policy.window)
        if failures < policy.max_failures or _has_active_block(scope, subject, now):
            continue
        block = AuthBlock(
            scope=scope,
            subject=subject,
            reason=f"{failures} failed logins within {int(policy.window.total_seconds())} s",
            failure_count=failures,
            created_at=now,
            blocked_until=now + policy.block_duration,
        )
        db.session.add(block)
        db.session.flush()
        emit(
            EventType.BLOCK_CREATED,
            block.id,
            {"scope": scope, "subject": subject, "failures": failures},
            actor=Actor(None, username[:64]),
            outcome="denied",
        )
        created.append(block)
    return created


def _has_active_block(scope: str, subject: str, now: datetime) -> bool:
    return (
        db.session.scalar(
            select(AuthBlock.id).where(
                AuthBlock.scope == scope,
                AuthBlock.subject == subject,
                AuthBlock.lifted_at.is_(None),
                AuthBlock.blocked_until > now,
            )
        )
        is not None
    )


def forget_account_failures(username: str) -> None:
    """A successful login clears the account's count (never the IP's: one valid account
    must not let an attacker reset the counter for guessing others)."""
    db.session.execute(delete(LoginFailure).where(LoginFailure.username == username.lower()))


def blocks_query(include_inactive: bool = False) -> Select:
    """Blocks for the admin view (active ones only unless asked); the caller pages it."""
    query = select(AuthBlock)
    if not include_inactive:
        query = query.where(AuthBlock.lifted_at.is_(None), AuthBlock.blocked_until > utcnow())
    return query


def lift_block(block_id: int, principal: Principal) -> AuthBlock:
    """End a block early and forget the failures that caused it, so it does not re-trigger.

    :class:`NotFound` if there is no such block, :class:`Conflict` if it was lifted
    already (a block that merely expired can still be lifted: its failures are forgotten).
    """
    block = db.session.get(AuthBlock, block_id, with_for_update=True)
    if block is None:
        raise NotFound(f"Block {block_id} does not exist.")
    if block.lifted_at is not None:
        raise Conflict(f"Block {block_id} was already lifted.")
    block.lifted_at = utcnow()
    block.lifted_by_id = principal.user_id
    column = LoginFailure.username if block.scope == "account" else LoginFailure.ip
    db.session.execute(delete(LoginFailure).where(column == block.subject))
    emit(
        EventType.BLOCK_LIFTED,
        block.id,
        {"scope": block.scope, "subject": block.subject},
        actor=actor_of(principal),
    )
    return block
