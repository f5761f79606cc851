"""Sigma rules: YAML in, compiled rule out, and batch evaluation over events.

Lives here: parsing with pySigma, refusing what the engine does not evaluate,
the compiled rule with its metadata, and the one-pass batch evaluation. Not
here: field lookup (:mod:`.events`), value semantics (:mod:`.values`) and the
condition tree (:mod:`.conditions`).

Rules are matched against events as they are: there is no processing
pipeline, so a rule's ``logsource`` is metadata and its field names must be
the event's (see :mod:`.events` for how names are resolved).
"""

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import yaml
from sigma.conditions import SigmaCondition
from sigma.modifiers import (
    SigmaEndswithModifier,
    SigmaRegularExpressionModifier,
    SigmaStartswithModifier,
    modifier_mapping,
    reverse_modifier_mapping,
)
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.rule.base import SigmaYAMLLoader

from .conditions import compile_condition, referenced_fields, required_fields, required_literals
from .errors import SigmaRuleError
from .events import flatten_event
from .literal_index import RequiredLiterals, RuleIndex, any_required
from .patterns import any_of
from .values import Predicate

SUPPORTED_MODIFIERS = frozenset(
    {
        "all",
        "base64",
        "base64offset",
        "cased",
        "cidr",
        "contains",
        "endswith",
        "exists",
        "fieldref",
        "gt",
        "gte",
        "lt",
        "lte",
        "neq",
        "re",
        "i",
        "ignorecase",
        "m",
        "multiline",
        "s",
        "dotall",
        "startswith",
        "utf16",
        "utf16be",
        "wide",
        "windash",
    }
)
"""Value modifiers this engine evaluates; pySigma knows others (``expand``, timestamp parts)."""

_SUPPORTED_MODIFIER_CLASSES = frozenset(modifier_mapping[name] for name in SUPPORTED_MODIFIERS)
_ANCHORING_MODIFIERS = (SigmaStartswithModifier, SigmaEndswithModifier)
# pySigma reports most problems as SigmaError (a ValueError) but lets some malformed
# structures (a numeric field name, a numeric id) through as TypeError/AttributeError.
_PYSIGMA_ERRORS = (ValueError, TypeError, AttributeError)
_NOT_RULES = {
    "correlation": "correlation rules are not supported",
    "filter": "Sigma filters (meta-rules) are not supported",
}


@dataclass(frozen=True)
class CompiledSigmaRule:
    """A Sigma rule compiled once into a predicate, with the metadata callers show.

    ``level`` and ``status`` are lower-case strings (``"high"``) or None;
    ``tags`` are ``namespace.name`` strings; ``logsource`` holds the non-empty
    keys of ``category``, ``product``, ``service``. ``predicate`` is the
    compiled test on a :class:`FlatEvent`, for callers that flatten an event
    once for several purposes; ``referenced_fields`` the index names it reads
    (:data:`~.events.ALL_VALUES` among them when the rule has keywords), so
    such callers can index only those (see :func:`~.events.flatten_event`);
    ``required_fields`` names that must hold a non-null value (be keys of
    ``lowered``) for the predicate to be true, so callers can skip the call;
    ``required_literals`` literals one of which the event must hold for the same
    purpose (None when there is no such set), for a :class:`~.literal_index.RuleIndex`.
    """

    title: str
    id: str | None
    level: str | None
    status: str | None
    description: str | None
    tags: tuple[str, ...]
    logsource: Mapping[str, str]
    predicate: Predicate = field(repr=False, compare=False)
    referenced_fields: frozenset[str] = field(repr=False, compare=False)
    required_fields: frozenset[str] = field(repr=False, compare=False)
    required_literals: RequiredLiterals = field(repr=False, compare=False)

    def matches(self, event: Any) -> bool:
        """True when the rule matches one JSON event (flattened here; see :func:`evaluate`)."""
        return self.predicate(flatten_event(event))


class SigmaMatch(NamedTuple):
    """One rule matching one event, by position in the lists given to :func:`evaluate`."""

    rule_index: int
    event_index: int
    rule_id: str | None


