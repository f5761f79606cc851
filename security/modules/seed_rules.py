"""Seed-form threat rules: ``detection={'ioc': {...}}`` checked against the indicators in events.

Lives here: validating the seed form (strictly: an unknown key is an error naming it),
finding indicator values in flattened events, the one IOC-store query per batch, and the
detector that says whether an event matches. Not here: Sigma rules, storing rules,
alerts (see :mod:`security.modules.detection`).

The seed form, under ``detection['ioc']``:

* ``type``: an IOC type (:data:`~security.modules.ioc_values.IOC_TYPES`), or ``ip``
  (IPv4 or IPv6) or ``hash`` (md5, sha1, sha256 or sha512).
* exactly one of

  - ``value``: one value or a list of them. For ``ip``, ``ipv4``, ``ipv6`` and ``cidr``
    each value is an address or a network (``192.168.0.0/16``) and an event address
    matches when a value contains it; other types match the normalised value exactly.
  - ``min_confidence`` (0-100): any *stored*, unexpired IOC of the type with at least
    that confidence that every alert reader may see (not TLP red, whoever owns the
    rule: alerts are read by the whole team). For the address types a stored network
    containing the event's address counts too.

Events are searched field by field: every string leaf whose whole value is an
indicator (as :func:`~security.modules.ioc_values.detect_ioc_type` sees it) is a
candidate, whatever the field is called. Text that merely *contains* an indicator (a
command line) is not a candidate: that is what Sigma's ``contains`` is for.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import text
from sqlalchemy.dialects import postgresql

from models import Ioc, db
from security.errors import Invalid
from security.modules.ioc_values import (
    HASH_TYPES_BY_LENGTH,
    IOC_TYPES,
    InvalidIoc,
    detect_ioc_type,
    normalize_ioc,
)
from security.modules.ioc_visibility import EVERY_READER, visibility_condition
from security.modules.sigma.events import ALL_VALUES

if TYPE_CHECKING:
    from security.modules.detection import EventBatch

ADDRESS_FAMILIES = {"ip": ("ipv4", "ipv6"), "ipv4": ("ipv4",), "ipv6": ("ipv6",)}
ADDRESS_FAMILIES["cidr"] = ADDRESS_FAMILIES["ip"]
HASH_TYPES = tuple(HASH_TYPES_BY_LENGTH.values())
RULE_IOC_TYPES = ("ip", "hash", *IOC_TYPES)
"""Values of ``detection['ioc']['type']``."""
IOC_KEYS = frozenset({"type", "value", "min_confidence"})
MAX_VALUES = 10_000
# Longer strings are never a single indicator worth checking (normalize_ioc caps at 4096).
MAX_CANDIDATE_LENGTH = 2048
# Characters no indicator holds (a URL must percent-encode them): rejecting them first spares
# the full detection for the many paths and command lines of typical events.
_NEVER_IN_AN_INDICATOR = re.compile(r'[\s\\"<>]')
# Stored types a min_confidence rule of each address type accepts.
_STORED_ADDRESS_TYPES = {
    "ip": frozenset({"ipv4", "ipv6", "cidr"}),
    "ipv4": frozenset({"ipv4", "cidr"}),
    "ipv6": frozenset({"ipv6", "cidr"}),
    "cidr": frozenset({"cidr"}),
}
# Alerts (and the incidents they open) are read by the whole team, whoever owns the rule:
# only IOCs every reader may see count, so no TLP red value reaches an alert this way.
_SEEN_BY_EVERY_READER = str(
    visibility_condition(EVERY_READER, Ioc.__table__.alias("i")).compile(
        dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
    )
)
_STORE_QUERY = text(
    f"""
    SELECT 'address' AS kind, c.position, i.type, max(i.confidence)
      FROM unnest(CAST(:addresses AS inet[])) WITH ORDINALITY AS c(value, position)
      JOIN iocs AS i ON i.address >>= c.value
     WHERE (i.expires_at IS NULL OR i.expires_at > :now) AND {_SEEN_BY_EVERY_READER}
     GROUP BY c.position, i.type
    UNION ALL
    SELECT 'exact', c.position, i.type, max(i.confidence)
      FROM unnest(CAST(:types AS text[]), CAST(:values AS text[]))
           WITH ORDINALITY AS c(type, value, position)
      JOIN iocs AS i ON i.type = c.type AND i.value = c.value
     WHERE (i.expires_at IS NULL OR i.expires_at > :now) AND {_SEEN_BY_EVERY_READER}
     GROUP BY c.position, i.type
    """  # noqa: S608 # nosec B608 # a constant condition compiled from the visibility rule
)


class InvalidIocDetection(Invalid, ValueError):
    """A seed-form detection that cannot be evaluated; the message says what is wrong."""


Candidate = tuple[str, str]
"""An indicator found in an event: (IOC type, normalised value)."""


@dataclass(frozen=True)
class IocDetector:
    """A compiled seed-form rule: which candidates match, and whether the store is asked.

    ``candidate_types`` are the candidate IOC types the rule looks at; ``exact`` the
    normalised values (non-address rules); ``networks`` the address values as networks
    (address rules); ``min_confidence`` is set for the store-backed form.
    """

    rule_type: str
    candidate_types: frozenset[str]
    exact: frozenset[str] = frozenset()
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    min_confidence: int | None = None
    needs_candidates: ClassVar[bool] = True

    @property
    def needs_store(self) -> bool:
        return self.min_confidence is not None

    def matching_candidates(self, batch: EventBatch, index: int) -> list[Candidate]:
        """The event's candidates this rule matches (empty when the event does not match)."""
        return [
            candidate
            for candidate in batch.candidates[index]
            if candidate[0] in self.candidate_types and self._accepts(candidate, batch.stored)
        ]

    def event_test(self, batch: EventBatch) -> Callable[[int, Any], bool]:
        return lambda index, flat: bool(self.matching_candidates(batch, index))

    def matched_values(self, batch: EventBatch, index: int) -> dict[str, list[Any]]:
        """``{field: [value]}`` for every field of the event holding a matching indicator."""
        found: dict[str, list[Any]] = {}
        for candidate in self.matching_candidates(batch, index):
            raw_value = batch.candidates[index][candidate]
            for name in fields_holding(batch.flat[index].raw, raw_value):
                found.setdefault(name, []).append(raw_value)
        return found

    def _accepts(self, candidate: Candidate, stored: Mapping[Candidate, dict[str, int]]) -> bool:
        candidate_type, value = candidate
        if self.min_confidence is not None:
            accepted = _STORED_ADDRESS_TYPES.get(self.rule_type) or {candidate_type}
            confidences = stored.get(candidate, {})
            return any(
                confidence >= self.min_confidence
                for stored_type, confidence in confidences.items()
                if stored_type in accepted
            )
        if self.networks:
            address = ipaddress.ip_address(value)
            return any(address in network for network in self.networks)
        return value in self.exact


