"""Secrets at rest (TAXII feed credentials): Fernet encryption with ``ENCRYPTION_KEY``.

Several comma-separated keys may be configured: the first encrypts, all decrypt, so a key
is rotated by prepending a new one, re-encrypting what is stored under it
(:func:`reencrypt_feed_credentials`, ``flask reencrypt-secrets``), then dropping the old
one. Without a key, storing a secret fails with :class:`EncryptionUnavailable` rather than
writing it in clear.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app
from sqlalchemy import select

from models import TaxiiFeed, db


class EncryptionUnavailable(RuntimeError):
    """No ``ENCRYPTION_KEY`` is configured, so no secret can be stored."""


class UndecryptableSecret(RuntimeError):
    """A stored secret does not decrypt with any configured key (the key was changed)."""


def _cipher() -> MultiFernet:
    keys = current_app.config.get("ENCRYPTION_KEYS") or ()
    if not keys:
        raise EncryptionUnavailable(
            "ENCRYPTION_KEY is not set, so credentials cannot be stored encrypted; "
            "set it (a Fernet key) or register the feed without credentials"
        )
    return MultiFernet([Fernet(key) for key in keys])


def encrypt_secret(secret: Mapping[str, str]) -> bytes:
    """The Fernet token (authenticated encryption) of a JSON-serialisable secret."""
    return _cipher().encrypt(json.dumps(dict(secret)).encode())


_UNDECRYPTABLE = (
    "the stored credentials do not decrypt with the configured ENCRYPTION_KEY; "
    "add the previous key after the new one, or enter the credentials again"
)


def decrypt_secret(token: bytes) -> dict[str, str]:
    try:
        return json.loads(_cipher().decrypt(bytes(token)))
    except InvalidToken:
        raise UndecryptableSecret(_UNDECRYPTABLE) from None


def reencrypt_feed_credentials() -> int:
    """Encrypt every feed's stored credentials again under the first key (the caller
    commits); returns how many. A token no configured key opens raises
    :class:`UndecryptableSecret` naming the feed, before anything is written."""
    cipher = _cipher()
    feeds = db.session.scalars(
        select(TaxiiFeed).where(TaxiiFeed.credentials_encrypted.is_not(None)).with_for_update()
    ).all()
    tokens = {}
    for feed in feeds:
        try:
            tokens[feed.id] = cipher.rotate(bytes(feed.credentials_encrypted))
        except InvalidToken:
            raise UndecryptableSecret(f"feed {feed.name!r}: {_UNDECRYPTABLE}") from None
    for feed in feeds:
        feed.credentials_encrypted = tokens[feed.id]
    return len(feeds)
