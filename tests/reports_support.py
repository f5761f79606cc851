"""Building incidents with known timestamps for the report tests.

Each incident walks the real workflow (``Incident.transition_to``) at the times given, with
the timeline entry every status change writes, so the rows are what the API would store.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from models import Alert, DetectionRule, Incident, TimelineEntry, User, db

# (status, minutes after creation) of each step.
Steps = Sequence[tuple[str, int]]


def open_incident(
    created_at: datetime,
    *,
    severity: str,
    reporter: str,
    steps: Steps = (),
    assignee: str | None = None,
    tlp: str = "amber",
) -> Incident:
    """An incident opened at ``created_at`` and moved through ``steps`` (in an app context)."""
    users = {user.username: user for user in db.session.query(User)}
    incident = Incident(
        title=f"{severity} at {created_at:%Y-%m-%d %H:%M}",
        severity=severity,
        tlp=tlp,
        reporter=users[reporter],
        assignee=users[assignee] if assignee else None,
        status="new",
        version=1,
        created_at=created_at,
        updated_at=created_at,
    )
    db.session.add(incident)
    db.session.flush()
    db.session.add(_entry(incident, "created", created_at, to_status="new"))
    for status, minutes in steps:
        at = created_at + timedelta(minutes=minutes)
        previous = incident.transition_to(status, at)
        db.session.add(
            _entry(incident, "status_change", at, from_status=previous, to_status=status)
        )
    db.session.flush()
    return incident


def _entry(incident: Incident, kind: str, at: datetime, **fields) -> TimelineEntry:
    return TimelineEntry(
        incident_id=incident.id, actor_id=incident.reporter_id, kind=kind, created_at=at, **fields
    )


def raise_alert(incident: Incident | None, rule_name: str, *, count: int = 1, **fields) -> Alert:
    """An alert of the (new or existing) seed rule ``rule_name``, escalated to ``incident``."""
    rule = db.session.query(DetectionRule).filter_by(name=rule_name).one_or_none()
    if rule is None:
        rule = DetectionRule(
            kind="seed",
            name=rule_name,
            severity="high",
            detection={"ioc": {"type": "domain"}},
            tags=["attack.t1110", "attack.credential_access"],
        )
        db.session.add(rule)
        db.session.flush()
    alert = Alert(
        rule_id=rule.id,
        rule_name=rule.name,
        severity="high",
        status="escalated" if incident else "open",
        group_key=f"{rule_name}-{count}-{incident.id if incident else 'none'}",
        group_values={},
        count=count,
        sample_event={},
        matched={},
        incident_id=incident.id if incident else None,
        **fields,
    )
    db.session.add(alert)
    db.session.flush()
    return alert