def compile_ioc_detection(detection: Any) -> IocDetector:
    """Validate a seed-form detection and compile it; :class:`InvalidIocDetection` if invalid."""
    if not isinstance(detection, Mapping):
        raise InvalidIocDetection("detection must be an object such as {'ioc': {...}}")
    _refuse_unknown(detection, {"ioc"}, "detection")
    criterion = detection.get("ioc")
    if not isinstance(criterion, Mapping):
        raise InvalidIocDetection("detection.ioc must be an object with 'type' and 'value'")
    _refuse_unknown(criterion, IOC_KEYS, "detection.ioc")
    rule_type = criterion.get("type")
    if rule_type not in RULE_IOC_TYPES:
        raise InvalidIocDetection(
            f"detection.ioc.type must be one of {', '.join(RULE_IOC_TYPES)}, got {rule_type!r}"
        )
    has_value, has_confidence = "value" in criterion, "min_confidence" in criterion
    if has_value == has_confidence:
        raise InvalidIocDetection("detection.ioc needs exactly one of 'value' or 'min_confidence'")
    candidate_types = frozenset(_candidate_types(rule_type))
    if has_confidence:
        return IocDetector(
            rule_type, candidate_types, min_confidence=_confidence(criterion["min_confidence"])
        )
    values = _values(criterion["value"])
    if rule_type in ADDRESS_FAMILIES:
        return IocDetector(rule_type, candidate_types, networks=_networks(rule_type, values))
    return IocDetector(rule_type, candidate_types, exact=_exact_values(rule_type, values))


