"""Writing a collection's STIX object store: posted objects kept as versions, and the TLP
marking definitions every collection starts with.

What a collection serves, in which order, and which versions a delete removes, is
:mod:`.server`'s business; this module only adds :class:`models.TaxiiObject` rows, in the
caller's transaction.

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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, tuple_
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
RED_MARKING_MESSAGE = "TLP:RED marking definition: kept, never served"
OASIS_MARKING_MESSAGE = "the OASIS TLP 2.0 marking definition, which the collection serves"
# Fixed by OASIS: a partner's copy of one is that marking, whatever its serialisation.
_OASIS_TLP_IDS = frozenset(marking.id for marking in TLP_2_MARKINGS.values())
CONFLICT_MESSAGE = (
    "a different object with this id and version is already in the collection "
    "(a STIX version never changes: give the new one a later modified)"
)


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
    return {stix_id: tlp for stix_id, tlp in db.session.execute(statement) if tlp is not None}


@dataclass(frozen=True)
class Outcome:
    """What became of one posted object: kept (``message`` says if it was there already)
    or refused (``message`` says why)."""

    kept: bool
    message: str | None = None


@dataclass(frozen=True)
class _Candidate:
    index: int
    facts: StixObjectFacts
    row: dict[str, Any]

    @property
    def key(self) -> tuple[str, datetime]:
        return self.row["stix_id"], self.row["version_at"]


def _candidate(
    index: int,
    raw: Any,
    collection: TaxiiCollection,
    known_markings: Mapping[str, str],
    added_by_id: int | None,
    now: datetime,
) -> _Candidate:
    """The row one posted object would be; raises :class:`ObjectRefused`."""
    try:
        facts = stix_object_facts(raw, known_markings)
    except InvalidStixObject as error:
        raise ObjectRefused(f"not a valid STIX 2.1 object: {error}") from None
    if facts.tlp == "red" and facts.stix_type != "marking-definition":
        raise ObjectRefused("marked TLP:RED, which is never shared over TAXII: not kept")
    version = now if facts.version is None else facts.version.astimezone(UTC)
    row = {
        "collection_id": collection.id,
        "stix_id": facts.stix_id,
        "stix_type": facts.stix_type,
        # A plain datetime: stix2's subclass would not compare as a key with the database's.
        "version_at": datetime.fromisoformat(version.isoformat()),
        "date_added": now,
        "tlp": facts.tlp,
        "body": raw,
        "added_by_id": added_by_id,
    }
    return _Candidate(index, facts, row)


def _stored_bodies(collection: TaxiiCollection, condition: Any) -> list[tuple[Any, ...]]:
    statement = select(TaxiiObject.stix_id, TaxiiObject.version_at, TaxiiObject.body).where(
        TaxiiObject.collection_id == collection.id, condition
    )
    return [tuple(row) for row in db.session.execute(statement)]


def _identical_observables(collection: TaxiiCollection, candidates: list[_Candidate]) -> set[int]:
    """Objects without a version (observables) that the collection already holds as is."""
    versionless = [c for c in candidates if c.facts.version is None]
    if not versionless:
        return set()
    stored = _stored_bodies(
        collection, TaxiiObject.stix_id.in_({c.facts.stix_id for c in versionless})
    )
    return {
        c.index
        for c in versionless
        if any(stix_id == c.facts.stix_id and body == c.row["body"] for stix_id, _, body in stored)
    }


def _insert(candidates: list[_Candidate]) -> set[tuple[str, datetime]]:
    """Insert the rows in one statement; the (id, version) keys that were new."""
    if not candidates:
        return set()
    statement = (
        insert(TaxiiObject)
        .values([c.row for c in candidates])
        .on_conflict_do_nothing(constraint="uq_taxii_objects_version")
        .returning(TaxiiObject.stix_id, TaxiiObject.version_at)
    )
    return {(stix_id, version_at) for stix_id, version_at in db.session.execute(statement)}


def keep_objects(
    collection: TaxiiCollection,
    objects: list[Any],
    known_markings: Mapping[str, str],
    added_by_id: int | None,
    now: datetime,
) -> list[Outcome]:
    """Keep each posted object as a version of the collection's object; one outcome per
    object, in order. Two statements for the whole envelope, whatever its size."""
    outcomes: dict[int, Outcome] = {}
    candidates = []
    for index, raw in enumerate(objects):
        try:
            candidates.append(_candidate(index, raw, collection, known_markings, added_by_id, now))
        except ObjectRefused as refused:
            outcomes[index] = Outcome(False, str(refused))
    for index in _identical_observables(collection, candidates):
        outcomes[index] = Outcome(True, DUPLICATE_MESSAGE)
    candidates = [c for c in candidates if c.index not in outcomes]
    inserted = _insert(candidates)
    pending = []
    for candidate in candidates:
        if candidate.key in inserted:
            inserted.discard(candidate.key)  # a second copy in the envelope is a duplicate
            red = candidate.facts.tlp == "red"
            outcomes[candidate.index] = Outcome(True, RED_MARKING_MESSAGE if red else None)
        else:
            pending.append(candidate)
    outcomes.update(_compared_with_stored(collection, pending))
    return [outcomes[index] for index in range(len(objects))]


def _compared_with_stored(
    collection: TaxiiCollection, pending: list[_Candidate]
) -> dict[int, Outcome]:
    """Objects whose (id, version) was already stored: duplicates if identical (or one of
    the OASIS TLP markings), else refused, since a STIX version never changes."""
    if not pending:
        return {}
    stored = _stored_bodies(
        collection,
        tuple_(TaxiiObject.stix_id, TaxiiObject.version_at).in_([c.key for c in pending]),
    )
    bodies = {(stix_id, version_at): body for stix_id, version_at, body in stored}
    return {c.index: _compared(c, bodies.get(c.key)) for c in pending}


def _compared(candidate: _Candidate, stored_body: Any) -> Outcome:
    if candidate.facts.stix_id in _OASIS_TLP_IDS:
        return Outcome(True, OASIS_MARKING_MESSAGE)
    if stored_body == candidate.row["body"]:
        return Outcome(True, DUPLICATE_MESSAGE)
    return Outcome(False, CONFLICT_MESSAGE)
