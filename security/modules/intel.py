"""The IOC store: add and merge indicators, bulk import, check values, search, link to incidents.

Lives here: how a stored IOC is merged with a new report of it, which IOCs a principal may
see (TLP red: admins and the creator only), how a value is checked (exact match plus every
stored network containing an address, in one indexed query), expiry, sightings.
Does not live here: what a valid indicator is and its canonical form
(:mod:`security.modules.indicators`), finding indicators in text
(:mod:`security.modules.extraction`), HTTP.

Functions add to the caller's transaction and leave the commit to it, so a resource can
write an IOC, its incident link, its audit entry and its idempotency record atomically.
``principal=None`` means the system itself: it sees every IOC and is audited as such.

Merging (a report of a value already stored, single or bulk, one SQL statement either
way): the highest confidence wins, tags are united, the stricter TLP wins, the seen
window widens (earliest ``first_seen``, latest ``last_seen``), the latest expiry wins and
"never expires" beats any date, the first non-empty description and the first source
stay. The version is bumped.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Select,
    and_,
    case,
    cast,
    column,
    func,
    literal_column,
    or_,
    select,
    table,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import INET, insert

from auth import Principal
from errors import ApiError
from models import IncidentIndicator, Indicator, db, utcnow
from models.incidents import TLP_LEVELS, Incident
from models.intel import ADDRESS_TYPES
from security.modules import audit
from security.modules.extraction import extract_iocs
from security.modules.indicators import IOC_TYPES, InvalidIndicator, detect_ioc_type, normalize_ioc

MAX_BULK_ITEMS = 10_000
# An address inside many nested stored networks reports the most confident ones.
MAX_MATCHES = 100
DEFAULT_CONFIDENCE = 50
DEFAULT_TLP = "amber"
DEFAULT_SOURCE = "manual"
MAX_TAGS = 50
MAX_TAG_LENGTH = 64
EDITABLE_FIELDS = (
    "confidence",
    "source",
    "description",
    "tags",
    "tlp",
    "first_seen",
    "last_seen",
    "expires_at",
)
# Fields a caller may give for a new IOC besides its type and value.
OPTIONAL_FIELDS = frozenset(EDITABLE_FIELDS)


def _visibility(principal: Principal | None) -> Any:
    """The condition on IOCs the principal may see; None when it sees them all."""
    if principal is None or principal.is_admin:
        return None
    return or_(Indicator.tlp != "red", Indicator.created_by_id == principal.user.id)


def visible_indicators(principal: Principal | None) -> Select:
    """IOCs the principal may see: TLP red only for admins and its creator (and the system)."""
    condition = _visibility(principal)
    statement = select(Indicator)
    return statement if condition is None else statement.where(condition)


def get_visible_ioc(principal: Principal | None, ioc_id: int, *, lock: bool = False) -> Indicator:
    """The IOC, or 404 whether it is missing or hidden (IDs cannot be probed)."""
    statement = visible_indicators(principal).where(Indicator.id == ioc_id)
    if lock:
        statement = statement.with_for_update(of=Indicator)
    indicator = db.session.scalars(statement).first()
    if indicator is None:
        raise ApiError(404, f"IOC {ioc_id} does not exist.")
    return indicator


# --- adding and merging -------------------------------------------------------------------


def _clean_tags(tags: Iterable[str]) -> list[str]:
    listed = None if isinstance(tags, str) else list(tags)
    if listed is None or not all(isinstance(tag, str) for tag in listed):
        raise InvalidIndicator("tags must be a list of strings")
    cleaned = sorted({tag.strip().lower() for tag in listed if tag.strip()})
    if len(cleaned) > MAX_TAGS:
        raise InvalidIndicator(f"at most {MAX_TAGS} tags")
    if any(len(tag) > MAX_TAG_LENGTH for tag in cleaned):
        raise InvalidIndicator(f"tags are at most {MAX_TAG_LENGTH} characters")
    return cleaned


def _check_fields(confidence: Any, tlp: Any, first_seen: datetime, last_seen: datetime) -> None:
    if isinstance(confidence, bool) or not isinstance(confidence, int):
        raise InvalidIndicator("confidence must be an integer from 0 to 100")
    if not 0 <= confidence <= 100:
        raise InvalidIndicator("confidence must be an integer from 0 to 100")
    if tlp not in TLP_LEVELS:
        raise InvalidIndicator(f"tlp must be one of {', '.join(TLP_LEVELS)}")
    if first_seen > last_seen:
        raise InvalidIndicator("first_seen must not be after last_seen")


def prepare_indicator(
    item: Mapping[str, Any], principal: Principal | None, now: datetime
) -> dict[str, Any]:
    """A row for :func:`upsert_indicators` from one reported IOC (type optional: detected).

    Raises :class:`InvalidIndicator` naming what is wrong; nothing is written.
    """
    unknown = set(item) - OPTIONAL_FIELDS - {"type", "value"}
    if unknown:
        raise InvalidIndicator(f"unknown fields: {', '.join(sorted(unknown))}")
    value = item.get("value")
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
        "sighting_count": 0,
        "created_by_id": principal.user.id if principal else None,
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }


# Rank of each TLP level in SQL, for "the stricter one wins" (a constant, not user input).
_TLP_RANK_SQL = "ARRAY[{}]".format(", ".join(f"'{level}'" for level in TLP_LEVELS))
# Columns of a prepared row, in the order they are staged for COPY.
ROW_COLUMNS = (
    "type",
    "value",
    "address",
    *EDITABLE_FIELDS,
    "sighting_count",
    "created_by_id",
    "created_at",
    "updated_at",
    "version",
)
# Below this many rows a multi-row VALUES statement is cheaper than staging through COPY.
COPY_THRESHOLD = 500
_CREATE_STAGING_SQL = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS ioc_import ON COMMIT DROP AS SELECT "  # noqa: S608  # nosec B608 # constant column names
    + ", ".join(ROW_COLUMNS)
    + " FROM iocs WITH NO DATA"
)
_STAGING_TABLE = table("ioc_import", *(column(name) for name in ROW_COLUMNS))


def _tlp_rank(tlp: Any) -> Any:
    return func.array_position(literal_column(_TLP_RANK_SQL), tlp)


def _merge_on_conflict(statement: Any) -> Any:
    """Add ON CONFLICT (type, value) DO UPDATE with the merge rules of the docstring."""
    new = statement.excluded
    stored = Indicator.__table__.c
    merged = {
        "confidence": func.greatest(stored.confidence, new.confidence),
        "tags": literal_column(
            "ARRAY(SELECT DISTINCT tag FROM unnest(iocs.tags || excluded.tags) AS tag ORDER BY 1)"
        ),
        "tlp": case((_tlp_rank(new.tlp) > _tlp_rank(stored.tlp), new.tlp), else_=stored.tlp),
        "first_seen": func.least(stored.first_seen, new.first_seen),
        "last_seen": func.greatest(stored.last_seen, new.last_seen),
        "expires_at": case(
            (or_(stored.expires_at.is_(None), new.expires_at.is_(None)), None),
            else_=func.greatest(stored.expires_at, new.expires_at),
        ),
        "description": case((stored.description == "", new.description), else_=stored.description),
        "updated_at": new.updated_at,
        "version": stored.version + 1,
    }
    return statement.on_conflict_do_update(constraint="uq_iocs_type_value", set_=merged).returning(
        stored.id, stored.type, stored.value, literal_column("(xmax = 0)").label("created")
    )


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_field(value: Any) -> str:
    """One field in COPY's text format: NULL is ``\\N``; backslash, tab and newlines escaped."""
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    if value is None:
        return "\\N"
    if isinstance(value, list):
        quoted = (item.replace("\\", "\\\\").replace('"', '\\"') for item in value)
        return ("{" + ",".join(f'"{item}"' for item in quoted) + "}").translate(_COPY_ESCAPES)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _stage_rows(rows: Sequence[dict]) -> None:
    """COPY rows into a transaction-local staging table: far cheaper for the server to
    take in than a VALUES list, which is what lets a bulk import pass 20,000 IOCs/s."""
    db.session.execute(text(_CREATE_STAGING_SQL))
    db.session.execute(text("TRUNCATE ioc_import"))
    # Most non-text fields repeat across a batch (times, tags, TLP): format each once.
    formatted: dict[tuple[type, Any], str] = {}

    def field(value: Any) -> str:
        if isinstance(value, str):
            return _copy_field(value)
        key = (type(value), tuple(value) if isinstance(value, list) else value)
        if key not in formatted:
            formatted[key] = _copy_field(value)
        return formatted[key]

    lines = "".join("\t".join(field(row[name]) for name in ROW_COLUMNS) + "\n" for row in rows)
    cursor = db.session.connection().connection.cursor()
    try:
        cursor.copy_expert(
            f"COPY ioc_import ({', '.join(ROW_COLUMNS)}) FROM STDIN", io.StringIO(lines)
        )
    finally:
        cursor.close()