def _refuse_unknown(mapping: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    unknown = sorted(str(key) for key in mapping if key not in allowed)
    if unknown:
        raise InvalidIocDetection(
            f"unknown keys in {where}: {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})"
        )


def _candidate_types(rule_type: str) -> tuple[str, ...]:
    if rule_type in ADDRESS_FAMILIES:
        return ADDRESS_FAMILIES[rule_type]
    if rule_type == "hash":
        return HASH_TYPES
    return (rule_type,)


def _confidence(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise InvalidIocDetection("detection.ioc.min_confidence must be an integer from 0 to 100")
    return value


def _values(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(item, str) for item in values):
        raise InvalidIocDetection(
            "detection.ioc.value must be a string or a non-empty list of them"
        )
    if len(values) > MAX_VALUES:
        raise InvalidIocDetection(f"detection.ioc.value holds at most {MAX_VALUES} values")
    return values


def _networks(
    rule_type: str, values: Sequence[str]
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    families = ADDRESS_FAMILIES[rule_type]
    networks = []
    for value in values:
        try:
            value_type = detect_ioc_type(value)
            if value_type not in {"ipv4", "ipv6", "cidr"}:
                raise InvalidIoc("not an address or a network")
            network = ipaddress.ip_network(normalize_ioc(value_type, value))
        except InvalidIoc as error:
            raise InvalidIocDetection(f"detection.ioc.value {value!r}: {error}") from None
        if f"ipv{network.version}" not in families:
            raise InvalidIocDetection(
                f"detection.ioc.value {value!r} is not an {rule_type} address or network"
            )
        networks.append(network)
    return tuple(networks)


def _exact_values(rule_type: str, values: Sequence[str]) -> frozenset[str]:
    normalized = set()
    for value in values:
        try:
            value_type = detect_ioc_type(value) if rule_type == "hash" else rule_type
            if value_type not in _candidate_types(rule_type):
                raise InvalidIoc(f"not a {rule_type}")
            normalized.add(normalize_ioc(value_type, value))
        except InvalidIoc as error:
            raise InvalidIocDetection(f"detection.ioc.value {value!r}: {error}") from None
    return frozenset(normalized)


# --- candidates in events and the store query ----------------------------------------------


def find_candidates(
    leaves: Iterable[Any], known: dict[str, Candidate | None]
) -> dict[Candidate, str]:
    """Indicators among an event's leaves: ``{(type, normalised): value as written}``.

    ``known`` caches each string's verdict across a batch, so a value repeated in many
    events (a host name, a domain) is detected and normalised once.
    """
    found: dict[Candidate, str] = {}
    for leaf in leaves:
        if not isinstance(leaf, str):
            continue
        if leaf not in known:
            known[leaf] = _as_candidate(leaf)
        candidate = known[leaf]
        if candidate is not None:
            found.setdefault(candidate, leaf)
    return found


def _as_candidate(value: str) -> Candidate | None:
    if not value or len(value) > MAX_CANDIDATE_LENGTH or _NEVER_IN_AN_INDICATOR.search(value):
        return None
    try:
        ioc_type = detect_ioc_type(value)
        return ioc_type, normalize_ioc(ioc_type, value)
    except InvalidIoc:
        return None


def fields_holding(raw: Mapping[str, list[Any]], value: Any) -> list[str]:
    """Names of the fields holding ``value``: dotted paths, and keys not already in one."""
    names = [name for name, values in raw.items() if name != ALL_VALUES and value in values]
    paths = [name for name in names if "." in name]
    path_keys = {path.rsplit(".", 1)[1] for path in paths}
    return sorted(paths + [name for name in names if "." not in name and name not in path_keys])


def stored_confidences(
    candidates: Iterable[Candidate], now: datetime
) -> dict[Candidate, dict[str, int]]:
    """For each candidate, the highest confidence of unexpired stored IOCs matching it, by
    stored type: one query for the whole batch (exact values, and networks containing an
    address through the GiST index on ``iocs.address``)."""
    by_kind: dict[str, list[Candidate]] = {"address": [], "exact": []}
    for candidate in set(candidates):
        by_kind["address" if candidate[0] in ("ipv4", "ipv6") else "exact"].append(candidate)
    if not by_kind["address"] and not by_kind["exact"]:
        return {}
    rows = db.session.execute(
        _STORE_QUERY,
        {
            "addresses": [value for _, value in by_kind["address"]],
            "types": [candidate_type for candidate_type, _ in by_kind["exact"]],
            "values": [value for _, value in by_kind["exact"]],
            "now": now,
        },
    )
    confidences: dict[Candidate, dict[str, int]] = {}
    for kind, position, stored_type, confidence in rows:
        candidate = by_kind[kind][position - 1]  # ORDINALITY counts from 1
        confidences.setdefault(candidate, {})[stored_type] = confidence
    return confidences
