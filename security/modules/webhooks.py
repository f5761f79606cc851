"""Webhooks: the subscriptions, the outbox that records a delivery with each change, and
the delivery itself (signed, retried, dead-lettered).

The outbox: :func:`record_deliveries` subscribes to :data:`security.events.recorded`, so
it runs inside the transaction of the change. For each webhook that wants the event it
writes a :class:`~models.WebhookDelivery` row and queues its job in that same transaction
(:func:`security.modules.jobs.defer_in_transaction`): a change that rolls back leaves
neither, a change that commits always has both.

A delivery is at least once: :func:`deliver` claims the row with a lease (committed
before the request is sent), posts the payload signed per Standard Webhooks with the
``standardwebhooks`` library, and records the outcome. A failed attempt is retried after
an exponential backoff with jitter, up to ``WEBHOOK_MAX_ATTEMPTS``; then the delivery is
``failed``, the dead letter, until an admin redelivers it. A worker killed mid-request
leaves its lease to expire, and the timers (:mod:`security.modules.timers`) queue the
delivery again; its ``webhook-id`` (``message_id``) never changes, so a receiver that saw
the first attempt can drop the second.

What leaves the product: only events about an incident, an alert or an IOC, never one
whose subject is TLP red, and only that subject's own facts plus the event's data.
Every request goes through :mod:`security.outbound` (the SSRF guard after DNS and on every
redirect, timeouts, no environment proxies).
"""

from __future__ import annotations

import base64
import json
import random
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import Flask, current_app
from sqlalchemy import Select, case, func, or_, select, text, update
from standardwebhooks.webhooks import Webhook as Signer

from models import Alert, Incident, Ioc, Webhook, WebhookDelivery, db, utcnow
from models.detection import SEVERITY_RANK
from models.vocabulary import DELIVERY_STATUSES
from security.errors import Conflict, Invalid
from security.events import Actor, Event, EventType, emit, emit_all
from security.modules import jobs
from security.modules.lookup import first_or_404
from security.modules.utils import json_default
from security.outbound.http import Deadlines, checked_session
from security.outbound.secrets import (
    EncryptionUnavailable,
    UndecryptableSecret,
    decrypt_secret,
    encrypt_secret,
    reencrypt_tokens,
)
from security.outbound.ssrf import OutboundUrlRefused, check_outbound_url, configured_policy

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, no secret
SECRET_BYTES = 32
USER_AGENT = "soc-incident-api-webhooks/1"
ERROR_MAX = 2_000
TEST_EVENT = "webhook.test"

SUBSCRIBABLE_EVENTS: tuple[EventType, ...] = (
    EventType.INCIDENT_CREATED,
    EventType.INCIDENT_EDITED,
    EventType.INCIDENT_ASSIGNED,
    EventType.INCIDENT_STATUS_CHANGED,
    EventType.INCIDENT_COMMENTED,
    EventType.INCIDENT_IOCS_LINKED,
    EventType.INCIDENT_SLA_APPROACHING,
    EventType.INCIDENT_SLA_BREACHED,
    EventType.ALERT_CREATED,
    EventType.ALERT_STATUS_CHANGED,
    EventType.ALERT_ESCALATED,
    EventType.IOC_EXPIRED,
)
"""The events a webhook may subscribe to: those about one incident, alert or IOC."""
SUBSCRIBABLE_NAMES = tuple(event.value for event in SUBSCRIBABLE_EVENTS)
SETTINGS = ("name", "url", "event_types", "min_severity", "enabled")


# --- the subscriptions --------------------------------------------------------------------


def webhooks() -> Select:
    """Every webhook, for a keyset-paged list."""
    return select(Webhook)


def get_webhook(webhook_id: int, *, lock: bool = False) -> Webhook:
    return first_or_404(
        select(Webhook).where(Webhook.id == webhook_id),
        f"Webhook {webhook_id} does not exist.",
        lock=lock,
    )