def compile_sigma_rule(yaml_text: str) -> CompiledSigmaRule:
    """Parse a Sigma rule (one YAML document) and compile it for evaluation.

    Raises :class:`SigmaRuleError` naming the problem when the YAML or the
    rule is invalid, or the rule uses something this engine does not evaluate
    (an unknown or unsupported modifier, a correlation or filter rule, the
    deprecated ``| count()`` aggregation, a malformed condition), so that no
    rule is accepted that would be silently mis-evaluated.
    """
    document = _load_document(yaml_text)
    try:
        rule = SigmaRule.from_dict(document)
    except _PYSIGMA_ERRORS as error:
        raise SigmaRuleError(f"invalid Sigma rule: {error}") from error
    _check_modifiers(rule)
    conditions = [_parse_condition(condition) for condition in rule.detection.parsed_condition]
    return CompiledSigmaRule(
        title=rule.title,
        id=str(rule.id) if rule.id else None,
        level=str(rule.level) if rule.level else None,
        status=str(rule.status) if rule.status else None,
        description=rule.description,
        tags=tuple(str(tag) for tag in rule.tags),
        logsource={
            key: value
            for key in ("category", "product", "service")
            if (value := getattr(rule.logsource, key))
        },
        # several conditions in one rule are alternatives
        predicate=any_of([compile_condition(condition) for condition in conditions]),
        referenced_fields=frozenset().union(*map(referenced_fields, conditions)),
        # the conditions are alternatives: a name is required when every one requires it
        required_fields=frozenset.intersection(*map(required_fields, conditions)),
        required_literals=any_required(map(required_literals, conditions)),
    )


def evaluate(rules: Sequence[CompiledSigmaRule], events: Sequence[Any]) -> list[SigmaMatch]:
    """Evaluate every rule on every event in one pass; matches ordered by event, then rule.

    Each event is flattened once and then tested by the rules its literals admit
    (:class:`~.literal_index.RuleIndex`), so the cost is one flattening and one index
    look-up per event plus one predicate call per (admitted rule, event); the matches
    are those of calling every rule.
    """
    index = RuleIndex([rule.required_literals for rule in rules])
    matches = []
    for event_index, event in enumerate(events):
        flat = flatten_event(event)
        for rule_index in index.candidates(flat.lowered):
            rule = rules[rule_index]
            if rule.predicate(flat):
                matches.append(SigmaMatch(rule_index, event_index, rule.id))
    return matches


def _load_document(yaml_text: str) -> dict[str, Any]:
    """The rule as a mapping, refusing YAML errors and documents that are not detection rules."""
    try:
        document = yaml.load(yaml_text, SigmaYAMLLoader)  # noqa: S506  # nosec B506 # a SafeLoader subclass
    except yaml.YAMLError as error:
        raise SigmaRuleError(f"invalid YAML: {error}") from error
    if not isinstance(document, dict):
        raise SigmaRuleError("a Sigma rule must be a YAML mapping")
    for key, reason in _NOT_RULES.items():
        if key in document:
            raise SigmaRuleError(reason)
    return document


def _parse_condition(condition: SigmaCondition) -> object:
    """pySigma's condition tree for one condition string, or a SigmaRuleError saying why not."""
    if not isinstance(condition.condition, str):
        raise SigmaRuleError(f"a condition must be a string, not {condition.condition!r}")
    if "|" in condition.condition:
        raise SigmaRuleError(
            f"aggregation in condition {condition.condition!r} is not supported "
            "(the '| count()' syntax is deprecated in Sigma)"
        )
    try:
        tree = condition.parsed
    except _PYSIGMA_ERRORS as error:
        raise SigmaRuleError(f"invalid condition {condition.condition!r}: {error}") from error
    return tree


def _check_modifiers(rule: SigmaRule) -> None:
    """Refuse modifiers the engine does not evaluate, naming them.

    ``startswith``/``endswith`` are also refused where this engine matches
    anywhere regardless: on keywords (a full-text search) and after ``re``
    (searched anywhere, as SigmaHQ rules expect; anchor with ``^``/``$`` instead).
    """
    for item in _detection_items(rule.detection.detections.values()):
        for modifier in item.modifiers:
            name = reverse_modifier_mapping[modifier.__name__]
            if modifier not in _SUPPORTED_MODIFIER_CLASSES:
                raise SigmaRuleError(f"modifier '{name}' is not supported")
            if modifier not in _ANCHORING_MODIFIERS:
                continue
            if item.field is None:
                raise SigmaRuleError(
                    f"modifier '{name}' on a keyword is not supported: keywords match anywhere"
                )
            if SigmaRegularExpressionModifier in item.modifiers:
                raise SigmaRuleError(
                    f"modifier '{name}' after 're' is not supported: regular expressions "
                    "match anywhere, anchor them with ^ or $"
                )


def _detection_items(detections: Iterable[SigmaDetection]) -> Iterator[SigmaDetectionItem]:
    """Every detection item of the rule, nested detections (lists of maps) included."""
    for detection in detections:
        for item in detection.detection_items:
            if isinstance(item, SigmaDetection):
                yield from _detection_items([item])
            else:
                yield item
