"""The TAXII 2.1 server's backend: what each endpoint answers, independent of HTTP.

Like medallion's backends, the views (``resources/taxii.py``) only negotiate, authenticate
and call one method here. A collection is a filter over the IOC store
(:class:`models.TaxiiCollection`); its objects are the matching IOCs as STIX (indicators,
vulnerabilities for CVEs) plus the OASIS TLP 2.0 marking definitions they reference.

- **Versions.** An IOC has one STIX version: ``modified`` is its last update, which is also
  its ``date_added`` (an edited IOC is re-added, so ``added_after`` pollers see edits).
  ``first``, ``last`` and ``all`` therefore all name that version; explicit versions are
  compared as times, never as strings.
- **Paging.** Objects come in ascending ``(date_added, kind, id)`` order, paged by a keyset
  (the opaque ``next``), so equal timestamps are never skipped or repeated, and ``next``
  works whatever ``limit`` the following request gives. The marking definitions (date
  added: their OASIS creation time) are merged into that order in memory.
- **TLP red** is never served: no collection may include it (database constraint too).
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
from sqlalchemy import Select, and_, false, or_, select, tuple_

from auth import Principal
from errors import ApiError
from models import Indicator, TaxiiCollection, TaxiiStatus, db, utcnow
from security.modules import audit
from security.modules.indicators import InvalidIndicator
from security.modules.stix_mapping import (
    EXPORTABLE_IOC_TYPES,
    TLP_2_MARKINGS,
    parse_bundle,
    tlp_of_marking_definition,
)
from security.modules.taxii.media import STIX_MEDIA_TYPE, TAXII_MEDIA_TYPE, taxii_timestamp
from security.modules.taxii.stix_exchange import stix_dict, store_imported

API_ROOT_NAME = "api"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
VERSION_KEYWORDS = frozenset({"first", "last", "all"})
STIX_SPEC_VERSION = "2.1"

# Sort kinds: marking definitions before IOCs added at the same instant.
_MARKING, _IOC = 0, 1
# STIX object type -> condition on the IOC's type.
_STIX_TYPE_CONDITIONS: dict[str, Callable[[], Any]] = {
    "indicator": lambda: Indicator.type != "cve",
    "vulnerability": lambda: Indicator.type == "cve",
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
            if key.date_added.tzinfo is None or key.kind not in (_MARKING, _IOC):
                raise ValueError("not a key")
            return key
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
            raise ApiError(422, "next is not a value this server returned.") from None


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
    """One object of a collection: its place in the order and how to build its STIX."""

    key: PageKey
    stix_id: str
    version: datetime
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
            "version": taxii_timestamp(self.version),
            "media_type": STIX_MEDIA_TYPE,
        }


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


def _marking_objects(collection: TaxiiCollection) -> list[ServedObject]:
    served = []
    for number, tlp in enumerate(collection.served_tlp_levels):
        marking = TLP_2_MARKINGS[tlp]
        created = marking.created
        served.append(
            ServedObject(
                PageKey(created, _MARKING, number),
                marking.id,
                created,
                lambda m=marking: json.loads(m.serialize()),
            )
        )
    return served


def _ioc_object(indicator: Indicator) -> ServedObject:
    stix_type = "vulnerability" if indicator.type == "cve" else "indicator"
    return ServedObject(
        PageKey(indicator.updated_at, _IOC, indicator.id),
        f"{stix_type}--{indicator.stix_id}",
        indicator.updated_at,
        lambda: stix_dict(indicator),
    )


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
        and_(Indicator.stix_id.in_(uuids), type_condition())
        for stix_type, type_condition in _STIX_TYPE_CONDITIONS.items()
        if (uuids := _stix_uuids(ids, stix_type))
    ]
    return or_(*conditions) if conditions else false()


def _collection_iocs(collection: TaxiiCollection) -> Select:
    """Every IOC the collection serves, before the request's own filters."""
    ioc_types = [
        t for t in (collection.ioc_types or EXPORTABLE_IOC_TYPES) if t in EXPORTABLE_IOC_TYPES
    ]
    statement = select(Indicator).where(
        Indicator.tlp.in_(collection.served_tlp_levels),
        Indicator.confidence >= collection.min_confidence,
        Indicator.type.in_(ioc_types),
    )
    if collection.sources:
        statement = statement.where(Indicator.source.in_(collection.sources))
    if collection.active_only:
        statement = statement.where(
            or_(Indicator.expires_at.is_(None), Indicator.expires_at > utcnow())
        )
    return statement


def _filtered_iocs(collection: TaxiiCollection, query: ObjectQuery) -> Select:
    statement = _collection_iocs(collection)
    if query.spec_versions is not None and STIX_SPEC_VERSION not in query.spec_versions:
        return statement.where(false())
    if query.added_after is not None:
        statement = statement.where(Indicator.updated_at > query.added_after)
    if query.ids is not None:
        statement = statement.where(_id_condition(query.ids))
    if query.types is not None:
        conditions = [_STIX_TYPE_CONDITIONS[t]() for t in query.types if t in _STIX_TYPE_CONDITIONS]
        statement = statement.where(or_(*conditions) if conditions else false())
    if query.exact_versions is not None:
        statement = statement.where(Indicator.updated_at.in_(query.exact_versions))
    if query.next is not None:
        after = query.next
        if after.kind == _MARKING:
            statement = statement.where(Indicator.updated_at >= after.date_added)
        else:
            statement = statement.where(
                tuple_(Indicator.updated_at, Indicator.id) > tuple_(after.date_added, after.number)
            )
    return statement


