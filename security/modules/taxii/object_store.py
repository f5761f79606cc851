"""Writing a collection's STIX object store: posted objects kept as versions, the TLP
marking definitions every collection serves, versions removed.

What a collection serves, and in which order, is :mod:`.server`'s business; this module
only writes :class:`models.TaxiiObject` rows, in the caller's transaction.

- **Versions.** An object's version is its ``modified`` (else ``created``), compared as an
  instant; an object without either (a cyber-observable) is versioned by the time it was
  added, unless the very same object is already there.
- **Duplicates** (TAXII 2.1, 5.5): the same id and version posted again with the same
  content is a success and changes nothing; with different content it is refused, since
  a STIX version is immutable.
- **TLP red** is never served, so an object marked red is not kept. A marking definition
  that defines TLP red is kept (never served) so that objects marked with it later are
  recognised as red too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.dialects.postgresql import insert

from models import TaxiiCollection, TaxiiObject, db
from models.taxii import SERVABLE_TLP_LEVELS
from security.modules.stix_mapping import (
    TLP_2_MARKINGS,
    InvalidStixObject,
    StixObjectFacts,
    stix_object_facts,
)

DUPLICATE_MESSAGE = "already in the collection (same id, version and content)"


class ObjectRefused(ValueError):
    """The collection does not keep this object; the message says why."""


def add_tlp_markings(collection: TaxiiCollection, now: datetime) -> None:
    """Give a new collection the OASIS TLP 2.0 marking definitions its objects refer to.

    All but red are kept; which of them the collection serves follows its ``max_tlp``.
    """
    for tlp in SERVABLE_TLP_LEVELS:
        body = json.loads(TLP_2_MARKINGS[tlp].serialize())
        facts = stix_object_facts(body)
        db.session.add(
            TaxiiObject(
                collection_id=collection.id,
                stix_id=facts.stix_id,
                stix_type=facts.stix_type,
                version_at=facts.version,
                date_added=now,
                tlp=tlp,
                body=body,
            )
        )


def stored_tlp_markings(collection: TaxiiCollection) -> dict[str, str]:
    """Marking-definition id -> TLP for the TLP markings the collection keeps (red too)."""
    statement = select(TaxiiObject.stix_id, TaxiiObject.tlp).where(
        TaxiiObject.collection_id == collection.id,
        TaxiiObject.stix_type == "marking-definition",
        TaxiiObject.tlp.is_not(None),
    )
    return {stix_id: tlp for stix_id, tlp in db.session.execute(statement)}


def _same_version(collection: TaxiiCollection, facts: StixObjectFacts) -> Any:
    return and_(
        TaxiiObject.collection_id == collection.id,
        TaxiiObject.stix_id == facts.stix_id,
        TaxiiObject.version_at == facts.version,
    )


def _has_identical(collection: TaxiiCollection, stix_id: str, body: Mapping[str, Any]) -> bool:
    statement = select(TaxiiObject.body).where(
        TaxiiObject.collection_id == collection.id, TaxiiObject.stix_id == stix_id
    )
    return any(stored == body for stored in db.session.scalars(statement))


def keep_object(
    collection: TaxiiCollection,
    raw: Any,
    known_markings: Mapping[str, str],
    added_by_id: int | None,
    now: datetime,
) -> str | None:
    """Keep one posted object as a version of the collection's object; returns a message
    for the status (None when it was simply added). Raises :class:`ObjectRefused`."""
    try:
        facts = stix_object_facts(raw, known_markings)
    except InvalidStixObject as error:
        raise ObjectRefused(f"not a valid STIX 2.1 object: {error}") from None
    if facts.tlp == "red" and facts.stix_type != "marking-definition":
        raise ObjectRefused("marked TLP:RED, which is never shared over TAXII: not kept")
    if facts.version is None and _has_identical(collection, facts.stix_id, raw):
        return DUPLICATE_MESSAGE
    row = {
        "collection_id": collection.id,
        "stix_id": facts.stix_id,
        "stix_type": facts.stix_type,
        "version_at": facts.version or now,
        "date_added": now,
        "tlp": facts.tlp,
        "body": raw,
        "added_by_id": added_by_id,
    }
    statement = (
        insert(TaxiiObject)
        .values(row)
        .on_conflict_do_nothing(constraint="uq_taxii_objects_version")
        .returning(TaxiiObject.id)
    )
    if db.session.execute(statement).scalar() is not None:
        return "TLP:RED marking definition: kept, never served" if facts.tlp == "red" else None
    stored = db.session.scalar(select(TaxiiObject.body).where(_same_version(collection, facts)))
    if stored == raw:
        return DUPLICATE_MESSAGE
    raise ObjectRefused(
        "a different object with this id and version is already in the collection "
        "(a STIX version never changes: give the new one a later modified)"
    )
