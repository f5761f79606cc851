"""Secrets at rest (TAXII feed credentials): Fernet encryption with ``ENCRYPTION_KEY``.

Several comma-separated keys may be configured: the first encrypts, all decrypt, so a key
can be rotated by prepending a new one (and re-saving the feeds). Without a key, storing
a secret fails with :class:`EncryptionUnavailable` rather than writing it in clear.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app


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


def decrypt_secret(token: bytes) -> dict[str, str]:
    try:
        return json.loads(_cipher().decrypt(bytes(token)))
    except InvalidToken:
        raise UndecryptableSecret(
            "the stored credentials do not decrypt with the configured ENCRYPTION_KEY; "
            "add the previous key after the new one, or enter the credentials again"
        ) from None
