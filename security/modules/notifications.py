"""Notifications for people: e-mail (SMTP) and chat (Slack, Microsoft Teams through a
Power Automate workflow, Mattermost) through ``apprise``, on the same events and filters
as webhooks, plus "only incidents assigned to me" (with ``incident.sla_approaching``: "my
SLA is about to breach").

A channel's apprise URL carries its credentials (an SMTP password, a chat token), so it is
stored only encrypted and never answered; the list shows its ``kind`` (the scheme).

:func:`record_notifications` subscribes to :data:`security.events.recorded`: for each
channel that wants the event it queues a :data:`NOTIFY_TASK` job in the transaction of the
change (:func:`security.modules.jobs.defer_in_transaction`), so a rolled-back change
notifies nobody. The job (:func:`send`) sends through apprise; a failure raises, and
procrastinate retries it with an exponential wait up to ``WEBHOOK_MAX_ATTEMPTS``. TLP red
subjects are never sent: a mailbox or a chat is outside the product.

At least once: a worker killed mid-send leaves the job running on a dead worker, and
:func:`security.modules.jobs.retry_stalled` queues it again, so the notification may
arrive twice. Each notification carries an id given when it is queued, the same on every
attempt: e-mails in the ``X-SOC-Notification-Id`` header, every kind on the body's last
line (``notification-id: ...``), so a receiver (a mail rule, a bot) can drop a repeat.

The SSRF guard: a channel's host (the SMTP server, a Mattermost server, a Teams workflow's
host) is checked like a webhook target when the channel is saved and again before each
sending. A Slack URL names no host (apprise sends to Slack's own, public ones); they are
checked only when ``OUTBOUND_ONLY_ALLOWED_HOSTS`` makes public hosts need listing too.
apprise makes its requests itself, so redirects of a chat service are not checked hop by
hop as :mod:`security.outbound.http` does for webhooks.
"""

from __future__ import annotations

import contextlib
import json
import uuid
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from flask import Flask
from sqlalchemy import Select, select

from models import NotificationChannel, db
from security.errors import Invalid
from security.events import Actor, Event, EventType, actor_of, emit, emit_all
from security.modules import jobs
from security.modules.lookup import first_or_404
from security.modules.principals import Principal
from security.modules.webhooks import SUBSCRIBABLE_EVENTS, matches, subject_of
from security.outbound.secrets import (
    EncryptionUnavailable,
    decrypt_secret,
    encrypt_secret,
    reencrypt_tokens,
)
from security.outbound.ssrf import (
    OutboundPolicy,
    OutboundUrlRefused,
    check_outbound_url,
    configured_policy,
)

NOTIFY_TASK = "notify"
ID_HEADER = "X-SOC-Notification-Id"
TEST_TITLE = "[SOC] notification_channel.test"
# apprise schemes accepted, by the service they reach.
KINDS = {
    "mailto": "e-mail",
    "mailtos": "e-mail",
    "slack": "Slack",
    # Teams' incoming webhooks (apprise's msteams://) are retired; Teams takes messages
    # through a Power Automate workflow.
    "workflow": "Microsoft Teams",
    "workflows": "Microsoft Teams",
    "mmost": "Mattermost",
    "mmosts": "Mattermost",
}
# Where apprise sends a slack:// notification (its webhook and its API).
SLACK_HOSTS = ("hooks.slack.com", "slack.com")
SETTINGS = ("name", "event_types", "min_severity", "only_assigned_to_me", "enabled")


def _apprise() -> Any:
    """apprise, imported on first use (it is not small, and most processes never send).

    Its PGP support imports the standard library's ``imghdr`` when its plugins load, which
    warns of its removal in Python 3.13; importing that first, with the warning silenced,
    keeps a deprecation of the standard library out of our requests.
    """
    with warnings.catch_warnings(), contextlib.suppress(ImportError):
        warnings.simplefilter("ignore", DeprecationWarning)
        import imghdr  # noqa: F401
    import apprise

    return apprise


class NotificationFailed(RuntimeError):
    """apprise could not send the notification (the job is retried)."""


def _kind(url: str) -> str:
    """The URL's scheme, which names the channel's kind."""
    return url.partition("://")[0].lower()


