"""The IOC store: add and merge indicators, bulk import, check values, search, link to incidents.

Lives here: how a stored IOC is merged with a new report of it, the queries of the IOCs
a principal may see, how a value is checked (exact match plus every stored network
containing an address, in one indexed query), expiry, sightings. The rule of who sees
what (TLP red: admins and the creator only), and which record a report goes to, is
:mod:`security.modules.ioc_visibility`.
Does not live here: what a valid indicator is and its canonical form
(:mod:`security.modules.ioc_values`), finding indicators in text
(:mod:`security.modules.extraction`), HTTP.

Functions add to the caller's transaction and leave the commit to it, so a resource can
write an IOC, its incident link, its domain event (:mod:`security.events`, also its audit
entry) and its idempotency record atomically. ``principal=None`` means the system itself:
it sees every IOC and is audited as such. A bulk import is one event with its counts, not
one per IOC: an import of 100,000 IOCs writes one audit entry, not 100,000.

A report of a value already stored is merged into it by one SQL statement, single or
bulk (:mod:`security.modules.ioc_upsert` holds it and says how; a merge that changes
nothing bumps neither ``version`` nor ``updated_at``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Select,
    and_,
    bindparam,
    cast,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import INET, insert
from sqlalchemy.orm import aliased, joinedload

from models import IncidentIoc, Ioc, User, db, utcnow
from models.incidents import Incident
from models.iocs import (
    ADDRESS_TYPES,
    CREATOR_NAME,
    EDITABLE_FIELDS,
    HAS_DESCRIPTION_SQL,
    PREFIX_SEARCHED_SQL,
    SUBSTRING_SEARCHED_SQL,
)
from models.vocabulary import TLP_LEVELS
from security.errors import Invalid
from security.events import EventType, actor_of, emit
from security.modules import ioc_upsert, ioc_visibility
from security.modules.extraction import extract_iocs
from security.modules.ioc_values import (
    IOC_TYPES,
    InvalidIoc,
    detect_ioc_type,
    normalize_ioc,
    refang,
)
from security.modules.lookup import first_or_404
from security.modules.principals import Principal

MAX_BULK_ITEMS = 10_000
# An address inside many nested stored networks reports the most confident ones.
MAX_MATCHES = 100
DEFAULT_CONFIDENCE = 50
DEFAULT_TLP = "amber"
DEFAULT_SOURCE = "manual"
MAX_TAGS = 50
MAX_TAG_LENGTH = 64
# Fields a caller may give for a new IOC besides its type and value.
OPTIONAL_FIELDS = frozenset(EDITABLE_FIELDS)


def visible_indicators(principal: Principal | None) -> Select:
    """IOCs the principal may see: TLP red only for admins and its creator (and the system);
    :mod:`security.modules.ioc_visibility` holds the rule."""
    return _indicators_visible_to(ioc_visibility.viewer_of(principal))


def _indicators_visible_to(viewer: ioc_visibility.Viewer) -> Select:
    condition = ioc_visibility.visibility_condition(viewer)
    statement = select(Ioc).options(CREATOR_NAME)
    return statement if condition is None else statement.where(condition)


def get_visible_ioc(principal: Principal | None, ioc_id: int, *, lock: bool = False) -> Ioc:
    """The IOC, or 404 whether it is missing or hidden (IDs cannot be probed)."""
    statement = visible_indicators(principal).where(Ioc.id == ioc_id)
    return first_or_404(statement, f"IOC {ioc_id} does not exist.", lock=lock)


# --- adding and merging -------------------------------------------------------------------


def _clean_tags(tags: Iterable[str]) -> list[str]:
    listed = None if isinstance(tags, str) else list(tags)
    if listed is None or not all(isinstance(tag, str) for tag in listed):
        raise InvalidIoc("tags must be a list of strings")
    cleaned = sorted({tag.strip().lower() for tag in listed if tag.strip()})
    if len(cleaned) > MAX_TAGS:
        raise InvalidIoc(f"at most {MAX_TAGS} tags")
    if any(len(tag) > MAX_TAG_LENGTH for tag in cleaned):
        raise InvalidIoc(f"tags are at most {MAX_TAG_LENGTH} characters")
    return cleaned


def _check_fields(confidence: Any, tlp: Any, first_seen: datetime, last_seen: datetime) -> None:
    if isinstance(confidence, bool) or not isinstance(confidence, int):
        raise InvalidIoc("confidence must be an integer from 0 to 100")
    if not 0 <= confidence <= 100:
        raise InvalidIoc("confidence must be an integer from 0 to 100")
    if tlp not in TLP_LEVELS:
        raise InvalidIoc(f"tlp must be one of {', '.join(TLP_LEVELS)}")
    if first_seen > last_seen:
        raise InvalidIoc("first_seen must not be after last_seen")


def prepare_indicator(item: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The per-item columns of a row (``ioc_upsert.ITEM_COLUMNS``) from one reported IOC
    (type optional: detected), and whether it clears the expiry (``ioc_upsert.CLEARS_EXPIRY``).

    Raises :class:`InvalidIoc` naming what is wrong; nothing is written.
    """
    unknown = set(item) - OPTIONAL_FIELDS - {"type", "value"}
    if unknown:
        raise InvalidIoc(f"unknown fields: {', '.join(sorted(unknown))}")
    # Unchecked input (a library caller's): the normaliser refuses what is not a string.
    value: Any = item.get("value")
    ioc_type = item.get("type") or detect_ioc_type(value)
    normalized = normalize_ioc(ioc_type, value)
    first_seen = item.get("first_seen") or now
    last_seen = item.get("last_seen") or max(now, first_seen)
    confidence = item.get("confidence", DEFAULT_CONFIDENCE)
    tlp = item.get("tlp", DEFAULT_TLP)
    _check_fields(confidence, tlp, first_seen, last_seen)
    return {
        "type": ioc_type,
        "value": normalized,
        "address": normalized if ioc_type in ADDRESS_TYPES else None,
        "confidence": confidence,
        "source": (item.get("source") or DEFAULT_SOURCE).strip()[:255],
        "description": item.get("description") or "",
        "tags": _clean_tags(item.get("tags") or ()),
        "tlp": tlp,
        "first_seen": first_seen,
        "last_seen": last_seen,
        "expires_at": item.get("expires_at"),
        # Left out, the stored expiry stays; given as null, it is cleared.
        ioc_upsert.CLEARS_EXPIRY: "expires_at" in item and item["expires_at"] is None,
    }


