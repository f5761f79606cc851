"""Writing the audit log: one call per security-relevant event, with request context filled in.

``record`` adds the entry to the current transaction, so an audited write and its audit
entry commit (or roll back) together. ``record_now`` commits at once: for events whose
request then fails (denied access, failed login), which would otherwise be rolled back.
"""

from __future__ import annotations

from typing import Any

from flask import g, has_request_context, request

from models import AuditEntry, db


def _request_context() -> dict[str, Any]:
    if not has_request_context():
        return {"ip": None, "request_id": None}
    return {"ip": request.remote_addr, "request_id": g.get("request_id")}


def _current_actor() -> tuple[int | None, str | None]:
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
) -> AuditEntry:
    """Add an audit entry to the current transaction; the actor defaults to the request's."""
    if actor_id is None and actor is None:
        actor_id, actor = _current_actor()
    entry = AuditEntry(
        action=action,
        outcome=outcome,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        details=details or {},
        actor_id=actor_id,
        actor=actor,
        **_request_context(),
    )
    db.session.add(entry)
    return entry


def record_now(action: str, **kwargs: Any) -> None:
    """Record and commit immediately, for events whose request is about to fail."""
    db.session.rollback()
    record(action, **kwargs)
    db.session.commit()
