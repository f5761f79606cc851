"""Incidents, their timeline, and the idempotency records behind retried creates.

The status workflow and the SLA due times are business rules of the incident itself, so
they live here (``Incident.transition_to``, ``Incident.sla``), not in the resources. The
SLA targets are the policy version the incident was opened under (``models/sla_policies.py``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Computed, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import IllegalTransition, Model, utcnow
from models.sla_policies import SlaPolicy
from models.users import User

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "new": ("triaged", "false_positive"),
    "triaged": ("investigating", "false_positive"),
    "investigating": ("contained", "false_positive"),
    "contained": ("resolved",),
    "resolved": ("closed", "investigating"),
    "closed": ("investigating",),
    "false_positive": (),
}
# Statuses that stop the resolution clock.
RESOLVED_STATUSES = frozenset({"resolved", "closed", "false_positive"})


class Incident(Model):
    __tablename__ = "incidents"
    __table_args__ = (
        Index("ix_incidents_created_id", "created_at", "id"),
        Index("ix_incidents_search", "search_vector", postgresql_using="gin"),
        Index("ix_incidents_tags", "tags", postgresql_using="gin"),
        Index("ix_incidents_techniques", "techniques", postgresql_using="gin"),
        Index(
            "ix_incidents_custom_fields",
            "custom_fields",
            postgresql_using="gin",
            postgresql_ops={"custom_fields": "jsonb_path_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    severity: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[str] = mapped_column(String(32), default="new", index=True)
    tlp: Mapped[str] = mapped_column(String(16), default="amber")
    reporter_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    responded_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    # The newest version when the row is written (migration 0011's function), then fixed.
    sla_policy_id: Mapped[int] = mapped_column(
        ForeignKey("sla_policies.id"),
        index=True,
        server_default=text("current_sla_policy_id()"),
    )
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default=text("'{}'"))
    # ATT&CK technique ids (T1566, T1059.001), checked by security.modules.attack.
    techniques: Mapped[list[str]] = mapped_column(
        ARRAY(Text), default=list, server_default=text("'{}'")
    )
    # Set when this incident was closed as a duplicate of another (its work moved there).
    merged_into_id: Mapped[int | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="SET NULL")
    )
    # Values of the admin-defined custom fields, {name: value} (models/custom_fields.py).
    custom_fields: Mapped[dict] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    # Searched by the database, never read here: deferred, so loading an incident does
    # not carry its whole tsvector (as long as the text) into Python.
    search_vector = mapped_column(
        TSVECTOR,
        Computed(
            "to_tsvector('english', coalesce(title, '') || ' ' || coalesce(description, ''))",
            persisted=True,
        ),
        deferred=True,
    )

    reporter: Mapped[User] = relationship(foreign_keys=[reporter_id], lazy="joined")
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id], lazy="joined")
    sla_policy: Mapped[SlaPolicy] = relationship(lazy="joined")

    def allowed_transitions(self) -> tuple[str, ...]:
        return TRANSITIONS[self.status]

    def transition_to(self, status: str, now: datetime | None = None) -> str:
        """Move along the workflow, returning the previous status.

        Raises :class:`IllegalTransition` (and changes nothing) for a step the workflow lacks.
        """
        if status not in TRANSITIONS[self.status]:
            raise IllegalTransition(
                f"incident {self.id}", self.status, status, TRANSITIONS[self.status]
            )
        now = now or utcnow()
        previous, self.status = self.status, status
        if self.responded_at is None:
            self.responded_at = now
        if status in RESOLVED_STATUSES:
            self.resolved_at = self.resolved_at or now
        else:
            self.resolved_at = None
        self.touch(now)
        return previous

    def touch(self, now: datetime | None = None) -> None:
        """Record a change: bump the optimistic-concurrency version and the update time."""
        self.version += 1
        self.updated_at = now or utcnow()

    def close_as_duplicate(self, target_id: int, now: datetime | None = None) -> str:
        """Close this incident as a duplicate of ``target_id`` whatever its status (its work
        now lives there), returning the previous status; 409 if it already was merged."""
        if self.merged_into_id is not None or target_id == self.id:
            raise IllegalTransition(f"incident {self.id}", self.status, "closed", ())
        now = now or utcnow()
        previous, self.status = self.status, "closed"
        self.merged_into_id = target_id
        self.responded_at = self.responded_at or now
        self.resolved_at = self.resolved_at or now
        self.touch(now)
        return previous

    def sla(self, now: datetime | None = None) -> dict:
        """Due times by severity under the incident's policy version, measured from
        creation, and whether each was missed."""
        now = now or utcnow()
        response_target, resolution_target = self.sla_policy.targets_for(self.severity)
        response_due = self.created_at + response_target
        resolution_due = self.created_at + resolution_target
        return {
            "response_due": response_due,
            "resolution_due": resolution_due,
            "responded_at": self.responded_at,
            "resolved_at": self.resolved_at,
            "response_breached": (self.responded_at or now) > response_due,
            "resolution_breached": (self.resolved_at or now) > resolution_due,
            "policy_version": self.sla_policy.version,
        }


class TimelineEntry(Model):
    __tablename__ = "incident_timeline"
    __table_args__ = (
        # The few entries that reopen an incident, for the reopen rate of /reports/metrics.
        Index(
            "ix_incident_timeline_reopens",
            "incident_id",
            postgresql_where=text(
                "kind = 'status_change' AND from_status IN ('resolved', 'closed')"
            ),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str | None] = mapped_column(String(32))
    changes: Mapped[dict] = mapped_column(JSONB, default=dict)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    actor: Mapped[User | None] = relationship(lazy="joined")


class IdempotencyRecord(Model):
    """The first answer to a create request, replayed when a client retries with the same key."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("user_id", "scope", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None]
    response_body: Mapped[dict | None] = mapped_column(JSONB)
    response_headers: Mapped[dict | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
