"""The TAXII 2.1 server's backend: what each endpoint answers, independent of HTTP.

Like medallion's backends, the views (``resources/taxii.py``) only negotiate, authenticate
and call one method here. A collection (:class:`models.TaxiiCollection`) serves two kinds
of objects, merged into one order:

- **its object store** (:class:`models.TaxiiObject`, written by :mod:`.object_store`):
  every version of every STIX 2.1 object posted to it, served exactly as posted, and the
  OASIS TLP 2.0 marking definitions, added with the collection;
- **the IOC store's view**: the IOCs matching the collection's filter, as STIX (indicators,
  vulnerabilities for CVEs). An IOC has one version: ``modified`` is its last update, which
  is also its ``date_added`` (an edited IOC is re-added, so ``added_after`` pollers see
  edits). Posted indicators and vulnerabilities also become (or merge into) IOCs, which
  appear here with the IOC's own id.

- **Versions** are compared as instants, never as strings, and listed as each object
  writes them (``2022-10-01T00:00:00.000Z`` stays that string).
- **Paging.** Objects come in ascending ``(date_added, kind, id)`` order, paged by a keyset
  (the opaque ``next``), so equal timestamps are never skipped or repeated, and ``next``
  works whatever ``limit`` the following request gives.
- **TLP red** is never served: no collection may include it (database constraint too), and
  the object store neither serves nor keeps objects marked red.
- **Delete** removes versions from the object store (who may: whoever may read and write
  the collection, as TAXII 2.1 asks). The IOC view and the TLP markings are not the
  collection's to delete: an IOC is edited or deleted through the IOC API.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, Select, and_, delete, false, func, or_, select, true, tuple_
from sqlalchemy.orm import aliased

from models import Ioc, TaxiiCollection, TaxiiObject, TaxiiStatus, db, utcnow
from models.iocs import CREATOR_NAME
from security.errors import Forbidden, Invalid, NotFound, TooLarge
from security.events import EventType, actor_of, emit
from security.modules.ioc_values import InvalidIoc
from security.modules.principals import Principal
from security.modules.stix_mapping import (
    EXPORTABLE_IOC_TYPES,
    TLP_2_MARKINGS,
    parse_bundle,
    stix_timestamp,
    tlp_markings_defined_in,
)
from security.modules.taxii import object_store
from security.modules.taxii.media import STIX_MEDIA_TYPE, TAXII_MEDIA_TYPE, taxii_timestamp
from security.modules.taxii.stix_exchange import StixImport, stix_dict, store_imported

API_ROOT_NAME = "api"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
VERSION_KEYWORDS = frozenset({"first", "last", "all"})
STIX_SPEC_VERSION = "2.1"

# Sort kinds: stored objects before IOCs added at the same instant.
_STORED, _IOC = 0, 1
# The TLP markings every collection is given: referenced by the IOCs it serves.
_COLLECTION_MARKING_IDS = frozenset(marking.id for marking in TLP_2_MARKINGS.values())
# STIX object type -> condition on the IOC's type.
_STIX_TYPE_CONDITIONS: dict[str, Callable[[], Any]] = {
    "indicator": lambda: Ioc.type != "cve",
    "vulnerability": lambda: Ioc.type == "cve",
}


@dataclass(frozen=True, order=True)
class PageKey:
    """Where an object sits in a collection's order; ``next`` is the last key of a page."""

    date_added: datetime
    kind: int
    number: int

    def encode(self) -> str:
        plain = json.dumps([self.date_added.isoformat(), self.kind, self.number])
        return base64.urlsafe_b64encode(plain.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> PageKey:
        """422 for a well-formed token that is not a ``next`` this server made (the
        document can only say it is a base64url string)."""
        try:
            padded = token + "=" * (-len(token) % 4)
            moment, kind, number = json.loads(base64.urlsafe_b64decode(padded.encode()))
            key = cls(datetime.fromisoformat(moment), int(kind), int(number))
            if key.date_added.tzinfo is None or key.kind not in (_STORED, _IOC):
                raise ValueError("not a key")
            return key
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
            raise Invalid("next is not a value this server returned.") from None


@dataclass(frozen=True)
class ObjectQuery:
    """The filters and paging of a Get Objects / Manifest / Versions request."""

    limit: int = DEFAULT_PAGE_SIZE
    next: PageKey | None = None
    added_after: datetime | None = None
    ids: tuple[str, ...] | None = None
    types: tuple[str, ...] | None = None
    versions: tuple[str | datetime, ...] = ("last",)
    spec_versions: tuple[str, ...] | None = None

    @property
    def page_size(self) -> int:
        return min(self.limit, MAX_PAGE_SIZE)

    @property
    def exact_versions(self) -> tuple[datetime, ...] | None:
        """The versions asked for by time; None when a keyword asks for every object's
        (only) version."""
        if any(version in VERSION_KEYWORDS for version in self.versions):
            return None
        return tuple(version for version in self.versions if isinstance(version, datetime))


@dataclass(frozen=True)
class ServedObject:
    """One version of one object of a collection: its place in the order, its version as
    the object writes it, and how to get its STIX (built only for Get Objects)."""

    key: PageKey
    stix_id: str
    version: str
    build: Callable[[], dict]

    @property
    def date_added(self) -> datetime:
        return self.key.date_added

    def stix(self) -> dict:
        return self.build()

    def manifest_entry(self) -> dict:
        return {
            "id": self.stix_id,
            "date_added": taxii_timestamp(self.date_added),
            "version": self.version,
            "media_type": STIX_MEDIA_TYPE,
        }

    @classmethod
    def of_stored(cls, stored: TaxiiObject) -> ServedObject:
        return cls(
            PageKey(stored.date_added, _STORED, stored.id),
            stored.stix_id,
            stored.version or taxii_timestamp(stored.version_at),
            lambda: stored.body,
        )

    @classmethod
    def of_ioc(cls, indicator: Ioc) -> ServedObject:
        stix_type = "vulnerability" if indicator.type == "cve" else "indicator"
        return cls(
            PageKey(indicator.updated_at, _IOC, indicator.id),
            f"{stix_type}--{indicator.stix_id}",
            stix_timestamp(indicator.updated_at),
            lambda: stix_dict(indicator),
        )


@dataclass(frozen=True)
class Page:
    objects: list[ServedObject]
    more: bool

    @property
    def next(self) -> str | None:
        return self.objects[-1].key.encode() if self.more else None

    def headers(self) -> dict[str, str]:
        """``X-TAXII-Date-Added-First``/``-Last`` of the page (none when it is empty)."""
        if not self.objects:
            return {}
        return {
            "X-TAXII-Date-Added-First": taxii_timestamp(self.objects[0].date_added),
            "X-TAXII-Date-Added-Last": taxii_timestamp(self.objects[-1].date_added),
        }

    def paging_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"more": self.more}
        if self.more:
            fields["next"] = self.next
        return fields