def check_target(url: str) -> None:
    """422 unless ``url`` may receive deliveries: HTTPS to a public address, or an
    internal host named in ``OUTBOUND_ALLOWED_HOSTS`` (which may also use plain HTTP)."""
    policy = configured_policy()
    try:
        check_outbound_url(url, policy)
    except OutboundUrlRefused as error:
        raise Invalid(f"The webhook URL is refused: {error}", field="url") from None
    parts = urlsplit(url)
    if parts.scheme.lower() != "https" and not policy.lists((parts.hostname or "").lower()):
        raise Invalid(
            "The webhook URL must use https (plain http only for a host in "
            "OUTBOUND_ALLOWED_HOSTS).",
            field="url",
        )


def _new_secret() -> str:
    """A signing secret in the Standard Webhooks form: ``whsec_`` and base64 bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _store_secret(webhook: Webhook, secret: str) -> None:
    try:
        webhook.secret_encrypted = encrypt_secret({"secret": secret})
    except EncryptionUnavailable as error:
        raise Invalid(f"Cannot store the webhook's secret: {error}.") from None


@dataclass(frozen=True)
class CreatedWebhook:
    """A new webhook and the only plain copy of its signing secret, for the one answer."""

    webhook: Webhook
    secret: str


def create_webhook(data: Mapping[str, Any]) -> CreatedWebhook:
    """A new webhook and its signing secret (answered once; stored only encrypted)."""
    check_target(data["url"])
    webhook = Webhook(**{name: data[name] for name in SETTINGS if name in data})
    secret = _new_secret()
    _store_secret(webhook, secret)
    db.session.add(webhook)
    db.session.flush()
    emit(EventType.WEBHOOK_CREATED, webhook.id, {"name": webhook.name, "url": webhook.url})
    return CreatedWebhook(webhook, secret)


def update_webhook(webhook: Webhook, data: Mapping[str, Any]) -> None:
    """Apply an edit (the row is locked by the caller); the URL is checked again."""
    if "url" in data:
        check_target(data["url"])
    edited = sorted(
        name for name in SETTINGS if name in data and getattr(webhook, name) != data[name]
    )
    for name in edited:
        setattr(webhook, name, data[name])
    webhook.version += 1
    webhook.updated_at = utcnow()
    emit(EventType.WEBHOOK_EDITED, webhook.id, {"fields": edited})


def reencrypt_webhook_secrets(actor: Actor) -> int:
    """Encrypt every webhook's secret again under the first key (``flask
    reencrypt-secrets``; the caller commits); all or nothing, one event per webhook."""
    hooks = db.session.scalars(select(Webhook).with_for_update()).all()
    tokens = reencrypt_tokens(
        {hook: hook.secret_encrypted for hook in hooks}, lambda hook: f"webhook {hook.name!r}"
    )
    for hook, token in tokens.items():
        hook.secret_encrypted = token
    changes = [(hook.id, {"fields": ["secret_encrypted"]}) for hook in tokens]
    emit_all(EventType.WEBHOOK_EDITED, changes, actor=actor)
    return len(tokens)


def delete_webhook(webhook: Webhook) -> None:
    """Remove the webhook and its deliveries."""
    emit(EventType.WEBHOOK_DELETED, webhook.id, {"name": webhook.name})
    db.session.delete(webhook)


def deliveries_of(webhook: Webhook) -> Select:
    """The webhook's deliveries, for a keyset-paged list."""
    return select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id)


def get_delivery(delivery_id: int, *, lock: bool = False) -> WebhookDelivery:
    return first_or_404(
        select(WebhookDelivery).where(WebhookDelivery.id == delivery_id),
        f"Delivery {delivery_id} does not exist.",
        lock=lock,
    )


def send_test(webhook: Webhook) -> WebhookDelivery:
    """Queue a ``webhook.test`` delivery to the webhook now, whatever it subscribes to."""
    payload = {"type": TEST_EVENT, "timestamp": utcnow(), "data": {"webhook": webhook.id}}
    delivery = _add_delivery(webhook, TEST_EVENT, payload)
    emit(EventType.WEBHOOK_TESTED, webhook.id, {"delivery": delivery.id})
    return delivery


