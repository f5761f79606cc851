"""The IOC store's tables: indicators (``iocs``) and their links to incidents.

An IOC's value is stored already normalised (``security.modules.ioc_values`` decides the
canonical form; this module does not), in one shared record per type and value (and one
per user that record is hidden from). IP, IPv6 and CIDR values are also kept in an
``inet`` column; the networks among them have a GiST ``inet_ops`` index, so "which stored
networks contain this address" is one indexed ``>>=`` query. How IOCs are added, merged,
looked up and searched lives in :mod:`security.modules.intel`.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, INET, UUID
from sqlalchemy.orm import Mapped, joinedload, mapped_column, relationship

from models.base import Model, utcnow
from models.users import User

# IOC types whose value is an address or a network, mirrored into the ``address`` column.
ADDRESS_TYPES = frozenset({"ipv4", "ipv6", "cidr"})
# The fields an analyst sets (and a merge combines); the rest is identity or bookkeeping.
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
# IOC types whose value is a hex digest.
HASH_TYPES = frozenset({"md5", "sha1", "sha256", "sha512"})
# Types that ``GET /iocs?q=`` finds by the beginning of their value (a btree range), not by
# any substring (a trigram index): an address is searched by its leading octets or groups
# (``185.220.``), a digest by the start a report prints. Their trigrams (some 14 per IPv4
# address, 33 to 129 random ones per digest) were most of the trigram index's entries, and
# that index the largest cost of a bulk import (bench/RESULTS.md): leaving out digests, then
# addresses too, made 500,000-IOC imports some 5 and then another 8 to 20 % faster.
PREFIX_SEARCHED_TYPES = ADDRESS_TYPES | HASH_TYPES
# The partial-index predicates, as SQL. A query must state the same predicate for the
# planner to use the index, so the search code uses these very strings.
PREFIX_SEARCHED_SQL = "type IN ({})".format(
    ", ".join(f"'{name}'" for name in sorted(PREFIX_SEARCHED_TYPES))
)
SUBSTRING_SEARCHED_SQL = PREFIX_SEARCHED_SQL.replace(" IN ", " NOT IN ", 1)
HAS_DESCRIPTION_SQL = "description <> ''"
# New trigram entries go to a GIN index's pending list and are merged into the tree in
# batches, by the inserting transaction once the list is full (or by autovacuum). The
# value index takes most entries; a 32 MiB list (the default is 4 MiB) makes its merges
# larger and rarer: measured on 200,000-IOC bulk imports, a fifth less time in the merge.
# A search scans the pending list too, so it is not made larger still.
TRIGRAM_PENDING_LIST_KB = 32 * 1024


class Ioc(Model):
    """One indicator of compromise. ``version`` counts edits of the analyst-set fields;
    sightings (``sighting_count``, ``last_sighted_at``) are observations, not edits."""

    __tablename__ = "iocs"
    __table_args__ = (
        # One shared record per value, plus one per user it is hidden from (see
        # ``separate_for_id``).
        UniqueConstraint("type", "value", "separate_for_id", name="uq_iocs_type_value_separate"),
        CheckConstraint("confidence BETWEEN 0 AND 100", name="ck_iocs_confidence_range"),
        Index("ix_iocs_created_id", "created_at", "id"),
        # Networks only: an address is found by its exact (type, value), and keeping the
        # (many) single addresses out makes this index small and its ">>=" scans short.
        Index(
            "ix_iocs_networks",
            "address",
            postgresql_using="gist",
            postgresql_ops={"address": "inet_ops"},
            postgresql_where=text("type = 'cidr'"),
        ),
        Index("ix_iocs_tags", "tags", postgresql_using="gin"),
        # TAXII pages by date_added, which is updated_at.
        Index("ix_iocs_updated_id", "updated_at", "id"),
        # Free-text search (``GET /iocs?q=``), one index per searched column so a row adds
        # only its own column's trigrams: substrings of domains, URLs, e-mail addresses and
        # CVE ids; of descriptions, which most imported IOCs leave empty and so never
        # enter; of sources, whose few names repeat. Addresses and digests by prefix.
        Index(
            "ix_iocs_value_trgm",
            "value",
            postgresql_using="gin",
            postgresql_ops={"value": "gin_trgm_ops"},
            postgresql_where=text(SUBSTRING_SEARCHED_SQL),
            postgresql_with={"gin_pending_list_limit": TRIGRAM_PENDING_LIST_KB},
        ),
        Index(
            "ix_iocs_description_trgm",
            "description",
            postgresql_using="gin",
            postgresql_ops={"description": "gin_trgm_ops"},
            postgresql_where=text(HAS_DESCRIPTION_SQL),
        ),
        Index(
            "ix_iocs_source_trgm",
            "source",
            postgresql_using="gin",
            postgresql_ops={"source": "gin_trgm_ops"},
        ),
        # ``value LIKE '185.220.%'`` as a range scan, whatever the database's collation.
        Index(
            "ix_iocs_value_prefix",
            "value",
            postgresql_ops={"value": "text_pattern_ops"},
            postgresql_where=text(PREFIX_SEARCHED_SQL),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(INET)
    confidence: Mapped[int] = mapped_column(SmallInteger, default=50)
    source: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    tlp: Mapped[str] = mapped_column(String(16), default="amber")
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    sighting_count: Mapped[int] = mapped_column(default=0)
    last_sighted_at: Mapped[datetime | None]
    # The STIX helper names every export of this IOC with it, so it never changes.
    stix_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), unique=True, server_default=text("gen_random_uuid()")
    )
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(default=1)
    # 0 for the value's shared record; a user's id for the record that user's reports of the
    # value go to because the shared one is hidden from them (security.modules.ioc_visibility).
    # Never shown: it would tell that user the hidden record exists.
    separate_for_id: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    created_by: Mapped[User | None] = relationship(lazy="joined")

    def is_active(self, now: datetime | None = None) -> bool:
        """An expired IOC stays stored (history) but no longer marks anything as bad."""
        return self.expires_at is None or self.expires_at > (now or utcnow())

    def touch(self, now: datetime | None = None) -> None:
        """Record an edit: bump the optimistic-concurrency version and the update time."""
        self.version += 1
        self.updated_at = now or utcnow()


# What an IOC shows of its creator is the username: reads take this option instead of the
# relationship's own joined load, which reads the user's whole row (password hash, MFA
# secret) to say so.
CREATOR_NAME = joinedload(Ioc.created_by).load_only(User.username)


class IncidentIoc(Model):
    """An IOC observed in, or relevant to, an incident."""

    __tablename__ = "incident_iocs"

    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True
    )
    ioc_id: Mapped[int] = mapped_column(
        ForeignKey("iocs.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    linked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    linked_at: Mapped[datetime] = mapped_column(default=utcnow)

    indicator: Mapped[Ioc] = relationship(lazy="joined")