def _stix_uuids(ids: Sequence[str], stix_type: str) -> list[uuid.UUID]:
    """The UUIDs of the ids of one STIX type; an id that is no STIX id names nothing."""
    found = []
    for stix_id in ids:
        prefix, _, suffix = stix_id.partition("--")
        try:
            parsed = uuid.UUID(suffix)
        except ValueError:
            continue
        if prefix == stix_type:
            found.append(parsed)
    return found


def _id_condition(ids: Sequence[str]) -> Any:
    conditions = [
        and_(Ioc.stix_id.in_(uuids), type_condition())
        for stix_type, type_condition in _STIX_TYPE_CONDITIONS.items()
        if (uuids := _stix_uuids(ids, stix_type))
    ]
    return or_(*conditions) if conditions else false()


def _collection_iocs(collection: TaxiiCollection) -> Select:
    """Every IOC the collection serves, before the request's own filters."""
    ioc_types = [
        t for t in (collection.ioc_types or EXPORTABLE_IOC_TYPES) if t in EXPORTABLE_IOC_TYPES
    ]
    statement = (
        select(Ioc)
        .options(CREATOR_NAME)
        .where(
            Ioc.tlp.in_(collection.served_tlp_levels),
            Ioc.confidence >= collection.min_confidence,
            Ioc.type.in_(ioc_types),
        )
    )
    if collection.sources:
        statement = statement.where(Ioc.source.in_(collection.sources))
    if collection.active_only:
        statement = statement.where(or_(Ioc.expires_at.is_(None), Ioc.expires_at > utcnow()))
    return statement


