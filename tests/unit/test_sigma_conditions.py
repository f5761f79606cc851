"""Sigma conditions: and/or/not, parentheses, '1 of'/'all of' selectors, several conditions."""

import pytest

from .sigma_support import sigma_rule

DETECTIONS = {
    "sel_a": {"a": "1"},
    "sel_b": {"b": "1"},
    "filter_c": {"c": "1"},
}


def case(condition, matching, not_matching):
    return pytest.param(condition, matching, not_matching, id=condition)


CASES = [
    case("sel_a", {"a": "1"}, {"a": "2"}),
    case("sel_a and sel_b", {"a": "1", "b": "1"}, {"a": "1"}),
    case("sel_a or sel_b", {"b": "1"}, {"c": "1"}),
    case("not sel_a", {"a": "2"}, {"a": "1"}),
    case("sel_a and not filter_c", {"a": "1"}, {"a": "1", "c": "1"}),
    # "and" binds tighter than "or"
    case("sel_a or sel_b and filter_c", {"a": "1"}, {"b": "1"}),
    case("(sel_a or sel_b) and filter_c", {"b": "1", "c": "1"}, {"a": "1"}),
    case("not (sel_a or sel_b)", {"c": "1"}, {"b": "1"}),
    case("not sel_a and not sel_b", {"c": "1"}, {"a": "1"}),
    case("1 of sel_*", {"b": "1"}, {"c": "1"}),
    case("any of sel_*", {"a": "1"}, {"c": "1"}),
    case("all of sel_*", {"a": "1", "b": "1"}, {"a": "1", "c": "1"}),
    case("1 of them", {"c": "1"}, {"d": "1"}),
    case("all of them", {"a": "1", "b": "1", "c": "1"}, {"a": "1", "b": "1"}),
    case("1 of sel_* and not 1 of filter_*", {"a": "1"}, {"a": "1", "c": "1"}),
    case("all of sel_* or filter_c", {"c": "1"}, {"a": "1"}),
]


@pytest.mark.parametrize(("condition", "matching", "not_matching"), CASES)
def test_condition_matches_exactly_the_intended_event(condition, matching, not_matching):
    rule = sigma_rule({**DETECTIONS, "condition": condition})

    assert rule.matches(matching)
    assert not rule.matches(not_matching)


def test_list_of_maps_is_or_linked():
    rule = sigma_rule({"selection": [{"a": "1", "b": "1"}, {"c": "1"}], "condition": "selection"})

    assert rule.matches({"c": "1"})
    assert not rule.matches({"a": "1"})


def test_several_conditions_are_alternatives():
    rule = sigma_rule({**DETECTIONS, "condition": ["sel_a and sel_b", "filter_c"]})

    assert rule.matches({"c": "1"})
    assert not rule.matches({"a": "1"})


def test_selector_does_not_pick_up_names_that_only_share_a_prefix_without_wildcard():
    rule = sigma_rule({"sel": {"a": "1"}, "selection": {"b": "1"}, "condition": "sel"})

    assert not rule.matches({"b": "1"})
