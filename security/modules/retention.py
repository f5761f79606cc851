"""Retention: what the product deletes once it is old enough, and the record that it did.

Each kind of record is kept for its own number of days, read from the settings (``None``
keeps it forever; README, "Retention", gives the defaults and why):

- ``AUDIT_RETENTION_DAYS``: audit log entries, by when they happened;
- ``CREDENTIAL_USAGE_RETENTION_DAYS``: the credential usage log
  (:func:`security.modules.credentials.prune_credential_usage`);
- ``ALERT_EVENT_RETENTION_DAYS``: the raw event an alert keeps as its sample, for alerts
  that are not part of an incident, counted from the alert's last match;
- ``CLOSED_INCIDENT_EVENT_RETENTION_DAYS``: the raw events of the alerts of an incident
  that was closed (or found a false positive) that long ago; an open incident keeps them.

A pruned alert keeps everything but its sample (``sample_event`` becomes ``null``): counts,
rule, matched fields and its place in an incident stay. :func:`prune` does all four and
records one ``retention.prune`` event with the counts and cut-off times, written after the
deletions, so the audit log's own pruning never removes the record of itself. Scheduling
is the caller's: ``flask prune`` from cron or a systemd timer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import cast

from flask import current_app
from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.dialects.postgresql import JSONB

from models import Alert, AuditEntry, Incident, db, utcnow
from security.events import Actor, EventType, emit
from security.modules.credentials import prune_credential_usage

# Incident statuses that end the workflow: the evidence of such an incident ages from here.
CLOSED_INCIDENT_STATUSES = ("closed", "false_positive")


def _cutoff(setting: str, now: datetime) -> datetime | None:
    """Records older than this are pruned; None when the setting keeps them forever."""
    days = current_app.config[setting]
    return None if days is None else now - timedelta(days=days)


def _rowcount(result: object) -> int:
    return cast(CursorResult, result).rowcount  # a DELETE's or UPDATE's result


def prune_audit_log(cutoff: datetime) -> int:
    """Delete audit entries that happened before ``cutoff``; returns how many."""
    return _rowcount(db.session.execute(delete(AuditEntry).where(AuditEntry.occurred_at < cutoff)))


def _clear_sample_events(*conditions) -> int:
    """Replace the raw event of the alerts matching ``conditions`` with JSON ``null``."""
    return _rowcount(
        db.session.execute(
            update(Alert)
            .where(func.jsonb_typeof(Alert.sample_event) != "null", *conditions)
            .values(sample_event=JSONB.NULL)
        )
    )


def prune_alert_events(cutoff: datetime) -> int:
    """Clear the raw event of alerts outside any incident last matched before ``cutoff``."""
    return _clear_sample_events(Alert.incident_id.is_(None), Alert.last_seen < cutoff)


def prune_closed_incident_events(cutoff: datetime) -> int:
    """Clear the raw events of the alerts of incidents closed before ``cutoff``."""
    closed = select(Incident.id).where(
        Incident.status.in_(CLOSED_INCIDENT_STATUSES), Incident.resolved_at < cutoff
    )
    return _clear_sample_events(Alert.incident_id.in_(closed))


PRUNERS: dict[str, tuple[str, Callable[[datetime], int]]] = {
    "audit_log": ("AUDIT_RETENTION_DAYS", prune_audit_log),
    "alert_events": ("ALERT_EVENT_RETENTION_DAYS", prune_alert_events),
    "closed_incident_events": (
        "CLOSED_INCIDENT_EVENT_RETENTION_DAYS",
        prune_closed_incident_events,
    ),
}
"""What :func:`prune` prunes (besides credential usage): name, its setting, its pruner."""


def prune(now: datetime | None = None, *, actor: Actor | None = None) -> dict[str, int]:
    """Prune every kind of record past its retention (the caller commits) and record that
    as one ``retention.prune`` event; returns how many of each were pruned."""
    now = now or utcnow()
    pruned: dict[str, int] = {}
    cutoffs: dict[str, str | None] = {}
    for name, (setting, pruner) in PRUNERS.items():
        cutoff = _cutoff(setting, now)
        pruned[name] = 0 if cutoff is None else pruner(cutoff)
        cutoffs[name] = None if cutoff is None else cutoff.isoformat()
    usage_cutoff = _cutoff("CREDENTIAL_USAGE_RETENTION_DAYS", now)
    pruned["credential_usage"] = prune_credential_usage(now)
    cutoffs["credential_usage"] = None if usage_cutoff is None else usage_cutoff.isoformat()
    emit(EventType.RETENTION_PRUNED, None, {"pruned": pruned, "cutoffs": cutoffs}, actor=actor)
    return pruned
