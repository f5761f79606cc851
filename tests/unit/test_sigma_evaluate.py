"""Compiled rule metadata and one-pass batch evaluation (security/modules/sigma/compiler.py)."""

from security.modules.sigma import SigmaMatch, evaluate
from security.modules.sigma import compiler as sigma_compiler

from .sigma_support import sigma_rule

RULE_ID = "0b9ad457-2554-44c1-82c2-d56a99c42377"


def test_compiled_rule_carries_its_metadata():
    rule = sigma_rule(
        {"selection": {"f": "x"}, "condition": "selection"},
        id=RULE_ID,
        level="high",
        status="test",
        description="Why it matters",
        tags=["attack.execution", "attack.t1059"],
    )

    assert (rule.title, rule.id, rule.level, rule.status) == ("Test rule", RULE_ID, "high", "test")
    assert rule.description == "Why it matters"
    assert rule.tags == ("attack.execution", "attack.t1059")
    assert rule.logsource == {"product": "test"}


def test_evaluate_returns_every_match_by_event_then_rule():
    first = sigma_rule({"s": {"a": "1"}, "condition": "s"}, id=RULE_ID)
    second = sigma_rule({"s": {"b": "1"}, "condition": "s"})
    events = [{"a": "1", "b": "1"}, {"c": "1"}, {"b": "1"}]

    assert evaluate([first, second], events) == [
        SigmaMatch(rule_index=0, event_index=0, rule_id=RULE_ID),
        SigmaMatch(rule_index=1, event_index=0, rule_id=None),
        SigmaMatch(rule_index=1, event_index=2, rule_id=None),
    ]


def test_evaluate_flattens_each_event_once_for_all_rules(monkeypatch):
    calls = []
    flatten = sigma_compiler.flatten_event
    monkeypatch.setattr(
        sigma_compiler, "flatten_event", lambda event: calls.append(event) or flatten(event)
    )
    rules = [sigma_rule({"s": {"a": str(n)}, "condition": "s"}) for n in range(5)]

    evaluate(rules, [{"a": "1"}, {"a": "2"}])

    assert len(calls) == 2


def test_evaluate_with_no_rules_matches_nothing():
    assert evaluate([], [{"a": "1"}]) == []
