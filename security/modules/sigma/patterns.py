"""Sigma string values (wildcards ``*`` ``?``) compiled into fast string tests.

Lives here: turning a group of OR-linked :class:`sigma.types.SigmaString` values
into one ``str -> bool`` test. Not here: which event values the test is applied
to (see :mod:`.values`).

Most Sigma values are plain strings, prefixes, suffixes or substrings (that is
what ``startswith``, ``endswith`` and ``contains`` produce); those become set
membership, ``str.startswith``/``str.endswith`` with a tuple, and ``in``. Any
other wildcard pattern becomes a regular expression that is safe by
construction: each literal segment between two ``*`` is placed left-most
inside an atomic group, so ``re`` never backtracks into it and a hostile rule
cannot make matching exponential. Left-most placement of fixed-length segments
never loses a match, so this is exact glob semantics.
"""

import re
from collections.abc import Callable, Sequence
from typing import TypeVar

from sigma.types import Placeholder, SigmaString, SpecialChars

from .errors import SigmaRuleError

StringTest = Callable[[str], bool]
Subject = TypeVar("Subject")
Part = str | SpecialChars

EXACT = "exact"
PREFIX = "prefix"
SUFFIX = "suffix"
SUBSTRING = "substring"

_MULTI = SpecialChars.WILDCARD_MULTI
_ANY = "any"
_GLOB = "glob"
# pattern shape (literal as "", wildcards as themselves) -> the literal kind it is
_SHAPES = {
    (): EXACT,
    ("",): EXACT,
    ("", _MULTI): PREFIX,
    (_MULTI, ""): SUFFIX,
    (_MULTI, "", _MULTI): SUBSTRING,
}


def compile_string_patterns(patterns: Sequence[SigmaString], *, lower: bool) -> StringTest:
    """Return one test that is true when a string matches any of ``patterns``.

    With ``lower`` the patterns are lower-cased and the test expects lower-cased
    input: Sigma matches strings case-insensitively unless ``cased`` is given.
    """
    literals: dict[str, list[str]] = {EXACT: [], PREFIX: [], SUFFIX: [], SUBSTRING: []}
    globs: list[str] = []
    for pattern in patterns:
        parts = _parts(pattern, lower=lower)
        kind = _kind(parts)
        if kind == _ANY:
            return _always
        if kind == _GLOB:
            globs.append(_glob_regex(parts))
        else:
            literals[kind].append(_text(parts))
    tests: list[Callable[[str], bool]] = []
    if literals[EXACT]:
        tests.append(frozenset(literals[EXACT]).__contains__)
    if literals[PREFIX]:
        tests.append(_startswith(tuple(literals[PREFIX])))
    if literals[SUFFIX]:
        tests.append(_endswith(tuple(literals[SUFFIX])))
    if literals[SUBSTRING]:
        tests.append(_contains(tuple(literals[SUBSTRING])))
    if globs:
        tests.append(_fullmatch("|".join(f"(?:{glob})" for glob in globs)))
    return any_of(tests)


def necessary_literal(pattern: SigmaString) -> tuple[str, str] | None:
    """``(kind, text)``: what a lower-cased value must hold to match ``pattern`` case-insensitively.

    ``kind`` is :data:`EXACT` (the value is ``text``), :data:`PREFIX`, :data:`SUFFIX` or
    :data:`SUBSTRING`. A pattern with inner wildcards needs its literal head (or tail, or
    longest inner literal). None when a pattern needs no literal (``*``, ``?*``), so that
    callers can skip a test whose literal an event lacks without ever skipping a match.
    """
    parts = _parts(pattern, lower=True)
    kind = _kind(parts)
    if kind == EXACT:
        return kind, _text(parts)
    if kind in (PREFIX, SUFFIX, SUBSTRING):
        literal = (kind, _text(parts))
    elif isinstance(parts[0], str):  # a glob (or _ANY, whose parts are all wildcards)
        literal = (PREFIX, parts[0])
    elif isinstance(parts[-1], str):
        literal = (SUFFIX, parts[-1])
    else:
        literal = (SUBSTRING, max((part for part in parts if isinstance(part, str)), default=""))
    return literal if literal[1] else None  # an empty literal is in every value


def as_substring(pattern: SigmaString) -> SigmaString:
    """The pattern with ``*`` on both ends: how a keyword (a value without a field) matches."""
    if not pattern.startswith(SpecialChars.WILDCARD_MULTI):
        pattern = SpecialChars.WILDCARD_MULTI + pattern
    if not pattern.endswith(SpecialChars.WILDCARD_MULTI):
        pattern = pattern + SpecialChars.WILDCARD_MULTI
    return pattern


def any_of(tests: Sequence[Callable[[Subject], bool]]) -> Callable[[Subject], bool]:
    """Combine tests with OR, short-circuiting, without a loop for one or two tests."""
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        first, second = tests
        return lambda subject: first(subject) or second(subject)

    def any_test(subject: Subject) -> bool:
        for test in tests:  # noqa: SIM110 (a loop: any()/all() over a generator measured 30% slower)
            if test(subject):
                return True
        return False

    return any_test


def _parts(pattern: SigmaString, *, lower: bool) -> list[Part]:
    """The pattern as literal strings and wildcards, adjacent literals and ``*`` runs merged."""
    parts: list[Part] = []
    for part in pattern.s:
        if isinstance(part, Placeholder):
            raise SigmaRuleError(
                f"placeholder %{part.name}% needs a processing pipeline, which this engine "
                "does not apply"
            )
        if isinstance(part, str):
            part = part.lower() if lower else part
            if parts and isinstance(parts[-1], str):
                parts[-1] += part
                continue
        elif part is _MULTI and parts and parts[-1] is _MULTI:
            continue
        parts.append(part)
    return parts


def _kind(parts: list[Part]) -> str:
    """Which test a pattern needs: a literal kind, ``_ANY`` (only ``*``) or ``_GLOB``."""
    if parts and all(part is _MULTI for part in parts):
        return _ANY
    shape = tuple(part if isinstance(part, SpecialChars) else "" for part in parts)
    return _SHAPES.get(shape, _GLOB)


def _text(parts: list[Part]) -> str:
    """The literal characters of a pattern (its only ones, for the literal kinds)."""
    return "".join(part for part in parts if isinstance(part, str))


def _glob_regex(parts: list[Part]) -> str:
    """Regular expression (for ``fullmatch``) equivalent to a wildcard pattern."""
    segments = [""]
    for part in parts:
        if part is _MULTI:
            segments.append("")
        else:
            segments[-1] += re.escape(part) if isinstance(part, str) else "."
    if len(segments) == 1:
        return segments[0]
    first, *middle, last = segments
    return first + "".join(f"(?>.*?{segment})" for segment in middle) + ".*" + last


def _always(_value: str) -> bool:
    return True


def _startswith(prefixes: tuple[str, ...]) -> StringTest:
    return lambda value: value.startswith(prefixes)


def _endswith(suffixes: tuple[str, ...]) -> StringTest:
    return lambda value: value.endswith(suffixes)


def _contains(substrings: tuple[str, ...]) -> StringTest:
    if len(substrings) == 1:
        (substring,) = substrings
        return lambda value: substring in value

    def contains_any(value: str) -> bool:
        for substring in substrings:  # noqa: SIM110 (a loop: any()/all() over a generator measured 30% slower)
            if substring in value:
                return True
        return False

    return contains_any


def _fullmatch(regex: str) -> StringTest:
    match = re.compile(regex, re.DOTALL).fullmatch
    return lambda value: match(value) is not None
