"""Failed logins and the temporary blocks they cause, shared by every worker via PostgreSQL."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Model, utcnow


class LoginFailure(Model):
    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_username_time", "username", "occurred_at"),
        Index("ix_login_failures_ip_time", "ip", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(255))
    ip: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuthBlock(Model):
    __tablename__ = "auth_blocks"
    __table_args__ = (Index("ix_auth_blocks_subject", "scope", "subject", "blocked_until"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(String(255))
    failure_count: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    blocked_until: Mapped[datetime]
    lifted_at: Mapped[datetime | None]
    lifted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    def is_active(self, now: datetime) -> bool:
        return self.lifted_at is None and self.blocked_until > now