def redeliver(delivery: WebhookDelivery) -> None:
    """Send a delivery again (a dead letter, or one an admin wants repeated): a fresh set
    of attempts, the same ``webhook-id``. One already being sent is a conflict."""
    if delivery.status == "delivering" and (delivery.lease_until or utcnow()) > utcnow():
        raise Conflict(f"Delivery {delivery.id} is being sent right now.")
    delivery.status = "pending"
    delivery.attempts = 0
    delivery.next_attempt_at = utcnow()
    delivery.lease_until = None
    jobs.defer_in_transaction(jobs.DELIVER_TASK, delivery_id=delivery.id)
    emit(EventType.DELIVERY_REDELIVERED, delivery.id, {"webhook": delivery.webhook_id})


# --- the outbox ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """What an event is about, as far as it may leave the product."""

    severity: str | None
    tlp: str
    facts: dict[str, Any]
    assignee_id: int | None = None


def _incident_subject(incident_id: Any) -> Subject | None:
    incident = db.session.get(Incident, incident_id)
    if incident is None:
        return None
    facts = {
        "id": incident.id,
        "title": incident.title,
        "severity": incident.severity,
        "status": incident.status,
        "tlp": incident.tlp,
        "assignee": incident.assignee.username if incident.assignee else None,
    }
    return Subject(incident.severity, incident.tlp, {"incident": facts}, incident.assignee_id)


def _alert_subject(alert_id: Any) -> Subject | None:
    alert = db.session.get(Alert, alert_id)
    if alert is None:
        return None
    facts = {
        "id": alert.id,
        "rule_name": alert.rule_name,
        "severity": alert.severity,
        "status": alert.status,
    }
    return Subject(alert.severity, "amber", {"alert": facts})


def _ioc_subject(ioc_id: Any) -> Subject | None:
    ioc = db.session.get(Ioc, ioc_id)
    if ioc is None:
        return None
    facts = {
        "id": ioc.id,
        "type": ioc.type,
        "value": ioc.value,
        "tlp": ioc.tlp,
        "expires_at": ioc.expires_at,
    }
    return Subject(None, ioc.tlp, {"ioc": facts})


_SUBJECTS = {"incident": _incident_subject, "alert": _alert_subject, "ioc": _ioc_subject}


def subject_of(event: Event) -> Subject | None:
    """What ``event`` is about (None for a subject gone or of no subscribable kind)."""
    reader = _SUBJECTS.get(event.subject_type)
    if reader is None or event.subject_id is None:
        return None
    return reader(event.subject_id)


def matches(
    event_types: Sequence[str], min_severity: str | None, event: Event, subject: Subject
) -> bool:
    """The filters a webhook and a notification channel share: the event's type, and the
    subject's severity at least ``min_severity`` (a subject without one passes only when
    no minimum is set)."""
    if event.type.value not in event_types:
        return False
    if min_severity is None:
        return True
    return subject.severity is not None and (
        SEVERITY_RANK[subject.severity] >= SEVERITY_RANK[min_severity]
    )


def _payload(event: Event, subject: Subject) -> dict[str, Any]:
    return {
        "type": event.type.value,
        "timestamp": event.occurred_at,
        "data": {**subject.facts, "change": dict(event.data)},
    }


def _add_delivery(webhook: Webhook, event_type: str, payload: dict[str, Any]) -> WebhookDelivery:
    """One outbox row and its job, in the current transaction."""
    delivery = WebhookDelivery(
        webhook_id=webhook.id,
        message_id=f"msg_{secrets.token_hex(16)}",
        event_type=event_type,
        # Stored as it will be signed: JSON types only (times as ISO 8601 text).
        payload=json.loads(json.dumps(payload, default=json_default)),
        next_attempt_at=utcnow(),
    )
    db.session.add(delivery)
    db.session.flush()
    jobs.defer_in_transaction(jobs.DELIVER_TASK, delivery_id=delivery.id)
    return delivery


def record_deliveries(app: Flask, events: Sequence[Event]) -> None:
    """Subscriber of :data:`security.events.recorded`: a delivery per event and webhook
    that wants it, written with the change (TLP red subjects never leave)."""
    wanted = [event for event in events if event.type in SUBSCRIBABLE_EVENTS]
    if not wanted:
        return
    names = list({event.type.value for event in wanted})
    subscribers = list(
        db.session.scalars(
            select(Webhook).where(Webhook.enabled.is_(True), Webhook.event_types.overlap(names))
        )
    )
    if not subscribers:
        return
    for event in wanted:
        subject = subject_of(event)
        if subject is None or subject.tlp == "red":
            continue
        for webhook in subscribers:
            if matches(webhook.event_types, webhook.min_severity, event, subject):
                _add_delivery(webhook, event.type.value, _payload(event, subject))


