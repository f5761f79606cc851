"""Defining the TAXII collections we serve (admins): create, edit, delete, each an event.

A collection is a filter over the IOC store plus a STIX object store of its own, which
starts with the TLP marking definitions; which objects it serves, and who may read or
write it, is :mod:`.server`'s business.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from models import TaxiiCollection, db, utcnow
from security.errors import NotFound
from security.events import EventType, actor_of, emit
from security.modules.principals import Principal
from security.modules.taxii.object_store import add_tlp_markings

EDITABLE_FIELDS = (
    "title",
    "description",
    "min_confidence",
    "max_tlp",
    "ioc_types",
    "sources",
    "active_only",
    "read_roles",
    "write_roles",
)


def get_collection(collection_id: uuid.UUID, *, lock: bool = False) -> TaxiiCollection:
    collection = db.session.get(TaxiiCollection, collection_id, with_for_update=lock)
    if collection is None:
        raise NotFound(f"Collection {collection_id} does not exist.")
    return collection


def create_collection(principal: Principal, data: Mapping[str, Any]) -> TaxiiCollection:
    collection = TaxiiCollection(
        **{name: data[name] for name in EDITABLE_FIELDS}, created_by_id=principal.user_id
    )
    db.session.add(collection)
    db.session.flush()
    add_tlp_markings(collection, utcnow())
    emit(
        EventType.TAXII_COLLECTION_CREATED,
        str(collection.id),
        {"title": collection.title, "max_tlp": collection.max_tlp},
        actor=actor_of(principal),
    )
    return collection


def update_collection(collection: TaxiiCollection, data: Mapping[str, Any]) -> None:
    changed = sorted(name for name in EDITABLE_FIELDS if name in data)
    for name in changed:
        setattr(collection, name, data[name])
    collection.touch()
    emit(EventType.TAXII_COLLECTION_EDITED, str(collection.id), {"fields": changed})


def delete_collection(collection: TaxiiCollection) -> None:
    """Remove the collection with its stored objects and status resources; the IOCs it
    served stay."""
    emit(EventType.TAXII_COLLECTION_DELETED, str(collection.id), {"title": collection.title})
    db.session.delete(collection)
