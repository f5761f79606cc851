"""Predicates on one field of a flattened event, one per kind of Sigma value.

Lives here: what it means for an event field to "equal" a Sigma value of each
type pySigma produces (strings with wildcards, numbers, booleans, null,
``exists``, regular expressions, CIDR networks, numeric comparisons, field
references). Not here: how values are linked by the condition (see
:mod:`.conditions`) and how strings are compiled (see :mod:`.patterns`).

A field matches when any of its values does (fields can have several, see
:mod:`.events`). Numbers match numeric text too (``4688`` matches ``"4688"``).
Regular expressions (modifier ``re``) are searched for anywhere in the value,
as SigmaHQ rules expect, and run on RE2 (pySigma's default regex engine, which
already validated them): linear time, so a rule cannot stall the engine.
"""

import ipaddress
import operator
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any

from sigma.policy import default_policy
from sigma.types import (
    CompareOperators,
    SigmaBool,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaString,
    SigmaType,
)

from .errors import SigmaRuleError
from .events import FlatEvent, as_text, normalize_field_name
from .patterns import as_substring, compile_string_patterns

Predicate = Callable[[FlatEvent], bool]
ValueTest = Callable[[Any], bool]

_RAW = attrgetter("raw")
_LOWERED = attrgetter("lowered")

_COMPARISONS: dict[CompareOperators, Callable[[Any, Any], bool]] = {
    CompareOperators.LT: operator.lt,
    CompareOperators.LTE: operator.le,
    CompareOperators.GT: operator.gt,
    CompareOperators.GTE: operator.ge,
    CompareOperators.NEQ: operator.ne,
}


def strings_predicate(
    key: str, patterns: Sequence[SigmaString], *, cased: bool, keyword: bool
) -> Predicate:
    """True when the field ``key`` has a value matching any of the OR-linked ``patterns``.

    Keywords (values without a field) are a full-text search: they match when
    they occur anywhere in any value, so they get implicit ``*`` on both sides.
    """
    if keyword:
        patterns = [as_substring(pattern) for pattern in patterns]
    test = compile_string_patterns(patterns, lower=not cased)
    return _any_text(key, test) if cased else _any_value(_LOWERED, key, test)


def value_predicate(key: str, value: SigmaType, *, keyword: bool) -> Predicate:
    """Predicate for a single non-string Sigma value on the field ``key``.

    Raises :class:`SigmaRuleError` for value types this engine does not
    evaluate (placeholders, query expressions, timestamp parts).
    """
    if keyword and isinstance(value, SigmaNull | SigmaExists | SigmaFieldReference):
        raise SigmaRuleError(
            f"{type(value).__name__} as a keyword (a value without a field) is not supported"
        )
    if type(value) is SigmaNumber:  # not its subclass SigmaTimestampPart
        return _any_value(_RAW, key, _numeric_test(operator.eq, value.number))
    if isinstance(value, SigmaBool):
        return _any_value(_RAW, key, _boolean_test(value.boolean))
    if isinstance(value, SigmaNull):
        return _null_predicate(key)
    if isinstance(value, SigmaExists):
        return _exists_predicate(key, value.exists)
    if isinstance(value, SigmaRegularExpression):
        return _any_text(key, _regex_test(value))
    if isinstance(value, SigmaCIDRExpression):
        return _any_text(key, _network_test(value.network))
    if isinstance(value, SigmaCompareExpression):
        return _any_value(_RAW, key, _numeric_test(_COMPARISONS[value.op], value.number.number))
    if isinstance(value, SigmaFieldReference):
        return _field_reference_predicate(key, value)
    raise SigmaRuleError(f"value type {type(value).__name__} ({value!r}) is not supported")


def _any_value(
    view: Callable[[FlatEvent], dict[str, list[Any]]], key: str, test: ValueTest
) -> Predicate:
    """Predicate: some value of field ``key`` in ``view`` passes ``test``."""

    def predicate(event: FlatEvent) -> bool:
        values = view(event).get(key)
        if values:
            for value in values:
                if test(value):
                    return True
        return False

    return predicate


def _any_text(key: str, test: ValueTest) -> Predicate:
    """Predicate: the text form of some non-null value of field ``key`` passes ``test``."""

    def predicate(event: FlatEvent) -> bool:
        values = event.raw.get(key, ())
        return any(test(as_text(value)) for value in values if value is not None)

    return predicate


def _as_number(value: Any) -> int | float | None:
    """The numeric meaning of an event value, if it has one (booleans have none)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        for parse in (int, float):
            try:
                return parse(value)
            except ValueError:
                continue
    return None


def _numeric_test(compare: Callable[[Any, Any], bool], number: int | float) -> ValueTest:
    def test(value: Any) -> bool:
        parsed = _as_number(value)
        return parsed is not None and compare(parsed, number)

    return test


def _boolean_test(expected: bool) -> ValueTest:
    text = "true" if expected else "false"

    def test(value: Any) -> bool:
        if isinstance(value, bool):
            return value is expected
        return isinstance(value, str) and value.strip().lower() == text

    return test


def _regex_test(value: SigmaRegularExpression) -> ValueTest:
    flags = 0
    for flag in value.flags:
        flags |= SigmaRegularExpression.sigma_to_python_flags[flag]
    search = default_policy.regex_engine.compile(str(value.regexp), flags).search
    return lambda text: search(text) is not None


def _network_test(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> ValueTest:
    def test(text: str) -> bool:
        try:
            return ipaddress.ip_address(text.strip()) in network
        except ValueError:
            return False

    return test


def _null_predicate(key: str) -> Predicate:
    """Sigma ``null``: the field is missing or JSON null."""

    def predicate(event: FlatEvent) -> bool:
        return all(value is None for value in event.raw.get(key, ()))

    return predicate


def _exists_predicate(key: str, expected: bool) -> Predicate:
    """Modifier ``exists``: the field is present with a non-null value (or, for false, not)."""

    def predicate(event: FlatEvent) -> bool:
        present = any(value is not None for value in event.raw.get(key, ()))
        return present is expected

    return predicate


def _field_reference_predicate(key: str, reference: SigmaFieldReference) -> Predicate:
    """Modifier ``fieldref``: the field equals (or starts/ends with) another field's value."""
    other = normalize_field_name(reference.field)
    if reference.starts_with and reference.ends_with:
        compare: Callable[[str, str], bool] = operator.contains
    elif reference.starts_with:
        compare = str.startswith
    elif reference.ends_with:
        compare = str.endswith
    else:
        compare = operator.eq

    def predicate(event: FlatEvent) -> bool:
        references = event.lowered.get(other, ())
        return any(
            compare(value, expected)
            for value in event.lowered.get(key, ())
            for expected in references
        )

    return predicate