# --- the delivery -------------------------------------------------------------------------


def backoff(attempt: int, base_seconds: float, max_seconds: float) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1, 2, ...): exponential with
    "equal jitter", half fixed and half random, so each wait is at least as long as the one
    before it and retries of many deliveries do not arrive in step."""
    ceiling = min(max_seconds, base_seconds * 2 ** (attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not a secret


def _claim(delivery_id: int) -> bool:
    """Take the delivery for one attempt (committed at once, so other workers see it):
    only one due and pending, or one whose previous worker's lease ran out."""
    now = utcnow()
    lease = timedelta(seconds=current_app.config["WEBHOOK_LEASE_SECONDS"])
    claimed = db.session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            or_(
                (WebhookDelivery.status == "pending") & (WebhookDelivery.next_attempt_at <= now),
                (WebhookDelivery.status == "delivering") & (WebhookDelivery.lease_until < now),
            ),
        )
        .values(
            status="delivering",
            lease_until=now + lease,
            attempts=WebhookDelivery.attempts + 1,
        )
        .returning(WebhookDelivery.id)
    ).first()
    db.session.commit()
    return claimed is not None


@dataclass(frozen=True)
class Attempt:
    """How one request went: the answer's status (None without one), its time, and why
    it failed (None when it did not)."""

    response_code: int | None
    latency_ms: int
    error: str | None


def signed_headers(secret: str, message_id: str, body: str, at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers for ``body`` sent at ``at``."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Signer(secret).sign(message_id, at, body),
    }


def _send(delivery: WebhookDelivery) -> Attempt:
    webhook = delivery.webhook
    try:
        secret = decrypt_secret(webhook.secret_encrypted)["secret"]
    except UndecryptableSecret as error:  # the key changed: an attempt that fails, not a crash
        return Attempt(None, 0, str(error))
    body = json.dumps(delivery.payload, separators=(",", ":"))
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        **signed_headers(secret, delivery.message_id, body, utcnow()),
    }
    timeout = current_app.config["WEBHOOK_TIMEOUT_SECONDS"]
    deadlines = Deadlines(
        total_seconds=timeout,
        request_seconds=timeout,
        total_exceeded=f"the delivery took longer than WEBHOOK_TIMEOUT_SECONDS ({timeout})",
        request_exceeded=f"the receiver took longer than WEBHOOK_TIMEOUT_SECONDS ({timeout})",
    )
    started = time.monotonic()
    try:
        with checked_session(configured_policy(), deadlines) as session:
            response = session.post(webhook.url, data=body.encode(), headers=headers)
    except (requests.RequestException, OutboundUrlRefused) as error:
        elapsed = int((time.monotonic() - started) * 1000)
        return Attempt(None, elapsed, f"{type(error).__name__}: {error}"[:ERROR_MAX])
    elapsed = int((time.monotonic() - started) * 1000)
    if 200 <= response.status_code < 300:
        return Attempt(response.status_code, elapsed, None)
    return Attempt(response.status_code, elapsed, f"the receiver answered {response.status_code}")


def _record(delivery: WebhookDelivery, attempt: Attempt) -> None:
    """Write the attempt's outcome; a failure is retried later or, out of attempts, failed."""
    config = current_app.config
    now = utcnow()
    delivery.response_code = attempt.response_code
    delivery.latency_ms = attempt.latency_ms
    delivery.last_error = attempt.error
    delivery.lease_until = None
    if attempt.error is None:
        delivery.status = "delivered"
        delivery.delivered_at = now
        return
    if delivery.attempts >= config["WEBHOOK_MAX_ATTEMPTS"]:
        delivery.status = "failed"
        return
    wait = backoff(
        delivery.attempts,
        config["WEBHOOK_BACKOFF_BASE_MS"] / 1000,
        config["WEBHOOK_BACKOFF_MAX_SECONDS"],
    )
    delivery.status = "pending"
    delivery.next_attempt_at = now + timedelta(seconds=wait)
    jobs.defer_in_transaction(
        jobs.DELIVER_TASK, scheduled_at=delivery.next_attempt_at, delivery_id=delivery.id
    )