def _filtered_iocs(collection: TaxiiCollection, query: ObjectQuery) -> Select:
    statement = _collection_iocs(collection)
    if query.spec_versions is not None and STIX_SPEC_VERSION not in query.spec_versions:
        return statement.where(false())
    if query.added_after is not None:
        statement = statement.where(Ioc.updated_at > query.added_after)
    if query.ids is not None:
        statement = statement.where(_id_condition(query.ids))
    if query.types is not None:
        conditions = [_STIX_TYPE_CONDITIONS[t]() for t in query.types if t in _STIX_TYPE_CONDITIONS]
        statement = statement.where(or_(*conditions) if conditions else false())
    if query.exact_versions is not None:
        statement = statement.where(Ioc.updated_at.in_(query.exact_versions))
    if query.next is not None:
        after = query.next
        if after.kind == _STORED:
            statement = statement.where(Ioc.updated_at >= after.date_added)
        else:
            statement = statement.where(
                tuple_(Ioc.updated_at, Ioc.id) > tuple_(after.date_added, after.number)
            )
    return statement


def _served_by(collection: TaxiiCollection, stored: type[TaxiiObject] = TaxiiObject) -> Any:
    """Rows of the collection's store it may serve: unmarked, or up to its ``max_tlp``."""
    return and_(
        stored.collection_id == collection.id,
        or_(stored.tlp.is_(None), stored.tlp.in_(collection.served_tlp_levels)),
    )


def _stored_versions(collection: TaxiiCollection, versions: Sequence[str | datetime]) -> Any:
    """``match[version]`` over stored rows: ``first``/``last`` among the versions the
    collection serves of the same object, ``all``, or exact instants."""
    if "all" in versions:
        return true()
    conditions: list[ColumnElement[bool]] = []
    exact = [version for version in versions if isinstance(version, datetime)]
    if exact:
        conditions.append(TaxiiObject.version_at.in_(exact))
    for keyword, bound in (("first", func.min), ("last", func.max)):
        if keyword in versions:
            other = aliased(TaxiiObject)
            edge = (
                select(bound(other.version_at))
                .where(_served_by(collection, other), other.stix_id == TaxiiObject.stix_id)
                .scalar_subquery()
            )
            conditions.append(TaxiiObject.version_at == edge)
    return or_(*conditions)


def _filtered_stored(collection: TaxiiCollection, query: ObjectQuery) -> Select:
    statement = select(TaxiiObject).where(
        _served_by(collection), _stored_versions(collection, query.versions)
    )
    if query.spec_versions is not None and STIX_SPEC_VERSION not in query.spec_versions:
        return statement.where(false())
    if query.added_after is not None:
        statement = statement.where(TaxiiObject.date_added > query.added_after)
    if query.ids is not None:
        statement = statement.where(TaxiiObject.stix_id.in_(query.ids))
    if query.types is not None:
        statement = statement.where(TaxiiObject.stix_type.in_(query.types))
    if query.next is not None:
        after = query.next
        if after.kind == _IOC:
            statement = statement.where(TaxiiObject.date_added > after.date_added)
        else:
            position = tuple_(TaxiiObject.date_added, TaxiiObject.id)
            statement = statement.where(position > tuple_(after.date_added, after.number))
    return statement


