"""Alerts: rule matches on ingested events grouped into alerts, incidents opened for the
severe ones, and the analyst's workflow on an alert (acknowledge, dismiss, escalate).

Lives here: :func:`ingest_events` (evaluate every enabled rule, group, write), the group
key, :func:`dry_run` for testing one rule, escalation, and what of an event is stored.
Not here: rules and their evaluation (:mod:`security.modules.detection`), the alert status
workflow itself (:class:`models.Alert`), incidents (:mod:`security.modules.incidents`), HTTP.

Grouping. Repeated matches of one rule on one *group key* fold into one alert with a
count while the alert is open, acknowledged or escalated and the group has been active
within ``ALERT_GROUP_WINDOW_SECONDS`` (measured from the alert's ``last_seen``). The key
is the rule's ``group_by`` fields' values when the rule names some; otherwise the event's
host, user and source IP, each taken from the first of the usual field names (Windows,
Sysmon, ECS and common log spellings, :data:`DEFAULT_GROUP_FIELDS`) that the event has.
Missing dimensions are left out, so a rule matching events without any of them groups
everything into one alert per window. A dismissed alert stops grouping: the next match
opens a new alert.

Concurrency. A batch's groups are written with one ``INSERT ... ON CONFLICT DO UPDATE
SET count = count + n`` whose arbiter is the partial unique index on ``(rule_id,
group_key) WHERE grouping``, so two requests ingesting the same group at once fold into
one row. Each transaction first takes transaction-scoped advisory locks on its groups,
in one global order, so the window roll-over (an ``UPDATE`` retiring stale alerts) and
the upsert of concurrent batches cannot deadlock. An alert at or above
``ALERT_AUTO_INCIDENT_SEVERITY`` gets its incident in the same transaction, so a
concurrent batch sees ``incident_id`` set and opens no second one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import (
    Boolean,
    ColumnElement,
    Select,
    exists,
    literal_column,
    or_,
    select,
    text,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert

from models import Alert, DetectionRule, Incident, db, utcnow
from models.detection import SEVERITY_RANK
from security.errors import Conflict
from security.events import EventType, emit, emit_all
from security.modules import attack, audit, incident_merge, incidents
from security.modules.detection import (
    Detector,
    EventBatch,
    RuleMatch,
    detector_for,
    enabled_rules,
    evaluate,
)
from security.modules.lookup import first_or_404
from security.modules.principals import Principal
from security.modules.sigma import FlatEvent
from security.modules.sigma.events import as_text, normalize_field_name

MAX_EVENTS = 5_000
"""Events one ingestion may carry (the resource enforces it)."""
MAX_REPORTED = 1_000
MAX_SAMPLE_CHARACTERS = 16 * 1024
MAX_STORED_STRING = 1024
MAX_STORED_ITEMS = 100
MAX_STORED_DEPTH = 12
MAX_GROUP_VALUE_LENGTH = 256
DEFAULT_GROUP_FIELDS: dict[str, tuple[str, ...]] = {
    "host": ("computer", "hostname", "host.name", "host", "computername", "devicename"),
    "user": ("user", "user.name", "username", "targetusername", "subjectusername", "accountname"),
    "source_ip": (
        "sourceip",
        "source.ip",
        "src_ip",
        "srcip",
        "src",
        "ipaddress",
        "clientip",
        "c-ip",
    ),
}
"""Group dimension -> normalised field names tried in order (see the module docstring)."""


def group_fields(group_by: Sequence[str] | None) -> dict[str, tuple[str, ...]]:
    """Group dimension -> the field index names its value is taken from, in order."""
    if group_by:
        return {name: (normalize_field_name(name),) for name in group_by}
    return DEFAULT_GROUP_FIELDS


def group_index_names(rules: Sequence[DetectionRule]) -> set[str]:
    """Field index names that :func:`group_values` reads for any of ``rules``."""
    return {
        name for rule in rules for names in group_fields(rule.group_by).values() for name in names
    }


def group_values(flat: FlatEvent, group_by: Sequence[str] | None) -> dict[str, str]:
    """The event's values of the rule's group fields (or of the default dimensions)."""
    wanted = group_fields(group_by)
    found = {}
    for dimension, names in wanted.items():
        value = _first_value(flat, names)
        if value is not None:
            found[dimension] = storable(as_text(value))[:MAX_GROUP_VALUE_LENGTH]
    return found


def _first_value(flat: FlatEvent, names: Sequence[str]) -> Any:
    """The first non-null value of the first of ``names`` the event has, or None."""
    for name in names:
        for value in flat.raw.get(name, ()):
            if value is not None:
                return value
    return None


def group_key(values: Mapping[str, str]) -> str:
    """A fixed-length key for a group's values (the values themselves are kept beside it)."""
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