def call_values(principal: Principal | None, now: datetime) -> dict[str, Any]:
    """The columns every row written by one call shares (see ``ioc_upsert.CALL_COLUMNS``)."""
    return {
        "sighting_count": 0,
        "created_by_id": principal.user_id if principal else None,
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }


def upsert_ioc(item: Mapping[str, Any], principal: Principal | None = None) -> tuple[Ioc, bool]:
    """Add one IOC or merge it into the stored one; returns it and whether it is new.

    A value whose stored record the principal may not see (TLP red) is merged into the
    principal's own record of it instead, created if need be: the answer is what it would
    be had the hidden record not existed (:mod:`security.modules.ioc_visibility`).
    """
    now = utcnow()
    row = prepare_indicator(item, now)
    viewer = ioc_visibility.viewer_of(principal)
    ioc_id, created = ioc_upsert.upsert_row(row, call_values(principal, now), viewer)
    indicator = db.session.get_one(Ioc, ioc_id, populate_existing=True)
    emit(
        EventType.IOC_CREATED if created else EventType.IOC_MERGED,
        ioc_id,
        {"type": indicator.type, "source": row["source"], "tlp": indicator.tlp},
        actor=actor_of(principal),
    )
    return indicator, created


def add_ioc(
    ioc_type: str | None,
    value: str,
    source: str = DEFAULT_SOURCE,
    confidence: int = DEFAULT_CONFIDENCE,
    *,
    principal: Principal | None = None,
    **fields: Any,
) -> Ioc:
    """Store an IOC (``ioc_type=None`` detects it), merging with an existing report of it.

    ``fields`` are the other IOC fields: ``tags``, ``tlp``, ``description``,
    ``first_seen``, ``last_seen``, ``expires_at``. Raises :class:`InvalidIoc`.
    """
    item = {"type": ioc_type, "value": value, "source": source, "confidence": confidence}
    indicator, _ = upsert_ioc({**item, **fields}, principal)
    return indicator


@dataclass
class BulkResult:
    """Per-item outcome of a bulk import, by position in the input."""

    results: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for result in self.results if result["status"] == status)


class RejectedItem(ValueError):
    """A bulk item its loader refused, with the reasons by field (as a schema gives them)."""

    def __init__(self, errors: Mapping[str, Any]) -> None:
        super().__init__("invalid item")
        self.errors = dict(errors)


