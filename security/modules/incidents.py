"""Incident operations: each writes the incident, its timeline entry and its domain event
(:mod:`security.events`, which is also its audit entry) in one transaction, with the row
locked, so concurrent writers cannot lose each other's work.

Resources call these; the workflow and SLA rules themselves are methods of
:class:`models.Incident`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, func, or_, select, true
from sqlalchemy.orm import joinedload

from models import Comment, Incident, Task, TimelineEntry, User, db, utcnow
from models.vocabulary import OPEN_TASK_STATUSES
from security.errors import Conflict, Invalid
from security.events import EventType, emit
from security.modules import attack, custom_fields
from security.modules.lookup import first_or_404
from security.modules.principals import Principal

EDITABLE_FIELDS = (
    "title",
    "description",
    "severity",
    "tlp",
    "assignee",
    "tags",
    "techniques",
    "custom_fields",
)
# Statuses an incident may not reach while a mandatory task is open.
DONE_STATUSES = frozenset({"resolved", "closed"})


def canonical_tags(tags: Iterable[str]) -> list[str]:
    """Tags as stored on incidents and alerts: trimmed, lower-cased (``Phishing`` and
    ``phishing`` are one tag), without blanks or repeats, sorted."""
    return sorted({tag.strip().lower() for tag in tags if tag.strip()})


def visibility(principal: Principal, incident: Any = Incident) -> ColumnElement[bool]:
    """The condition on ``incidents`` rows (or an alias of it, ``incident``) that the
    principal may see: TLP red only for admins, the reporter and the assignee. Reports
    aggregate under the same condition."""
    if principal.is_admin:
        return true()
    return _visible_to(principal.user_id, incident)


def _visible_to(user_id: Any, incident: Any = Incident) -> ColumnElement[bool]:
    return or_(
        incident.tlp != "red",
        incident.reporter_id == user_id,
        incident.assignee_id == user_id,
    )


# An incident's answer names its reporter and assignee; loading their whole rows (password
# hash, MFA secret and a dozen more columns, twice per incident) was most of a read's SQL.
# Another attribute, if something reads it, is loaded then.
_NAMES_OF_PEOPLE = (
    joinedload(Incident.reporter).load_only(User.username),
    joinedload(Incident.assignee).load_only(User.username),
)


def visible_incidents(principal: Principal) -> Select:
    """Incidents the principal may see (:func:`visibility`)."""
    return select(Incident).where(visibility(principal)).options(*_NAMES_OF_PEOPLE)


def get_visible_incident(principal: Principal, incident_id: int, *, lock: bool = False) -> Incident:
    """The incident, or 404 whether it is missing or hidden (IDs cannot be probed)."""
    return first_or_404(
        _visible_incident_by_id(principal.is_admin),
        f"Incident {incident_id} does not exist.",
        lock=lock,
        params={"incident_id": incident_id, "viewer_id": principal.user_id},
    )


@functools.cache
def _visible_incident_by_id(admin: bool) -> Select:
    """:func:`get_visible_incident`'s statement, built once with the incident and the
    viewer as bound parameters: building it and its cache key anew was a fifth of the cost
    of reading an incident."""
    visible = true() if admin else _visible_to(bindparam("viewer_id"))
    return (
        select(Incident)
        .where(visible, Incident.id == bindparam("incident_id"))
        .options(*_NAMES_OF_PEOPLE)
    )


def resolve_assignee(username: str | None) -> User | None:
    if username is None:
        return None
    user = db.session.scalars(
        select(User).where(func.lower(User.username) == username.lower())
    ).first()
    if user is None or not user.is_active:
        raise Invalid("The assignee does not exist.", errors={"assignee": ["unknown user"]})
    return user


def create_incident(principal: Principal, data: dict[str, Any]) -> Incident:
    now = utcnow()
    incident = Incident(
        title=data["title"].strip(),
        description=data.get("description", ""),
        severity=data["severity"],
        tlp=data.get("tlp", "amber"),
        reporter=principal.user,
        assignee=resolve_assignee(data.get("assignee")),
        tags=canonical_tags(data.get("tags", [])),
        techniques=attack.check_techniques(data.get("techniques", [])),
        custom_fields=custom_fields.checked_values(data.get("custom_fields", {}), creating=True),
        status="new",
        version=1,
        created_at=now,
        updated_at=now,
    )
    db.session.add(incident)
    db.session.flush()
    _add_timeline(incident, principal, "created", to_status="new")
    emit(
        EventType.INCIDENT_CREATED,
        incident.id,
        {
            "severity": incident.severity,
            "tlp": incident.tlp,
            "assignee": incident.assignee.username if incident.assignee else None,
        },
    )
    return incident


def update_incident(incident: Incident, principal: Principal, data: dict[str, Any]) -> dict:
    """Apply an edit; returns ``{field: [old, new]}`` for what actually changed.

    A new assignee is its own event (``incident.assign``: who to notify changes); the
    other fields changed, if any, are one ``incident.update``.
    """
    changes: dict[str, list[Any]] = {}
    for field in EDITABLE_FIELDS:
        if field not in data:
            continue
        if field == "assignee":
            new_user = resolve_assignee(data["assignee"])
            old_name = incident.assignee.username if incident.assignee else None
            new_name = new_user.username if new_user else None
            if old_name != new_name:
                incident.assignee = new_user
                changes["assignee"] = [old_name, new_name]
            continue
        if field == "custom_fields":
            new_value = custom_fields.merged_values(incident.custom_fields, data[field])
            if new_value != incident.custom_fields:
                changes[field] = [incident.custom_fields, new_value]
                incident.custom_fields = new_value
            continue
        new_value = _edited_value(field, data[field])
        old_value = getattr(incident, field)
        if old_value != new_value:
            setattr(incident, field, new_value)
            changes[field] = [old_value, new_value]
    if not changes:
        return changes
    incident.touch()
    _add_timeline(incident, principal, "edit", changes=changes)
    edited = sorted(set(changes) - {"assignee"})
    if edited:
        emit(EventType.INCIDENT_EDITED, incident.id, {"fields": edited})
    if "assignee" in changes:
        previous, assignee = changes["assignee"]
        emit(EventType.INCIDENT_ASSIGNED, incident.id, {"from": previous, "to": assignee})
    return changes


def _edited_value(field: str, value: Any) -> Any:
    """An edit's value as stored (labels canonical, techniques checked)."""
    if field == "title":
        return value.strip()
    if field == "tags":
        return canonical_tags(value)
    if field == "techniques":
        return attack.check_techniques(value)
    return value


