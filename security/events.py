"""Domain events: the one seam where every state change is announced, for side effects.

Each state change the product has (an incident opened, an alert escalated, an API key
revoked, ...) calls :func:`emit` (or :func:`emit_all` for many of one kind) exactly once,
in the caller's transaction. That call writes the change's audit entry, which is the
event's durable record (the audit ``action`` is the event type), so there is no separate
``audit.record`` beside it.

Audit entries that are not state changes are still written with
:mod:`security.modules.audit`, because no subscriber should act on them:

* refusals, which change nothing: a failed login (``auth.login`` with outcome
  ``failure``, beside the successful ones that are the :attr:`~EventType.SESSION_CREATED`
  events; ``auth.taxii_basic``, whose success issues no token), a login refused while
  blocked (``auth.login_blocked``), an invalid credential, a permission denied, a logout
  with an API key (``auth.logout`` about an ``api_key``: the key stays valid);
* an ingestion's summary (``events.ingest``): the alerts it opened or grew are their own
  events (``alert.create``, ``alert.group``, ``alert.escalate``).

Bookkeeping that is written without any entry, on purpose: the guard's failure counter
(``login_failures``, whose outcome is a ``auth.block_created`` event), a token's or a
key's ``last_used_at`` and the credential usage log, a password hash upgraded at login,
a feed's poll lease (its poll ends in ``taxii.feed_polled``), and the idempotency
records; also (automation) a webhook delivery's attempts, which its own row records (a
redelivery by hand is a ``delivery.redeliver`` event), and the job queue's rows. Nor
``flask prune-usage``: it deletes credential usage entries past their
retention, which is a log ageing out, not a change to any object a subscriber follows.

Side effects subscribe to one of two blinker signals, whose sender is the Flask app:

* :data:`recorded` -- sent inside the transaction, at the moment of :func:`emit`. A
  subscriber may write to ``db.session`` (e.g. a webhook outbox's delivery rows), and
  what it writes commits or rolls back with the change itself. It must not commit.
* :data:`committed` -- sent once after the transaction commits, with that transaction's
  events in the order they were emitted. Nothing is sent when it rolls back or is
  closed without a commit. A subscriber here must not use the session (its
  transaction is over); it is for in-process effects such as metrics. One that raises
  is logged and the others still run: the change stands.

Both deliver ``events``: a tuple of :class:`Event`. Subscribe for one app with
``committed.connect(receiver, sender=app)``, or in a test with
``committed.connected_to(receiver, sender=app)``. :func:`install_session_hooks` installs the
session hooks that carry events from emit to commit; ``create_app()`` calls it.

Not here: what is stored for an audit entry and the request's context
(:mod:`security.modules.audit`), and the subscribers themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from blinker import Namespace
from flask import Flask, current_app
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.orm import Session, SessionTransaction

from models import db, utcnow
from security.modules import audit

if TYPE_CHECKING:
    from security.modules.principals import Principal

logger = logging.getLogger("soc.events")

PENDING_KEY = "domain_events.pending"
"""Where a session keeps the events of its open transaction (in ``Session.info``)."""


class EventType(StrEnum):
    """Every kind of state change; the value is also the audit entry's ``action``."""

    INCIDENT_CREATED = "incident.create"
    INCIDENT_EDITED = "incident.update"
    INCIDENT_ASSIGNED = "incident.assign"
    INCIDENT_STATUS_CHANGED = "incident.status_change"
    INCIDENT_COMMENTED = "incident.comment"
    INCIDENT_IOCS_LINKED = "incident.ioc_link"
    ALERT_CREATED = "alert.create"
    ALERT_GROUPED = "alert.group"
    ALERT_STATUS_CHANGED = "alert.status_change"
    ALERT_ESCALATED = "alert.escalate"
    IOC_CREATED = "ioc.create"
    IOC_MERGED = "ioc.merge"
    IOC_EDITED = "ioc.update"
    IOC_DELETED = "ioc.delete"
    IOCS_BULK_IMPORTED = "ioc.bulk_import"
    RULE_CREATED = "rule.create"
    RULE_EDITED = "rule.update"
    RULE_DELETED = "rule.delete"
    API_KEY_ISSUED = "apikey.create"
    API_KEY_ROTATED = "apikey.rotate"
    API_KEY_REVOKED = "apikey.revoke"
    USER_CREATED = "user.create"
    SESSION_CREATED = "auth.login"
    SESSION_REVOKED = "auth.logout"
    BLOCK_CREATED = "auth.block_created"
    BLOCK_LIFTED = "auth.block_lifted"
    TAXII_COLLECTION_CREATED = "taxii.collection_create"
    TAXII_COLLECTION_EDITED = "taxii.collection_update"
    TAXII_COLLECTION_DELETED = "taxii.collection_delete"
    TAXII_OBJECTS_ADDED = "taxii.objects_added"
    TAXII_OBJECT_DELETED = "taxii.object_delete"
    TAXII_FEED_CREATED = "taxii.feed_create"
    TAXII_FEED_EDITED = "taxii.feed_update"
    TAXII_FEED_DELETED = "taxii.feed_delete"
    TAXII_FEED_POLLED = "taxii.feed_polled"
    TAXII_FEED_CREDENTIALS_REENCRYPTED = "taxii.feed_reencrypt"
    USER_PASSWORD_CHANGED = "user.password_change"  # noqa: S105 - an event name, no secret
    RETENTION_PRUNED = "retention.prune"
    SLA_POLICY_CREATED = "sla_policy.create"
    # identity (users administration, sessions, passwords, second factor, single sign-on)
    USER_EDITED = "user.update"
    USER_PASSWORD_RESET = "user.password_reset"  # noqa: S105 - an event name, no secret
    USER_MFA_ENROLLED = "user.mfa_enrol"
    USER_MFA_ENABLED = "user.mfa_enable"
    USER_MFA_DISABLED = "user.mfa_disable"
    USER_MFA_RECOVERY_USED = "user.mfa_recovery_use"
    MFA_POLICY_CHANGED = "mfa_policy.update"
    # automation: timers' announcements, webhooks and their deliveries, notifications
    INCIDENT_SLA_APPROACHING = "incident.sla_approaching"
    INCIDENT_SLA_BREACHED = "incident.sla_breached"
    IOC_EXPIRED = "ioc.expired"
    WEBHOOK_CREATED = "webhook.create"
    WEBHOOK_EDITED = "webhook.update"
    WEBHOOK_DELETED = "webhook.delete"
    WEBHOOK_TESTED = "webhook.test"
    DELIVERY_REDELIVERED = "delivery.redeliver"
    NOTIFICATION_CHANNEL_CREATED = "notification_channel.create"
    NOTIFICATION_CHANNEL_EDITED = "notification_channel.update"
    NOTIFICATION_CHANNEL_DELETED = "notification_channel.delete"
    NOTIFICATION_CHANNEL_TESTED = "notification_channel.test"
    # case work: alerts merged into incidents and out, duplicates, ATT&CK
    ALERT_MERGED = "alert.merge"
    ALERT_UNMERGED = "alert.unmerge"
    INCIDENT_MERGED = "incident.merge"
    ATTACK_CATALOGUE_LOADED = "attack.catalogue_load"
    # case work: tasks, templates, custom fields, evidence, comments
    TASK_CREATED = "task.create"
    TASK_EDITED = "task.update"
    INCIDENT_TEMPLATE_CREATED = "incident_template.create"
    INCIDENT_TEMPLATE_EDITED = "incident_template.update"
    INCIDENT_TEMPLATE_DELETED = "incident_template.delete"
    CUSTOM_FIELD_CREATED = "custom_field.create"
    CUSTOM_FIELD_DELETED = "custom_field.delete"
    EVIDENCE_ADDED = "evidence.create"
    EVIDENCE_DELETED = "evidence.delete"
    COMMENT_CREATED = "comment.create"
    COMMENT_EDITED = "comment.update"
    COMMENT_DELETED = "comment.delete"

    @property
    def subject_type(self) -> str:
        """The kind of object the event is about, as audit entries name it: the area
        (the action's prefix) unless :data:`SUBJECT_TYPES` names it."""
        return SUBJECT_TYPES.get(self, self.value.partition(".")[0])


