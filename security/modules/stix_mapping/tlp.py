"""TLP as STIX marking definitions: the OASIS TLP 2.0 objects we export, and the reverse lookup.

stix2 ships only the TLP 1.0 markings (white, green, amber, red). TLP 2.0 markings are
OASIS's marking-definition objects carrying the TLP 2.0 property extension; their ids and
``created`` time are fixed by OASIS (cti-stix-common-objects,
extension-definition-specifications/tlp-2.0) and must be used verbatim, never generated.

Reading markings back accepts both generations and any TLP marking-definition object a
bundle defines itself. Which TLP may leave the system is decided by the exporter, not here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import stix2

from models.vocabulary import TLP_LEVELS

TLP_2_EXTENSION_ID = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"

_TLP_2_IDS = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
_TLP_2_CREATED = "2022-10-01T00:00:00.000Z"

# TLP 1.0 "white" became "clear" in TLP 2.0; the other names carried over.
_TLP_1_NAMES = {"white": "clear", "green": "green", "amber": "amber", "red": "red"}
_TLP_1_IDS = {
    stix2.TLP_WHITE.id: "clear",
    stix2.TLP_GREEN.id: "green",
    stix2.TLP_AMBER.id: "amber",
    stix2.TLP_RED.id: "red",
}


def _tlp_2_marking(tlp: str) -> stix2.MarkingDefinition:
    return stix2.MarkingDefinition(
        id=_TLP_2_IDS[tlp],
        created=_TLP_2_CREATED,
        name=f"TLP:{tlp.upper()}",
        extensions={
            TLP_2_EXTENSION_ID: {"extension_type": "property-extension", "tlp_2_0": tlp},
        },
    )


TLP_2_MARKINGS: Mapping[str, stix2.MarkingDefinition] = {
    tlp: _tlp_2_marking(tlp) for tlp in TLP_LEVELS
}

_KNOWN_MARKING_IDS = {**_TLP_1_IDS, **{marking_id: tlp for tlp, marking_id in _TLP_2_IDS.items()}}


def tlp_marking(tlp: str) -> stix2.MarkingDefinition:
    """The OASIS TLP 2.0 marking definition for one of our TLP names."""
    try:
        return TLP_2_MARKINGS[tlp]
    except KeyError:
        raise ValueError(f"unknown TLP {tlp!r}; expected one of {', '.join(TLP_LEVELS)}") from None


def tlp_of_marking_definition(marking: Mapping[str, Any]) -> str | None:
    """Our TLP name for a marking-definition object, or None if it is not a TLP marking.

    Reads the object's content rather than its id, so a producer's own TLP objects
    (TLP 1.0 ``definition`` or the TLP 2.0 extension) map too.
    """
    extension = _member(_member(marking, "extensions"), TLP_2_EXTENSION_ID)
    if extension.get("tlp_2_0") in TLP_LEVELS:
        return extension["tlp_2_0"]
    tlp_1 = _member(marking, "definition").get("tlp")
    if marking.get("definition_type") == "tlp" and isinstance(tlp_1, str):
        return _TLP_1_NAMES.get(tlp_1.lower())
    return None


def _member(container: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """``container[name]`` when it is an object; {} when absent or malformed (posted JSON)."""
    value = container.get(name)
    return value if isinstance(value, Mapping) else {}


def tlp_of_marking_refs(
    marking_refs: Iterable[str], defined_in_bundle: Mapping[str, str] | None = None
) -> str | None:
    """The most restrictive TLP among an object's marking refs, or None if it has none.

    ``defined_in_bundle`` maps marking ids a bundle defines itself to TLP names; refs that
    are neither standard TLP ids nor defined there (statement markings...) are not TLP.
    """
    known = {**_KNOWN_MARKING_IDS, **(defined_in_bundle or {})}
    levels = [known[ref] for ref in marking_refs if ref in known]
    return max(levels, key=TLP_LEVELS.index, default=None)
