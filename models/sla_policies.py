"""SLA policies: response and resolution targets per severity, one immutable row per version.

A version never changes once written: an incident keeps the version it was opened under
(``Incident.sla_policy_id``), so changing the policy is writing its next version, and the
targets of incidents opened before stay as they were. The first version is seeded by the
migration that made the table, from the targets the product shipped with.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Model, utcnow


class SlaPolicy(Model):
    """``targets``: ``{severity: {"response_minutes": n, "resolution_minutes": m}}`` for
    every severity; the clock of both starts when the incident is opened."""

    __tablename__ = "sla_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(unique=True)
    targets: Mapped[dict] = mapped_column(JSONB)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def targets_for(self, severity: str) -> tuple[timedelta, timedelta]:
        """(time to first response, time to resolution) for an incident of ``severity``."""
        target = self.targets[severity]
        return (
            timedelta(minutes=target["response_minutes"]),
            timedelta(minutes=target["resolution_minutes"]),
        )