SUBJECT_TYPES: dict[EventType, str] = {
    EventType.API_KEY_ISSUED: "api_key",
    EventType.API_KEY_ROTATED: "api_key",
    EventType.API_KEY_REVOKED: "api_key",
    EventType.SESSION_CREATED: "auth_token",
    EventType.SESSION_REVOKED: "auth_token",
    EventType.BLOCK_CREATED: "auth_block",
    EventType.BLOCK_LIFTED: "auth_block",
    EventType.TAXII_COLLECTION_CREATED: "taxii_collection",
    EventType.TAXII_COLLECTION_EDITED: "taxii_collection",
    EventType.TAXII_COLLECTION_DELETED: "taxii_collection",
    EventType.TAXII_OBJECTS_ADDED: "taxii_collection",
    EventType.TAXII_OBJECT_DELETED: "taxii_collection",
    EventType.TAXII_FEED_CREATED: "taxii_feed",
    EventType.TAXII_FEED_EDITED: "taxii_feed",
    EventType.TAXII_FEED_DELETED: "taxii_feed",
    EventType.TAXII_FEED_POLLED: "taxii_feed",
    EventType.TAXII_FEED_CREDENTIALS_REENCRYPTED: "taxii_feed",
}
"""Subject types that are not the action's prefix (audit entries' historical names)."""

SubjectId = int | str
"""An object's id: an integer, or text for objects keyed otherwise (a TAXII collection's
UUID); audit entries keep it as text either way."""


@dataclass(frozen=True)
class Actor:
    """Who made the change: a user (id and name), or a named non-user such as ``system``."""

    id: int | None
    name: str | None


SYSTEM = Actor(None, "system")
CLI = Actor(None, "cli")
"""An operator's ``flask`` command: the shell user is not an account of the product."""