class TaxiiBackend:
    """The server's one API root (``/taxii2/api/``) over the collections admins define."""

    def discovery(self, base_url: str) -> dict:
        api_root = f"{base_url.rstrip('/')}/taxii2/{API_ROOT_NAME}/"
        return {
            "title": "SOC Incident API TAXII server",
            "description": "Threat intelligence of the SOC and its partners, as STIX 2.1.",
            "default": api_root,
            "api_roots": [api_root],
        }

    def api_root(self) -> dict:
        return {
            "title": "SOC threat intelligence",
            "description": "Collections of STIX 2.1 objects and of the SOC's IOCs, defined by "
            "its administrators.",
            "versions": [TAXII_MEDIA_TYPE],
            "max_content_length": current_app.config["MAX_CONTENT_LENGTH"],
        }

    # --- collections ----------------------------------------------------------------

    def access(self, principal: Principal, collection: TaxiiCollection) -> tuple[bool, bool]:
        """(can_read, can_write): the permission and the collection's roles must agree."""
        role = principal.role
        can_read = principal.can("taxii:read") and collection.role_may_read(role)
        can_write = principal.can("taxii:write") and collection.role_may_write(role)
        return can_read, can_write

    def describe(self, principal: Principal, collection: TaxiiCollection) -> dict:
        can_read, can_write = self.access(principal, collection)
        return {
            "id": str(collection.id),
            "title": collection.title,
            "description": collection.description,
            "can_read": can_read,
            "can_write": can_write,
            "media_types": [STIX_MEDIA_TYPE],
        }

    def collections(self, principal: Principal) -> list[dict]:
        """The collections the principal may read or write (others are not listed)."""
        statement = select(TaxiiCollection).order_by(TaxiiCollection.created_at, TaxiiCollection.id)
        return [
            self.describe(principal, collection)
            for collection in db.session.scalars(statement)
            if any(self.access(principal, collection))
        ]

    def collection(
        self, principal: Principal, collection_id: str, need: str | None = None
    ) -> TaxiiCollection:
        """The collection; 404 if it is missing or the principal may do nothing with it
        (ids cannot be probed), 403 if it may not do what it ``need``\\s: read, write, or
        delete objects (TAXII 2.1: delete needs both read and write access)."""
        try:
            collection = db.session.get(TaxiiCollection, uuid.UUID(collection_id))
        except ValueError:
            collection = None
        access = self.access(principal, collection) if collection else (False, False)
        if collection is None or not any(access):
            raise NotFound(f"Collection {collection_id} does not exist.")
        can_read, can_write = access
        needs_read = need in ("read", "delete")
        needs_write = need in ("write", "delete")
        if (needs_read and not can_read) or (needs_write and not can_write):
            what = "delete objects of" if need == "delete" else need
            raise Forbidden(f"You may not {what} collection {collection_id}.")
        return collection

    # --- objects ----------------------------------------------------------------------

    def page(self, collection: TaxiiCollection, query: ObjectQuery) -> Page:
        """One page of the collection's objects matching ``query``, in ascending order:
        a page of each kind, merged."""
        size = query.page_size
        stored = _filtered_stored(collection, query).order_by(
            TaxiiObject.date_added, TaxiiObject.id
        )
        iocs = _filtered_iocs(collection, query).order_by(Ioc.updated_at, Ioc.id)
        candidates = sorted(
            [
                *map(ServedObject.of_stored, db.session.scalars(stored.limit(size + 1))),
                *map(ServedObject.of_ioc, db.session.scalars(iocs.limit(size + 1))),
            ],
            key=lambda served: served.key,
        )
        return Page(candidates[:size], more=len(candidates) > size)

    def objects(self, collection: TaxiiCollection, query: ObjectQuery) -> tuple[dict, Page]:
        """The Get Objects envelope (empty when nothing matches) and its page."""
        page = self.page(collection, query)
        if not page.objects:
            return {}, page
        return {**page.paging_fields(), "objects": [o.stix() for o in page.objects]}, page

    def manifest(self, collection: TaxiiCollection, query: ObjectQuery) -> tuple[dict, Page]:
        page = self.page(collection, query)
        if not page.objects:
            return {}, page
        return {
            **page.paging_fields(),
            "objects": [o.manifest_entry() for o in page.objects],
        }, page

    def _one_object(self, collection: TaxiiCollection, object_id: str, query: ObjectQuery) -> Page:
        page = self.page(collection, replace(query, ids=(object_id,)))
        if not page.objects and query.next is None:
            raise NotFound(f"Object {object_id} is not in this collection.")
        return page

    def object(
        self, collection: TaxiiCollection, object_id: str, query: ObjectQuery
    ) -> tuple[dict, Page]:
        page = self._one_object(collection, object_id, query)
        return {**page.paging_fields(), "objects": [o.stix() for o in page.objects]}, page

    def versions(
        self, collection: TaxiiCollection, object_id: str, query: ObjectQuery
    ) -> tuple[dict, Page]:
        page = self._one_object(collection, object_id, replace(query, versions=("all",)))
        return {
            **page.paging_fields(),
            "versions": [o.version for o in page.objects],
        }, page

    def delete_object(self, collection: TaxiiCollection, object_id: str, query: ObjectQuery) -> int:
        """Remove the versions of a stored object that ``match[version]`` names (default:
        the last); returns how many. 404 if none matches, 403 for the TLP markings and the
        IOC view, which the collection does not own."""
        if object_id in _COLLECTION_MARKING_IDS:
            raise Forbidden(
                f"{object_id} is a TLP marking definition the collection's IOCs refer to."
            )
        statement = _filtered_stored(
            collection, replace(query, ids=(object_id,), next=None, added_after=None)
        )
        row_ids = list(db.session.scalars(statement.with_only_columns(TaxiiObject.id)))
        if not row_ids:
            self._refuse_ioc_view(collection, object_id)
            raise NotFound(f"Object {object_id} has no such version in this collection.")
        db.session.execute(delete(TaxiiObject).where(TaxiiObject.id.in_(row_ids)))
        emit(
            EventType.TAXII_OBJECT_DELETED,
            str(collection.id),
            {"stix_id": object_id, "versions": len(row_ids)},
        )
        return len(row_ids)

    def _refuse_ioc_view(self, collection: TaxiiCollection, object_id: str) -> None:
        query = ObjectQuery(ids=(object_id,), versions=("all",))
        served = db.session.scalar(_filtered_iocs(collection, query))
        if served is not None:
            raise Forbidden(
                f"{object_id} is IOC {served.id} of the IOC store: retire or delete it "
                f"with /iocs/{served.id}.",
            )

    # --- adding objects and their status ----------------------------------------------

    def add_objects(
        self, principal: Principal, collection: TaxiiCollection, objects: list[Any]
    ) -> TaxiiStatus:
        """Keep every valid posted object in the collection's store, store indicators and
        vulnerabilities as IOCs too, and report each object in a status resource.

        Posting an object again is a success that changes nothing (its IOCs merge again).
        """
        parsed = parse_bundle({"type": "bundle", "objects": objects})
        try:
            imported = store_imported(parsed, principal, source=f"taxii:{principal.username}")
        except InvalidIoc as error:
            raise TooLarge(f"Too many indicators in one envelope: {error}") from None
        status = TaxiiStatus(
            collection_id=collection.id,
            created_by_id=principal.user_id,
            request_timestamp=utcnow(),
            successes=[],
            failures=[],
            pendings=[],
        )
        own_ioc_ids = _ids_of_iocs(objects)
        outcomes = iter(
            object_store.keep_objects(
                collection,
                [raw for raw in objects if _object_id(raw) not in own_ioc_ids],
                {
                    **object_store.stored_tlp_markings(collection),
                    **tlp_markings_defined_in(objects),
                },
                principal.user_id,
                status.request_timestamp,
            )
        )
        report = _Report(status, imported)
        for raw in objects:
            if _object_id(raw) in own_ioc_ids:
                report.own_ioc(raw)
            else:
                report.outcome(raw, next(outcomes))
        db.session.add(status)
        db.session.flush()
        emit(
            EventType.TAXII_OBJECTS_ADDED,
            str(collection.id),
            {
                "status_id": str(status.id),
                "successes": len(status.successes),
                "failures": len(status.failures),
                "iocs_created": imported.created,
                "iocs_merged": imported.merged,
            },
            actor=actor_of(principal),
        )
        return status

    def status(self, principal: Principal, status_id: str) -> TaxiiStatus:
        """A status resource, for whoever posted the objects (and admins); 404 otherwise."""
        try:
            status = db.session.get(TaxiiStatus, uuid.UUID(status_id))
        except ValueError:
            status = None
        if status is None or not (principal.is_admin or status.created_by_id == principal.user_id):
            raise NotFound(f"Status {status_id} does not exist.")
        return status


