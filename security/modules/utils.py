"""Small helpers shared across the package: time formatting, JSON values, secret comparison.

Nothing here knows about HTTP, models or the database.
"""

from __future__ import annotations

import hmac
from datetime import UTC, date, datetime
from typing import Any


def isoformat_z(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix, the one time format of the API."""
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


def constant_time_equals(given: str | bytes, expected: str | bytes) -> bool:
    """Compare secrets without leaking, through timing, how many leading bytes matched."""
    if isinstance(given, str):
        given = given.encode()
    if isinstance(expected, str):
        expected = expected.encode()
    return hmac.compare_digest(given, expected)
