"""Alerts from other tools: what a SIEM, EDR or SOAR posts to ``/alerts``, already formed.

Lives here: :func:`receive_alerts` (one alert or a batch), the observables' canonical
form and their check against the IOC store, and how a resend of an alert the tool already
sent (same ``source`` and ``source_ref``) counts into it. Not here: the alert's workflow
(:class:`models.Alert`), the rules' alerts (:mod:`security.modules.alerts`), the IOC
matching rules themselves (:mod:`security.modules.intel`: exact and CIDR-aware; the
same matching is done here for a whole batch in two statements), HTTP.

One model. A tool's alert is a row of ``alerts`` like a rule's: same list, same
workflow, same escalation and merge. It keeps the tool's raw original in
``sample_event`` (where a rule's alert keeps the matching event), bounded the same way.
It opens no incident by itself: the tool has already judged it, the analyst decides.

Resends and concurrency. A batch is folded first (the same alert twice in one batch is
one row counted twice), then written with one ``INSERT ... ON CONFLICT (source,
source_ref) DO UPDATE`` in key order; the unique index ``uq_alerts_source_ref`` is the
arbiter, so two requests carrying the same alert at once end as one row with both
counted. A resend adds its new observables, tags and techniques and moves ``last_seen``.

Observables. IOC-typed values take the IOC store's canonical form (an invalid one is a
422 naming it); ``filename``, ``hostname``, ``user``, ``process`` and ``registry`` values
are kept as sent (a host name lower-cased). Each is checked against the store at intake
(an address also against every stored network holding it, and a host name as a domain),
and the matching IOCs' ids are kept with it, ``known_bad`` when one is active. Only
IOCs every reader may see are named (not TLP red ones), since every reader sees alerts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Table,
    Text,
    and_,
    bindparam,
    cast,
    column,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, INET, insert

from models import Alert, AlertObservable, Ioc, db, utcnow
from models.iocs import ADDRESS_TYPES
from security.errors import Invalid
from security.events import EventType, actor_of, emit_all
from security.modules import attack, incidents, ioc_visibility
from security.modules.alerts import sample_of
from security.modules.ioc_values import IOC_TYPES, InvalidIoc, normalize_ioc
from security.modules.principals import Principal

MAX_BULK_ALERTS = 1_000
MAX_OBSERVABLES = 200
MAX_RAW_BYTES = 64 * 1024
"""The raw original's size cap, as compact JSON; a larger one is refused (422)."""
MAX_OBSERVABLE_LENGTH = 2048
# The tables, not the mapped classes: a Core INSERT of many rows is sent in pages of many
# rows each (insertmanyvalues), where the ORM's bulk path sent ON CONFLICT ... RETURNING
# nearly row by row. Measured on a batch of 1,000 alerts with 3 observables each: 25 s
# that way (with one IOC check per observable), some 2 s now.
ALERTS: Table = Alert.__table__  # type: ignore[assignment]
ALERT_OBSERVABLES: Table = AlertObservable.__table__  # type: ignore[assignment]


@dataclass
class _Folded:
    """One alert of a batch, with its resends in the same batch folded in."""

    fields: dict[str, Any]
    count: int = 1
    observables: dict[tuple[str, str], None] = field(default_factory=dict)
    indexes: list[int] = field(default_factory=list)


def canonical_observable(observable_type: str, value: str) -> str:
    """The stored form of an observable; :class:`InvalidIoc` for a malformed IOC value."""
    if observable_type in IOC_TYPES:
        return normalize_ioc(observable_type, value)
    cleaned = value.strip()
    return cleaned.lower() if observable_type == "hostname" else cleaned


def _checked_as(observable_type: str, value: str) -> tuple[str, str] | None:
    """The (IOC type, value) an observable is checked as, or None if it is none."""
    if observable_type in IOC_TYPES:
        return observable_type, value
    if observable_type == "hostname":
        try:
            return "domain", normalize_ioc("domain", value)
        except InvalidIoc:
            return None
    return None


def _observed(pairs: Sequence[tuple[str, str]], name: str) -> Any:
    """``(type, value)`` pairs as a table of two columns: ``unnest`` of two array
    parameters, so the statement is compiled once whatever the batch's size."""
    types = bindparam(f"{name}_types", [pair[0] for pair in pairs], type_=ARRAY(Text))
    observed_values = bindparam(f"{name}_values", [pair[1] for pair in pairs], type_=ARRAY(Text))
    return (
        func.unnest(types, observed_values)
        .table_valued(column("type", Text), column("value", Text), name=name)
        .render_derived()
    )


