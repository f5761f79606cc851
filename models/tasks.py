"""Tasks of an incident: the checklist an analyst works through, one row per task.

``mandatory`` tasks still open (``OPEN_TASK_STATUSES``) keep the incident from being
resolved or closed (``security/modules/incidents.change_status``). The partial index
``ix_tasks_open_queue`` is the work queue (``GET /tasks?assignee=me&status=open``): one
index range per assignee, already in the page's order, so a page reads ``limit`` rows
however many tasks exist.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Model, utcnow
from models.users import User

OPEN_TASKS_CONDITION = "status IN ('todo', 'in_progress')"


class Task(Model):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_incident_position", "incident_id", "position", "id"),
        Index(
            "ix_tasks_open_queue",
            "assignee_id",
            "created_at",
            "id",
            postgresql_where=text(OPEN_TASKS_CONDITION),
        ),
        Index("ix_tasks_assignee_created", "assignee_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="todo")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    due_at: Mapped[datetime | None]
    mandatory: Mapped[bool] = mapped_column(Boolean, default=False)
    position: Mapped[int] = mapped_column(default=0)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    assignee: Mapped[User | None] = relationship(lazy="joined")

    def touch(self, now: datetime | None = None) -> None:
        """Record a change: bump the optimistic-concurrency version and the update time."""
        self.version += 1
        self.updated_at = now or utcnow()