def _marking_matches(served: ServedObject, query: ObjectQuery) -> bool:
    exact_versions = query.exact_versions
    return (
        (query.spec_versions is None or STIX_SPEC_VERSION in query.spec_versions)
        and (query.added_after is None or served.date_added > query.added_after)
        and (query.ids is None or served.stix_id in query.ids)
        and (query.types is None or "marking-definition" in query.types)
        and (exact_versions is None or served.version in exact_versions)
        and (query.next is None or served.key > query.next)
    )


class TaxiiBackend:
    """The server's one API root (``/taxii2/api/``) over the collections admins define."""

    def discovery(self, base_url: str) -> dict:
        api_root = f"{base_url.rstrip('/')}/taxii2/{API_ROOT_NAME}/"
        return {
            "title": "SOC Incident API TAXII server",
            "description": "Threat intelligence (IOCs) of the SOC, as STIX 2.1.",
            "default": api_root,
            "api_roots": [api_root],
        }

    def api_root(self) -> dict:
        return {
            "title": "SOC threat intelligence",
            "description": "Collections of IOCs, defined by the SOC's administrators.",
            "versions": [TAXII_MEDIA_TYPE],
            "max_content_length": current_app.config["MAX_CONTENT_LENGTH"],
        }

    # --- collections ----------------------------------------------------------------

    def access(self, principal: Principal, collection: TaxiiCollection) -> tuple[bool, bool]:
        """(can_read, can_write): the permission and the collection's roles must agree."""
        role = principal.user.role
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
        (ids cannot be probed), 403 if it may not do what it ``need``\\s (read or write)."""
        try:
            collection = db.session.get(TaxiiCollection, uuid.UUID(collection_id))
        except ValueError:
            collection = None
        access = self.access(principal, collection) if collection else (False, False)
        if not any(access):
            raise ApiError(404, f"Collection {collection_id} does not exist.")
        can_read, can_write = access
        if (need == "read" and not can_read) or (need == "write" and not can_write):
            raise ApiError(403, f"You may not {need} collection {collection_id}.")
        return collection

    # --- objects ----------------------------------------------------------------------

    def page(self, collection: TaxiiCollection, query: ObjectQuery) -> Page:
        """One page of the collection's objects matching ``query``, in ascending order."""
        size = query.page_size
        statement = _filtered_iocs(collection, query).order_by(Indicator.updated_at, Indicator.id)
        iocs = [_ioc_object(row) for row in db.session.scalars(statement.limit(size + 1))]
        markings = [m for m in _marking_objects(collection) if _marking_matches(m, query)]
        candidates = sorted([*markings, *iocs], key=lambda served: served.key)
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
            raise ApiError(404, f"Object {object_id} is not in this collection.")
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
            "versions": [taxii_timestamp(o.version) for o in page.objects],
        }, page

    # --- adding objects and their status ----------------------------------------------

    def add_objects(
        self, principal: Principal, collection: TaxiiCollection, objects: list[Any]
    ) -> TaxiiStatus:
        """Store the envelope's indicators and vulnerabilities as IOCs; report every object.

        Posting an object again merges into the stored IOC and succeeds again.
        """
        parsed = parse_bundle({"type": "bundle", "objects": objects})
        try:
            stored = store_imported(parsed, principal, source=f"taxii:{principal.user.username}")
        except InvalidIndicator as error:
            raise ApiError(413, f"Too many indicators in one envelope: {error}") from None
        status = TaxiiStatus(
            collection_id=collection.id,
            created_by_id=principal.user.id,
            request_timestamp=utcnow(),
            successes=[],
            failures=[],
            pendings=[],
        )
        for raw in objects:
            _report_object(status, raw, stored.stored, stored.failures)
        db.session.add(status)
        db.session.flush()
        audit.record(
            "taxii.objects_added",
            object_type="taxii_collection",
            object_id=str(collection.id),
            details={
                "status_id": str(status.id),
                "successes": len(status.successes),
                "failures": len(status.failures),
                "created": stored.created,
                "merged": stored.merged,
            },
        )
        return status

    def status(self, principal: Principal, status_id: str) -> TaxiiStatus:
        """A status resource, for whoever posted the objects (and admins); 404 otherwise."""
        try:
            status = db.session.get(TaxiiStatus, uuid.UUID(status_id))
        except ValueError:
            status = None
        if status is None or not (principal.is_admin or status.created_by_id == principal.user.id):
            raise ApiError(404, f"Status {status_id} does not exist.")
        return status


def _object_version(raw: dict) -> str:
    return str(raw.get("modified") or raw.get("created") or "")


def _report_object(
    status: TaxiiStatus, raw: Any, stored: set[str], failures: dict[str, str]
) -> None:
    """File one posted object under the status's successes or failures, with the reason."""
    if not isinstance(raw, dict):
        status.failures.append({"id": "", "version": "", "message": "not a JSON object"})
        return
    entry = {"id": str(raw.get("id", "")), "version": _object_version(raw)}
    object_type = raw.get("type")
    if entry["id"] in stored:
        status.successes.append(entry)
    elif entry["id"] in failures:
        status.failures.append({**entry, "message": failures[entry["id"]]})
    elif object_type == "marking-definition" and tlp_of_marking_definition(raw):
        status.successes.append({**entry, "message": "TLP marking: understood, not stored"})
    else:
        status.failures.append(
            {
                **entry,
                "message": f"{object_type!s} objects are not stored: this server keeps "
                "indicators and vulnerabilities (as IOCs) only",
            }
        )


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
