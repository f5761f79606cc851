"""Between the IOC store and STIX: stored IOCs out as STIX objects, parsed STIX in as IOCs.

The mapping itself (patterns, TLP markings, what maps and what does not) is
:mod:`security.modules.stix_mapping`; merging a reported IOC with a stored one is
:mod:`security.modules.intel`. This module joins the two, for the STIX REST endpoints,
the TAXII server and the TAXII client alike, so all three export and import the same way.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import stix2

from models import Ioc
from security.events import actor_of
from security.modules import attack, intel
from security.modules.principals import Principal
from security.modules.stix_mapping import (
    EXPORTABLE_IOC_TYPES,
    ImportedIoc,
    ImportResult,
    IndicatorRecord,
    build_bundle,
    to_stix,
)

# About 1.5 kB per entry (record and JSON): tens of MB at most, per process.
STIX_CACHE_SIZE = 20_000


def indicator_record(indicator: Ioc) -> IndicatorRecord:
    """The mapping's view of a stored IOC; its version (``modified``) is its update time."""
    return IndicatorRecord(
        ioc_type=indicator.type,
        value=indicator.value,
        confidence=indicator.confidence,
        tlp=indicator.tlp,
        source=indicator.source,
        first_seen=indicator.first_seen,
        created=indicator.created_at,
        modified=indicator.updated_at,
        stix_id=f"indicator--{indicator.stix_id}",
        expires_at=indicator.expires_at,
        tags=indicator.tags or (),
    )


def is_exportable(indicator: Ioc) -> bool:
    """TLP red never leaves the platform; a type without a STIX mapping cannot."""
    return indicator.tlp != "red" and indicator.type in EXPORTABLE_IOC_TYPES


@functools.lru_cache(maxsize=STIX_CACHE_SIZE)
def _serialized(record: IndicatorRecord) -> str:
    return to_stix(record).serialize()


def stix_dict(indicator: Ioc) -> dict:
    """The IOC's STIX object as JSON data, cached by every exported field.

    Building it costs milliseconds (stix2 re-parses the pattern it was given), and TAXII
    pollers ask for the same unchanged objects again and again; the key is the whole
    record, so any change to an exported field is a new entry, never a stale one.
    """
    return json.loads(_serialized(indicator_record(indicator)))


def export_bundle(indicators: Iterable[Ioc], techniques: Iterable[str] = ()) -> stix2.Bundle:
    """A bundle of the exportable IOCs among ``indicators`` (TLP red and unmapped left out),
    with the TLP marking definitions they use, and an attack-pattern per ATT&CK technique
    in ``techniques`` (an incident's)."""
    bundle = build_bundle(
        indicator_record(indicator) for indicator in indicators if is_exportable(indicator)
    )
    patterns = attack.attack_patterns(list(techniques))
    if not patterns:
        return bundle
    return stix2.Bundle(objects=[*bundle.get("objects", []), *patterns])


@dataclass
class StixImport:
    """What storing a parsed bundle did, per STIX object.

    ``stored`` holds the ids of objects whose every IOC was stored; ``failures`` maps the
    others (unmappable, or refused by the store) to the reason; ``skipped`` lists objects
    that are not meant to become IOCs, with their type.
    """

    created: int = 0
    merged: int = 0
    ioc_ids: list[int] = field(default_factory=list)
    stored: set[str] = field(default_factory=set)
    failures: dict[str, str] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _store_item(imported: ImportedIoc) -> dict[str, Any]:
    """The IOC store's item for one imported IOC; what STIX did not say is left to defaults."""
    item: dict[str, Any] = {
        "type": imported.ioc_type,
        "value": imported.value,
        "tags": list(imported.tags),
    }
    # No valid_until says nothing about the expiry: a stored one stays.
    if imported.valid_until is not None:
        item["expires_at"] = imported.valid_until
    if imported.confidence is not None:
        item["confidence"] = imported.confidence
    if imported.tlp is not None:
        item["tlp"] = imported.tlp
    if imported.valid_from is not None:
        item["first_seen"] = imported.valid_from
    return item


def store_imported(
    parsed: ImportResult,
    principal: Principal | None,
    *,
    source: str,
    default_confidence: int = intel.DEFAULT_CONFIDENCE,
    default_tlp: str = intel.DEFAULT_TLP,
) -> StixImport:
    """Add or merge the IOCs of a parsed bundle, in the caller's transaction.

    ATT&CK attack-patterns among the objects load the technique catalogue
    (:func:`security.modules.attack.load_attack_patterns`). Raises
    :class:`~security.modules.ioc_values.InvalidIoc` when the bundle holds more IOCs than
    one bulk call may store.
    """
    outcome = StixImport(failures=dict(parsed.unmapped), skipped=list(parsed.skipped))
    defaults: Mapping[str, Any] = {
        "source": source,
        "confidence": default_confidence,
        "tlp": default_tlp,
    }
    if parsed.attack_patterns:
        attack.load_attack_patterns(parsed.attack_patterns, actor=actor_of(principal))
    items = [_store_item(imported) for imported in parsed.iocs]
    if not items:
        return outcome  # nothing for the IOC store (markings, malware): no import event
    result = intel.bulk_add_iocs(items, principal, defaults=defaults)
    for error in result.errors:
        imported = parsed.iocs[error["index"]]
        messages = [
            message for field_messages in error["errors"].values() for message in field_messages
        ]
        reasons = "; ".join(messages)
        outcome.failures[imported.source_stix_id] = f"{imported.value}: {reasons}"
    for entry in result.results:
        outcome.ioc_ids.append(entry["id"])
        outcome.created += entry["status"] == "created"
        outcome.merged += entry["status"] == "merged"
    outcome.stored = {
        imported.source_stix_id
        for imported in parsed.iocs
        if imported.source_stix_id not in outcome.failures
    }
    return outcome
