"""Secrets at rest (credentials an integration sends to a remote server): Fernet encryption
with ``ENCRYPTION_KEY``.

Several comma-separated keys may be configured: the first encrypts, all decrypt, so a key
is rotated by prepending a new one, re-encrypting what is stored under it
(:func:`reencrypt_tokens`, called per integration by ``flask reencrypt-secrets``), then
dropping the old one. Without a key, storing a secret fails with
:class:`EncryptionUnavailable` rather than writing it in clear. Where the tokens are
stored is the integration's business (e.g. ``TaxiiFeed.credentials_encrypted``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TypeVar

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app

Owner = TypeVar("Owner")


class EncryptionUnavailable(RuntimeError):
    """No ``ENCRYPTION_KEY`` is configured, so no secret can be stored."""


class UndecryptableSecret(RuntimeError):
    """A stored secret does not decrypt with any configured key (the key was changed)."""


_UNDECRYPTABLE = (
    "the stored credentials do not decrypt with the configured ENCRYPTION_KEY; "
    "add the previous key after the new one, or enter the credentials again"
)


def _cipher() -> MultiFernet:
    keys = current_app.config.get("ENCRYPTION_KEYS") or ()
    if not keys:
        raise EncryptionUnavailable(
            "ENCRYPTION_KEY is not set, so credentials cannot be stored encrypted; "
            "set it (a Fernet key) or save the settings without credentials"
        )
    return MultiFernet([Fernet(key) for key in keys])


def encrypt_secret(secret: Mapping[str, str]) -> bytes:
    """The Fernet token (authenticated encryption) of a JSON-serialisable secret."""
    return _cipher().encrypt(json.dumps(dict(secret)).encode())


def decrypt_secret(token: bytes) -> dict[str, str]:
    """The secret :func:`encrypt_secret` made ``token`` from, opened with any configured key."""
    try:
        return json.loads(_cipher().decrypt(bytes(token)))
    except InvalidToken:
        raise UndecryptableSecret(_UNDECRYPTABLE) from None


def reencrypt_tokens(
    tokens: Mapping[Owner, bytes], describe: Callable[[Owner], str]
) -> dict[Owner, bytes]:
    """Each token encrypted again under the first key, keyed by its owner as given.

    All or nothing: a token no configured key opens raises :class:`UndecryptableSecret`
    naming its owner (``describe(owner)``) before the caller has written anything.
    """
    cipher = _cipher()
    rotated = {}
    for owner, token in tokens.items():
        try:
            rotated[owner] = cipher.rotate(bytes(token))
        except InvalidToken:
            raise UndecryptableSecret(f"{describe(owner)}: {_UNDECRYPTABLE}") from None
    return rotated
