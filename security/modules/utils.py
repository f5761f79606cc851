"""Small helpers shared across the package: time formatting, JSON values, secret comparison,
masking secrets before they reach a log.

Nothing here knows about HTTP, models or the database.
"""

from __future__ import annotations

import hmac
import json
import re
from datetime import UTC, date, datetime
from typing import Any

import orjson


def isoformat_z(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix, the one time format of the API."""
    if moment.tzinfo is UTC:  # as the database answers: no conversion to make
        return moment.isoformat()[:-6] + "Z"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def json_default(value: Any) -> Any:
    """``default=`` hook for json.dumps: datetimes as ISO 8601 Z, sets as sorted lists."""
    if isinstance(value, datetime):
        return isoformat_z(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# orjson writes the API's JSON (some 10x json.dumps on a page of incidents); datetimes and
# sets go through json_default as before, so the text is what json.dumps wrote, but for
# non-ASCII characters, now UTF-8 instead of \u escapes.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS


def dump_json(value: Any) -> bytes:
    """``value`` as JSON (UTF-8), datetimes as ISO 8601 Z (:func:`json_default`)."""
    try:
        return orjson.dumps(value, default=json_default, option=_ORJSON_OPTIONS)
    except TypeError:  # an integer beyond 64 bits, which orjson does not write
        return json.dumps(value, default=json_default).encode()


# 19 digits in a row: a number that may not fit 64 bits, which orjson would read as a
# float (losing digits) where json reads the exact integer.
_LONG_NUMBER = re.compile(r"\d{19}")


def load_json(text: str | bytes) -> Any:
    """JSON as ``json.loads`` reads it, with orjson doing the work unless the text holds a
    number orjson would not read exactly."""
    if _LONG_NUMBER.search(text if isinstance(text, str) else text.decode()):
        return json.loads(text)
    return orjson.loads(text)


def constant_time_equals(given: str | bytes, expected: str | bytes) -> bool:
    """Compare secrets without leaking, through timing, how many leading bytes matched."""
    if isinstance(given, str):
        given = given.encode()
    if isinstance(expected, str):
        expected = expected.encode()
    return hmac.compare_digest(given, expected)


MASK = "***"
SENSITIVE_KEY_WORDS = (
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
)
_SENSITIVE_FIELD_NAMES = (
    r"password|passwd|pwd|secret|client_secret|token|access_token|refresh_token"
    r"|api[_-]?key|x-api-key|authorization"
)
_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Our own credentials, wherever they appear: login tokens and API keys.
    (re.compile(r"\b(sat|sak)_[A-Za-z0-9_.-]{6,}"), rf"\1_{MASK}"),
    # The scheme is kept (it says what kind of credential was there), the value goes.
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}"), rf"\1 {MASK}"),
    # name=value, name: value, "name": "value" (query strings, headers, JSON, reprs).
    (
        re.compile(
            rf"""(?ix)(["']?\b(?:{_SENSITIVE_FIELD_NAMES})\b["']?\s*[:=]\s*)"""
            r"""(?P<quote>["']?)(?:(?<=")(?:[^"\\]|\\.)*"|(?<=')(?:[^'\\]|\\.)*'"""
            r"""|(?<!["'])(?!bearer\b|basic\b|\*\*\*)[^\s&,;}"']+)"""
        ),
        rf"\1\g<quote>{MASK}\g<quote>",
    ),
    # Passwords inside URLs: scheme://user:password@host.
    (re.compile(r"\b([a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@\s/]+@"), rf"\1{MASK}@"),
    # US social security numbers.
    (re.compile(r"\b\d{3}-\d{2}-\d{4}\b"), "***-**-****"),
)
_CARD_CANDIDATE = re.compile(r"\b\d(?:[ -]?\d){12,18}\b")


def passes_luhn(digits: str) -> bool:
    """The Luhn checksum every payment card number satisfies."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _mask_card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    if not passes_luhn(digits):
        return match.group()
    return f"{MASK}{digits[-4:]}"


def _is_sensitive_key(key: object) -> bool:
    name = str(key).lower().replace("-", "_")
    return any(word in name for word in SENSITIVE_KEY_WORDS) and not name.endswith("_hash")


def mask_sensitive_data(value: Any) -> Any:
    """A copy of ``value`` safe to log: credentials, passwords, card numbers and SSNs masked.

    Strings are masked by pattern; in mappings, values under sensitive keys (``password``,
    ``api_key``, ``Authorization``...) are masked whole; lists and tuples are walked.
    Other values are returned unchanged. Masking is deliberately greedy: a false positive
    costs a less readable log line, a false negative leaks a secret.
    """
    if isinstance(value, str):
        for pattern, replacement in _SECRET_PATTERNS:
            value = pattern.sub(replacement, value)
        return _CARD_CANDIDATE.sub(_mask_card, value)
    if isinstance(value, dict):
        return {
            key: MASK if _is_sensitive_key(key) and item else mask_sensitive_data(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(mask_sensitive_data(item) for item in value)
    return value
