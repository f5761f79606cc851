"""API keys and the credential usage log.

An API key is ``sak_<8 characters>_<secret>``: the first part (the prefix) is stored in
clear to find the key and to show it in lists; of the secret only its SHA-256 is kept.
Issuing, verifying, rotating and analysing keys lives in
:mod:`security.modules.credentials`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Model, utcnow
from models.users import User


class ApiKey(Model):
    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_user_created", "user_id", "created_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    rotated_at: Mapped[datetime | None]
    # After a rotation the old secret keeps working until this deadline, then never again.
    previous_secret_hash: Mapped[str | None] = mapped_column(String(64))
    previous_valid_until: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    last_used_ip: Mapped[str | None] = mapped_column(String(64))

    user: Mapped[User] = relationship(lazy="joined")

    def state(self, now: datetime | None = None) -> str:
        """``active``, ``revoked`` or ``expired``: why a key does or does not work."""
        now = now or utcnow()
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


class CredentialUsage(Model):
    """One use (or attempted use) of a credential: an environment secret or an API key."""

    __tablename__ = "credential_usage"
    __table_args__ = (
        Index("ix_credential_usage_name_time", "credential_kind", "credential_name", "occurred_at"),
        Index("ix_credential_usage_key_time", "api_key_id", "occurred_at"),
        Index("ix_credential_usage_time", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    credential_kind: Mapped[str] = mapped_column(String(16))
    credential_name: Mapped[str] = mapped_column(String(64))
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    component: Mapped[str] = mapped_column(String(64))
    operation: Mapped[str] = mapped_column(String(128))
    ip: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    # Why a use failed or was notable: "revoked", "expired", "rotated_out", "previous_secret",
    # "forbidden" (the key opened but the request was refused with 403).
    reason: Mapped[str | None] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