# --- what of an event is stored -----------------------------------------------------------


def storable(value: Any, depth: int = 0) -> Any:
    """A bounded copy of a JSON value that PostgreSQL's ``jsonb`` accepts: strings cut to
    :data:`MAX_STORED_STRING`, without NUL characters or unpaired surrogates; containers
    cut to :data:`MAX_STORED_ITEMS` items and :data:`MAX_STORED_DEPTH` levels."""
    if isinstance(value, str):
        cut = value[:MAX_STORED_STRING].replace("\x00", "\ufffd")
        return cut.encode("utf-8", "replace").decode("utf-8")
    if depth >= MAX_STORED_DEPTH and isinstance(value, dict | list):
        return "..."
    if isinstance(value, dict):
        items = list(value.items())[:MAX_STORED_ITEMS]
        return {storable(str(key)): storable(item, depth + 1) for key, item in items}
    if isinstance(value, list):
        return [storable(item, depth + 1) for item in value[:MAX_STORED_ITEMS]]
    return value


def sample_of(event: Any) -> Any:
    """The event as stored on its alert: :func:`storable`, and if still over
    :data:`MAX_SAMPLE_CHARACTERS` as JSON, a truncated preview saying so."""
    stored = storable(event)
    encoded = json.dumps(stored, ensure_ascii=False)
    if len(encoded) <= MAX_SAMPLE_CHARACTERS:
        return stored
    return {"truncated": True, "preview": encoded[:MAX_SAMPLE_CHARACTERS]}


# --- ingestion ----------------------------------------------------------------------------


@dataclass
class _Group:
    """Matches of one rule on one group key within a batch."""

    rule: DetectionRule
    detector: Detector
    key: str
    values: dict[str, str]
    first_event: int
    count: int = 1


def _group_matches(
    rules: Sequence[tuple[DetectionRule, Detector]],
    batch: EventBatch,
    matches: Sequence[RuleMatch],
) -> tuple[dict[tuple[int, str], _Group], list[tuple[int, str]]]:
    """Groups of the batch, and each match's group (same order as ``matches``)."""
    groups: dict[tuple[int, str], _Group] = {}
    keys_by_event: dict[tuple[int, tuple[str, ...] | None], tuple[str, dict[str, str]]] = {}
    # a batch's events share a few hosts and users: hash each set of values once
    keys_by_values: dict[tuple[tuple[str, str], ...], str] = {}
    match_groups = []
    for match in matches:
        rule, detector = rules[match.rule_index]
        spec = tuple(rule.group_by) if rule.group_by else None
        cached = keys_by_event.get((match.event_index, spec))
        if cached is None:
            values = group_values(batch.flat[match.event_index], rule.group_by)
            items = tuple(values.items())
            key = keys_by_values.get(items)
            if key is None:
                key = keys_by_values[items] = group_key(values)
            cached = keys_by_event[(match.event_index, spec)] = (key, values)
        identity = (rule.id, cached[0])
        group = groups.get(identity)
        if group is None:
            groups[identity] = _Group(rule, detector, cached[0], cached[1], match.event_index)
        else:
            group.count += 1
        match_groups.append(identity)
    return groups, match_groups


