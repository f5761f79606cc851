"""Writing the audit log: one call per security-relevant event, with request context filled in.

``record`` adds the entry to the current transaction, so an audited write and its audit
entry commit (or roll back) together; ``record_many`` writes many with one INSERT.
``record_now`` commits at once: for events whose request then fails (denied access,
failed login), which would otherwise be rolled back.

State changes are not recorded here directly: :func:`security.events.emit` writes their
entry (the event's record) and tells the subscribers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from flask import g, has_request_context, request
from sqlalchemy import insert

from models import AuditEntry, db, utcnow


def _request_context() -> dict[str, Any]:
    if not has_request_context():
        return {"ip": None, "request_id": None}
    return {"ip": request.remote_addr, "request_id": g.get("request_id")}


def current_actor() -> tuple[int | None, str | None]:
    """The request principal's user id and name; ``(None, None)`` outside a request."""
    principal = g.get("principal") if has_request_context() else None
    if principal is None:
        return None, None
    return principal.user_id, principal.username


def record(
    action: str,
    *,
    outcome: str = "success",
    object_type: str | None = None,
    object_id: object = None,
    details: dict[str, Any] | None = None,
    actor_id: int | None = None,
    actor: str | None = None,
    occurred_at: datetime | None = None,
) -> AuditEntry:
    """Add an audit entry to the current transaction; the actor defaults to the request's."""
    if actor_id is None and actor is None:
        actor_id, actor = current_actor()
    entry = AuditEntry(
        action=action,
        outcome=outcome,
        object_type=object_type,
        object_id=_object_id(object_id),
        details=details or {},
        actor_id=actor_id,
        actor=actor,
        occurred_at=occurred_at or utcnow(),
        **_request_context(),
    )
    db.session.add(entry)
    return entry


def record_many(entries: Sequence[Mapping[str, Any]]) -> None:
    """Write successful entries (``action``, ``object_type``, ``object_id``, ``details``,
    ``actor_id``, ``actor``, ``occurred_at``) in the current transaction, one INSERT."""
    context = {**_request_context(), "outcome": "success"}
    rows = [{**entry, **context, "object_id": _object_id(entry["object_id"])} for entry in entries]
    db.session.execute(insert(AuditEntry), rows)


def _object_id(object_id: object) -> str | None:
    return None if object_id is None else str(object_id)


def record_now(action: str, **kwargs: Any) -> None:
    """Record and commit immediately, for events whose request is about to fail."""
    db.session.rollback()
    record(action, **kwargs)
    db.session.commit()