# Items prepared between two hand-overs to the writer thread. The first chunk is small,
# so PostgreSQL starts early (the writer idles until then); later ones are large enough
# that round trips stay few. Measured with 10,000-item requests: 1,000 per chunk was
# slower than 2,500.
FIRST_CHUNK = 500
PIPELINE_CHUNK = 2_500


def _chunk_bounds(count: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of each chunk of ``count`` items."""
    starts = [0, *range(FIRST_CHUNK, count, PIPELINE_CHUNK)] if count > FIRST_CHUNK else [0]
    return list(zip(starts, [*starts[1:], count], strict=True))


def _prepare_chunk(
    items: Sequence[Any],
    bounds: tuple[int, int],
    load_item: Callable[[Any], Mapping[str, Any]],
    defaults: Mapping[str, Any],
    now: datetime,
    result: BulkResult,
) -> list[tuple[int, dict]]:
    prepared = []
    for index in range(*bounds):
        try:
            item = load_item(items[index])
            prepared.append((index, prepare_indicator({**defaults, **item}, now)))
        except RejectedItem as error:
            result.errors.append({"index": index, "errors": error.errors})
        except (InvalidIoc, TypeError) as error:
            result.errors.append({"index": index, "errors": {"value": [str(error)]}})
    return prepared


def bulk_add_iocs(
    items: Sequence[Any],
    principal: Principal | None = None,
    *,
    defaults: Mapping[str, Any] | None = None,
    load_item: Callable[[Any], Mapping[str, Any]] = dict,
) -> BulkResult:
    """Add or merge up to :data:`MAX_BULK_ITEMS` IOCs in the caller's transaction.

    Invalid items are reported by index and skipped; the rest are written. ``load_item``
    validates one raw item first (a resource passes its schema; it raises
    :class:`RejectedItem`), inside the pipeline: items are loaded and prepared chunk by
    chunk while the previous chunk is being written (:class:`ioc_upsert.BulkWriter`).
    ``defaults`` fill fields an item leaves out (e.g. one ``source`` for a whole feed). A
    value given twice is merged, and both indexes report the id of the first one's
    record. Every id is of a record the principal may see (see :func:`upsert_ioc`).
    """
    if len(items) > MAX_BULK_ITEMS:
        raise InvalidIoc(f"at most {MAX_BULK_ITEMS} IOCs per call, got {len(items)}")
    now = utcnow()
    result = BulkResult()
    prepared: list[tuple[int, dict]] = []
    viewer = ioc_visibility.viewer_of(principal)
    with ioc_upsert.BulkWriter(call_values(principal, now), viewer) as writer:
        for bounds in _chunk_bounds(len(items)):
            chunk = _prepare_chunk(items, bounds, load_item, defaults or {}, now, result)
            writer.submit([row for _, row in chunk])
            prepared.extend(chunk)
        outcome = writer.finish()
    first_index: dict[tuple[str, str], int] = {}
    for index, row in prepared:
        key = (row["type"], row["value"])
        ioc_id, created = outcome[key]
        is_first = first_index.setdefault(key, index) == index
        status = "created" if created and is_first else "merged"
        result.results.append({"index": index, "id": ioc_id, "status": status})
    emit(
        EventType.IOCS_BULK_IMPORTED,
        None,
        {
            "created": result.count("created"),
            "merged": result.count("merged"),
            "failed": len(result.errors),
        },
        actor=actor_of(principal),
    )
    return result


# --- editing ------------------------------------------------------------------------------


def update_ioc(indicator: Ioc, principal: Principal | None, data: Mapping[str, Any]) -> dict:
    """Apply an edit of the analyst-set fields; returns ``{field: [old, new]}`` of changes."""
    values = {name: data.get(name, getattr(indicator, name)) for name in EDITABLE_FIELDS}
    try:
        values["tags"] = _clean_tags(values["tags"])
        _check_fields(
            values["confidence"], values["tlp"], values["first_seen"], values["last_seen"]
        )
    except InvalidIoc as error:
        # An edit is checked as a whole: the fault may lie in how two fields combine.
        raise InvalidIoc(error.detail, field="_schema") from None
    changes: dict[str, list[Any]] = {}
    for name, new_value in values.items():
        old_value = getattr(indicator, name)
        if old_value != new_value:
            setattr(indicator, name, new_value)
            changes[name] = [old_value, new_value]
    if changes:
        indicator.touch()
        emit(
            EventType.IOC_EDITED,
            indicator.id,
            {"fields": sorted(changes)},
            actor=actor_of(principal),
        )
    return changes


def delete_ioc(indicator: Ioc, principal: Principal | None) -> None:
    emit(
        EventType.IOC_DELETED,
        indicator.id,
        {"type": indicator.type, "value": indicator.value[:200]},
        actor=actor_of(principal),
    )
    db.session.delete(indicator)


# --- checking values ----------------------------------------------------------------------


def _matching_condition(ioc_type: Any, value: Any, *, address: bool) -> Any:
    """Exact (type, value); for an ``address`` or network, also every stored network that
    contains it: two index scans (the unique index, the networks' GiST) in one query.
    Type and value are values or bound parameters."""
    exact = and_(Ioc.type == ioc_type, Ioc.value == value)
    if not address:
        return exact
    enclosing = and_(Ioc.type == "cidr", Ioc.address.op(">>=")(cast(value, INET)))
    return or_(exact, enclosing)


def _matching_indicators(
    principal: Principal | None, ioc_type: str, value: str, record_sighting: bool, now: datetime
) -> list[Ioc]:
    """The visible IOCs matching a value, most confident first; with ``record_sighting``,
    found and counted in one statement (an ``UPDATE ... RETURNING`` in a ``WITH``), so a
    check costs one round trip.

    Each match comes with its creator's username alone (what the answer shows), joined in
    the same statement: the relationship's own loading read the creator's whole row
    (password hash, MFA secret) for every match, and after an ``UPDATE ... RETURNING`` in
    a round trip of its own.

    Sightings are telemetry: that transaction commits without waiting for the WAL flush
    (``synchronous_commit`` off for it alone, set inside the same statement), so a check
    costs no disk sync. A crash may forget the last few counts; it cannot corrupt them.
    """
    viewer = ioc_visibility.viewer_of(principal)
    address = ioc_type in ADDRESS_TYPES
    # Not named after columns: an UPDATE would take those as values to set.
    parameters: dict[str, Any] = {"checked_type": ioc_type, "checked_value": value}
    if not record_sighting:
        statement = _matching(viewer, address)
    else:
        statement = _counting(viewer, address)
        parameters["sighted_at"] = now
    return list(db.session.scalars(statement, parameters).unique())


# The statements below are built once per viewer and kind of value, with the value as a
# bound parameter: building the counting statement anew (its WITH proxies every column of
# the table) cost more than the query it sends.
@functools.lru_cache(maxsize=1024)
def _matching(viewer: ioc_visibility.Viewer, address: bool) -> Select:
    """The viewer's matches of the ``checked_type`` and ``checked_value`` parameters, most
    confident first."""
    condition = _matching_condition(
        bindparam("checked_type"), bindparam("checked_value"), address=address
    )
    return (
        _indicators_visible_to(viewer)
        .where(condition)
        .order_by(Ioc.confidence.desc(), Ioc.id)
        .limit(MAX_MATCHES)
    )


@functools.lru_cache(maxsize=1024)
def _counting(viewer: ioc_visibility.Viewer, address: bool) -> Select:
    """:func:`_matching`, each match's sighting counted at the ``sighted_at`` parameter."""
    counted = (
        update(Ioc)
        .where(Ioc.id.in_(_matching(viewer, address).with_only_columns(Ioc.id)))
        .where(func.set_config("synchronous_commit", "off", True).is_not(None))
        .values(sighting_count=Ioc.sighting_count + 1, last_sighted_at=bindparam("sighted_at"))
        .returning(*Ioc.__table__.c)
        .cte("counted")
    )
    counted_ioc = aliased(Ioc, counted)
    return (
        select(counted_ioc)
        .options(joinedload(counted_ioc.created_by).load_only(User.username))
        .order_by(counted_ioc.confidence.desc(), counted_ioc.id)
        .execution_options(populate_existing=True)
    )


def _describe_match(indicator: Ioc, ioc_type: str, value: str, now: datetime) -> dict:
    exact = indicator.type == ioc_type and indicator.value == value
    return {
        "match": "exact" if exact else "cidr",
        "active": indicator.is_active(now),
        "confidence": indicator.confidence,
        "tlp": indicator.tlp,
        "ioc": indicator,
    }


def check_ioc(
    ioc_type: str | None,
    value: str,
    *,
    principal: Principal | None = None,
    record_sighting: bool = True,
) -> dict:
    """Is ``value`` known bad? Matches the principal may see, each saying why.

    ``ioc_type=None`` detects the type. An expired IOC is reported (``active: false``) but
    does not make the value known bad. Each match carries the matched ``Ioc`` row
    (``ioc``); ``schemas.iocs.IocCheckSchema`` is the result's JSON shape. Raises
    :class:`InvalidIoc` for a value that is not an indicator.
    """
    ioc_type = ioc_type or detect_ioc_type(value)
    normalized = normalize_ioc(ioc_type, value)
    now = utcnow()
    indicators = _matching_indicators(principal, ioc_type, normalized, record_sighting, now)
    matches = [_describe_match(indicator, ioc_type, normalized, now) for indicator in indicators]
    active = [match["confidence"] for match in matches if match["active"]]
    return {
        "value": normalized,
        "type": ioc_type,
        "known_bad": bool(active),
        "max_confidence": max(active, default=None),
        "matches": matches,
    }


def check_threat_intelligence(
    value: str, *, principal: Principal | None = None, record_sighting: bool = True
) -> dict:
    """One call for "is this value bad, and why": type detected, exact and CIDR matches,
    confidence and TLP of each (only what the principal may see), sighting recorded."""
    return check_ioc(None, value, principal=principal, record_sighting=record_sighting)


def check_values(
    values: Sequence[str], *, principal: Principal | None = None, record_sighting: bool = True
) -> list[dict]:
    """:func:`check_threat_intelligence` for each value, each with an ``error`` (None, or
    why the value is not an indicator, in which case nothing matched)."""
    results = []
    for value in values:
        try:
            check = check_threat_intelligence(
                value, principal=principal, record_sighting=record_sighting
            )
            results.append({**check, "error": None})
        except InvalidIoc as error:
            results.append(
                {
                    "value": value,
                    "type": None,
                    "known_bad": False,
                    "max_confidence": None,
                    "matches": [],
                    "error": str(error),
                }
            )
    return results


# --- searching ----------------------------------------------------------------------------


# What may begin a stored address or digest (canonical forms are lower-case): digits,
# hex letters and the separators of IPv4, IPv6 and CIDR values. Fewer than three
# characters would select a large share of them.
_VALUE_PREFIX = re.compile(r"[0-9a-f.:/]{3,128}")


def _containing(term: str) -> str:
    """An (I)LIKE pattern for ``term`` anywhere, its own wildcards taken literally."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _query_condition(query: str) -> Any:
    """Free text, each part on its own index (models.iocs says why they are split): a
    substring of a domain, URL, e-mail address or CVE id, of a description or of a source;
    the beginning of an address or digest; and, when the query is itself an indicator,
    what :func:`check_ioc` would match. Values are stored refanged, so they are matched
    against the refanged query (``185[.]220[.]``); descriptions and sources as typed."""
    value_query = refang(query).strip()
    conditions = [
        and_(text(SUBSTRING_SEARCHED_SQL), Ioc.value.ilike(_containing(value_query))),
        and_(text(HAS_DESCRIPTION_SQL), Ioc.description.ilike(_containing(query))),
        Ioc.source.ilike(_containing(query)),
    ]
    prefix = value_query.lower()
    if _VALUE_PREFIX.fullmatch(prefix):
        conditions.append(and_(text(PREFIX_SEARCHED_SQL), Ioc.value.like(f"{prefix}%")))
    try:
        ioc_type = detect_ioc_type(query)
        value = normalize_ioc(ioc_type, query)
        address = ioc_type in ADDRESS_TYPES
        conditions.append(_matching_condition(ioc_type, value, address=address))
    except InvalidIoc:
        pass
    return or_(*conditions)


def search_statement(principal: Principal | None, filters: Mapping[str, Any]) -> Select:
    """Visible IOCs narrowed by ``type``, ``source``, ``tag``, ``tlp``, ``min_confidence``,
    ``active`` and ``q`` (see :func:`_query_condition`); unordered, for paging."""
    statement = visible_indicators(principal)
    for name in ("type", "source", "tlp"):
        if filters.get(name) is not None:
            statement = statement.where(getattr(Ioc, name) == filters[name])
    if filters.get("tag"):
        statement = statement.where(Ioc.tags.contains([filters["tag"].strip().lower()]))
    if filters.get("min_confidence") is not None:
        statement = statement.where(Ioc.confidence >= filters["min_confidence"])
    if filters.get("active") is not None:
        now = utcnow()
        live = or_(Ioc.expires_at.is_(None), Ioc.expires_at > now)
        statement = statement.where(live if filters["active"] else ~live)
    if filters.get("q"):
        statement = statement.where(_query_condition(filters["q"]))
    return statement


def search_intelligence(
    query: str | None = None,
    *,
    principal: Principal | None = None,
    limit: int = 50,
    **filters: Any,
) -> list[Ioc]:
    """IOCs matching ``query`` and the filters of :func:`search_statement`, newest first."""
    unknown = set(filters) - {"type", "source", "tag", "tlp", "min_confidence", "active"}
    if unknown:
        raise TypeError(f"unknown filters: {', '.join(sorted(unknown))}")
    if filters.get("type") is not None and filters["type"] not in IOC_TYPES:
        raise InvalidIoc(f"{filters['type']!r} is not an IOC type")
    statement = search_statement(principal, {**filters, "q": query})
    statement = statement.order_by(Ioc.created_at.desc(), Ioc.id.desc()).limit(limit)
    return list(db.session.scalars(statement).unique())


# --- extraction and incidents -------------------------------------------------------------


def extract_and_check(
    text_body: str,
    *,
    principal: Principal | None = None,
    save: bool = False,
    defaults: Mapping[str, Any] | None = None,
    incident: Incident | None = None,
) -> dict:
    """IOCs in a text: what was found, which are already known (with the stored records
    the principal may see), and, with ``save``, the ``Ioc`` rows stored (and linked
    to ``incident``). Reading a report is not a sighting, so no sighting is recorded."""
    found = extract_iocs(text_body)
    pairs = [(ioc_type, value) for ioc_type, values in found.items() for value in values]
    known = []
    for ioc_type, value in pairs:
        check = check_ioc(ioc_type, value, principal=principal, record_sighting=False)
        if check["matches"]:
            known.append(check)
    body: dict[str, Any] = {"found": found, "known": known, "stored": []}
    if save and pairs:
        items = [{"type": ioc_type, "value": value} for ioc_type, value in pairs]
        result = bulk_add_iocs(items, principal, defaults=defaults)
        ids = sorted({entry["id"] for entry in result.results})
        if incident is not None:
            link_iocs(incident, ids, principal)
        stored = db.session.scalars(
            select(Ioc).where(Ioc.id.in_(ids)).options(CREATOR_NAME)
        ).unique()
        body["stored"] = list(stored)
    return body


def link_iocs(incident: Incident, ioc_ids: Sequence[int], principal: Principal | None) -> list[int]:
    """Link visible IOCs to the incident (already linked ones are fine); 404 naming any id
    the principal cannot see. Returns the ids newly linked."""
    wanted = sorted(set(ioc_ids))
    visible = set(
        db.session.scalars(
            visible_indicators(principal).with_only_columns(Ioc.id).where(Ioc.id.in_(wanted))
        )
    )
    missing = [ioc_id for ioc_id in wanted if ioc_id not in visible]
    if missing:
        # 422, not 404: the incident (the target) exists; the body names unknown objects.
        raise Invalid(f"IOCs {missing} do not exist.", extra={"missing_ioc_ids": missing})
    rows = [
        {
            "incident_id": incident.id,
            "ioc_id": ioc_id,
            "linked_by_id": principal.user_id if principal else None,
            "linked_at": utcnow(),
        }
        for ioc_id in wanted
    ]
    linked = list(
        db.session.scalars(
            insert(IncidentIoc).values(rows).on_conflict_do_nothing().returning(IncidentIoc.ioc_id)
        )
    )
    if linked:
        emit(
            EventType.INCIDENT_IOCS_LINKED,
            incident.id,
            {"ioc_ids": sorted(linked)},
            actor=actor_of(principal),
        )
    return sorted(linked)


def incident_indicators(incident: Incident, principal: Principal | None) -> list[Ioc]:
    """The incident's IOCs that the principal may see, most recently linked first."""
    statement = (
        visible_indicators(principal)
        .join(IncidentIoc, IncidentIoc.ioc_id == Ioc.id)
        .where(IncidentIoc.incident_id == incident.id)
        .order_by(IncidentIoc.linked_at.desc(), Ioc.id.desc())
    )
    return list(db.session.scalars(statement).unique())
