"""STIX 2.1 into our IOCs: indicators and CVE vulnerabilities out of a bundle, the rest reported.

Nothing here stores anything: the result lists the IOCs found (values normalised with the
IOC store's own ``normalize_ioc``) and, for every object that could not become an IOC, its
id and the reason, so the importer can show them instead of dropping them silently.
Objects that are neither indicators nor vulnerabilities (relationships, malware, ...) are
listed as skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import stix2
from stix2.exceptions import STIXError

from security.modules.ioc_values import InvalidIoc, normalize_ioc
from security.modules.stix_mapping.objects import tlp_markings_defined_in
from security.modules.stix_mapping.patterns import (
    UnmappablePattern,
    check_pattern_size,
    iocs_in_pattern,
)
from security.modules.stix_mapping.tlp import tlp_of_marking_refs

# STIX 2.0 objects carry no spec_version; 2.1 objects must.
SPEC_VERSIONS = ("2.0", "2.1")


class InvalidBundle(ValueError):
    """The input is not a STIX bundle at all (not JSON, or not a bundle object)."""


@dataclass(frozen=True)
class ImportedIoc:
    """One IOC read from STIX. None means the object did not say (the importer's default applies).

    ``source_stix_id`` is the id of the object it came from; one indicator may yield several.
    """

    ioc_type: str
    value: str
    confidence: int | None
    tlp: str | None
    tags: tuple[str, ...]
    valid_until: datetime | None
    valid_from: datetime | None
    source_stix_id: str


@dataclass
class ImportResult:
    """What a bundle yielded: IOCs, (object id, reason) for objects that could not become
    one, and (object id, type) for objects that are not meant to (relationships, ...)."""

    iocs: list[ImportedIoc] = field(default_factory=list)
    unmapped: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    # ATT&CK attack-patterns (also listed as skipped: they become no IOC) for the
    # technique catalogue, as they arrived.
    attack_patterns: list[Mapping[str, Any]] = field(default_factory=list)


def _normalized(ioc_type: str, value: str) -> str:
    try:
        return normalize_ioc(ioc_type, value)
    except InvalidIoc as error:
        raise UnmappablePattern(str(error)) from None


def _imported(
    stix_object: Mapping[str, Any],
    ioc_type: str,
    value: str,
    bundle_markings: Mapping[str, str] | None,
) -> ImportedIoc:
    return ImportedIoc(
        ioc_type=ioc_type,
        value=_normalized(ioc_type, value),
        confidence=stix_object.get("confidence"),
        tlp=tlp_of_marking_refs(stix_object.get("object_marking_refs", []), bundle_markings),
        tags=tuple(stix_object.get("labels", [])),
        valid_until=stix_object.get("valid_until"),
        valid_from=stix_object.get("valid_from"),
        source_stix_id=stix_object["id"],
    )


def indicator_to_iocs(
    indicator: stix2.Indicator, bundle_markings: Mapping[str, str] | None = None
) -> list[ImportedIoc]:
    """The IOCs a STIX indicator names; raises :class:`UnmappablePattern` saying why if none.

    ``bundle_markings`` maps marking ids defined in the same bundle to TLP names.
    """
    pattern_type = indicator.get("pattern_type", "stix")
    if pattern_type != "stix":
        raise UnmappablePattern(f"pattern_type {pattern_type!r} is not a STIX pattern")
    return [
        _imported(indicator, ioc_type, value, bundle_markings)
        for ioc_type, value in iocs_in_pattern(indicator.pattern)
    ]


def vulnerability_to_ioc(
    vulnerability: stix2.Vulnerability, bundle_markings: Mapping[str, str] | None = None
) -> ImportedIoc:
    """The CVE a STIX vulnerability names through its ``cve`` external reference."""
    for reference in vulnerability.get("external_references", []):
        if reference.get("source_name") == "cve" and reference.get("external_id"):
            return _imported(vulnerability, "cve", reference["external_id"], bundle_markings)
    raise UnmappablePattern("vulnerability has no external reference with source_name 'cve'")


def _vulnerability_iocs(
    vulnerability: stix2.Vulnerability, bundle_markings: Mapping[str, str]
) -> list[ImportedIoc]:
    return [vulnerability_to_ioc(vulnerability, bundle_markings)]


# STIX type -> the IOCs a parsed object of that type names (given the bundle's markings).
_CONVERTERS: dict[str, Callable[[Any, Mapping[str, str]], list[ImportedIoc]]] = {
    "indicator": indicator_to_iocs,
    "vulnerability": _vulnerability_iocs,
}


def _bundle_objects(bundle_json: str | bytes | Mapping[str, Any]) -> list[Any]:
    if isinstance(bundle_json, str | bytes):
        try:
            bundle_json = json.loads(bundle_json)
        except ValueError as error:
            raise InvalidBundle(f"not JSON: {error}") from None
    if not isinstance(bundle_json, Mapping) or bundle_json.get("type") != "bundle":
        raise InvalidBundle("not a STIX bundle (expected an object with type 'bundle')")
    objects = bundle_json.get("objects", [])
    if not isinstance(objects, list):
        raise InvalidBundle("the bundle's 'objects' is not a list")
    return objects


def parse_bundle(bundle_json: str | bytes | Mapping[str, Any]) -> ImportResult:
    """The IOCs in a STIX 2.1 bundle, and every object that did not yield one, with the reason.

    Objects are parsed one at a time, so one malformed object is reported without losing
    the rest. Raises :class:`InvalidBundle` when the input is not a bundle at all.
    """
    objects = _bundle_objects(bundle_json)
    bundle_markings = tlp_markings_defined_in(objects)
    result = ImportResult()
    for raw in objects:
        if not isinstance(raw, Mapping):
            result.unmapped.append(("<not an object>", "bundle entry is not a JSON object"))
            continue
        object_id, object_type = str(raw.get("id", "<no id>")), raw.get("type")
        converter = _CONVERTERS.get(str(object_type))
        if converter is None:
            if object_type != "marking-definition":
                result.skipped.append((object_id, str(object_type)))
            if object_type == "attack-pattern":
                result.attack_patterns.append(raw)
            continue
        spec_version = raw.get("spec_version", "2.0")
        if spec_version not in SPEC_VERSIONS:
            result.unmapped.append((object_id, f"spec_version {spec_version!r} is not STIX 2.x"))
            continue
        try:
            if object_type == "indicator" and isinstance(raw.get("pattern"), str):
                # stix2 parses the pattern to validate it: bound it before that happens.
                check_pattern_size(raw["pattern"])
            result.iocs.extend(converter(stix2.parse(raw, allow_custom=True), bundle_markings))
        # stix2 answers some malformed properties (extensions as a list...) with these.
        except (STIXError, ValueError, TypeError, AttributeError, KeyError) as error:
            result.unmapped.append((object_id, str(error)))
        except RecursionError:
            result.unmapped.append((object_id, "the object is nested too deeply to parse"))
    return result