def _merge_batch(rows: Sequence[dict]) -> Any:
    """Insert-or-merge rows whose (type, value) are all distinct; yields the RETURNING rows."""
    if len(rows) < COPY_THRESHOLD:
        return db.session.execute(_merge_on_conflict(insert(Indicator)), list(rows))
    _stage_rows(rows)
    staged = select(*(_STAGING_TABLE.c[name] for name in ROW_COLUMNS))
    statement = insert(Indicator).from_select(list(ROW_COLUMNS), staged, include_defaults=False)
    return db.session.execute(_merge_on_conflict(statement))


def _duplicate_rounds(rows: Sequence[dict]) -> list[list[dict]]:
    """Split rows so no round holds the same (type, value) twice.

    PostgreSQL refuses to update one row twice in a statement; later reports of a value go
    to later rounds, where the same merge rule folds them in, in input order.
    """
    rounds: list[list[dict]] = []
    seen_count: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row["type"], row["value"])
        position = seen_count.get(key, 0)
        seen_count[key] = position + 1
        if position == len(rounds):
            rounds.append([])
        rounds[position].append(row)
    return rounds


def upsert_indicators(rows: Sequence[dict]) -> dict[tuple[str, str], tuple[int, bool]]:
    """Insert or merge prepared rows; ``{(type, value): (id, created)}`` for each.

    ``created`` is False when the value was stored before this call.
    """
    outcome: dict[tuple[str, str], tuple[int, bool]] = {}
    for batch in _duplicate_rounds(rows):
        for ioc_id, ioc_type, value, created in _merge_batch(batch):
            # A later round merges into a row an earlier round may have created.
            outcome.setdefault((ioc_type, value), (ioc_id, created))
    return outcome