def _plugin(url: str) -> Any:
    """The apprise plugin for ``url``, or :class:`Invalid` naming why it is refused."""
    if _kind(url) not in KINDS:
        raise Invalid(
            f"Only these channel kinds are supported: {', '.join(sorted(KINDS))}.", field="url"
        )
    plugin = _apprise().Apprise.instantiate(url, suppress_exceptions=True)
    if not plugin:
        raise Invalid("The channel URL is not a valid apprise URL for its kind.", field="url")
    return plugin


def check_channel_url(url: str) -> str:
    """The URL's kind, after the SSRF guard saw the host it sends to (422 if refused)."""
    _checked_plugin(url)
    return _kind(url)


def _checked_plugin(url: str) -> Any:
    """The apprise plugin for ``url`` once the SSRF guard let it through (:class:`Invalid`
    naming why not)."""
    plugin = _plugin(url)
    policy = configured_policy()
    for probe in _probes(_kind(url), plugin, policy):
        try:
            check_outbound_url(probe, policy)
        except OutboundUrlRefused as error:
            raise Invalid(f"The channel URL is refused: {error}", field="url") from None
    return plugin


def _probes(kind: str, plugin: Any, policy: OutboundPolicy) -> list[str]:
    """URLs standing for where the channel sends, for the SSRF guard: its own host and
    port, or Slack's hosts when even public ones must be listed."""
    if kind == "slack":
        return [f"https://{host}/" for host in SLACK_HOSTS] if policy.only_allowed_hosts else []
    host = getattr(plugin, "smtp_host", None) or getattr(plugin, "host", None)
    if not host:
        return []
    port = getattr(plugin, "port", None)
    netloc = f"[{host}]" if ":" in host else host
    return [f"https://{netloc}:{port}/" if port else f"https://{netloc}/"]


def channels(principal: Principal) -> Select:
    """The caller's own channels."""
    return select(NotificationChannel).where(NotificationChannel.user_id == principal.user_id)


def get_channel(
    principal: Principal, channel_id: int, *, lock: bool = False
) -> NotificationChannel:
    """One of the caller's channels (another person's is 404 as if it did not exist)."""
    return first_or_404(
        channels(principal).where(NotificationChannel.id == channel_id),
        f"Notification channel {channel_id} does not exist.",
        lock=lock,
    )


def get_channel_to_test(principal: Principal, channel_id: int) -> NotificationChannel:
    """The caller's channel, or anyone's for an admin (who checks a colleague's setup)."""
    if not principal.is_admin:
        return get_channel(principal, channel_id)
    return first_or_404(
        select(NotificationChannel).where(NotificationChannel.id == channel_id),
        f"Notification channel {channel_id} does not exist.",
    )


def _store_url(channel: NotificationChannel, url: str) -> None:
    channel.kind = check_channel_url(url)
    try:
        channel.url_encrypted = encrypt_secret({"url": url})
    except EncryptionUnavailable as error:
        raise Invalid(f"Cannot store the channel URL: {error}.") from None


def create_channel(principal: Principal, data: Mapping[str, Any]) -> NotificationChannel:
    channel = NotificationChannel(
        user_id=principal.user_id, **{name: data[name] for name in SETTINGS if name in data}
    )
    _store_url(channel, data["url"])
    db.session.add(channel)
    db.session.flush()
    emit(
        EventType.NOTIFICATION_CHANNEL_CREATED,
        channel.id,
        {"kind": channel.kind},
        actor=actor_of(principal),
    )
    return channel


def update_channel(channel: NotificationChannel, data: Mapping[str, Any]) -> None:
    edited = sorted(
        name for name in SETTINGS if name in data and getattr(channel, name) != data[name]
    )
    for name in edited:
        setattr(channel, name, data[name])
    if "url" in data:
        _store_url(channel, data["url"])
        edited.append("url")
    channel.version += 1
    emit(EventType.NOTIFICATION_CHANNEL_EDITED, channel.id, {"fields": edited})


def reencrypt_channel_urls(actor: Actor) -> int:
    """Encrypt every channel's URL again under the first key (``flask reencrypt-secrets``;
    the caller commits); all or nothing, one event per channel."""
    found = db.session.scalars(select(NotificationChannel).with_for_update()).all()
    tokens = reencrypt_tokens(
        {channel: channel.url_encrypted for channel in found},
        lambda channel: f"notification channel {channel.id}",
    )
    for channel, token in tokens.items():
        channel.url_encrypted = token
    changes = [(channel.id, {"fields": ["url"]}) for channel in tokens]
    emit_all(EventType.NOTIFICATION_CHANNEL_EDITED, changes, actor=actor)
    return len(tokens)


