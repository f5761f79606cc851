"""TAXII 2.1's media types and timestamp form, as the server backend writes them.

Negotiating them over HTTP (``Accept``, ``Content-Type``) and the TAXII error body are the
HTTP edge's business: ``resources/taxii_wire.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime

TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"
STIX_MEDIA_TYPE = "application/stix+json;version=2.1"
TAXII_VERSION = "2.1"


def taxii_timestamp(moment: datetime) -> str:
    """TAXII's timestamp form, always with microseconds: ``2026-01-02T03:04:05.123456Z``.

    Fixed precision keeps a date_added that a client sends back (``added_after``) exactly
    equal to the stored time, so paging by time never skips or repeats an object.
    """
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
