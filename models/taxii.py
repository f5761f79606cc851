"""TAXII tables: the collections we serve, the STIX objects posted to them, the status of
each post, and the remote TAXII servers (feeds) we poll.

A collection serves two things (:mod:`security.modules.taxii.server` merges them): a view
of the IOC store through the filter an admin defines (minimum confidence, highest TLP,
IOC types, sources, active only), and its own STIX object store (:class:`TaxiiObject`),
every version of every object posted to it plus the TLP marking definitions. A feed's
credentials are stored only encrypted (:mod:`security.outbound.secrets`); nothing
here decrypts them.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Model, utcnow
from models.vocabulary import ROLES, TLP_LEVELS

# TLP red never leaves the platform, so no collection may reach it.
SERVABLE_TLP_LEVELS = tuple(level for level in TLP_LEVELS if level != "red")


class TaxiiCollection(Model):
    """A TAXII collection: which IOCs it serves, and which roles may read or write it.

    Empty ``ioc_types`` / ``sources`` mean "any". Admins may always read and write.
    """

    __tablename__ = "taxii_collections"
    __table_args__ = (
        CheckConstraint(
            "max_tlp IN ('clear', 'green', 'amber', 'amber+strict')",
            name="ck_taxii_collections_max_tlp_not_red",
        ),
        CheckConstraint(
            "min_confidence BETWEEN 0 AND 100", name="ck_taxii_collections_min_confidence"
        ),
        Index("ix_taxii_collections_created_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    title: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    min_confidence: Mapped[int] = mapped_column(SmallInteger, default=0)
    max_tlp: Mapped[str] = mapped_column(String(16), default="amber")
    ioc_types: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    sources: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    active_only: Mapped[bool] = mapped_column(default=True)
    read_roles: Mapped[list[str]] = mapped_column(ARRAY(Text), default=lambda: list(ROLES))
    write_roles: Mapped[list[str]] = mapped_column(ARRAY(Text), default=lambda: ["admin"])
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(default=1)

    @property
    def served_tlp_levels(self) -> tuple[str, ...]:
        """The TLP levels this collection serves: every level up to ``max_tlp``."""
        return SERVABLE_TLP_LEVELS[: SERVABLE_TLP_LEVELS.index(self.max_tlp) + 1]

    def role_may_read(self, role: str) -> bool:
        return role == "admin" or role in self.read_roles

    def role_may_write(self, role: str) -> bool:
        return role == "admin" or role in self.write_roles

    def touch(self) -> None:
        self.version += 1
        self.updated_at = utcnow()


class TaxiiStatus(Model):
    """The outcome of one POST of objects to a collection (TAXII's status resource).

    Objects are processed while the request waits, so a status is always complete; it is
    kept so the client can fetch it again by id, as the protocol expects.
    """

    __tablename__ = "taxii_statuses"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    collection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("taxii_collections.id", ondelete="CASCADE"), index=True
    )
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default="complete")
    request_timestamp: Mapped[datetime] = mapped_column(default=utcnow)
    successes: Mapped[list[dict]] = mapped_column(JSONB, default=list)
    failures: Mapped[list[dict]] = mapped_column(JSONB, default=list)
    pendings: Mapped[list[dict]] = mapped_column(JSONB, default=list)


class TaxiiObject(Model):
    """One version of one STIX 2.1 object kept in a collection, exactly as it was posted.

    ``body`` is the object's JSON (JSONB keeps every string as sent, so timestamps come
    back in their own precision); ``version_at`` is its ``modified`` (else ``created``,
    else ``date_added``) parsed, so versions compare as instants. ``tlp`` is the most
    restrictive TLP among its markings (for a marking definition, the TLP it defines),
    which decides whether the collection may serve it; red is never served.
    """

    __tablename__ = "taxii_objects"
    __table_args__ = (
        UniqueConstraint("collection_id", "stix_id", "version_at", name="uq_taxii_objects_version"),
        Index("ix_taxii_objects_collection_added", "collection_id", "date_added", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    collection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("taxii_collections.id", ondelete="CASCADE")
    )
    stix_id: Mapped[str] = mapped_column(Text)
    stix_type: Mapped[str] = mapped_column(Text)
    version_at: Mapped[datetime]
    date_added: Mapped[datetime] = mapped_column(default=utcnow)
    tlp: Mapped[str | None] = mapped_column(String(16))
    body: Mapped[dict] = mapped_column(JSONB)
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    @property
    def version(self) -> str | None:
        """The version as the object writes it (None for an object without timestamps)."""
        return self.body.get("modified") or self.body.get("created")


class TaxiiFeed(Model):
    """A remote TAXII 2.1 collection we poll for IOCs.

    ``added_after`` is the watermark: the remote server's date_added of the last object
    received, sent back on the next poll so only newer objects come. ``poll_started_at``
    is a lease, so two pollers (CLI and API, or two instances) never poll one feed at once.
    """

    __tablename__ = "taxii_feeds"
    __table_args__ = (
        CheckConstraint(
            "auth_type IN ('none', 'basic', 'bearer')", name="ck_taxii_feeds_auth_type"
        ),
        CheckConstraint(
            "default_confidence BETWEEN 0 AND 100", name="ck_taxii_feeds_default_confidence"
        ),
        Index("ix_taxii_feeds_created_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    api_root_url: Mapped[str] = mapped_column(Text)
    collection_id: Mapped[str] = mapped_column(String(255))
    auth_type: Mapped[str] = mapped_column(String(16), default="none")
    # Fernet token of the JSON credentials; NULL when the feed needs none.
    credentials_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    poll_interval_seconds: Mapped[int] = mapped_column(default=3600)
    page_size: Mapped[int] = mapped_column(default=100)
    default_confidence: Mapped[int] = mapped_column(SmallInteger, default=50)
    default_tlp: Mapped[str] = mapped_column(String(16), default="amber")
    enabled: Mapped[bool] = mapped_column(default=True)
    added_after: Mapped[datetime | None]
    poll_started_at: Mapped[datetime | None]
    last_polled_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_object_count: Mapped[int] = mapped_column(default=0)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(default=1)

    @property
    def source_name(self) -> str:
        """The ``source`` of every IOC this feed brings in."""
        return f"taxii:{self.name}"

    @property
    def collection_url(self) -> str:
        return f"{self.api_root_url.rstrip('/')}/collections/{self.collection_id}/"

    def is_due(self, now: datetime) -> bool:
        if self.last_polled_at is None:
            return True
        return (now - self.last_polled_at).total_seconds() >= self.poll_interval_seconds

    def touch(self) -> None:
        self.version += 1
        self.updated_at = utcnow()
