"""Merging into an incident: alerts merged in (and out again), and a duplicate incident
merged into the one that stays.

Lives here: what an alert carries into the incident it joins (its tags and ATT&CK
techniques, links to the IOCs its observables matched, a timeline entry; its observables
are the incident's through the alert itself), and how an unmerge removes exactly what the
merge carried; :func:`merge_incident`, which moves a duplicate's work to the incident
that stays and closes the duplicate with a link. Not here: escalation's new incident
(:mod:`security.modules.alerts`), who may see what (``alerts.visibility``,
``incidents.visibility``), HTTP.

What a merge carried is recorded on the alert (``Alert.merge_carried``): only what the
incident did not already have. An unmerge removes those items, except what another alert
still merged into the incident brings too; that alert then becomes their carrier, so its
own unmerge removes them later.

Extending :func:`merge_incident`: each kind of work a duplicate holds is moved by one
function in :data:`DUPLICATE_MOVES` (``(target, duplicate) -> how many moved``); a new
kind (tasks, evidence) is one more entry, nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import delete, literal, select, update
from sqlalchemy.dialects.postgresql import insert

from models import (
    Alert,
    AlertObservable,
    Comment,
    Incident,
    IncidentIoc,
    TimelineEntry,
    db,
    utcnow,
)
from models.vocabulary import TLP_LEVELS
from security.errors import Conflict, Invalid, NotFound
from security.events import EventType, actor_of, emit, emit_all
from security.modules import evidence, tasks
from security.modules.principals import Principal

CARRIED_KINDS = ("tags", "techniques", "ioc_ids")


def _known_bad_ioc_ids(alert: Alert) -> list[int]:
    rows = db.session.scalars(
        select(AlertObservable.ioc_ids).where(
            AlertObservable.alert_id == alert.id, AlertObservable.known_bad.is_(True)
        )
    )
    return sorted({ioc_id for ids in rows for ioc_id in ids})


def _timeline(incident: Incident, principal: Principal | None, kind: str, **fields: Any) -> None:
    db.session.add(
        TimelineEntry(
            incident_id=incident.id,
            actor_id=principal.user_id if principal else None,
            kind=kind,
            created_at=utcnow(),
            **fields,
        )
    )


def _link_iocs(
    incident: Incident, ioc_ids: Sequence[int], principal: Principal | None
) -> list[int]:
    """Link the IOCs to the incident; the ids that were not linked before."""
    if not ioc_ids:
        return []
    rows = [
        {
            "incident_id": incident.id,
            "ioc_id": ioc_id,
            "linked_by_id": principal.user_id if principal else None,
            "linked_at": utcnow(),
        }
        for ioc_id in ioc_ids
    ]
    statement = insert(IncidentIoc).values(rows).on_conflict_do_nothing()
    return sorted(db.session.scalars(statement.returning(IncidentIoc.ioc_id)))


def carry_alert(incident: Incident, alert: Alert, principal: Principal | None) -> dict[str, list]:
    """Merge ``alert`` into ``incident`` without announcing it (the caller's event does):
    add the tags, techniques and IOC links the incident lacks, link the alert, write the
    timeline entry. Returns what was carried. 409 if the alert is in an incident already
    or was dismissed (the alert workflow's refusal)."""
    if alert.incident_id is not None:
        raise Conflict(
            f"Alert {alert.id} is already merged into incident {alert.incident_id}.",
            extra={"incident_id": alert.incident_id},
        )
    carried: dict[str, list] = {
        "tags": sorted(set(alert.tags) - set(incident.tags)),
        "techniques": sorted(set(alert.techniques) - set(incident.techniques)),
    }
    alert.merge_into(incident.id, carried)
    carried["ioc_ids"] = _link_iocs(incident, _known_bad_ioc_ids(alert), principal)
    alert.merge_carried = {**(alert.merge_carried or {}), "ioc_ids": carried["ioc_ids"]}
    if carried["tags"] or carried["techniques"]:
        incident.tags = sorted({*incident.tags, *carried["tags"]})
        incident.techniques = sorted({*incident.techniques, *carried["techniques"]})
        incident.touch()
    _timeline(incident, principal, "alert_merge", changes={"alert_id": alert.id, **carried})
    return carried


def merge_alerts(
    incident: Incident, alerts: Sequence[Alert], principal: Principal
) -> list[dict[str, Any]]:
    """Merge each alert (locked by the caller, in id order) into the incident; one
    ``alert.merge`` event each. Returns ``[{"alert": ..., "carried": ...}]``."""
    if incident.merged_into_id is not None:
        raise Conflict(
            f"Incident {incident.id} was merged into incident {incident.merged_into_id}.",
            extra={"merged_into_id": incident.merged_into_id},
        )
    carried = [carry_alert(incident, alert, principal) for alert in alerts]
    emit_all(
        EventType.ALERT_MERGED,
        [
            (alert.id, {"incident_id": incident.id, "carried": what})
            for alert, what in zip(alerts, carried, strict=True)
        ],
        actor=actor_of(principal),
    )
    return [{"alert": alert, "carried": what} for alert, what in zip(alerts, carried, strict=True)]


def _still_brought(incident: Incident, alert: Alert) -> dict[str, dict[Any, Alert]]:
    """For each carried kind, the items another alert merged into the incident brings
    too, mapped to one such alert (the new carrier)."""
    others = db.session.scalars(
        select(Alert)
        .where(Alert.incident_id == incident.id, Alert.id != alert.id)
        .order_by(Alert.id)
        .with_for_update()
    ).all()
    brought: dict[str, dict[Any, Alert]] = {kind: {} for kind in CARRIED_KINDS}
    for other in others:
        for tag in other.tags:
            brought["tags"].setdefault(tag, other)
        for technique in other.techniques:
            brought["techniques"].setdefault(technique, other)
        for ioc_id in _known_bad_ioc_ids(other):
            brought["ioc_ids"].setdefault(ioc_id, other)
    return brought


def unmerge_alert(incident: Incident, alert: Alert, principal: Principal) -> dict[str, list]:
    """Take the alert out of the incident: remove what its merge carried (unless another
    merged alert brings it too), restore the alert's status; one ``alert.unmerge`` event.
    404 if the alert is not merged into this incident. Returns what was removed."""
    if alert.incident_id != incident.id:
        raise NotFound(f"Alert {alert.id} is not merged into incident {incident.id}.")
    carried = alert.unmerge()
    brought = _still_brought(incident, alert)
    removed: dict[str, list] = {}
    for kind in CARRIED_KINDS:
        items = carried.get(kind, [])
        removed[kind] = [item for item in items if item not in brought[kind]]
        for item in items:
            if item in brought[kind]:
                _hand_over(brought[kind][item], kind, item)
    if removed["tags"] or removed["techniques"]:
        incident.tags = [tag for tag in incident.tags if tag not in removed["tags"]]
        incident.techniques = [
            technique for technique in incident.techniques if technique not in removed["techniques"]
        ]
        incident.touch()
    if removed["ioc_ids"]:
        db.session.execute(
            delete(IncidentIoc).where(
                IncidentIoc.incident_id == incident.id, IncidentIoc.ioc_id.in_(removed["ioc_ids"])
            )
        )
    _timeline(incident, principal, "alert_unmerge", changes={"alert_id": alert.id, **removed})
    emit(
        EventType.ALERT_UNMERGED,
        alert.id,
        {"incident_id": incident.id, "removed": removed},
        actor=actor_of(principal),
    )
    return removed


def _hand_over(carrier: Alert, kind: str, item: Any) -> None:
    """Record on ``carrier`` that its merge now carries ``item`` (another alert's unmerge
    left it in the incident because ``carrier`` brings it too)."""
    carried = dict(carrier.merge_carried or {})
    carried[kind] = sorted({*carried.get(kind, []), item})
    carrier.merge_carried = carried


# --- a duplicate incident -----------------------------------------------------------------


def _move_alerts(target: Incident, duplicate: Incident) -> int:
    """Move the duplicate's alerts, each keeping as carried only what ``target`` lacked
    (what it already had is not the alert's to remove on an unmerge). Runs before the
    duplicate's IOC links and labels join ``target``."""
    moved = db.session.scalars(
        select(Alert).where(Alert.incident_id == duplicate.id).order_by(Alert.id).with_for_update()
    ).all()
    linked = set(
        db.session.scalars(select(IncidentIoc.ioc_id).where(IncidentIoc.incident_id == target.id))
    )
    had: dict[str, set[Any]] = {
        "tags": set(target.tags),
        "techniques": set(target.techniques),
        "ioc_ids": linked,
    }
    for alert in moved:
        carried = dict(alert.merge_carried or {})
        for kind in CARRIED_KINDS:
            carried[kind] = [item for item in carried.get(kind, []) if item not in had[kind]]
        alert.merge_carried = carried
        alert.incident_id = target.id
    return len(moved)


def _move_iocs(target: Incident, duplicate: Incident) -> int:
    copied = insert(IncidentIoc).from_select(
        ["incident_id", "ioc_id", "linked_by_id", "linked_at"],
        select(
            literal(target.id),
            IncidentIoc.ioc_id,
            IncidentIoc.linked_by_id,
            IncidentIoc.linked_at,
        ).where(IncidentIoc.incident_id == duplicate.id),
    )
    db.session.execute(copied.on_conflict_do_nothing())
    removed = db.session.scalars(
        delete(IncidentIoc)
        .where(IncidentIoc.incident_id == duplicate.id)
        .returning(IncidentIoc.ioc_id)
    )
    return len(removed.all())


def _move_comments(target: Incident, duplicate: Incident) -> int:
    # The comments themselves (their author may still edit them, on the target now), then
    # their timeline entries.
    db.session.execute(
        update(Comment)
        .where(Comment.incident_id == duplicate.id)
        .values(incident_id=target.id)
        .execution_options(synchronize_session=False)
    )
    moved = db.session.scalars(
        update(TimelineEntry)
        .where(TimelineEntry.incident_id == duplicate.id, TimelineEntry.kind == "comment")
        .values(incident_id=target.id)
        .returning(TimelineEntry.id)
        .execution_options(synchronize_session=False)
    )
    return len(moved.all())


DUPLICATE_MOVES: dict[str, Callable[[Incident, Incident], int]] = {
    "alerts": _move_alerts,
    "iocs": _move_iocs,
    "comments": _move_comments,
    # case work, part B: tasks (after the target's own) and evidence (the bytes stay put)
    "tasks": lambda target, duplicate: tasks.move_tasks(duplicate, target),
    "evidence": lambda target, duplicate: evidence.move_evidence(duplicate, target),
}
"""What :func:`merge_incident` moves from a duplicate, one function per kind of work."""


def merge_incident(target: Incident, duplicate: Incident, principal: Principal) -> dict[str, int]:
    """Merge ``duplicate`` into ``target`` (both locked by the caller, lower id first):
    move its work (:data:`DUPLICATE_MOVES`), add its tags and techniques, keep the more
    restrictive TLP (so nothing moved becomes visible to more people), close it with a
    link to ``target``, and record both timelines; one ``incident.merge`` event. Returns
    how many of each kind moved."""
    if duplicate.id == target.id:
        raise Invalid(
            "An incident cannot be merged into itself.",
            errors={"duplicate_id": ["is this incident"]},
        )
    for incident in (target, duplicate):
        if incident.merged_into_id is not None:
            raise Conflict(
                f"Incident {incident.id} was already merged into incident "
                f"{incident.merged_into_id}.",
                extra={"merged_into_id": incident.merged_into_id},
            )
    moved = {kind: move(target, duplicate) for kind, move in DUPLICATE_MOVES.items()}
    target.tags = sorted({*target.tags, *duplicate.tags})
    target.techniques = sorted({*target.techniques, *duplicate.techniques})
    target.tlp = max(target.tlp, duplicate.tlp, key=TLP_LEVELS.index)
    target.touch()
    previous = duplicate.close_as_duplicate(target.id)
    _timeline(target, principal, "incident_merge", changes={"duplicate_id": duplicate.id, **moved})
    _timeline(
        duplicate,
        principal,
        "incident_merge",
        from_status=previous,
        to_status="closed",
        changes={"merged_into_id": target.id},
    )
    emit(
        EventType.INCIDENT_MERGED,
        duplicate.id,
        {"merged_into_id": target.id, "moved": moved},
        actor=actor_of(principal),
    )
    return moved
