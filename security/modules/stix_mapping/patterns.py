"""STIX patterns for IOCs: writing one for an IOC, and reading IOCs out of one.

Writing builds the pattern with stix2's pattern objects, so quoting and escaping are the
library's. Reading parses with the OASIS pattern grammar (stix2-patterns) and accepts only
what an IOC can say: one equality comparison, or comparisons that are alternatives (OR)
on the same STIX object type. Anything else (AND, FOLLOWEDBY, qualifiers, negation,
LIKE/MATCHES, properties we do not store) raises :class:`UnmappablePattern` with the
reason, so an importer can report it instead of dropping it.

Vulnerabilities (CVEs) have no pattern; they are separate objects, see the exporter.
"""

from __future__ import annotations

import ipaddress
import re

import stix2
from stix2patterns.exceptions import ParseException
from stix2patterns.v21.inspector import InspectionListener
from stix2patterns.v21.pattern import Pattern

# Our IOC type -> (STIX object type, property path) for the types a pattern can carry.
# CIDR is absent: its object type depends on the address family (see ``_object_path``).
_OBJECT_PATHS: dict[str, tuple[str, list[str]]] = {
    "ipv4": ("ipv4-addr", ["value"]),
    "ipv6": ("ipv6-addr", ["value"]),
    "domain": ("domain-name", ["value"]),
    "url": ("url", ["value"]),
    "email": ("email-addr", ["value"]),
    "md5": ("file", ["hashes", "MD5"]),
    "sha1": ("file", ["hashes", "SHA-1"]),
    "sha256": ("file", ["hashes", "SHA-256"]),
    "sha512": ("file", ["hashes", "SHA-512"]),
}
PATTERN_IOC_TYPES = frozenset({*_OBJECT_PATHS, "cidr"})

# Hash names as producers write them, upper-cased and without hyphens (SHA-256, SHA256).
_HASH_TYPES = {"MD5": "md5", "SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512"}
_ADDRESS_TYPES = {"ipv4-addr": "ipv4", "ipv6-addr": "ipv6"}
_VALUE_TYPES = {"domain-name": "domain", "url": "url", "email-addr": "email"}


# The pattern grammar's parser (ANTLR) and its tree walker recurse once per bracket level
# and once per joined term, so a pattern nested 5,000 deep or joining 8,000 terms exhausts
# the stack. An IOC pattern names a handful of alternatives; these bounds are far above it.
MAX_PATTERN_DEPTH = 32
MAX_PATTERN_TERMS = 256
# A quoted literal: string, binary (b'...') or hex (h'...'), with \' and \\ escapes.
_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'")
_JOINING_OPERATOR = re.compile(r"\b(?:AND|OR|FOLLOWEDBY)\b")


class UnmappablePattern(ValueError):
    """A STIX pattern that does not say "this value is an IOC of one of our types"."""


def check_pattern_size(pattern: str) -> None:
    """Refuse (:class:`UnmappablePattern`) a pattern too deep or too long for the parser,
    before it reaches the parser. Brackets and operators inside literals do not count."""
    structure = _LITERAL.sub("''", pattern)
    terms = len(_JOINING_OPERATOR.findall(structure)) + 1
    if terms > MAX_PATTERN_TERMS:
        raise UnmappablePattern(f"the pattern joins {terms} terms (at most {MAX_PATTERN_TERMS})")
    depth = deepest = 0
    for character in structure:
        if character in "([":
            depth += 1
            deepest = max(deepest, depth)
        elif character in ")]":
            depth -= 1
    if deepest > MAX_PATTERN_DEPTH:
        raise UnmappablePattern(
            f"the pattern nests brackets {deepest} deep (at most {MAX_PATTERN_DEPTH})"
        )


def _object_path(ioc_type: str, value: str) -> tuple[str, list[str]]:
    if ioc_type != "cidr":
        return _OBJECT_PATHS[ioc_type]
    version = ipaddress.ip_network(value, strict=False).version
    return ("ipv4-addr" if version == 4 else "ipv6-addr", ["value"])


