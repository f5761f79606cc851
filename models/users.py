"""Accounts, their bearer tokens (the secret itself is never stored, only its SHA-256),
the hashes of their earlier passwords (the password policy's history), and the second
factor's and password reset's one-time secrets (hashed too), and the policy naming the
roles that must use a second factor."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Model, utcnow


class User(Model):
    __tablename__ = "users"
    # Usernames are unique regardless of case, enforced by the database, not only by a check.
    __table_args__ = (
        Index("uq_users_username_lower", func.lower(text("username")), unique=True),
        UniqueConstraint("sso_issuer", "sso_subject", name="uq_users_sso_identity"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    # When the current password was set: the optional maximum age counts from here.
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    display_name: Mapped[str | None] = mapped_column(String(128))
    email: Mapped[str | None] = mapped_column(String(254))
    # Counts admin edits (role, activation, profile): the ETag an If-Match names.
    version: Mapped[int] = mapped_column(default=1, server_default=text("1"))
    # Set by an admin's reset: the next login must choose a new password first.
    must_change_password: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    # The TOTP secret, Fernet-encrypted (security/outbound/secrets.py); enabled once confirmed.
    mfa_secret: Mapped[str | None] = mapped_column(Text)
    mfa_enabled_at: Mapped[datetime | None]
    # The last TOTP time step accepted: a code of that step or an earlier one is a replay.
    mfa_last_step: Mapped[int | None] = mapped_column(BigInteger)
    # A single-sign-on account: the identity provider's issuer and subject. No local password.
    sso_issuer: Mapped[str | None] = mapped_column(String(255))
    sso_subject: Mapped[str | None] = mapped_column(String(255))

    @property
    def mfa_enabled(self) -> bool:
        return self.mfa_enabled_at is not None

    @property
    def is_sso(self) -> bool:
        return self.sso_subject is not None


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
    user_agent: Mapped[str | None] = mapped_column(String(255))

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


class MfaRecoveryCode(Model):
    """One of a user's one-time recovery codes, as its argon2 hash; ``used_at`` once spent."""

    __tablename__ = "mfa_recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(255))
    used_at: Mapped[datetime | None]


class MfaChallenge(Model):
    """The short-lived proof that a password was right, waiting for the second factor."""

    __tablename__ = "mfa_challenges"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    challenge_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_ip: Mapped[str | None] = mapped_column(String(64))

    user: Mapped[User] = relationship(lazy="joined")


class PasswordReset(Model):
    """A one-time, expiring password reset token an admin issued (its SHA-256 only)."""

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(lazy="joined")


class MfaPolicy(Model):
    """The roles whose login sessions grant nothing until a second factor is on.

    One row (id 1), edited by admins at ``/auth/mfa-policy``: the only source of the rule,
    read with every login-token lookup (``auth.resolve_login_token``). No row yet means no
    role requires a factor; the first edit creates it."""

    __tablename__ = "mfa_policy"
    __table_args__ = (CheckConstraint("id = 1", name="ck_mfa_policy_single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    required_roles: Mapped[list[str]] = mapped_column(
        ARRAY(Text), default=list, server_default=text("'{}'")
    )
    # Counts edits: the ETag an If-Match names.
    version: Mapped[int] = mapped_column(default=1, server_default=text("1"))
    updated_at: Mapped[datetime | None]
    updated_by: Mapped[str | None] = mapped_column(String(64))
