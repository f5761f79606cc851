"""Threat rules: define them (seed form or Sigma YAML), store them, compile them once, and
evaluate a batch of events against all of them in one pass.

Lives here: validating a rule into a :class:`RuleDefinition`, creating/editing/deleting
the stored :class:`~models.DetectionRule`, the per-process cache of compiled detectors,
and :func:`evaluate`. Not here: the Sigma engine (:mod:`security.modules.sigma`), the
seed form (:mod:`security.modules.seed_rules`), alerts and grouping
(:mod:`security.modules.alerts`), HTTP.

Both kinds of rule compile into a *detector* with one interface (:class:`Detector`), so a
batch is evaluated the same way whatever the mix: each event is flattened once (indexing
only the fields the detectors and the caller read, when every detector says which), IOC
candidates are found once (only when an IOC rule is enabled), the IOC store is queried
once per batch (only when a rule asks it), and then each event is tested by every
detector that its literals do not rule out (:class:`~security.modules.sigma.RuleIndex`).

Compiled detectors cannot be stored or pickled; they are rebuilt from the stored YAML or
JSON (about 1 ms a rule) the first time a process sees a ``(rule id, version)``, and kept
until the rule changes. Each process keeps its own cache: nothing in it is needed by
another process, and a stale entry is impossible because the version is part of the key.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property
from typing import Any, ClassVar, NamedTuple, Protocol

import yaml
from sqlalchemy import select

from models import DetectionRule, db, utcnow
from models.vocabulary import RULE_KINDS, SEVERITIES
from security.errors import Invalid
from security.events import EventType, actor_of, emit
from security.modules.principals import Principal
from security.modules.seed_rules import (
    Candidate,
    InvalidIocDetection,
    compile_ioc_detection,
    find_candidates,
    stored_confidences,
)
from security.modules.sigma import (
    CompiledSigmaRule,
    FlatEvent,
    RequiredLiterals,
    RuleIndex,
    SigmaRuleError,
    compile_sigma_rule,
    flatten_events,
)
from security.modules.sigma.events import ALL_VALUES, normalize_field_name
from security.modules.storable import unstorable_values

SIGMA_LEVEL_SEVERITY = {
    "informational": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "critical": "critical",
}
"""Sigma ``level`` -> our severity; a rule without a level is ``medium``."""
DEFAULT_SEVERITY = "medium"
MAX_SIGMA_BYTES = 256 * 1024
# A YAML rule is a small tree; aliases can make a small text a huge one (billion laughs).
MAX_YAML_NODES = 20_000
# ... and a shallow one (a Sigma rule nests about five levels). PyYAML composes a document
# recursively, so ``a: [[[[...]]]]`` in a few kilobytes would exhaust the stack.
MAX_YAML_DEPTH = 64
MAX_GROUP_FIELDS = 5
EDITABLE_FIELDS = ("name", "description", "severity", "enabled", "group_by")
# Sigma detection keys that are not selections.
_NOT_SELECTIONS = frozenset({"condition", "timeframe"})


EventTest = Callable[[int, FlatEvent], bool]
"""Does event ``index`` (its field index given too) of the batch match."""


class InvalidRule(Invalid, ValueError):
    """A rule that cannot be evaluated as given: ``reason`` says why, ``field`` names the
    input it is in (``source`` for a Sigma rule's YAML, ``detection`` for the seed form)."""

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        super().__init__(
            f"The rule cannot be used: {reason}", errors={field: [reason]} if field else None
        )
        self.reason = reason


@contextmanager
def _refused_in(field: str) -> Iterator[None]:
    """Name ``field`` as the input of any :class:`InvalidRule` raised inside."""
    try:
        yield
    except InvalidRule as error:
        raise InvalidRule(error.reason, field=field) from None


class Detector(Protocol):
    """A compiled rule: which events of a batch match, and on which values.

    ``needs_candidates``: the batch must find IOC candidates in its events;
    ``needs_store``: the batch must also look them up in the IOC store.
    """

    @property
    def needs_candidates(self) -> bool: ...

    @property
    def needs_store(self) -> bool: ...

    def event_test(self, batch: EventBatch) -> EventTest: ...

    def matched_values(self, batch: EventBatch, index: int) -> dict[str, list[Any]]: ...


@dataclass(frozen=True)
class SigmaDetector:
    """A compiled Sigma rule and the (normalised) event fields its detection names."""

    rule: CompiledSigmaRule
    fields: tuple[str, ...]
    needs_candidates: ClassVar[bool] = False
    needs_store: ClassVar[bool] = False

    @cached_property
    def index_names(self) -> frozenset[str]:
        """Field index names the rule's predicate and :meth:`matched_values` read."""
        return self.rule.referenced_fields.union(self.fields)

    def event_test(self, batch: EventBatch) -> EventTest:
        predicate = self.rule.predicate
        return lambda index, flat: predicate(flat)

    def matched_values(self, batch: EventBatch, index: int) -> dict[str, list[Any]]:
        """The event's values of the fields the rule tests (which of them decided the
        match is the condition's business; these are what an analyst looks at)."""
        raw = batch.flat[index].raw
        return {name: raw[name] for name in self.fields if name in raw}


class EventBatch:
    """Events prepared once for every detector of an evaluation.

    ``flat`` holds each event's field index; ``candidates`` each event's IOC candidates
    (``{(type, normalised): value as written}``; left empty unless a detector needs
    them); ``stored`` the IOC store's answer for all candidates of the batch.

    The field index holds only the names some detector reads, plus ``extra_fields``
    (what the caller reads itself, such as group fields): see :func:`index_names`.
    """

    def __init__(
        self,
        events: Sequence[Any],
        detectors: Sequence[Detector],
        now: datetime,
        extra_fields: Iterable[str] = (),
    ):
        self.events = events
        fields = index_names(detectors, extra_fields)
        self.flat: list[FlatEvent] = flatten_events(events, fields)
        self.candidates: list[dict[Candidate, str]] = []
        self.stored: dict[Candidate, dict[str, int]] = {}
        if any(detector.needs_candidates for detector in detectors):
            known: dict[str, Candidate | None] = {}
            self.candidates = [find_candidates(flat.raw[ALL_VALUES], known) for flat in self.flat]
        if any(detector.needs_store for detector in detectors):
            everything = (candidate for found in self.candidates for candidate in found)
            self.stored = stored_confidences(everything, now)


def index_names(
    detectors: Sequence[Detector], extra_fields: Iterable[str] = ()
) -> frozenset[str] | None:
    """The field index names a batch must build for ``detectors``; None for all of them.

    Sigma detectors name what their predicates and reports read. Any other detector
    (an IOC rule scans every leaf and reports the names of the fields holding a match)
    needs the full index.
    """
    sigma = [detector for detector in detectors if isinstance(detector, SigmaDetector)]
    if len(sigma) < len(detectors):
        return None
    return frozenset(extra_fields).union(*(detector.index_names for detector in sigma))


class RuleMatch(NamedTuple):
    """Detector ``rule_index`` matched event ``event_index`` (positions in the inputs)."""

    rule_index: int
    event_index: int


def evaluate(
    detectors: Sequence[Detector],
    events: Sequence[Any],
    now: datetime | None = None,
    extra_fields: Iterable[str] = (),
) -> tuple[EventBatch, list[RuleMatch]]:
    """Test every detector on every event of the batch; matches ordered by event, then rule.

    ``extra_fields`` are field index names the caller reads from ``batch.flat`` itself.

    The events are prepared once (:class:`EventBatch`), then each event is tested by
    every detector while its field index is hot in the CPU's caches (rule by rule over
    the whole batch measured two to three times slower), skipping those that lack a
    field or a literal the event lacks (most rules on most events): the matches are
    those of testing every detector. The batch is returned too, so
    callers can ask a detector for the matched values of the matches they report
    without preparing the events again.
    """
    batch = EventBatch(events, detectors, now or utcnow(), extra_fields)
    index = RuleIndex([_required_literals(detector) for detector in detectors])
    tests = [(_required_fields(detector), detector.event_test(batch)) for detector in detectors]
    matches = [
        RuleMatch(rule_index, event_index)
        for event_index, flat in enumerate(batch.flat)
        for present in (flat.lowered.keys(),)
        for rule_index in index.candidates(flat.lowered)
        for required, test in (tests[rule_index],)
        if present >= required and test(event_index, flat)
    ]
    return batch, matches


def _required_fields(detector: Detector) -> frozenset[str]:
    """Names an event must have (non-null) for the detector to match: a Sigma rule's
    required fields, so rules testing fields an event lacks are skipped without a call
    (about half the calls on the regression events); none for other detectors."""
    return detector.rule.required_fields if isinstance(detector, SigmaDetector) else frozenset()


def _required_literals(detector: Detector) -> RequiredLiterals:
    """Literals one of which an event must hold for the detector to match: a Sigma rule's
    (:class:`~security.modules.sigma.RuleIndex` then skips it on the others, most events
    for most rules); none (called on every event) for other detectors."""
    return detector.rule.required_literals if isinstance(detector, SigmaDetector) else None


# --- definitions --------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleDefinition:
    """A validated rule, ready to store: what :func:`create_rule` writes."""

    kind: str
    name: str
    description: str
    severity: str
    source: str | None = None
    detection: Mapping[str, Any] | None = None
    sigma_id: str | None = None
    tags: tuple[str, ...] = ()


def check_severity(severity: Any) -> str:
    if severity not in SEVERITIES:
        raise InvalidRule(f"severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
    return severity


def seed_definition(
    name: str, description: str, detection: Any, severity: str | None
) -> RuleDefinition:
    """Validate a seed-form rule (see :mod:`security.modules.seed_rules`)."""
    with _refused_in("detection"):
        try:
            compile_ioc_detection(detection)
        except InvalidIocDetection as error:
            raise InvalidRule(str(error)) from None
        return RuleDefinition(
            "seed", _check_name(name), description or "", check_severity(severity), None, detection
        )


def sigma_definition(yaml_text: str, severity: str | None = None) -> RuleDefinition:
    """Validate a Sigma rule given as YAML; ``severity`` overrides the rule's ``level``.

    The text is size-capped and read with ``yaml.safe_load`` (and refused if its aliases
    blow it up past :data:`MAX_YAML_NODES`) before the Sigma engine sees it.
    """
    with _refused_in("source"):
        return _sigma_definition(yaml_text, severity)


def _sigma_definition(yaml_text: str, severity: str | None) -> RuleDefinition:
    if not isinstance(_load_yaml(yaml_text), dict):
        raise InvalidRule("a Sigma rule must be a YAML mapping")
    try:
        compiled = compile_sigma_rule(yaml_text)
    except SigmaRuleError as error:
        raise InvalidRule(str(error)) from None
    level_severity = SIGMA_LEVEL_SEVERITY.get(compiled.level or "", DEFAULT_SEVERITY)
    return RuleDefinition(
        kind="sigma",
        name=_check_name(compiled.title),
        description=compiled.description or "",
        severity=check_severity(severity) if severity is not None else level_severity,
        source=yaml_text,
        sigma_id=compiled.id,
        tags=compiled.tags,
    )


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 200:
        raise InvalidRule("a rule's name (a Sigma rule's title) must be 1 to 200 characters")
    return name.strip()


class _DepthLimitedLoader(yaml.SafeLoader):
    """``yaml.safe_load``'s loader, refusing a document nested deeper than
    :data:`MAX_YAML_DEPTH` while composing it, before the recursion gets deep."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(
                    problem=f"the document is nested deeper than {MAX_YAML_DEPTH} levels",
                    problem_mark=self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _load_yaml(yaml_text: str) -> Any:
    """The YAML document, refused (:class:`InvalidRule`) when too big, too deep, or holding
    values PostgreSQL cannot store (a ``"\\0"`` escape makes a NUL character)."""
    if len(yaml_text.encode("utf-8", "surrogatepass")) > MAX_SIGMA_BYTES:
        raise InvalidRule(f"a Sigma rule is at most {MAX_SIGMA_BYTES} bytes")
    try:
        document = yaml.load(yaml_text, _DepthLimitedLoader)  # noqa: S506  # nosec B506 # a SafeLoader subclass
    except yaml.YAMLError as error:
        raise InvalidRule(f"invalid YAML: {error}") from None
    _check_tree_size(document)
    unstorable = unstorable_values(document)
    if unstorable:
        path, problems = next(iter(unstorable.items()))
        raise InvalidRule(f"{path} {problems[0]}")
    return document


def _check_tree_size(document: Any) -> None:
    """Refuse a document whose tree (aliases expanded) exceeds :data:`MAX_YAML_NODES` nodes
    or :data:`MAX_YAML_DEPTH` levels (aliases nest without nesting the text)."""
    pending, seen = [(document, 1)], 0
    while pending:
        node, depth = pending.pop()
        seen += 1
        if seen > MAX_YAML_NODES:
            raise InvalidRule(f"the YAML document is too large (over {MAX_YAML_NODES} nodes)")
        if depth > MAX_YAML_DEPTH:
            raise InvalidRule(f"the YAML document is nested deeper than {MAX_YAML_DEPTH} levels")
        if isinstance(node, dict):
            pending.extend((child, depth + 1) for child in (*node.keys(), *node.values()))
        elif isinstance(node, list):
            pending.extend((child, depth + 1) for child in node)


# --- compiling, with the per-process cache --------------------------------------------------


def compile_detector(kind: str, source: str | None, detection: Any) -> Detector:
    """Compile a stored rule's YAML (Sigma) or detection object (seed form)."""
    if kind == "sigma":
        try:
            compiled = compile_sigma_rule(source or "")
        except SigmaRuleError as error:
            raise InvalidRule(str(error)) from None
        return SigmaDetector(compiled, _sigma_fields(yaml.safe_load(source or "")))
    if kind == "seed":
        try:
            return compile_ioc_detection(detection)
        except InvalidIocDetection as error:
            raise InvalidRule(str(error)) from None
    raise InvalidRule(f"rule kind must be one of {', '.join(RULE_KINDS)}, got {kind!r}")


def _sigma_fields(document: Mapping[str, Any]) -> tuple[str, ...]:
    """Normalised names of the fields a Sigma rule's selections test (``Image|endswith``
    names ``image``), in order of appearance, for reporting matched values."""
    names: dict[str, None] = {}
    detection = document.get("detection") or {}
    for key, selection in detection.items():
        if key in _NOT_SELECTIONS:
            continue
        maps = selection if isinstance(selection, list) else [selection]
        for item in maps:
            if isinstance(item, dict):
                for field_spec in item:
                    names[normalize_field_name(str(field_spec).split("|")[0])] = None
    return tuple(names)


# rule id -> ((version, created_at), detector). created_at tells a rule from an earlier one
# that had the same id (a restored or truncated database restarts the id sequence).
_cache: dict[int, tuple[tuple[int, datetime], Detector]] = {}
_cache_lock = threading.Lock()


def detector_for(rule: DetectionRule) -> Detector:
    """The rule's compiled detector, compiled at most once per ``(id, version)`` per process."""
    stamp = (rule.version, rule.created_at)
    cached = _cache.get(rule.id)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    detector = compile_detector(rule.kind, rule.source, rule.detection)
    with _cache_lock:
        _cache[rule.id] = (stamp, detector)
    return detector


def forget_compiled(rule_ids: Sequence[int]) -> None:
    """Drop the cached detectors of deleted or disabled rules."""
    with _cache_lock:
        for rule_id in rule_ids:
            _cache.pop(rule_id, None)


def enabled_rules() -> list[tuple[DetectionRule, Detector]]:
    """Every enabled rule with its detector, oldest first; the cache forgets the others."""
    rules = list(
        db.session.scalars(
            select(DetectionRule).where(DetectionRule.enabled.is_(True)).order_by(DetectionRule.id)
        ).unique()
    )
    enabled_ids = {rule.id for rule in rules}
    forget_compiled([rule_id for rule_id in list(_cache) if rule_id not in enabled_ids])
    return [(rule, detector_for(rule)) for rule in rules]


# --- storing ------------------------------------------------------------------------------


def check_group_by(group_by: Any) -> list[str] | None:
    """``None`` (the default grouping) or 1 to :data:`MAX_GROUP_FIELDS` field names."""
    if group_by is None:
        return None
    if (
        not isinstance(group_by, list)
        or not 0 < len(group_by) <= MAX_GROUP_FIELDS
        or not all(isinstance(name, str) and 0 < len(name) <= 200 for name in group_by)
    ):
        raise InvalidRule(f"group_by must list 1 to {MAX_GROUP_FIELDS} field names")
    return list(dict.fromkeys(group_by))


def create_rule(
    definition: RuleDefinition,
    principal: Principal | None = None,
    *,
    enabled: bool = True,
    group_by: list[str] | None = None,
) -> DetectionRule:
    """Store a validated rule (in the caller's transaction); emits ``rule.create``."""
    now = utcnow()
    rule = DetectionRule(
        kind=definition.kind,
        name=definition.name,
        description=definition.description,
        severity=definition.severity,
        enabled=enabled,
        source=definition.source,
        detection=dict(definition.detection) if definition.detection is not None else None,
        sigma_id=definition.sigma_id,
        tags=list(definition.tags),
        group_by=check_group_by(group_by),
        created_by_id=principal.user_id if principal else None,
        version=1,
        created_at=now,
        updated_at=now,
    )
    db.session.add(rule)
    db.session.flush()
    emit(
        EventType.RULE_CREATED,
        rule.id,
        {"kind": rule.kind, "severity": rule.severity, "sigma_id": rule.sigma_id},
        actor=actor_of(principal),
    )
    return rule


def create_threat_rule(
    name: str | None,
    description: str | None,
    detection: Mapping[str, Any] | str,
    severity: str | None,
    *,
    principal: Principal | None = None,
) -> DetectionRule:
    """The seed API: store a rule in the seed form (``detection={'ioc': {...}}``) or, when
    ``detection`` is a string, a Sigma rule in YAML (``name``, ``description`` and
    ``severity`` then override the rule's title, description and level when given).

    Raises :class:`InvalidRule` naming the problem; the caller commits.
    """
    if isinstance(detection, str):
        definition = sigma_definition(detection, severity)
        definition = replace(
            definition,
            name=_check_name(name) if name else definition.name,
            description=description or definition.description,
        )
    else:
        definition = seed_definition(name or "", description or "", detection, severity)
    return create_rule(definition, principal)


def update_rule(
    rule: DetectionRule, principal: Principal | None, changes: Mapping[str, Any]
) -> dict[str, list[Any]]:
    """Edit the fields of :data:`EDITABLE_FIELDS`; returns ``{field: [old, new]}``."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise InvalidRule(f"these fields cannot be edited: {', '.join(sorted(unknown))}")
    checks = {
        "name": _check_name,
        "description": lambda value: value or "",
        "severity": check_severity,
        "enabled": bool,
        "group_by": check_group_by,
    }
    applied: dict[str, list[Any]] = {}
    for name, value in changes.items():
        new_value, old_value = checks[name](value), getattr(rule, name)
        if new_value != old_value:
            setattr(rule, name, new_value)
            applied[name] = [old_value, new_value]
    if applied:
        rule.touch()
        emit(EventType.RULE_EDITED, rule.id, {"fields": sorted(applied)}, actor=actor_of(principal))
    return applied


def delete_rule(rule: DetectionRule, principal: Principal | None) -> None:
    """Delete the rule; its alerts stay (with the rule's name) for the record."""
    emit(
        EventType.RULE_DELETED,
        rule.id,
        {"kind": rule.kind, "name": rule.name[:200]},
        actor=actor_of(principal),
    )
    db.session.delete(rule)
    forget_compiled([rule.id])