def _lock_groups(identities: Sequence[tuple[int, str]]) -> None:
    """Transaction-scoped advisory locks on the groups, taken in one global order."""
    lock_ids = sorted(
        {
            int.from_bytes(
                hashlib.sha256(f"alert-group:{rule_id}:{key}".encode()).digest()[:8],
                "big",
                signed=True,
            )
            for rule_id, key in identities
        }
    )
    db.session.execute(
        text("SELECT count(pg_advisory_xact_lock(k)) FROM unnest(CAST(:ids AS bigint[])) AS k"),
        {"ids": lock_ids},
    )


def _upsert_alerts(groups: Sequence[_Group], batch: EventBatch, now: datetime) -> list[Any]:
    """Write the groups as alerts (new, or counted into the grouping one); RETURNING rows."""
    identities = [(group.rule.id, group.key) for group in groups]
    _lock_groups(identities)
    window = timedelta(seconds=current_app.config["ALERT_GROUP_WINDOW_SECONDS"])
    db.session.execute(
        update(Alert)
        .where(
            Alert.grouping.is_(True),
            Alert.last_seen < now - window,
            tuple_(Alert.rule_id, Alert.group_key).in_(identities),
        )
        .values(grouping=False)
        .execution_options(synchronize_session=False)
    )
    rows = [
        {
            "rule_id": group.rule.id,
            "rule_name": group.rule.name,
            "title": group.rule.name,
            "tags": incidents.canonical_tags(group.rule.tags or []),
            "techniques": attack.techniques_in_tags(group.rule.tags or []),
            "severity": group.rule.severity,
            "status": "open",
            "grouping": True,
            "group_key": group.key,
            "group_values": group.values,
            "count": group.count,
            "first_seen": now,
            "last_seen": now,
            "sample_event": sample_of(batch.events[group.first_event]),
            "matched": storable(group.detector.matched_values(batch, group.first_event)),
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        for group in groups
    ]
    upsert = insert(Alert)
    statement = upsert.on_conflict_do_update(
        index_elements=[Alert.rule_id, Alert.group_key],
        index_where=text("grouping"),
        set_={
            "count": Alert.count + upsert.excluded.count,
            "last_seen": upsert.excluded.last_seen,
        },
    ).returning(
        Alert.id,
        Alert.rule_id,
        Alert.group_key,
        Alert.count,
        Alert.severity,
        Alert.status,
        Alert.incident_id,
        literal_column("(xmax = 0)", Boolean).label("created"),
    )
    return list(db.session.execute(statement, rows))


def _meets_auto_incident_threshold(severity: str) -> bool:
    threshold = current_app.config["ALERT_AUTO_INCIDENT_SEVERITY"]
    return threshold in SEVERITY_RANK and SEVERITY_RANK[severity] >= SEVERITY_RANK[threshold]


def ingest_events(events: Sequence[Any], principal: Principal) -> dict[str, Any]:
    """Evaluate every enabled rule on the events and record the matches as alerts.

    Alerts at or above the auto-incident severity that have no incident get one (reported
    by ``principal``). Writes in the caller's transaction; returns the response body:
    counts, the first :data:`MAX_REPORTED` matches and alerts, the incidents opened.
    """
    now = utcnow()
    rules = enabled_rules()
    batch, matches = evaluate(
        [detector for _, detector in rules],
        events,
        now,
        group_index_names([rule for rule, _ in rules]),
    )
    groups, match_groups = _group_matches(rules, batch, matches)
    ordered = [groups[identity] for identity in sorted(groups)]
    written = _upsert_alerts(ordered, batch, now) if ordered else []
    alert_ids = {(row.rule_id, row.group_key): row.id for row in written}
    _emit_written(written, groups)
    incidents = {
        row.id: _escalate(
            db.session.get_one(Alert, row.id, populate_existing=True), principal, {}, True
        )
        for row in written
        if row.incident_id is None and _meets_auto_incident_threshold(row.severity)
    }
    incident_ids = [incident.id for incident in incidents.values()]
    created = sum(1 for row in written if row.created)
    audit.record(
        "events.ingest",
        object_type="alert",
        details={
            "events": len(events),
            "matches": len(matches),
            "alerts_created": created,
            "alerts_updated": len(written) - created,
            "incidents_created": incident_ids[:MAX_REPORTED],
        },
    )
    reported = [
        _describe_match(rules, batch, match, alert_ids[identity])
        for match, identity in zip(matches[:MAX_REPORTED], match_groups, strict=False)
    ]
    return {
        "events": len(events),
        "rules_evaluated": len(rules),
        "match_count": len(matches),
        "matches": reported,
        "matches_truncated": len(matches) > MAX_REPORTED,
        "alert_count": len(written),
        "alerts": [
            _describe_alert(row, groups[(row.rule_id, row.group_key)], incidents.get(row.id))
            for row in written[:MAX_REPORTED]
        ],
        "incidents_created": incident_ids,
    }


def _emit_written(written: Sequence[Any], groups: Mapping[tuple[int, str], _Group]) -> None:
    """One event per alert the batch wrote: ``alert.create`` for the new ones,
    ``alert.group`` for those it counted into; two INSERTs at most, whatever the size."""
    changes: dict[bool, list[tuple[int, dict[str, Any]]]] = {True: [], False: []}
    for row in written:
        data = {
            "rule_id": row.rule_id,
            "severity": row.severity,
            "new_matches": groups[(row.rule_id, row.group_key)].count,
            "count": row.count,
        }
        changes[bool(row.created)].append((row.id, data))
    emit_all(EventType.ALERT_CREATED, changes[True])
    emit_all(EventType.ALERT_GROUPED, changes[False])


def _describe_match(
    rules: Sequence[tuple[DetectionRule, Detector]],
    batch: EventBatch,
    match: RuleMatch,
    alert_id: int | None,
) -> dict[str, Any]:
    rule, detector = rules[match.rule_index]
    return {
        "event_index": match.event_index,
        "rule_id": rule.id,
        "rule_name": rule.name,
        "severity": rule.severity,
        "alert_id": alert_id,
        "matched": storable(detector.matched_values(batch, match.event_index)),
    }


def _describe_alert(row: Any, group: _Group, new_incident: Incident | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "rule_id": row.rule_id,
        "severity": row.severity,
        "created": bool(row.created),
        "new_matches": group.count,
        "count": row.count,
        "group_values": group.values,
        "incident_id": new_incident.id if new_incident else row.incident_id,
    }


def dry_run(rule: DetectionRule, events: Sequence[Any]) -> dict[str, Any]:
    """Evaluate one rule (enabled or not) on sample events; nothing is written."""
    detector = detector_for(rule)
    batch, matches = evaluate([detector], events, extra_fields=group_index_names([rule]))
    return {
        "events": len(events),
        "match_count": len(matches),
        "matches": [
            {
                "event_index": match.event_index,
                "matched": storable(detector.matched_values(batch, match.event_index)),
                "group_values": group_values(batch.flat[match.event_index], rule.group_by),
            }
            for match in matches[:MAX_REPORTED]
        ],
        "matches_truncated": len(matches) > MAX_REPORTED,
    }


# --- the analyst's workflow ---------------------------------------------------------------


def visibility(principal: Principal, alert: Any = Alert) -> ColumnElement[bool]:
    """The condition on ``alerts`` rows the principal may see: TLP red alerts only for
    admins and whoever reported them, and an alert merged into an incident only where the
    incident is visible (:func:`security.modules.incidents.visibility`)."""
    if principal.is_admin:
        return true()
    own_incident = exists().where(
        Incident.id == alert.incident_id, incidents.visibility(principal, Incident)
    )
    return or_(alert.tlp != "red", alert.reported_by_id == principal.user_id) & or_(
        alert.incident_id.is_(None), own_incident
    )


def alerts_statement(principal: Principal, filters: Mapping[str, Any]) -> Select:
    """Visible alerts narrowed by ``status``, ``severity``, ``rule_id``, ``incident_id``,
    ``source``, ``tlp``, ``tag``, ``technique`` and creation time; unordered."""
    statement = select(Alert).where(visibility(principal))
    for name in ("status", "severity", "rule_id", "incident_id", "source", "tlp"):
        if filters.get(name) is not None:
            statement = statement.where(getattr(Alert, name) == filters[name])
    if filters.get("tag"):
        statement = statement.where(Alert.tags.contains(incidents.canonical_tags([filters["tag"]])))
    if filters.get("technique"):
        statement = statement.where(Alert.techniques.contains([filters["technique"]]))
    if filters.get("created_after") is not None:
        statement = statement.where(Alert.created_at >= filters["created_after"])
    if filters.get("created_before") is not None:
        statement = statement.where(Alert.created_at < filters["created_before"])
    return statement


def get_alert(principal: Principal, alert_id: int, *, lock: bool = False) -> Alert:
    """The alert, or 404 whether it is missing or hidden (:func:`visibility`)."""
    statement = select(Alert).where(Alert.id == alert_id, visibility(principal))
    return first_or_404(statement, f"Alert {alert_id} does not exist.", lock=lock)


def change_alert_status(
    alert: Alert, principal: Principal, status: str, comment: str | None = None
) -> None:
    """Acknowledge or dismiss (409 listing the allowed steps otherwise); audited."""
    previous = alert.transition_to(status)
    details = {"from": previous, "to": status}
    if comment:
        details["comment"] = comment[:1000]
    emit(EventType.ALERT_STATUS_CHANGED, alert.id, details)


def escalate_alert(alert: Alert, principal: Principal, overrides: Mapping[str, Any]) -> Incident:
    """Open an incident for the alert and link it; 409 if it has one or was dismissed.

    ``overrides`` may set the incident's ``title``, ``description``, ``severity``, ``tlp``
    and ``assignee``; by default they come from the alert.
    """
    if alert.incident_id is not None:
        raise Conflict(
            f"Alert {alert.id} is already escalated to incident {alert.incident_id}.",
            extra={"incident_id": alert.incident_id},
        )
    return _escalate(alert, principal, overrides, automatic=False)


def _escalate(
    alert: Alert, principal: Principal, overrides: Mapping[str, Any], automatic: bool
) -> Incident:
    if alert.status not in ("open", "acknowledged"):
        alert.transition_to("escalated")  # refuses with the workflow's 409
    incident = incidents.create_incident(principal, {**_incident_fields(alert), **overrides})
    # What it carried is on the alert (merge_carried), as for any merge.
    incident_merge.carry_alert(incident, alert, principal)
    emit(EventType.ALERT_ESCALATED, alert.id, {"incident_id": incident.id, "automatic": automatic})
    return incident


def _incident_fields(alert: Alert) -> dict[str, Any]:
    group = ", ".join(f"{name}={value}" for name, value in sorted(alert.group_values.items()))
    if alert.rule_name is None:
        return {
            "title": f"Alert: {alert.title}"[:200],
            "severity": alert.severity,
            "tlp": alert.tlp,
            "description": (
                f"Raised from alert {alert.id}: {alert.source} alert {alert.source_ref!r}, "
                f"seen {alert.count} time(s) between {alert.first_seen.isoformat()} and "
                f"{alert.last_seen.isoformat()}.\n\n{alert.description}"
            ).strip(),
        }
    return {
        "title": f"Alert: {alert.rule_name}"[:200],
        "severity": alert.severity,
        "description": (
            f"Raised from alert {alert.id}: rule {alert.rule_name!r} (id {alert.rule_id}) "
            f"matched {alert.count} event(s) between {alert.first_seen.isoformat()} and "
            f"{alert.last_seen.isoformat()}" + (f" on {group}." if group else ".")
        ),
    }
