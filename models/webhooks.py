"""Webhooks: the subscriptions, their outbox of deliveries, and the marks that make a
timer's event happen once.

A :class:`WebhookDelivery` row is written in the transaction of the change it announces
(``security/modules/webhooks.record_deliveries``), so it exists exactly when the change
committed; the worker then moves it through ``models.vocabulary.DELIVERY_STATUSES``. Its
``message_id`` is the Standard Webhooks ``webhook-id``: fixed when the row is written, the
same on every attempt, so a receiver can drop a repeat.

:class:`SlaTimerMark` and :class:`IocExpiryNotice` are written by the timers under a
unique key: whichever worker inserts the row emits the event, any other finds it there.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, LargeBinary, String, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Model, utcnow


class Webhook(Model):
    """A subscription: where to send which events, signed with its encrypted secret."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(Text)
    event_types: Mapped[list[str]] = mapped_column(ARRAY(Text))
    min_severity: Mapped[str | None] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(default=True)
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Model):
    """One event for one webhook: the payload as signed, and how its attempts went."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status IN ('pending', 'delivering')"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(
        ForeignKey("webhooks.id", ondelete="CASCADE"), index=True
    )
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None]
    response_code: Mapped[int | None]
    latency_ms: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]

    webhook: Mapped[Webhook] = relationship(lazy="joined")


class SlaTimerMark(Model):
    """That an incident's SLA ``kind`` (response, resolution) reached ``stage``
    (approaching, breached): the event was emitted, never again."""

    __tablename__ = "sla_timer_marks"

    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    stage: Mapped[str] = mapped_column(String(16), primary_key=True)
    marked_at: Mapped[datetime] = mapped_column(default=utcnow)


class IocExpiryNotice(Model):
    """That an IOC's expiry (``expires_at``) was announced; a later, new expiry is another."""

    __tablename__ = "ioc_expiry_notices"

    ioc_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("iocs.id", ondelete="CASCADE"), primary_key=True
    )
    expires_at: Mapped[datetime] = mapped_column(primary_key=True)
    noticed_at: Mapped[datetime] = mapped_column(default=utcnow)
