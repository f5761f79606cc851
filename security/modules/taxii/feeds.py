"""Registering remote TAXII servers (feeds): checked URLs, credentials encrypted at rest.

What a feed may be is decided here, once, for create and edit alike: the URL must pass
the SSRF check (:mod:`security.outbound.ssrf`) when it is saved (and again at every
poll), and the credentials must match the auth type and are stored only as a Fernet token
(:mod:`security.outbound.secrets`). Polling lives in :mod:`.client`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select

from models import TaxiiFeed, db
from security.errors import Conflict, Invalid
from security.events import Actor, EventType, actor_of, emit, emit_all
from security.modules.principals import Principal
from security.outbound.secrets import EncryptionUnavailable, encrypt_secret, reencrypt_tokens
from security.outbound.ssrf import (
    OutboundUrlRefused,
    check_outbound_url,
    configured_policy,
)

# auth type -> the secret fields it needs; other secret fields are refused.
CREDENTIAL_FIELDS: dict[str, tuple[str, ...]] = {
    "none": (),
    "basic": ("username", "password"),
    "bearer": ("token",),
}
SECRET_FIELDS = frozenset({"username", "password", "token"})
SETTINGS = (
    "name",
    "api_root_url",
    "collection_id",
    "poll_interval_seconds",
    "page_size",
    "default_confidence",
    "default_tlp",
    "enabled",
)


def check_feed_url(url: str) -> None:
    """422 naming the reason when the server may not send requests to ``url``."""
    try:
        check_outbound_url(url, configured_policy())
    except OutboundUrlRefused as error:
        raise Invalid(
            f"The feed URL is refused: {error}", errors={"api_root_url": [str(error)]}
        ) from None


def _set_credentials(feed: TaxiiFeed, auth_type: str, data: Mapping[str, Any]) -> None:
    needed = CREDENTIAL_FIELDS[auth_type]
    unexpected = sorted((SECRET_FIELDS & set(data)) - set(needed))
    missing = sorted(name for name in needed if not data.get(name))
    if unexpected or missing:
        errors = {name: [f"not used with auth_type {auth_type}"] for name in unexpected}
        errors.update({name: [f"required with auth_type {auth_type}"] for name in missing})
        raise Invalid("The credentials do not match the auth type.", errors=errors)
    feed.auth_type = auth_type
    if not needed:
        feed.credentials_encrypted = None
        return
    try:
        feed.credentials_encrypted = encrypt_secret({name: data[name] for name in needed})
    except EncryptionUnavailable as error:
        raise Invalid(f"Cannot store the credentials: {error}.") from None


def _ensure_name_free(name: str, feed_id: int | None = None) -> None:
    taken = db.session.scalar(
        select(TaxiiFeed.id).where(func.lower(TaxiiFeed.name) == name.lower())
    )
    if taken is not None and taken != feed_id:
        raise Conflict(f"A feed named {name!r} exists already.")


def create_feed(principal: Principal, data: Mapping[str, Any]) -> TaxiiFeed:
    """A new feed from validated input (the caller commits)."""
    _ensure_name_free(data["name"])
    check_feed_url(data["api_root_url"])
    feed = TaxiiFeed(**{name: data[name] for name in SETTINGS}, created_by_id=principal.user_id)
    _set_credentials(feed, data["auth_type"], data)
    db.session.add(feed)
    db.session.flush()
    emit(
        EventType.TAXII_FEED_CREATED,
        feed.id,
        {"name": feed.name, "url": feed.api_root_url, "auth_type": feed.auth_type},
        actor=actor_of(principal),
    )
    return feed


def update_feed(feed: TaxiiFeed, data: Mapping[str, Any]) -> None:
    """Apply an edit; credentials change only when an auth type or a secret is given.

    A new URL or collection starts over: the watermark belongs to the old one.
    """
    if "name" in data:
        _ensure_name_free(data["name"], feed.id)
    if "api_root_url" in data:
        check_feed_url(data["api_root_url"])
    if (
        data.get("api_root_url", feed.api_root_url) != feed.api_root_url
        or data.get("collection_id", feed.collection_id) != feed.collection_id
    ):
        feed.added_after = None
    for name in SETTINGS:
        if name in data:
            setattr(feed, name, data[name])
    if "auth_type" in data or SECRET_FIELDS & set(data):
        _set_credentials(feed, data.get("auth_type", feed.auth_type), data)
    feed.touch()
    emit(
        EventType.TAXII_FEED_EDITED,
        feed.id,
        {
            "fields": sorted(set(data) - SECRET_FIELDS),
            "credentials_changed": bool(SECRET_FIELDS & set(data)),
        },
    )


def delete_feed(feed: TaxiiFeed) -> None:
    """Forget the feed (its IOCs stay: they are intelligence, not the feed's property)."""
    emit(EventType.TAXII_FEED_DELETED, feed.id, {"name": feed.name})
    db.session.delete(feed)


def reencrypt_feed_credentials(actor: Actor) -> int:
    """Encrypt every feed's stored credentials again under the first key (the caller
    commits); returns how many. A token no configured key opens raises
    :class:`~security.outbound.secrets.UndecryptableSecret` naming the feed, before
    anything is written.

    Each feed re-encrypted is an event: the credentials mean the same, but which key
    protects a secret at rest is a change an auditor asks about."""
    feeds = db.session.scalars(
        select(TaxiiFeed).where(TaxiiFeed.credentials_encrypted.is_not(None)).with_for_update()
    ).all()
    stored = {feed: token for feed in feeds if (token := feed.credentials_encrypted) is not None}
    tokens = reencrypt_tokens(stored, lambda feed: f"feed {feed.name!r}")
    for feed, token in tokens.items():
        feed.credentials_encrypted = token
    emit_all(
        EventType.TAXII_FEED_CREDENTIALS_REENCRYPTED,
        [(feed.id, {"name": feed.name}) for feed in tokens],
        actor=actor,
    )
    return len(tokens)
