"""An index of the literals rules need, to skip rules an event cannot match without calling them.

Lives here: :class:`FieldLiteral` (a lower-cased text some field of an event must equal,
start with, end with or contain) and :class:`RuleIndex`, which, given an event's field
index, returns the positions of the rules worth calling. Not here: which literals a rule
needs (:func:`.conditions.required_literals` derives them from the condition tree).

Most rules can only match events of one program or file: ``Image|endswith:
'\\certutil.exe'``, ``OriginalFileName: 'CertUtil.exe'``. Calling each of a hundred
such rules on each event, only for its first test to fail, was most of the evaluation
time. Instead the index is looked up once per event field: an exact literal is one
dictionary probe per value, prefixes and suffixes one probe per distinct length (the
value's head or tail of that length), and substrings one ``in`` per literal (on the
values joined, for a field with many, such as the keywords' :data:`~.events.ALL_VALUES`).
A rule is called when one of its literals is found, or when it has none (see
:func:`.conditions.required_literals` for when that is). Skipping is only ever done on
literals every match holds, so the matches are the same as calling every rule.
"""

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from .patterns import EXACT, PREFIX, SUBSTRING, SUFFIX


class FieldLiteral(NamedTuple):
    """A lower-cased ``text`` that a value of ``field`` equals, starts or ends with, or contains
    (``kind``: :data:`~.patterns.EXACT` ... :data:`~.patterns.SUBSTRING`); only an exact
    text may be empty (every value starts with the empty string)."""

    field: str
    kind: str
    text: str


MAX_REMEMBERED_VALUES = 50_000
"""Values per field whose admitted rules a :class:`RuleIndex` remembers."""

RequiredLiterals = frozenset[FieldLiteral] | None
"""Literals one of which every matching event holds; None when a rule has no such set."""


def any_required(alternatives: Iterable[RequiredLiterals]) -> RequiredLiterals:
    """What alternatives (OR) require: the union of their literals, None if one has none."""
    union: set[FieldLiteral] = set()
    for literals in alternatives:
        if literals is None:
            return None
        union.update(literals)
    return frozenset(union)


def admission_rank(literals: frozenset[FieldLiteral]) -> tuple[float, int]:
    """How many events ``literals`` would admit, as a sort key for choosing among an AND's
    members (lowest first): a longer shortest literal is rarer (``'\\edrfreeze'`` rather
    than ``'.exe'``), and then fewer literals admit fewer events."""
    shortest = min((len(literal.text) for literal in literals), default=math.inf)
    return -shortest, len(literals)


class RuleIndex:
    """The rules of a sequence (by position) that an event's literals admit.

    Built once per rule set from each rule's :data:`RequiredLiterals`; :meth:`candidates`
    is then called once per event.
    """

    def __init__(self, rule_literals: Sequence[RequiredLiterals]) -> None:
        self._always = [index for index, literals in enumerate(rule_literals) if literals is None]
        by_field: dict[str, _FieldLiterals] = defaultdict(_FieldLiterals)
        for index, literals in enumerate(rule_literals):
            for literal in literals or ():
                by_field[literal.field].add(literal, index)
        self._fields = dict(by_field)

    def candidates(self, lowered: Mapping[str, list[str]]) -> list[int]:
        """Positions of the rules to call on an event (its lower-cased field index), in order.

        Every rule that can match the event is among them: a rule left out needs a literal
        that no value of the event holds.
        """
        found: set[int] = set()
        for field, literals in self._fields.items():
            values = lowered.get(field)
            if values:
                literals.admit(values, found)
        if not found:
            return self._always
        found.update(self._always)
        return sorted(found)


class _FieldLiterals:
    """The literals of one field, arranged for look-up: text -> the rules needing it, one
    table per kind (prefixes and suffixes of every length together, probed with the
    value's head or tail of each length), substrings searched for one by one.

    What a single value admits is remembered (up to :data:`MAX_REMEMBERED_VALUES`): the
    same program, parent, product or command line comes back event after event.
    """

    __slots__ = (
        "exact",
        "prefix_lengths",
        "prefixes",
        "remembered",
        "substrings",
        "suffix_lengths",
        "suffixes",
    )

    def __init__(self) -> None:
        self.exact: dict[str, list[int]] = {}
        self.prefixes: dict[str, list[int]] = {}
        self.prefix_lengths: list[int] = []
        self.suffixes: dict[str, list[int]] = {}
        self.suffix_lengths: list[int] = []
        self.substrings: dict[str, list[int]] = {}
        self.remembered: dict[str, frozenset[int]] = {}

    def add(self, literal: FieldLiteral, rule: int) -> None:
        """Note that ``rule`` needs ``literal`` (or another of its literals)."""
        kind, text = literal.kind, literal.text
        tables = {EXACT: self.exact, PREFIX: self.prefixes, SUFFIX: self.suffixes}
        tables[SUBSTRING] = self.substrings
        tables[kind].setdefault(text, []).append(rule)
        lengths = {PREFIX: self.prefix_lengths, SUFFIX: self.suffix_lengths}.get(kind)
        if lengths is not None and len(text) not in lengths:
            lengths.append(len(text))

    def admit(self, values: list[str], found: set[int]) -> None:
        """Add to ``found`` the rules needing a literal that one of ``values`` holds."""
        if len(values) > 1:
            found.update(self._admitted(values))
            return
        (value,) = values
        rules = self.remembered.get(value)
        if rules is None:
            rules = self._admitted(values)
            if len(self.remembered) < MAX_REMEMBERED_VALUES:
                self.remembered[value] = rules
        found.update(rules)

    def _admitted(self, values: list[str]) -> frozenset[int]:
        """The rules needing a literal that one of ``values`` holds.

        A head (or tail) shorter than asked for is the whole value, found in the table
        only if the value is itself such a literal, which it then starts (ends) with.
        """
        found: set[int] = set()
        probes = (self.exact, self.prefix_lengths, self.suffix_lengths)
        for value in values if any(probes) else ():
            found.update(self.exact.get(value, ()))
            heads = [value[:length] for length in self.prefix_lengths]
            for rules in filter(None, map(self.prefixes.get, heads)):
                found.update(rules)
            tails = [value[-length:] for length in self.suffix_lengths]
            for rules in filter(None, map(self.suffixes.get, tails)):
                found.update(rules)
        if self.substrings:
            # one search per literal: a literal in any value is in the joined text (the
            # separator can only add candidates, never lose one)
            text = values[0] if len(values) == 1 else "\x00".join(values)
            for rules in [rules for literal, rules in self.substrings.items() if literal in text]:
                found.update(rules)
        return frozenset(found)
