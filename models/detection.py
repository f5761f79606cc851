"""Detection: threat rules (seed form or Sigma) and the alerts their matches raise.

A rule keeps what it was created from (the Sigma YAML, or the seed-form detection as
JSON); the compiled form lives only in process memory (:mod:`security.modules.detection`),
keyed by ``(id, version)``, so every edit bumps ``version``. The alert status workflow
and whether an alert still absorbs new matches are rules of the alert itself, so they
live here; grouping and evaluation live in ``security/``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, INET, JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import IllegalTransition, Model, utcnow
from models.users import User
from models.vocabulary import SEVERITIES

ALERT_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "open": ("acknowledged", "dismissed", "escalated"),
    "acknowledged": ("dismissed", "escalated"),
    "dismissed": (),
    "escalated": (),
}
# Statuses in which an alert keeps counting repeated matches of its group; a dismissed
# alert never does, so a new match after a dismissal raises a new alert.
GROUPING_STATUSES = frozenset({"open", "acknowledged", "escalated"})
SEVERITY_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}


class DetectionRule(Model):
    """A threat rule. ``source`` holds a Sigma rule's YAML as given; ``detection`` a seed
    rule's detection object. ``group_by`` names the event fields whose values group
    repeated matches into one alert (None: the default host, user and source IP)."""

    __tablename__ = "detection_rules"
    __table_args__ = (Index("ix_detection_rules_created_id", "created_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    severity: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    source: Mapped[str | None] = mapped_column(Text)
    detection: Mapped[dict | None] = mapped_column(JSONB)
    sigma_id: Mapped[str | None] = mapped_column(String(64), index=True)
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    group_by: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    version: Mapped[int] = mapped_column(default=1)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    created_by: Mapped[User | None] = relationship(lazy="joined")

    def touch(self, now: datetime | None = None) -> None:
        """Record an edit: bump the version (which also retires the compiled form)."""
        self.version += 1
        self.updated_at = now or utcnow()


class Alert(Model):
    """Matches of one rule on one group key, counted; or an alert another tool (a SIEM,
    EDR or SOAR: ``source``) sent under its own id (``source_ref``), counted per resend.

    ``grouping`` is true while the alert absorbs new matches of its group; the partial
    unique index on ``(rule_id, group_key) WHERE grouping`` is what makes concurrent
    ingestion fold into one row (``INSERT ... ON CONFLICT DO UPDATE``). It turns false on
    dismissal, and when the group has been quiet longer than the grouping window.
    ``version`` counts analyst edits, not matches, so a flood does not stale an ETag.
    A tool's alert never groups; ``uq_alerts_source_ref`` folds its resends instead.
    ``merge_carried`` is what merging the alert into its incident added to the incident
    (tags, techniques, IOC links, the status it had), so an unmerge removes exactly that.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_created_id", "created_at", "id"),
        Index(
            "uq_alerts_grouping",
            "rule_id",
            "group_key",
            unique=True,
            postgresql_where=text("grouping"),
        ),
        Index("uq_alerts_source_ref", "source", "source_ref", unique=True),
        Index("ix_alerts_tags", "tags", postgresql_using="gin"),
        Index("ix_alerts_techniques", "techniques", postgresql_using="gin"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    rule_id: Mapped[int | None] = mapped_column(
        ForeignKey("detection_rules.id", ondelete="SET NULL"), index=True
    )
    rule_name: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(200), default="", server_default="")
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    tlp: Mapped[str] = mapped_column(String(16), default="amber", server_default="amber")
    source: Mapped[str | None] = mapped_column(String(64))
    source_ref: Mapped[str | None] = mapped_column(String(255))
    occurred_at: Mapped[datetime | None]
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default=text("'{}'"))
    techniques: Mapped[list[str]] = mapped_column(
        ARRAY(Text), default=list, server_default=text("'{}'")
    )
    reported_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    merge_carried: Mapped[dict | None] = mapped_column(JSONB)
    severity: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    grouping: Mapped[bool] = mapped_column(Boolean, default=True)
    group_key: Mapped[str] = mapped_column(String(64))
    group_values: Mapped[dict] = mapped_column(JSONB, default=dict)
    count: Mapped[int] = mapped_column(BigInteger, default=1)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    sample_event: Mapped[Any] = mapped_column(JSONB)
    matched: Mapped[dict] = mapped_column(JSONB, default=dict)
    incident_id: Mapped[int | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="SET NULL"), index=True
    )
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    observables: Mapped[list[AlertObservable]] = relationship(
        order_by="AlertObservable.id", lazy="selectin", viewonly=True
    )

    def allowed_transitions(self) -> tuple[str, ...]:
        return ALERT_TRANSITIONS[self.status]

    def transition_to(self, status: str, now: datetime | None = None) -> str:
        """Move along the workflow, returning the previous status; a dismissed alert stops
        grouping. Raises :class:`~models.base.IllegalTransition` (changing nothing) otherwise."""
        if status not in ALERT_TRANSITIONS[self.status]:
            raise IllegalTransition(
                f"alert {self.id}", self.status, status, ALERT_TRANSITIONS[self.status]
            )
        previous, self.status = self.status, status
        self.grouping = self.grouping and status in GROUPING_STATUSES
        self.version += 1
        self.updated_at = now or utcnow()
        return previous

    def merge_into(self, incident_id: int, carried: dict, now: datetime | None = None) -> None:
        """Link the alert to an incident it was merged into, remembering what the merge
        carried (and the status it had, which an unmerge restores)."""
        previous = self.transition_to("escalated", now)
        self.incident_id = incident_id
        self.merge_carried = {**carried, "status": previous}

    def unmerge(self, now: datetime | None = None) -> dict:
        """Undo :meth:`merge_into`: unlinked, back in the status it had; returns what the
        merge carried. An alert escalated before merges were recorded goes back to open."""
        carried = self.merge_carried or {}
        self.status = carried.get("status", "open")
        self.incident_id = None
        self.merge_carried = None
        self.version += 1
        self.updated_at = now or utcnow()
        return carried


class AlertObservable(Model):
    """One observable of an alert (an IOC-typed value, or a file name, host name, user,
    process or registry key), with what the IOC store knew of it when it arrived: the
    matching IOCs' ids (every reader may see them) and whether an active one marks it bad.
    ``address`` mirrors IP and CIDR values so network containment is one GiST scan."""

    __tablename__ = "alert_observables"
    __table_args__ = (
        UniqueConstraint("alert_id", "type", "value", name="uq_alert_observables_alert_type_value"),
        Index("ix_alert_observables_type_value", "type", "value"),
        Index(
            "ix_alert_observables_address",
            "address",
            postgresql_using="gist",
            postgresql_ops={"address": "inet_ops"},
            postgresql_where=text("address IS NOT NULL"),
        ),
        Index("ix_alert_observables_ioc_ids", "ioc_ids", postgresql_using="gin"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(INET)
    known_bad: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    ioc_ids: Mapped[list[int]] = mapped_column(
        ARRAY(BigInteger), default=list, server_default=text("'{}'")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
