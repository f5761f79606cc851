"""Compilation of pySigma's condition tree into one predicate per rule.

Lives here: AND/OR/NOT (including what ``1 of x*``, ``all of them`` and value
lists expand to) and the grouping that makes OR-linked values cheap. Not here:
the meaning of a single value (see :mod:`.values`).

pySigma has already resolved detection names, selectors and value modifiers
into a tree of ``ConditionAND``/``ConditionOR``/``ConditionNOT`` over leaves
"field equals value" (or "value" alone, for keywords). Under an OR, all string
values for the same field are compiled into one string test, so a list of
fifty ``endswith`` suffixes costs one ``str.endswith`` call per event value.
"""

from collections import defaultdict
from collections.abc import Iterator

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.types import (
    SigmaBool,
    SigmaCasedString,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaString,
    SigmaType,
)

from .errors import SigmaRuleError
from .events import ALL_VALUES, FlatEvent, normalize_field_name
from .literal_index import FieldLiteral, RequiredLiterals, admission_rank, any_required
from .patterns import any_of, as_substring, necessary_literal
from .values import Predicate, strings_predicate, value_predicate

Leaf = ConditionFieldEqualsValueExpression | ConditionValueExpression


def compile_condition(node: object) -> Predicate:
    """Return the predicate equivalent to a postprocessed pySigma condition tree."""
    if isinstance(node, ConditionAND):
        return _all_of([compile_condition(member) for member in _members(node, ConditionAND)])
    if isinstance(node, ConditionOR):
        return _disjunction(list(_members(node, ConditionOR)))
    if isinstance(node, ConditionNOT):
        negated = compile_condition(node.args[0])
        return lambda event: not negated(event)
    if isinstance(node, Leaf):
        return _disjunction([node])
    raise SigmaRuleError(f"condition element {type(node).__name__} is not supported")


def _members(
    node: ConditionAND | ConditionOR, kind: type[ConditionAND] | type[ConditionOR]
) -> Iterator[object]:
    """Operands of an AND/OR, with nested operators of the same kind flattened into it."""
    for member in node.args:
        if isinstance(member, kind):
            yield from _members(member, kind)
        else:
            yield member


def _disjunction(members: list[object]) -> Predicate:
    """OR of the members, string values on the same field compiled together."""
    strings: dict[tuple[str, bool, bool], list[SigmaString]] = defaultdict(list)
    predicates: list[Predicate] = []
    for member in members:
        if not isinstance(member, Leaf):
            predicates.append(compile_condition(member))
            continue
        keyword = isinstance(member, ConditionValueExpression)
        key = _index_name(member)
        for value in _leaf_values(member):
            if isinstance(value, SigmaString):
                strings[key, isinstance(value, SigmaCasedString), keyword].append(value)
            else:
                predicates.append(value_predicate(key, value, keyword=keyword))
    predicates[:0] = [
        strings_predicate(key, patterns, cased=cased, keyword=keyword)
        for (key, cased, keyword), patterns in strings.items()
    ]
    return any_of(predicates)


def referenced_fields(node: object) -> frozenset[str]:
    """Index names the predicate of ``node`` reads (:data:`ALL_VALUES` for keywords).

    Walks the tree :func:`compile_condition` compiles and names what each leaf's
    predicate looks up: its own field, and the other field of a ``fieldref``.
    """
    if isinstance(node, ConditionAND | ConditionOR | ConditionNOT):
        return frozenset().union(*(referenced_fields(member) for member in node.args))
    if not isinstance(node, Leaf):
        return frozenset()
    names = {_index_name(node)}
    for value in _expanded(node.value):
        if isinstance(value, SigmaFieldReference):
            names.add(normalize_field_name(value.field))
    return frozenset(names)


def required_fields(node: object) -> frozenset[str]:
    """Index names that must hold a non-null value for the predicate of ``node`` to be true.

    A lower bound, for skipping a rule without calling it: every value test (strings,
    numbers, booleans, regular expressions, networks, comparisons, field references)
    is false on a field without a non-null value, so a leaf requires its field unless
    one of its values is ``null`` or ``exists``. AND requires what any member requires,
    OR what every member requires, NOT and keywords nothing.
    """
    if isinstance(node, ConditionAND):
        return frozenset().union(*(required_fields(member) for member in node.args))
    if isinstance(node, ConditionOR):
        members = [required_fields(member) for member in node.args]
        return frozenset.intersection(*members) if members else frozenset()
    if not isinstance(node, ConditionFieldEqualsValueExpression):
        return frozenset()
    if any(isinstance(value, SigmaNull | SigmaExists) for value in _expanded(node.value)):
        return frozenset()
    return frozenset({normalize_field_name(node.field)})


def required_literals(node: object) -> RequiredLiterals:
    """Literals one of which every event satisfying ``node`` holds (see :mod:`.literal_index`).

    A field's case-insensitive string values need each one literal (:func:`necessary_literal`),
    so the field needs one of them; OR needs one of its members' literals, AND those of one
    member (the one admitting fewest events: :func:`admission_rank`); keywords need theirs
    anywhere in the event (under :data:`ALL_VALUES`). None, meaning the predicate must be called on
    every event, where a member can be true without a literal: NOT, ``cased`` strings,
    values of other types, or a pattern such as ``*``.
    """
    if isinstance(node, ConditionAND):
        found = [required_literals(member) for member in _members(node, ConditionAND)]
        needed = [literals for literals in found if literals is not None]
        return min(needed, key=admission_rank, default=None)
    if isinstance(node, ConditionOR):
        return any_required(required_literals(member) for member in _members(node, ConditionOR))
    if not isinstance(node, Leaf):
        return None
    keyword = isinstance(node, ConditionValueExpression)
    field = _index_name(node)
    literals = set()
    for value in _leaf_values(node):
        if type(value) is not SigmaString:  # cased strings are matched on the raw view
            return None
        literal = necessary_literal(as_substring(value) if keyword else value)
        if literal is None:
            return None
        literals.add(FieldLiteral(field, *literal))
    return frozenset(literals)


def _index_name(leaf: Leaf) -> str:
    """The index name a leaf's values are looked up under: its field, or every value."""
    if isinstance(leaf, ConditionValueExpression):
        return ALL_VALUES
    return normalize_field_name(leaf.field)


def _leaf_values(leaf: Leaf) -> Iterator[SigmaType]:
    """The values a leaf compares with: its expanded values, a keyword's numbers as text."""
    keyword = isinstance(leaf, ConditionValueExpression)
    for value in _expanded(leaf.value):
        if keyword and isinstance(value, SigmaNumber | SigmaBool):
            yield SigmaString(str(value).lower())  # full-text search: numbers are text
        else:
            yield value


def _expanded(value: SigmaType) -> Iterator[SigmaType]:
    """The alternatives of a value: those of an expansion (windash, base64offset), else itself."""
    if isinstance(value, SigmaExpansion):
        for alternative in value.values:
            yield from _expanded(alternative)
    else:
        yield value


def _all_of(predicates: list[Predicate]) -> Predicate:
    """AND of predicates, short-circuiting in the rule's order."""
    if len(predicates) == 1:
        return predicates[0]

    def conjunction(event: FlatEvent) -> bool:
        for predicate in predicates:  # noqa: SIM110 (a loop: any()/all() over a generator measured 30% slower)
            if not predicate(event):
                return False
        return True

    return conjunction