def _ioc_knowledge(
    pairs: Iterable[tuple[str, str]],
) -> dict[tuple[str, str], tuple[bool, list[int]]]:
    """For each observable, whether an active stored IOC marks it bad and the matching
    IOCs' ids (those every reader may see: ``ioc_visibility.EVERY_READER``), exactly or,
    for an address, by a stored network holding it. Two statements for the whole batch
    (exact matches on the unique index, containment on the networks' GiST index), the
    same matching as :func:`security.modules.intel.check_ioc`. No sighting is recorded:
    the store records one in a transaction that commits without waiting for the WAL flush,
    which an alert a tool was told is stored must not."""
    checked: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for pair in pairs:
        checked_as = _checked_as(*pair)
        if checked_as is not None:
            checked.setdefault(checked_as, []).append(pair)
    found: dict[tuple[str, str], tuple[bool, list[int]]] = {}
    if not checked:
        return found
    active = or_(Ioc.expires_at.is_(None), Ioc.expires_at > utcnow()).label("active")
    wanted = _observed(list(checked), "observed")
    statements = [
        select(wanted.c.type, wanted.c.value, Ioc.id, active).join(
            Ioc, and_(Ioc.type == wanted.c.type, Ioc.value == wanted.c.value)
        )
    ]
    addresses = [pair for pair in checked if pair[0] in ADDRESS_TYPES]
    if addresses:
        held = _observed(addresses, "addressed")
        inside = Ioc.address.op(">>=")(cast(held.c.value, INET))
        statements.append(
            select(held.c.type, held.c.value, Ioc.id, active).join(
                Ioc, and_(Ioc.type == "cidr", inside)
            )
        )
    shown = ioc_visibility.visibility_condition(ioc_visibility.EVERY_READER)
    matches: dict[tuple[str, str], dict[int, bool]] = {}
    for statement in statements:
        if shown is not None:
            statement = statement.where(shown)
        for row in db.session.execute(statement):
            matches.setdefault((row[0], row[1]), {})[row[2]] = row[3]
    for checked_as, observed in checked.items():
        by_id = matches.get(checked_as, {})
        knowledge = (any(by_id.values()), sorted(by_id))
        for pair in observed:
            found[pair] = knowledge
    return found


def _prepare(index: int, item: Mapping[str, Any], errors: dict[str, list[str]]) -> dict[str, Any]:
    """The alert's columns from a loaded item; problems go to ``errors`` under its index."""
    observables = []
    for position, observable in enumerate(item.get("observables", [])):
        try:
            value = canonical_observable(observable["type"], observable["value"])
        except InvalidIoc as error:
            errors.setdefault(f"{index}.observables.{position}.value", []).append(str(error))
            continue
        observables.append((observable["type"], value))
    raw = item.get("raw")
    if raw is not None and len(json.dumps(raw, separators=(",", ":"))) > MAX_RAW_BYTES:
        errors.setdefault(f"{index}.raw", []).append(f"larger than {MAX_RAW_BYTES} bytes as JSON")
    return {
        "source": item["source"],
        "source_ref": item["source_ref"],
        "title": item["title"],
        "description": item.get("description", ""),
        "severity": item["severity"],
        "tlp": item.get("tlp", "amber"),
        "occurred_at": item.get("occurred_at"),
        "tags": incidents.canonical_tags(item.get("tags", [])),
        "techniques": attack.canonical_techniques(item.get("techniques", [])),
        "raw": raw,
        "observables": observables,
    }


def _fold(prepared: Sequence[dict[str, Any]]) -> list[_Folded]:
    """The batch's alerts in key order, each alert's repeats in the batch folded into it."""
    folded: dict[tuple[str, str], _Folded] = {}
    for index, item in enumerate(prepared):
        key = (item["source"], item["source_ref"])
        entry = folded.get(key)
        if entry is None:
            entry = folded[key] = _Folded(fields=item)
        else:
            entry.count += 1
            entry.fields = {
                **item,
                "tags": sorted({*entry.fields["tags"], *item["tags"]}),
                "techniques": sorted({*entry.fields["techniques"], *item["techniques"]}),
                "occurred_at": entry.fields["occurred_at"] or item["occurred_at"],
            }
        entry.observables.update(dict.fromkeys(item["observables"]))
        entry.indexes.append(index)
    return [folded[key] for key in sorted(folded)]


def _group_key(source: str, source_ref: str) -> str:
    return hashlib.sha256(f"tool:{source}\x00{source_ref}".encode()).hexdigest()


