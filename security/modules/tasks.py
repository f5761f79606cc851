"""Tasks of an incident: adding, editing and listing them, the analyst's work queue across
incidents, and moving an incident's tasks to another (:func:`move_tasks`, for an incident
merge).

Each change writes a ``task`` entry on the incident's timeline (``changes`` names the
task and what changed) and emits one domain event. A task is as visible as its incident
(TLP red stays need-to-know): every statement here joins the incident's
:func:`~security.modules.incidents.visibility`. The rule that mandatory tasks still open
keep an incident from being resolved or closed is part of the incident workflow
(:func:`security.modules.incidents.refuse_with_open_mandatory_tasks`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select

from models import Incident, Task, User, db, utcnow
from models.vocabulary import OPEN_TASK_STATUSES
from security.events import EventType, emit
from security.modules import incidents
from security.modules.lookup import first_or_404
from security.modules.principals import Principal

EDITABLE_FIELDS = ("title", "description", "status", "assignee", "due_at", "mandatory", "position")


def tasks_of(incident: Incident) -> list[Task]:
    """The incident's tasks in their order."""
    return list(
        db.session.scalars(
            select(Task).where(Task.incident_id == incident.id).order_by(Task.position, Task.id)
        )
    )


def get_task(incident: Incident, task_id: int, *, lock: bool = False) -> Task:
    """A task of this (already visible) incident, or 404."""
    statement = select(Task).where(Task.id == task_id, Task.incident_id == incident.id)
    return first_or_404(statement, f"Task {task_id} does not exist.", lock=lock)


def create_task(
    incident: Incident,
    principal: Principal | None,
    data: dict[str, Any],
    now: datetime | None = None,
) -> Task:
    """Add a task; without ``position`` it goes last."""
    now = now or utcnow()
    position = data.get("position")
    if position is None:
        last = db.session.scalar(
            select(func.max(Task.position)).where(Task.incident_id == incident.id)
        )
        position = 0 if last is None else last + 1
    task = Task(
        incident_id=incident.id,
        title=data["title"].strip(),
        description=data.get("description", ""),
        status=data.get("status", "todo"),
        assignee=incidents.resolve_assignee(data.get("assignee")),
        due_at=data.get("due_at"),
        mandatory=data.get("mandatory", False),
        position=position,
        version=1,
        created_at=now,
        updated_at=now,
    )
    db.session.add(task)
    db.session.flush()
    incidents.note_on_timeline(
        incident, principal, "task", changes={"task": task.id, "created": task.title}
    )
    emit(
        EventType.TASK_CREATED,
        task.id,
        {"incident_id": incident.id, "mandatory": task.mandatory},
    )
    return task


def create_tasks_from_template(
    incident: Incident, principal: Principal, templates: list[dict[str, Any]]
) -> list[Task]:
    """The template's tasks on a new incident, in order; ``due_in_minutes`` counts from now."""
    now = utcnow()
    created = []
    for position, template in enumerate(templates):
        due_in = template.get("due_in_minutes")
        data = {
            "title": template["title"],
            "description": template.get("description", ""),
            "mandatory": template.get("mandatory", False),
            "due_at": now + timedelta(minutes=due_in) if due_in else None,
            "position": position,
        }
        created.append(create_task(incident, principal, data, now))
    return created


def update_task(
    incident: Incident, task: Task, principal: Principal, data: dict[str, Any]
) -> dict[str, list[Any]]:
    """Apply an edit; returns ``{field: [old, new]}`` for what changed (timeline, event)."""
    changes: dict[str, list[Any]] = {}
    for field in EDITABLE_FIELDS:
        if field not in data:
            continue
        if field == "assignee":
            user = incidents.resolve_assignee(data["assignee"])
            old_name = task.assignee.username if task.assignee else None
            new_name = user.username if user else None
            if old_name != new_name:
                task.assignee = user
                changes["assignee"] = [old_name, new_name]
            continue
        new_value = data[field].strip() if field == "title" else data[field]
        old_value = getattr(task, field)
        if old_value != new_value:
            setattr(task, field, new_value)
            changes[field] = [_plain(old_value), _plain(new_value)]
    if not changes:
        return changes
    task.touch()
    incidents.note_on_timeline(incident, principal, "task", changes={"task": task.id, **changes})
    emit(
        EventType.TASK_EDITED,
        task.id,
        {"incident_id": incident.id, "fields": sorted(changes)},
    )
    return changes


def _plain(value: Any) -> Any:
    """A value as JSON holds it (timeline ``changes`` is JSONB)."""
    return value.isoformat() if isinstance(value, datetime) else value


def work_queue(principal: Principal, assignee: User | None, status: str | None) -> Select:
    """Tasks across the incidents the principal may see, for a keyset page on
    ``(created_at, id)``: with ``status="open"`` and an assignee, one backward range of
    the partial index ``ix_tasks_open_queue``, joined to each incident by its key."""
    statement = select(Task).join(Incident, Task.incident_id == Incident.id)
    statement = statement.where(incidents.visibility(principal))
    if assignee is not None:
        statement = statement.where(Task.assignee_id == assignee.id)
    if status == "open":
        statement = statement.where(Task.status.in_(OPEN_TASK_STATUSES))
    elif status is not None:
        statement = statement.where(Task.status == status)
    return statement


def move_tasks(source: Incident, target: Incident) -> int:
    """Move every task of ``source`` to ``target``, after the target's own, for an incident
    merge; returns how many moved. Quiet on purpose: the merge is one state change, whose
    one event and timeline entries (``security/modules/incident_merge.py``) announce the
    counts. The caller holds both incidents' rows locked."""
    moving = tasks_of(source)
    if not moving:
        return 0
    last = db.session.scalar(select(func.max(Task.position)).where(Task.incident_id == target.id))
    start = 0 if last is None else last + 1
    for offset, task in enumerate(moving):
        task.incident_id = target.id
        task.position = start + offset
        task.touch()
    db.session.flush()
    return len(moving)