def actor_of(principal: Principal | None) -> Actor:
    """The principal as an actor; ``None`` (the engine acting on its own) is :data:`SYSTEM`."""
    if principal is None:
        return SYSTEM
    return Actor(principal.user_id, principal.username)


@dataclass(frozen=True)
class Event:
    """One state change: what happened (``type``) to which object, by whom, when.

    ``subject_id`` is None only for an event about many objects at once (a bulk import);
    ``data`` holds the facts a subscriber needs (e.g. an incident's severity, a failed
    poll's error), never a secret.
    """

    type: EventType
    subject_id: SubjectId | None
    actor: Actor
    occurred_at: datetime
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def subject_type(self) -> str:
        return self.type.subject_type


_signals = Namespace()
recorded = _signals.signal("domain-events-recorded")
"""Sent in the caller's transaction, at emit time: ``receiver(app, events=...)``."""
committed = _signals.signal("domain-events-committed")
"""Sent after the transaction commits: ``receiver(app, events=...)``."""


def emit(
    event_type: EventType,
    subject_id: SubjectId | None,
    data: Mapping[str, Any] | None = None,
    *,
    actor: Actor | None = None,
    outcome: str = "success",
) -> Event:
    """Record one state change in the current transaction (its audit entry) and announce it.

    ``actor`` defaults to the request's principal (none outside a request). ``outcome``
    is the audit entry's: a change that is itself a refusal (a login block: ``denied``) or
    records one (a failed feed poll: ``failure``) says so there.
    """
    event = _event(event_type, subject_id, data, actor)
    audit.record(
        event.type.value,
        outcome=outcome,
        object_type=event.subject_type,
        object_id=event.subject_id,
        details=dict(event.data),
        actor_id=event.actor.id,
        actor=event.actor.name,
        occurred_at=event.occurred_at,
    )
    _announce((event,))
    return event


def emit_all(
    event_type: EventType,
    changes: Iterable[tuple[SubjectId, Mapping[str, Any]]],
    *,
    actor: Actor | None = None,
) -> tuple[Event, ...]:
    """Record many changes of one kind, ``(subject_id, data)`` each, with one INSERT.

    For hot paths (an ingestion creating or growing hundreds of alerts): the same events
    as one :func:`emit` per change, at the cost of one statement.
    """
    emitted = tuple(_event(event_type, subject_id, data, actor) for subject_id, data in changes)
    if not emitted:
        return emitted
    audit.record_many(
        [
            {
                "action": event.type.value,
                "object_type": event.subject_type,
                "object_id": event.subject_id,
                "details": dict(event.data),
                "actor_id": event.actor.id,
                "actor": event.actor.name,
                "occurred_at": event.occurred_at,
            }
            for event in emitted
        ]
    )
    _announce(emitted)
    return emitted


def _event(
    event_type: EventType,
    subject_id: SubjectId | None,
    data: Mapping[str, Any] | None,
    actor: Actor | None,
) -> Event:
    if actor is None:
        actor = Actor(*audit.current_actor())
    return Event(event_type, subject_id, actor, utcnow(), dict(data or {}))


def _announce(emitted: Sequence[Event]) -> None:
    """Keep the events for :data:`committed` and tell the in-transaction subscribers."""
    db.session.info.setdefault(PENDING_KEY, []).extend(emitted)
    recorded.send(_current_app(), events=tuple(emitted))


def _current_app() -> Flask:
    """The app itself, not its proxy: blinker matches subscribers by the sender's identity."""
    return current_app._get_current_object()  # type: ignore[attr-defined]


# --- from the transaction's end to the subscribers --------------------------------------


def _dispatch_committed(session: Session) -> None:
    """Tell each :data:`committed` subscriber; one that fails is logged, not raised, since
    the change has committed and its request must not answer as if it had not."""
    if session.in_nested_transaction():
        return  # a savepoint released: the enclosing transaction has yet to commit
    pending = session.info.pop(PENDING_KEY, None)
    if not pending:
        return
    app, batch = _current_app(), tuple(pending)
    for receiver in committed.receivers_for(app):
        try:
            receiver(app, events=batch)
        except Exception:
            logger.exception("a subscriber to committed domain events failed: %r", receiver)


def _discard_uncommitted(session: Session, transaction: SessionTransaction) -> None:
    """A root transaction that ended without committing (rollback, close) drops its events.

    After a commit, :func:`_dispatch_committed` has already taken them. Savepoints are not
    tracked (the application uses none): events emitted inside a savepoint that is rolled
    back would still be dispatched when the enclosing transaction commits.
    """
    if transaction.parent is None:
        session.info.pop(PENDING_KEY, None)


_HOOKS = (("after_commit", _dispatch_committed), ("after_transaction_end", _discard_uncommitted))


def install_session_hooks() -> None:
    """Install the hooks on ``db.session`` that dispatch events on commit (idempotent).

    The hooks are shared by every app; subscribers are per app (the signal's sender), so
    several apps in one process each see only their own events.
    """
    for name, hook in _HOOKS:
        if not sqlalchemy_event.contains(db.session, name, hook):
            sqlalchemy_event.listen(db.session, name, hook)