def pattern_for(ioc_type: str, value: str) -> str:
    """The STIX pattern matching exactly this IOC, e.g. ``[ipv4-addr:value = '203.0.113.7']``."""
    if ioc_type not in PATTERN_IOC_TYPES:
        raise ValueError(f"IOC type {ioc_type!r} has no STIX pattern")
    object_type, path = _object_path(ioc_type, value)
    comparison = stix2.EqualityComparisonExpression(
        stix2.ObjectPath(object_type, path), stix2.StringConstant(value)
    )
    return str(stix2.ObservationExpression(comparison))


class _PatternShape(InspectionListener):
    """The library's inspector, plus what it leaves out: AND between comparisons."""

    def __init__(self) -> None:
        super().__init__()
        self.has_comparison_and = False

    def exitComparisonExpressionAnd(self, ctx) -> None:
        if ctx.AND():
            self.has_comparison_and = True


def _inspect(pattern: str) -> _PatternShape:
    check_pattern_size(pattern)
    try:
        parsed = Pattern(pattern)
        shape = _PatternShape()
        parsed.walk(shape)
    except ParseException as error:
        raise UnmappablePattern(f"not a valid STIX 2.1 pattern: {error}") from None
    except RecursionError:
        raise UnmappablePattern("the pattern is nested too deeply to parse") from None
    return shape


def _string_literal(literal: str) -> str:
    """The text of a pattern string literal: without its quotes, with \\' and \\\\ unescaped."""
    if len(literal) < 2 or literal[0] != "'" or literal[-1] != "'":
        raise UnmappablePattern(f"value {literal} is not a string")
    return re.sub(r"\\(['\\])", r"\1", literal[1:-1])


def _ioc_of(object_type: str, path: list, operator: str, literal: str) -> tuple[str, str]:
    """The (IOC type, value) one comparison names, or why it names none."""
    property_path = f"{object_type}:{'.'.join(map(str, path))}"
    if object_type in _ADDRESS_TYPES and path == ["value"] and operator in ("=", "ISSUBSET"):
        value = _string_literal(literal)
        is_network = "/" in value or operator == "ISSUBSET"
        return ("cidr" if is_network else _ADDRESS_TYPES[object_type]), value
    if operator != "=":
        raise UnmappablePattern(f"{operator} on {property_path}: only '=' comparisons name an IOC")
    if object_type in _VALUE_TYPES and path == ["value"]:
        return _VALUE_TYPES[object_type], _string_literal(literal)
    if object_type == "file" and len(path) == 2 and path[0] == "hashes":
        hash_name = str(path[1]).upper().replace("-", "")
        if hash_name in _HASH_TYPES:
            return _HASH_TYPES[hash_name], _string_literal(literal)
    raise UnmappablePattern(f"{property_path} is not a property we store as an IOC")


def iocs_in_pattern(pattern: str) -> list[tuple[str, str]]:
    """The (IOC type, value) pairs a pattern names as alternatives, in pattern order.

    Values come back as written in the pattern (unescaped, not normalised).
    """
    shape = _inspect(pattern)
    data = shape.pattern_data()
    if data.qualifiers:
        qualifiers = ", ".join(sorted(data.qualifiers))
        raise UnmappablePattern(f"qualifiers ({qualifiers}) restrict when it matches")
    joined = sorted(data.observation_ops - {"OR"})
    if joined:
        raise UnmappablePattern(f"observations joined by {', '.join(joined)} match only together")
    if shape.has_comparison_and:
        raise UnmappablePattern("comparisons joined by AND match only together")
    if len(data.comparisons) > 1:
        object_types = ", ".join(sorted(data.comparisons))
        raise UnmappablePattern(f"alternatives over different object types ({object_types})")
    ((object_type, comparisons),) = data.comparisons.items()
    return [_ioc_of(object_type, *comparison) for comparison in comparisons]