def _upsert(folded: Sequence[_Folded], principal: Principal, now: datetime) -> list[Any]:
    rows = []
    for entry in folded:
        item = entry.fields
        seen = item["occurred_at"] or now
        rows.append(
            {
                "rule_id": None,
                "rule_name": None,
                "source": item["source"],
                "source_ref": item["source_ref"],
                "title": item["title"],
                "description": item["description"],
                "severity": item["severity"],
                "tlp": item["tlp"],
                "occurred_at": item["occurred_at"],
                "tags": item["tags"],
                "techniques": item["techniques"],
                "status": "open",
                "grouping": False,
                "group_key": _group_key(item["source"], item["source_ref"]),
                "group_values": {},
                "count": entry.count,
                "first_seen": seen,
                "last_seen": seen,
                "sample_event": sample_of(item["raw"]) if item["raw"] is not None else {},
                "matched": {},
                "reported_by_id": principal.user_id,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
    statement = insert(ALERTS)
    excluded = statement.excluded
    union = "ARRAY(SELECT DISTINCT tag FROM unnest(alerts.{0} || excluded.{0}) AS tag ORDER BY tag)"
    upsert = statement.on_conflict_do_update(
        index_elements=[Alert.source, Alert.source_ref],
        set_={
            "count": Alert.count + excluded.count,
            "last_seen": func.greatest(Alert.last_seen, excluded.last_seen),
            "tags": literal_column(union.format("tags")),
            "techniques": literal_column(union.format("techniques")),
        },
    ).returning(
        Alert.id,
        Alert.source,
        Alert.source_ref,
        Alert.count,
        literal_column("(xmax = 0)", Boolean).label("created"),
    )
    return list(db.session.execute(upsert, rows))


def _write_observables(
    alert_ids: Mapping[tuple[str, str], int], folded: Sequence[_Folded], now: datetime
) -> dict[int, int]:
    """Store every alert's observables with what the IOC store knows of them (refreshed
    for ones already stored); returns alert id -> how many were new."""
    knowledge = _ioc_knowledge(pair for entry in folded for pair in entry.observables)
    rows = []
    for entry in folded:
        alert_id = alert_ids[(entry.fields["source"], entry.fields["source_ref"])]
        for observable_type, value in entry.observables:
            known_bad, ioc_ids = knowledge.get((observable_type, value), (False, []))
            rows.append(
                {
                    "alert_id": alert_id,
                    "type": observable_type,
                    "value": value,
                    "address": value if observable_type in ADDRESS_TYPES else None,
                    "known_bad": known_bad,
                    "ioc_ids": ioc_ids,
                    "created_at": now,
                }
            )
    new: dict[int, int] = dict.fromkeys(alert_ids.values(), 0)
    if not rows:
        return new
    statement = insert(ALERT_OBSERVABLES)
    upsert = statement.on_conflict_do_update(
        constraint="uq_alert_observables_alert_type_value",
        set_={"known_bad": statement.excluded.known_bad, "ioc_ids": statement.excluded.ioc_ids},
    ).returning(AlertObservable.alert_id, literal_column("(xmax = 0)", Boolean).label("created"))
    written = db.session.execute(upsert, rows)
    for row in written:
        new[row.alert_id] += int(row.created)
    return new


def receive_alerts(items: Sequence[Mapping[str, Any]], principal: Principal) -> list[dict]:
    """Record alerts a tool sent: new ones created, resends counted into the alert they
    repeat (see the module docstring). One ``alert.create`` or ``alert.group`` event per
    alert written. Returns, in the order sent, ``{"index", "id", "created", "count",
    "new_observables"}`` per item (an item repeated in the batch names the same alert).
    :class:`Invalid` (422, per-item ``errors``) for a malformed observable, a raw original
    over the cap or a technique the loaded catalogue lacks; nothing is written then."""
    errors: dict[str, list[str]] = {}
    prepared = [_prepare(index, item, errors) for index, item in enumerate(items)]
    for index, item in enumerate(prepared):
        for technique in attack.unknown_techniques(item["techniques"]):
            errors.setdefault(f"{index}.techniques", []).append(
                f"{technique} is not in the loaded ATT&CK catalogue"
            )
    if errors:
        raise Invalid("Some alerts cannot be accepted.", errors=errors)
    now = utcnow()
    folded = _fold(prepared)
    written = _upsert(folded, principal, now)
    alert_ids = {(row.source, row.source_ref): row.id for row in written}
    new_observables = _write_observables(alert_ids, folded, now)
    by_key = {(row.source, row.source_ref): row for row in written}
    changes: dict[bool, list[tuple[int, dict[str, Any]]]] = {True: [], False: []}
    for entry in folded:
        row = by_key[(entry.fields["source"], entry.fields["source_ref"])]
        data = {
            "source": row.source,
            "severity": entry.fields["severity"],
            "new_matches": entry.count,
            "count": row.count,
            "new_observables": new_observables[row.id],
        }
        changes[bool(row.created)].append((row.id, data))
    emit_all(EventType.ALERT_CREATED, changes[True], actor=actor_of(principal))
    emit_all(EventType.ALERT_GROUPED, changes[False], actor=actor_of(principal))
    results: list[dict] = [{} for _ in items]
    for entry in folded:
        row = by_key[(entry.fields["source"], entry.fields["source_ref"])]
        for position, index in enumerate(entry.indexes):
            results[index] = {
                "index": index,
                "id": row.id,
                # Of a batch's repeats, the first created the alert; the rest counted into it.
                "created": bool(row.created) and position == 0,
                "count": row.count,
                "new_observables": new_observables[row.id] if position == 0 else 0,
            }
    return results


def received_alert(alert_id: int) -> Alert:
    """The alert just written, loaded fresh (the upsert bypassed the session)."""
    return db.session.execute(
        select(Alert).where(Alert.id == alert_id).execution_options(populate_existing=True)
    ).scalar_one()