def _ids_of_iocs(objects: list[Any]) -> set[str]:
    """The posted ids that name one of our own IOCs (a partner sending back what it read):
    the IOC is that object, so it is merged into the IOC store, not kept twice."""
    posted = {raw.get("id") for raw in objects if isinstance(raw, dict)}
    uuids = {
        stix_uuid: stix_id
        for stix_type in _STIX_TYPE_CONDITIONS
        for stix_id in posted
        if isinstance(stix_id, str)
        for stix_uuid in _stix_uuids([stix_id], stix_type)
    }
    if not uuids:
        return set()
    found = db.session.scalars(select(Ioc.stix_id).where(Ioc.stix_id.in_(uuids)))
    return {uuids[stix_uuid] for stix_uuid in found}


def _object_id(raw: Any) -> str:
    return str(raw.get("id", "")) if isinstance(raw, dict) else ""


@dataclass
class _Report:
    """Files each posted object of one Add Objects request under successes or failures,
    with what happened to its IOCs when it named some."""

    status: TaxiiStatus
    imported: StixImport

    def outcome(self, raw: Any, outcome: object_store.Outcome) -> None:
        entry = self._entry(raw)
        if not outcome.kept:
            message = outcome.message or ""
            if entry["id"] in self.imported.stored:
                message = f"{message}; its IOCs were stored"
            self.status.failures.append({**entry, "message": message})
            return
        notes = [note for note in (outcome.message, self._ioc_failure(entry["id"])) if note]
        self.status.successes.append({**entry, "message": "; ".join(notes)} if notes else entry)

    def own_ioc(self, raw: dict) -> None:
        entry = self._entry(raw)
        failure = self._ioc_failure(entry["id"])
        if failure:
            self.status.failures.append({**entry, "message": failure})
        else:
            self.status.successes.append({**entry, "message": "one of this server's IOCs: merged"})

    def _entry(self, raw: Any) -> dict:
        if not isinstance(raw, dict):
            return {"id": "", "version": ""}
        return {
            "id": _object_id(raw),
            "version": str(raw.get("modified") or raw.get("created") or ""),
        }

    def _ioc_failure(self, stix_id: str) -> str | None:
        reason = self.imported.failures.get(stix_id)
        return f"no IOC stored: {reason}" if reason else None


def status_resource(status: TaxiiStatus) -> dict:
    """The TAXII status resource of a POST (processing is synchronous: always complete)."""
    return {
        "id": str(status.id),
        "status": status.status,
        "request_timestamp": taxii_timestamp(status.request_timestamp),
        "total_count": len(status.successes) + len(status.failures) + len(status.pendings),
        "success_count": len(status.successes),
        "successes": status.successes,
        "failure_count": len(status.failures),
        "failures": status.failures,
        "pending_count": len(status.pendings),
        "pendings": status.pendings,
    }


backend = TaxiiBackend()
