"""Indexing only the fields a rule set reads (``referenced_fields`` and ``flatten_event(event,
fields)``), and a batch at once (``flatten_events``): the same index, for less work."""

from security.modules.sigma import compile_sigma_rule, flatten_event, flatten_events
from security.modules.sigma.events import ALL_VALUES

from .sigma_support import REGRESSION_DATA, load_events, sigma_rule
from .test_sigma_events import EVTX_EVENT

REGRESSION_RULES = [
    compile_sigma_rule(path.read_text(encoding="utf-8"))
    for path in sorted(REGRESSION_DATA.glob("*/rule.yml"))
]
REGRESSION_EVENTS = [
    event for path in sorted(REGRESSION_DATA.glob("*/*.json")) for event in load_events(path)
]


def _matches(rules, flats):
    return [
        (event_index, rule_index)
        for event_index, flat in enumerate(flats)
        for rule_index, rule in enumerate(rules)
        if rule.predicate(flat)
    ]


def test_rule_set_filter_gives_the_same_matches_as_the_full_index():
    fields = frozenset().union(*(rule.referenced_fields for rule in REGRESSION_RULES))
    full = [flatten_event(event) for event in REGRESSION_EVENTS]
    filtered = [flatten_event(event, fields) for event in REGRESSION_EVENTS]

    assert _matches(REGRESSION_RULES, filtered) == _matches(REGRESSION_RULES, full)
    assert len(_matches(REGRESSION_RULES, full)) > 100


def test_each_rule_alone_matches_the_same_on_its_own_filter():
    full = [flatten_event(event) for event in REGRESSION_EVENTS]
    for rule in REGRESSION_RULES:
        filtered = [flatten_event(event, rule.referenced_fields) for event in REGRESSION_EVENTS]
        assert _matches([rule], filtered) == _matches([rule], full), rule.title


def test_listed_names_keep_every_value_in_order_and_others_are_left_out():
    fields = {"image", "event.system.provider.name", "eventid"}
    full = flatten_event(EVTX_EVENT)

    filtered = flatten_event(EVTX_EVENT, fields)

    assert filtered.raw == {ALL_VALUES: [], **{name: full.raw[name] for name in fields}}
    assert filtered.lowered == {ALL_VALUES: [], **{name: full.lowered[name] for name in fields}}


def test_all_values_is_indexed_only_when_listed():
    full = flatten_event(EVTX_EVENT)

    filtered = flatten_event(EVTX_EVENT, {ALL_VALUES})

    assert filtered.raw == {ALL_VALUES: full.raw[ALL_VALUES]}
    assert filtered.lowered == {ALL_VALUES: full.lowered[ALL_VALUES]}


def test_rule_references_the_fields_of_its_selections_normalised():
    rule = sigma_rule(
        {
            "selection": {"Image|endswith": "\\cmd.exe", "Event.System.Channel": "x"},
            "filter": {"Source Name": None},
            "condition": "selection and not filter",
        }
    )

    assert rule.referenced_fields == {"image", "event.system.channel", "sourcename"}


def test_keywords_reference_all_values():
    rule = sigma_rule({"keywords": ["mimikatz"], "condition": "keywords"})

    assert rule.referenced_fields == {ALL_VALUES}


def test_field_reference_references_both_fields():
    rule = sigma_rule(
        {"selection": {"TargetUser|fieldref": "SubjectUser"}, "condition": "selection"}
    )

    assert rule.referenced_fields == {"targetuser", "subjectuser"}


def test_flattening_a_batch_gives_each_event_its_own_index():
    fields = {"image", "event.system.provider.name", ALL_VALUES}
    for selection in (None, fields):
        batch = flatten_events(REGRESSION_EVENTS, selection)
        single = [flatten_event(event, selection) for event in REGRESSION_EVENTS]
        assert [(flat.raw, flat.lowered) for flat in batch] == [
            (flat.raw, flat.lowered) for flat in single
        ]


def test_a_rule_matches_only_events_holding_its_required_fields():
    full = [flatten_event(event) for event in REGRESSION_EVENTS]
    matched = [(rule, flat) for rule in REGRESSION_RULES for flat in full if rule.predicate(flat)]

    assert matched
    assert all(rule.required_fields <= flat.lowered.keys() for rule, flat in matched)
    assert sum(bool(rule.required_fields) for rule in REGRESSION_RULES) > 80


def test_and_requires_every_field_and_or_only_the_common_ones():
    rule = sigma_rule(
        {
            "a": {"Image": "x", "User": "y"},
            "b": [{"Image": "x", "Channel": "c"}, {"Image": "z"}],
            "condition": "a or b",
        }
    )

    assert rule.required_fields == {"image"}


def test_null_exists_negation_and_keywords_require_nothing():
    detections = [
        {"s": {"Image": None}, "condition": "s"},
        {"s": {"Image|exists": True}, "condition": "s"},
        {"s": {"Image": "x"}, "condition": "not s"},
        {"k": ["mimikatz"], "condition": "k"},
    ]

    assert [sigma_rule(detection).required_fields for detection in detections] == [frozenset()] * 4
