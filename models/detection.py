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

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, String, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
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
    """Matches of one rule on one group key, counted.

    ``grouping`` is true while the alert absorbs new matches of its group; the partial
    unique index on ``(rule_id, group_key) WHERE grouping`` is what makes concurrent
    ingestion fold into one row (``INSERT ... ON CONFLICT DO UPDATE``). It turns false on
    dismissal, and when the group has been quiet longer than the grouping window.
    ``version`` counts analyst edits, not matches, so a flood does not stale an ETag.
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
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    rule_id: Mapped[int | None] = mapped_column(
        ForeignKey("detection_rules.id", ondelete="SET NULL"), index=True
    )
    rule_name: Mapped[str] = mapped_column(String(200))
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