def queue(channel_id: int, title: str, body: str, *, test: bool = False) -> str:
    """Queue a :data:`NOTIFY_TASK` job in the current transaction; the notification's id
    (the same on every attempt, for receivers to deduplicate)."""
    notification_id = str(uuid.uuid4())
    jobs.defer_in_transaction(
        NOTIFY_TASK,
        channel_id=channel_id,
        title=title,
        body=body,
        notification_id=notification_id,
        test=test,
    )
    return notification_id


def send_test(channel: NotificationChannel, principal: Principal) -> dict[str, Any]:
    """Queue a test notification to ``channel`` now, whatever events it listens to (also
    when disabled: the owner checks it before turning it on)."""
    body = (
        f"A test of notification channel {channel.id} ({channel.name}), asked for by"
        f" {principal.username}. If you read this, the channel works."
    )
    notification_id = queue(channel.id, f"{TEST_TITLE}: channel {channel.id}", body, test=True)
    emit(
        EventType.NOTIFICATION_CHANNEL_TESTED,
        channel.id,
        {"notification": notification_id},
        actor=actor_of(principal),
    )
    return {"channel": channel.id, "notification_id": notification_id}


def delete_channel(channel: NotificationChannel) -> None:
    emit(EventType.NOTIFICATION_CHANNEL_DELETED, channel.id, {"kind": channel.kind})
    db.session.delete(channel)


def _message(event: Event, facts: dict[str, Any]) -> tuple[str, str]:
    """A title and a plain-text body: what happened to which subject."""
    ((kind, subject),) = facts.items()
    label = subject.get("title") or subject.get("value") or subject.get("rule_name") or ""
    title = f"[SOC] {event.type.value}: {kind} {subject['id']} {label}".strip()
    lines = [f"{name}: {value}" for name, value in subject.items()]
    if event.data:
        lines.append("change: " + json.dumps(dict(event.data), default=str, sort_keys=True))
    return title, "\n".join(lines)


def record_notifications(app: Flask, events: Sequence[Event]) -> None:
    """Subscriber of :data:`security.events.recorded`: a notify job per event and channel
    that wants it, queued with the change (never for a TLP red subject)."""
    wanted = [event for event in events if event.type in SUBSCRIBABLE_EVENTS]
    if not wanted:
        return
    names = list({event.type.value for event in wanted})
    listeners = list(
        db.session.scalars(
            select(NotificationChannel).where(
                NotificationChannel.enabled.is_(True),
                NotificationChannel.event_types.overlap(names),
            )
        )
    )
    if not listeners:
        return
    for event in wanted:
        subject = subject_of(event)
        if subject is None or subject.tlp == "red":
            continue
        for channel in listeners:
            if not matches(channel.event_types, channel.min_severity, event, subject):
                continue
            if channel.only_assigned_to_me and subject.assignee_id != channel.user_id:
                continue
            title, body = _message(event, json.loads(json.dumps(subject.facts, default=str)))
            queue(channel.id, title, body)


def send(
    channel_id: int,
    title: str,
    body: str,
    notification_id: str | None = None,
    test: bool = False,
) -> None:
    """The job of :data:`NOTIFY_TASK`: send through the channel, if it still exists (and
    is enabled, unless it is a test); :class:`NotificationFailed` (retried) when apprise
    could not. The id goes along (see the module's docstring); jobs queued before ids
    existed have none."""
    channel = db.session.get(NotificationChannel, channel_id)
    if channel is None or not (channel.enabled or test):
        return
    url = decrypt_secret(channel.url_encrypted)["url"]
    try:
        plugin = _checked_plugin(url)
    except Invalid as error:
        raise NotificationFailed(f"channel {channel_id}: {error}") from None
    if notification_id is not None:
        body = f"{body}\nnotification-id: {notification_id}"
        if isinstance(getattr(plugin, "headers", None), dict):  # e-mail: a header too
            plugin.headers[ID_HEADER] = notification_id
    sender = _apprise().Apprise()
    sender.add(plugin)
    if not sender.notify(title=title, body=body):
        raise NotificationFailed(f"channel {channel_id}: apprise could not send")
