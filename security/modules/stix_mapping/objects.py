"""Any STIX 2.1 object as a TAXII collection keeps it: checked, versioned, its TLP read.

Nothing here maps to IOCs (that is :mod:`.importing`) or stores anything: a caller hands
over one posted object and gets its facts (id, type, version, TLP) or the reason it is not
a valid STIX 2.1 object. The object itself is never rewritten, so whoever keeps it can
serve it back exactly as it came.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import stix2
from stix2.exceptions import STIXError
from stix2.utils import parse_into_datetime

from security.modules.stix_mapping.patterns import UnmappablePattern, check_pattern_size
from security.modules.stix_mapping.tlp import tlp_of_marking_definition, tlp_of_marking_refs

STIX_ID = re.compile(
    r"(?P<type>[a-z0-9][a-z0-9-]*[a-z0-9])--"
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)


class InvalidStixObject(ValueError):
    """The posted value is not a valid STIX 2.1 object; the message says why."""


@dataclass(frozen=True)
class StixObjectFacts:
    """What a collection needs to know of a valid object. ``version`` is None for objects
    without ``modified`` or ``created`` (cyber-observables): the collection dates them."""

    stix_id: str
    stix_type: str
    version: datetime | None
    tlp: str | None


def tlp_markings_defined_in(objects: list[Any]) -> dict[str, str]:
    """Marking-definition id -> TLP name, for the TLP markings among ``objects``."""
    markings = {}
    for candidate in objects:
        if isinstance(candidate, Mapping) and candidate.get("type") == "marking-definition":
            tlp = tlp_of_marking_definition(candidate)
            if tlp is not None:
                markings[str(candidate.get("id"))] = tlp
    return markings


def _version(stix_object: Mapping[str, Any]) -> datetime | None:
    text = stix_object.get("modified") or stix_object.get("created")
    if text is None:
        return None
    try:
        return parse_into_datetime(text)
    except ValueError:
        raise InvalidStixObject(f"{text!r} is not a STIX timestamp") from None


def _tlp(stix_object: Mapping[str, Any], known_markings: Mapping[str, str]) -> str | None:
    """The TLP the object is shared under; a marking definition is shared under the TLP it
    defines, so the definition of TLP:RED is itself red."""
    defined = None
    if stix_object["type"] == "marking-definition":
        defined = tlp_of_marking_definition(stix_object)
    marked = tlp_of_marking_refs(stix_object.get("object_marking_refs", []), known_markings)
    return defined or marked


def _validate(stix_object: Mapping[str, Any]) -> None:
    """stix2's own checks of the object's properties (custom objects: only the common ones).

    A pattern too deep or too long for the grammar parser is refused before it gets there.
    """
    pattern = stix_object.get("pattern")
    if isinstance(pattern, str):
        try:
            check_pattern_size(pattern)
        except UnmappablePattern as error:
            raise InvalidStixObject(str(error)) from None
    try:
        stix2.parse(dict(stix_object), allow_custom=True, version="2.1")
    # stix2 answers some malformed properties (extensions as a list...) with these, and a
    # pathologically nested pattern with RecursionError: each is this object's failure only.
    except (STIXError, ValueError, TypeError, AttributeError, KeyError, RecursionError) as error:
        raise InvalidStixObject(str(error) or type(error).__name__) from None


def stix_object_facts(
    stix_object: Any, known_markings: Mapping[str, str] | None = None
) -> StixObjectFacts:
    """The facts of one posted STIX 2.1 object; raises :class:`InvalidStixObject`.

    ``known_markings`` maps marking-definition ids the caller knows (defined in the same
    envelope, or stored earlier) to TLP names, so objects marked with them get their TLP.
    """
    if not isinstance(stix_object, Mapping):
        raise InvalidStixObject("not a JSON object")
    stix_id = stix_object.get("id")
    found = STIX_ID.fullmatch(stix_id) if isinstance(stix_id, str) else None
    if found is None or found["type"] != stix_object.get("type"):
        raise InvalidStixObject("id must be '<type>--<UUID>' with the object's own type")
    if stix_object.get("spec_version") != "2.1":
        raise InvalidStixObject(
            f"spec_version {stix_object.get('spec_version')!r}: this collection holds STIX 2.1"
        )
    version = _version(stix_object)
    _validate(stix_object)
    return StixObjectFacts(
        found[0], found["type"], version, _tlp(stix_object, known_markings or {})
    )
