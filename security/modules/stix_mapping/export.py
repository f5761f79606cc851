"""Our IOCs as STIX 2.1 objects: one indicator (or vulnerability, for a CVE) per IOC, and bundles.

The input is :class:`IndicatorRecord`, a plain value object, so this module needs no
database: whoever reads IOCs from the store builds records and hands them here. Every STIX
object comes from the stix2 library. TLP red never leaves: :func:`to_stix` refuses it, so
an export that forgot to filter fails loudly instead of leaking.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import stix2
from stix2.utils import STIXdatetime, format_datetime

from security.modules.stix_mapping.patterns import PATTERN_IOC_TYPES, pattern_for
from security.modules.stix_mapping.tlp import TLP_LEVELS, tlp_marking

EXPORTABLE_IOC_TYPES = frozenset({*PATTERN_IOC_TYPES, "cve"})
_STIX_ID_TYPES = ("indicator", "vulnerability")
_INDICATOR_TYPES = ["malicious-activity"]


class TlpRedNotExportable(ValueError):
    """Raised for a TLP red IOC: red intelligence is never shared outside the platform."""


def new_stix_id() -> str:
    """A fresh STIX id to store with a new IOC (UUIDv4, as STIX requires for indicators)."""
    return f"indicator--{uuid.uuid4()}"


def stix_timestamp(moment: datetime) -> str:
    """``moment`` as the objects built here write ``created`` and ``modified`` (stix2: at
    least milliseconds), so a version can be named without building its object."""
    return format_datetime(
        STIXdatetime(moment, precision="millisecond", precision_constraint="min")
    )


def _stix_uuid(stix_id: str) -> uuid.UUID:
    object_type, _, suffix = stix_id.partition("--")
    try:
        parsed = uuid.UUID(suffix)
    except ValueError:
        parsed = None
    if object_type not in _STIX_ID_TYPES or parsed is None or parsed.version != 4:
        raise ValueError(f"stix_id {stix_id!r} is not 'indicator--<UUIDv4>'")
    return parsed


@dataclass(frozen=True)
class IndicatorRecord:
    """One stored IOC, as much of it as STIX carries. Values arrive already normalised.

    ``stix_id`` is stored with the IOC so every export names it the same way; its UUID is
    kept and its type prefix follows the object (a CVE exports as ``vulnerability--<uuid>``).
    Times must be timezone-aware.
    """

    ioc_type: str
    value: str
    confidence: int
    tlp: str
    source: str
    first_seen: datetime
    created: datetime
    modified: datetime
    stix_id: str
    expires_at: datetime | None = None
    tags: Sequence[str] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.ioc_type not in EXPORTABLE_IOC_TYPES:
            raise ValueError(f"IOC type {self.ioc_type!r} has no STIX mapping")
        if self.tlp not in TLP_LEVELS:
            raise ValueError(f"unknown TLP {self.tlp!r}")
        if not 0 <= self.confidence <= 100:
            raise ValueError(f"confidence {self.confidence} is outside 0-100")
        _stix_uuid(self.stix_id)
        times = (self.first_seen, self.created, self.modified, self.expires_at)
        if any(time is not None and time.utcoffset() is None for time in times):
            raise ValueError("IOC times must be timezone-aware")
        object.__setattr__(self, "tags", tuple(self.tags))


def _common_properties(record: IndicatorRecord, object_type: str) -> dict:
    properties = {
        "id": f"{object_type}--{_stix_uuid(record.stix_id)}",
        "created": record.created,
        "modified": record.modified,
        "confidence": record.confidence,
        "object_marking_refs": [tlp_marking(record.tlp).id],
    }
    if record.tags:
        properties["labels"] = list(record.tags)
    return properties


def _vulnerability(record: IndicatorRecord) -> stix2.Vulnerability:
    return stix2.Vulnerability(
        name=record.value,
        description=f"{record.value}, reported by {record.source}.",
        external_references=[{"source_name": "cve", "external_id": record.value}],
        **_common_properties(record, "vulnerability"),
    )


def _indicator(record: IndicatorRecord) -> stix2.Indicator:
    properties = _common_properties(record, "indicator")
    # STIX requires valid_until after valid_from; an IOC that expired before it was first
    # seen has no STIX expression, so it is exported without an end.
    if record.expires_at is not None and record.expires_at > record.first_seen:
        properties["valid_until"] = record.expires_at
    return stix2.Indicator(
        name=record.value,
        description=f"{record.ioc_type} indicator reported by {record.source}.",
        indicator_types=_INDICATOR_TYPES,
        pattern=pattern_for(record.ioc_type, record.value),
        pattern_type="stix",
        pattern_version="2.1",
        valid_from=record.first_seen,
        **properties,
    )


def to_stix(record: IndicatorRecord) -> stix2.Indicator | stix2.Vulnerability:
    """The STIX object for one IOC: an indicator, or a vulnerability for a CVE.

    Raises :class:`TlpRedNotExportable` for TLP red.
    """
    if record.tlp == "red":
        raise TlpRedNotExportable(f"{record.stix_id} is TLP:RED and cannot be exported")
    if record.ioc_type == "cve":
        return _vulnerability(record)
    return _indicator(record)


def build_bundle(records: Iterable[IndicatorRecord]) -> stix2.Bundle:
    """A bundle of the records' STIX objects plus the TLP marking definitions they reference.

    The markings travel with the bundle because TLP 2.0 markings are not predefined in
    STIX 2.1: a consumer can only resolve them from the bundle.
    """
    records = list(records)
    objects = [to_stix(record) for record in records]
    used_tlps = {record.tlp for record in records}
    markings = [tlp_marking(tlp) for tlp in TLP_LEVELS if tlp in used_tlps]
    return stix2.Bundle(objects=[*markings, *objects])
