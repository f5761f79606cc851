"""Accounts, their bearer tokens (the secret itself is never stored, only its SHA-256) and
the hashes of their earlier passwords (the password policy's history)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, func, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Model, utcnow


class User(Model):
    __tablename__ = "users"
    # Usernames are unique regardless of case, enforced by the database, not only by a check.
    __table_args__ = (Index("uq_users_username_lower", func.lower(text("username")), unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    # When the current password was set: the optional maximum age counts from here.
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())


class AuthToken(Model):
    __tablename__ = "auth_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    created_ip: Mapped[str | None] = mapped_column(String(64))

    user: Mapped[User] = relationship(lazy="joined")


class PasswordHistoryEntry(Model):
    """One of a user's earlier passwords, as its argon2 hash (never the password itself)."""

    __tablename__ = "password_history"
    __table_args__ = (Index("ix_password_history_user_set", "user_id", "set_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    password_hash: Mapped[str] = mapped_column(String(255))
    # When this password was set (it was replaced later).
    set_at: Mapped[datetime]