def _audit(action: str, principal: Principal | None, **fields: Any) -> None:
    if principal is None:
        audit.record(action, actor="system", **fields)
    else:
        audit.record(action, actor_id=principal.user.id, actor=principal.user.username, **fields)


def _refuse_hidden_duplicate(row: Mapping[str, Any], principal: Principal | None) -> None:
    condition = _visibility(principal)
    if condition is None:
        return
    hidden = select(Indicator.id).where(
        Indicator.type == row["type"], Indicator.value == row["value"], ~condition
    )
    if db.session.scalar(hidden) is not None:
        raise ApiError(409, "This value is already stored as an IOC you cannot see.")


def upsert_ioc(
    item: Mapping[str, Any], principal: Principal | None = None
) -> tuple[Indicator, bool]:
    """Add one IOC or merge it into the stored one; returns it and whether it is new.

    A value stored as a TLP red IOC the principal may not see is a 409, and nothing is
    merged: answering with the merged IOC would disclose it.
    """
    now = utcnow()
    row = prepare_indicator(item, principal, now)
    _refuse_hidden_duplicate(row, principal)
    ioc_id, created = upsert_indicators([row])[(row["type"], row["value"])]
    indicator = db.session.get(Indicator, ioc_id, populate_existing=True)
    _audit(
        "ioc.create" if created else "ioc.merge",
        principal,
        object_type="ioc",
        object_id=ioc_id,
        details={"type": indicator.type, "source": row["source"], "tlp": indicator.tlp},
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
) -> Indicator:
    """Store an IOC (``ioc_type=None`` detects it), merging with an existing report of it.

    ``fields`` are the other IOC fields: ``tags``, ``tlp``, ``description``,
    ``first_seen``, ``last_seen``, ``expires_at``. Raises :class:`InvalidIndicator`.
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

    def to_dict(self) -> dict:
        return {
            "created": self.count("created"),
            "merged": self.count("merged"),
            "failed": len(self.errors),
            "results": self.results,
            "errors": self.errors,
        }


def bulk_add_iocs(
    items: Sequence[Mapping[str, Any]],
    principal: Principal | None = None,
    *,
    defaults: Mapping[str, Any] | None = None,
) -> BulkResult:
    """Add or merge up to :data:`MAX_BULK_ITEMS` IOCs in the caller's transaction.

    Invalid items are reported by index and skipped; the rest are written. ``defaults``
    fill fields an item leaves out (e.g. one ``source`` for a whole feed). A value given
    twice is merged, and both indexes report the same id.
    """
    if len(items) > MAX_BULK_ITEMS:
        raise InvalidIndicator(f"at most {MAX_BULK_ITEMS} IOCs per call, got {len(items)}")
    now = utcnow()
    result = BulkResult()
    prepared: list[tuple[int, dict]] = []
    for index, item in enumerate(items):
        try:
            prepared.append(
                (index, prepare_indicator({**(defaults or {}), **item}, principal, now))
            )
        except (InvalidIndicator, TypeError) as error:
            result.errors.append({"index": index, "errors": {"value": [str(error)]}})
    outcome = upsert_indicators([row for _, row in prepared])
    first_index: dict[tuple[str, str], int] = {}
    for index, row in prepared:
        key = (row["type"], row["value"])
        ioc_id, created = outcome[key]
        is_first = first_index.setdefault(key, index) == index
        status = "created" if created and is_first else "merged"
        result.results.append({"index": index, "id": ioc_id, "status": status})
    _audit(
        "ioc.bulk_import",
        principal,
        object_type="ioc",
        details={
            "created": result.count("created"),
            "merged": result.count("merged"),
            "failed": len(result.errors),
        },
    )
    return result


# --- editing ------------------------------------------------------------------------------


def update_ioc(indicator: Indicator, principal: Principal | None, data: Mapping[str, Any]) -> dict:
    """Apply an edit of the analyst-set fields; returns ``{field: [old, new]}`` of changes."""
    values = {name: data.get(name, getattr(indicator, name)) for name in EDITABLE_FIELDS}
    values["tags"] = _clean_tags(values["tags"])
    _check_fields(values["confidence"], values["tlp"], values["first_seen"], values["last_seen"])
    changes: dict[str, list[Any]] = {}
    for name, new_value in values.items():
        old_value = getattr(indicator, name)
        if old_value != new_value:
            setattr(indicator, name, new_value)
            changes[name] = [old_value, new_value]
    if changes:
        indicator.touch()
        _audit(
            "ioc.update",
            principal,
            object_type="ioc",
            object_id=indicator.id,
            details={"fields": sorted(changes)},
        )
    return changes


def delete_ioc(indicator: Indicator, principal: Principal | None) -> None:
    _audit(
        "ioc.delete",
        principal,
        object_type="ioc",
        object_id=indicator.id,
        details={"type": indicator.type, "value": indicator.value[:200]},
    )
    db.session.delete(indicator)


# --- checking values ----------------------------------------------------------------------


def _matching_condition(ioc_type: str, value: str) -> Any:
    """Exact (type, value); for an address or network, also every stored network that
    contains it: two index scans (the unique index, the networks' GiST) in one query."""
    exact = and_(Indicator.type == ioc_type, Indicator.value == value)
    if ioc_type not in ADDRESS_TYPES:
        return exact
    enclosing = and_(Indicator.type == "cidr", Indicator.address.op(">>=")(cast(value, INET)))
    return or_(exact, enclosing)


def _matching_indicators(
    principal: Principal | None, ioc_type: str, value: str, record_sighting: bool, now: datetime
) -> list[Indicator]:
    """The visible IOCs matching a value, most confident first; with ``record_sighting``,
    found and counted in one statement (an UPDATE ... RETURNING), so a check costs one
    round trip.

    Sightings are telemetry: that transaction commits without waiting for the WAL flush
    (``synchronous_commit`` off for it alone, set inside the same statement), so a check
    costs no disk sync. A crash may forget the last few counts; it cannot corrupt them.
    """
    matching = (
        visible_indicators(principal)
        .where(_matching_condition(ioc_type, value))
        .order_by(Indicator.confidence.desc(), Indicator.id)
        .limit(MAX_MATCHES)
    )
    if not record_sighting:
        return list(db.session.scalars(matching).unique())
    counted = db.session.scalars(
        update(Indicator)
        .where(Indicator.id.in_(matching.with_only_columns(Indicator.id)))
        .where(func.set_config("synchronous_commit", "off", True).is_not(None))
        .values(sighting_count=Indicator.sighting_count + 1, last_sighted_at=now)
        .returning(Indicator)
        .execution_options(synchronize_session=False, populate_existing=True)
    ).all()
    return sorted(counted, key=lambda indicator: (-indicator.confidence, indicator.id))


def _describe_match(indicator: Indicator, ioc_type: str, value: str, now: datetime) -> dict:
    exact = indicator.type == ioc_type and indicator.value == value
    return {
        "match": "exact" if exact else "cidr",
        "active": indicator.is_active(now),
        "confidence": indicator.confidence,
        "tlp": indicator.tlp,
        "ioc": indicator.to_dict(),
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
    does not make the value known bad. Raises :class:`InvalidIndicator` for a value that is
    not an indicator.
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
        except InvalidIndicator as error:
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


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _query_condition(query: str) -> Any:
    """Free text: a substring of value, source or description; and, when the query is
    itself an indicator (defanged or not), what :func:`check_ioc` would match."""
    pattern = f"%{_escape_like(query)}%"
    conditions = [
        Indicator.value.ilike(pattern),
        Indicator.source.ilike(pattern),
        Indicator.description.ilike(pattern),
    ]
    try:
        ioc_type = detect_ioc_type(query)
        conditions.append(_matching_condition(ioc_type, normalize_ioc(ioc_type, query)))
    except InvalidIndicator:
        pass
    return or_(*conditions)


def search_statement(principal: Principal | None, filters: Mapping[str, Any]) -> Select:
    """Visible IOCs narrowed by ``type``, ``source``, ``tag``, ``tlp``, ``min_confidence``,
    ``active`` and ``q`` (see :func:`_query_condition`); unordered, for paging."""
    statement = visible_indicators(principal)
    for name in ("type", "source", "tlp"):
        if filters.get(name) is not None:
            statement = statement.where(getattr(Indicator, name) == filters[name])
    if filters.get("tag"):
        statement = statement.where(Indicator.tags.contains([filters["tag"].strip().lower()]))
    if filters.get("min_confidence") is not None:
        statement = statement.where(Indicator.confidence >= filters["min_confidence"])
    if filters.get("active") is not None:
        now = utcnow()
        live = or_(Indicator.expires_at.is_(None), Indicator.expires_at > now)
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
) -> list[Indicator]:
    """IOCs matching ``query`` and the filters of :func:`search_statement`, newest first."""
    unknown = set(filters) - {"type", "source", "tag", "tlp", "min_confidence", "active"}
    if unknown:
        raise TypeError(f"unknown filters: {', '.join(sorted(unknown))}")
    if filters.get("type") is not None and filters["type"] not in IOC_TYPES:
        raise InvalidIndicator(f"{filters['type']!r} is not an IOC type")
    statement = search_statement(principal, {**filters, "q": query})
    statement = statement.order_by(Indicator.created_at.desc(), Indicator.id.desc()).limit(limit)
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
    the principal may see), and, with ``save``, what was stored (and linked to
    ``incident``). Reading a report is not a sighting, so no sighting is recorded."""
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
        stored = db.session.scalars(select(Indicator).where(Indicator.id.in_(ids))).unique()
        body["stored"] = [indicator.to_dict() for indicator in stored]
    return body


def link_iocs(incident: Incident, ioc_ids: Sequence[int], principal: Principal | None) -> list[int]:
    """Link visible IOCs to the incident (already linked ones are fine); 404 naming any id
    the principal cannot see. Returns the ids newly linked."""
    wanted = sorted(set(ioc_ids))
    visible = set(
        db.session.scalars(
            visible_indicators(principal)
            .with_only_columns(Indicator.id)
            .where(Indicator.id.in_(wanted))
        )
    )
    missing = [ioc_id for ioc_id in wanted if ioc_id not in visible]
    if missing:
        raise ApiError(404, f"IOCs {missing} do not exist.", extra={"missing_ioc_ids": missing})
    rows = [
        {
            "incident_id": incident.id,
            "ioc_id": ioc_id,
            "linked_by_id": principal.user.id if principal else None,
            "linked_at": utcnow(),
        }
        for ioc_id in wanted
    ]
    linked = list(
        db.session.scalars(
            insert(IncidentIndicator)
            .values(rows)
            .on_conflict_do_nothing()
            .returning(IncidentIndicator.ioc_id)
        )
    )
    if linked:
        _audit(
            "incident.ioc_link",
            principal,
            object_type="incident",
            object_id=incident.id,
            details={"ioc_ids": sorted(linked)},
        )
    return sorted(linked)


def incident_indicators(incident: Incident, principal: Principal | None) -> list[Indicator]:
    """The incident's IOCs that the principal may see, most recently linked first."""
    statement = (
        visible_indicators(principal)
        .join(IncidentIndicator, IncidentIndicator.ioc_id == Indicator.id)
        .where(IncidentIndicator.incident_id == incident.id)
        .order_by(IncidentIndicator.linked_at.desc(), Indicator.id.desc())
    )
    return list(db.session.scalars(statement).unique())