def change_status(
    incident: Incident, principal: Principal, status: str, comment: str | None
) -> None:
    """Move along the workflow; 409 with the allowed next states otherwise (nothing written).

    Resolving or closing waits for the mandatory tasks: 409 naming those still open.
    """
    if status in DONE_STATUSES:
        refuse_with_open_mandatory_tasks(incident, status)
    now = utcnow()
    previous = incident.transition_to(status, now)
    _add_timeline(
        incident,
        principal,
        "status_change",
        at=now,
        from_status=previous,
        to_status=status,
        comment=comment,
    )
    emit(EventType.INCIDENT_STATUS_CHANGED, incident.id, {"from": previous, "to": status})


def refuse_with_open_mandatory_tasks(incident: Incident, status: str) -> None:
    """:class:`Conflict` listing the incident's mandatory tasks still open, if any."""
    still_open = db.session.execute(
        select(Task.id, Task.title)
        .where(
            Task.incident_id == incident.id,
            Task.mandatory,
            Task.status.in_(OPEN_TASK_STATUSES),
        )
        .order_by(Task.position, Task.id)
    ).all()
    if not still_open:
        return
    titles = ", ".join(repr(title) for _, title in still_open)
    raise Conflict(
        f"Incident {incident.id} cannot become {status} while mandatory tasks are open: {titles}.",
        extra={"open_mandatory_tasks": [{"id": id_, "title": title} for id_, title in still_open]},
    )


def add_comment(incident: Incident, principal: Principal, body: str) -> TimelineEntry:
    """The comment (its author may edit or delete it: ``security/modules/comments.py``)
    and its timeline entry, which names it in ``changes``."""
    now = utcnow()
    comment = Comment(
        incident_id=incident.id,
        author_id=principal.user_id,
        body=body.strip(),
        created_at=now,
        updated_at=now,
    )
    db.session.add(comment)
    db.session.flush()
    entry = _add_timeline(
        incident,
        principal,
        "comment",
        at=now,
        comment=comment.body,
        changes={"comment": comment.id},
    )
    db.session.flush()
    emit(
        EventType.INCIDENT_COMMENTED,
        incident.id,
        {"timeline_entry": entry.id, "comment": comment.id},
    )
    return entry


def timeline(incident: Incident) -> list[TimelineEntry]:
    return list(
        db.session.scalars(
            select(TimelineEntry)
            .where(TimelineEntry.incident_id == incident.id)
            .order_by(TimelineEntry.created_at, TimelineEntry.id)
        )
    )


def note_on_timeline(
    incident: Incident, principal: Principal | None, kind: str, **fields: Any
) -> TimelineEntry:
    """Write an entry on the incident's timeline for a change made elsewhere (a task, a
    piece of evidence); ``principal`` None is the system."""
    return _add_timeline(incident, principal, kind, **fields)


def _add_timeline(
    incident: Incident,
    principal: Principal | None,
    kind: str,
    at: datetime | None = None,
    **fields: Any,
) -> TimelineEntry:
    entry = TimelineEntry(
        incident_id=incident.id,
        actor_id=principal.user_id if principal else None,
        kind=kind,
        created_at=at or utcnow(),
        **fields,
    )
    db.session.add(entry)
    return entry