def deliver(delivery_id: int) -> None:
    """One attempt at a delivery, if it is due and no other worker holds it (the job of
    :data:`security.modules.jobs.DELIVER_TASK`; running it twice is harmless)."""
    if not _claim(delivery_id):
        return
    delivery = db.session.get_one(WebhookDelivery, delivery_id)
    _record(delivery, _send(delivery))
    db.session.commit()


def requeue_stalled(now: datetime | None = None) -> int:
    """Queue again the deliveries no job will attempt: a lease that ran out (its worker
    died) or a pending one overdue by a tick (its job was lost). Duplicates are harmless:
    only one job claims the delivery. Returns how many were queued."""
    now = now or utcnow()
    grace = timedelta(seconds=current_app.config["AUTOMATION_TICK_SECONDS"])
    # A killed worker's job stays "doing" for good, so a run-out lease is requeued as is;
    # an overdue pending delivery only when no job of its own still waits in the queue.
    no_waiting_job = text(
        "NOT EXISTS (SELECT 1 FROM procrastinate_jobs AS job WHERE job.status = 'todo'"
        " AND job.task_name = :task AND job.args ->> 'delivery_id' = webhook_deliveries.id::text)"
    ).bindparams(task=jobs.DELIVER_TASK)
    stalled = db.session.scalars(
        select(WebhookDelivery.id).where(
            or_(
                (WebhookDelivery.status == "delivering") & (WebhookDelivery.lease_until < now),
                (WebhookDelivery.status == "pending")
                & (WebhookDelivery.next_attempt_at < now - grace)
                & no_waiting_job,
            )
        )
    ).all()
    for delivery_id in stalled:
        jobs.defer_in_transaction(jobs.DELIVER_TASK, delivery_id=delivery_id)
    return len(stalled)


def delivery_counts() -> dict[str, int]:
    """Deliveries by status, every status present (``failed``: the dead letters)."""
    rows = db.session.execute(
        select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
    )
    counts: dict[str, int] = {key: value for key, value in rows}
    return {status: counts.get(status, 0) for status in DELIVERY_STATUSES}


def failures_by_target() -> dict[str, tuple[int, int]]:
    """Per target host: failed attempts of the stored deliveries, and dead letters."""
    rows = db.session.execute(
        select(
            Webhook.url,
            func.sum(
                WebhookDelivery.attempts
                - case((WebhookDelivery.status == "delivered", 1), else_=0)
                - case((WebhookDelivery.status == "delivering", 1), else_=0)
            ),
            func.count().filter(WebhookDelivery.status == "failed"),
        )
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .group_by(Webhook.url)
    )
    totals: dict[str, tuple[int, int]] = {}
    for url, failed_attempts, dead_letters in rows:
        target = target_of(url)
        attempts_before, dead_before = totals.get(target, (0, 0))
        totals[target] = (attempts_before + int(failed_attempts or 0), dead_before + dead_letters)
    return totals


LATENCY_QUANTILES = (0.5, 0.99)


def delivery_latency(window_minutes: int) -> dict[float, float]:
    """Quantiles of commit-to-delivery seconds over the deliveries of the last minutes
    (empty when there were none)."""
    seconds = func.extract("epoch", WebhookDelivery.delivered_at - WebhookDelivery.created_at)
    quantiles = db.session.execute(
        select(*(func.percentile_cont(q).within_group(seconds) for q in LATENCY_QUANTILES)).where(
            WebhookDelivery.status == "delivered",
            WebhookDelivery.delivered_at > utcnow() - timedelta(minutes=window_minutes),
        )
    ).one()
    if quantiles[0] is None:
        return {}
    return {q: float(value) for q, value in zip(LATENCY_QUANTILES, quantiles, strict=True)}


def target_of(url: str) -> str:
    """A webhook's host (and port), the bounded label its metrics are kept under."""
    return urlsplit(url).netloc.rpartition("@")[2]
