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
values joined, for a field with many such as the keywords' :data:`~.events.ALL_VALUES`). A rule is
called when one of its literals is found, or when it has none (see
:func:`.conditions.required_literals` for when that is). Skipping is only ever done on
literals every match holds, so the matches are the same as calling every rule.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from .patterns import EXACT, PREFIX, SUBSTRING, SUFFIX


class FieldLiteral(NamedTuple):
    """A lower-cased ``text`` that a value of ``field`` equals, starts or ends with, or contains."""

    field: str
    kind: str
    text: str


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


def probe_cost(literals: frozenset[FieldLiteral]) -> tuple[int, int]:
    """How costly looking ``literals`` up is, for choosing among an AND's members: substrings
    (an ``in`` each) first, then the number of literals (fewer literals, fewer events pass)."""
    return sum(literal.kind == SUBSTRING for literal in literals), len(literals)


# A probe: value[start:stop] is looked up in the table (exact: the whole value).
_Probe = tuple[int | None, int | None, dict[str, list[int]]]


class _FieldProbes(NamedTuple):
    """Everything the index looks up in the values of one field."""

    probes: list[_Probe]
    substrings: list[tuple[str, list[int]]]


class RuleIndex:
    """The rules of a sequence (by position) that an event's literals admit.

    Built once per rule set from each rule's :data:`RequiredLiterals`; :meth:`candidates`
    is then called once per event.
    """

    def __init__(self, rule_literals: Sequence[RequiredLiterals]) -> None:
        self._always = [index for index, literals in enumerate(rule_literals) if literals is None]
        self._fields = _field_probes(
            (index, literal)
            for index, literals in enumerate(rule_literals)
            for literal in literals or ()
        )

    def candidates(self, lowered: Mapping[str, list[str]]) -> list[int]:
        """Positions of the rules to call on an event (its lower-cased field index), in order.

        Every rule that can match the event is among them: a rule left out needs a literal
        that no value of the event holds.
        """
        found: set[int] = set()
        for field, (probes, substrings) in self._fields.items():
            values = lowered.get(field)
            if not values:
                continue
            for value in values:
                for start, stop, table in probes:
                    rules = table.get(value[start:stop])
                    if rules is not None:
                        found.update(rules)
            if substrings:
                # one search per literal: a literal in any value is in the joined text (the
                # separator can only add candidates, never lose one)
                text = values[0] if len(values) == 1 else "\x00".join(values)
                for literal, rules in substrings:
                    if literal in text:
                        found.update(rules)
        if not found:
            return self._always
        found.update(self._always)
        return sorted(found)


def _field_probes(literals: Iterable[tuple[int, FieldLiteral]]) -> dict[str, _FieldProbes]:
    """Field -> its probes: one table for exact literals, one per prefix and suffix length."""
    tables: dict[str, dict[tuple[int | None, int | None], dict[str, list[int]]]] = defaultdict(dict)
    substrings: dict[str, dict[str, list[int]]] = defaultdict(dict)
    for index, (field, kind, text) in literals:
        if kind == SUBSTRING:
            substrings[field].setdefault(text, []).append(index)
            continue
        bounds = {EXACT: (None, None), PREFIX: (None, len(text)), SUFFIX: (-len(text), None)}[kind]
        tables[field].setdefault(bounds, {}).setdefault(text, []).append(index)
    return {
        field: _FieldProbes(
            [(start, stop, table) for (start, stop), table in tables.get(field, {}).items()],
            list(substrings.get(field, {}).items()),
        )
        for field in tables.keys() | substrings.keys()
    }
