"""Skipping rules by the literals they need (``required_literals``, ``RuleIndex``): a rule
is left out only on events it cannot match, so batch evaluation finds every match."""

import random

import pytest
from sigma.types import SigmaString

from security.modules.sigma import (
    FieldLiteral,
    RuleIndex,
    SigmaMatch,
    compile_sigma_rule,
    evaluate,
    flatten_event,
    literal_index,
)
from security.modules.sigma.events import ALL_VALUES
from security.modules.sigma.patterns import necessary_literal

from .sigma_support import REGRESSION_DATA, load_events, sigma_rule

CERTUTIL = {
    "selection_img": [{"Image|endswith": "\\certutil.exe"}, {"OriginalFileName": "CertUtil.exe"}],
    "selection_cli": {"CommandLine|contains": ["-urlcache", "-encode"]},
    "condition": "all of selection_*",
}


CONDITIONS = [
    "sel_a",
    "sel_a and sel_b",
    "sel_a or sel_b",
    "sel_a and not filter",
    "keywords",
    "sel_a or keywords",
    "keywords and not filter",
]


def _brute_force(rules, events):
    """Every rule called on every event: what evaluate must find, whatever it skips."""
    flats = [flatten_event(event) for event in events]
    return [
        SigmaMatch(rule_index, event_index, rule.id)
        for event_index, flat in enumerate(flats)
        for rule_index, rule in enumerate(rules)
        if rule.predicate(flat)
    ]


@pytest.mark.parametrize(
    ("pattern", "literal"),
    [
        ("CertUtil.exe", ("exact", "certutil.exe")),
        ("", ("exact", "")),
        ("C:\\Windows*", ("prefix", "c:\\windows")),
        ("*\\cmd.exe", ("suffix", "\\cmd.exe")),
        ("*-EncodedCommand*", ("substring", "-encodedcommand")),
        ("a?c*", ("prefix", "a")),
        ("*x?yz", ("suffix", "yz")),
        ("?*ab*abc*", ("substring", "abc")),
        ("*", None),
        ("?*", None),
    ],
)
def test_each_pattern_needs_the_literal_its_matches_hold(pattern, literal):
    assert necessary_literal(SigmaString(pattern)) == literal


def test_a_rule_needs_one_literal_of_its_rarest_selection():
    rule = sigma_rule(CERTUTIL)

    assert rule.required_literals == {
        FieldLiteral("image", "suffix", "\\certutil.exe"),
        FieldLiteral("originalfilename", "exact", "certutil.exe"),
    }


def test_a_selection_needs_its_rarest_literals_not_the_shortest():
    rule = sigma_rule(
        {
            "selection": {
                "Image|contains": ["\\EDRFreeze", "\\EDR-Freeze"],
                "Image|endswith": ".exe",
            },
            "condition": "selection",
        }
    )

    assert rule.required_literals == {
        FieldLiteral("image", "substring", "\\edrfreeze"),
        FieldLiteral("image", "substring", "\\edr-freeze"),
    }


def test_alternatives_need_one_literal_of_any_of_them():
    rule = sigma_rule(
        {
            "a": {"Image|endswith": "\\a.exe"},
            "b": {"Hashes|contains": "MD5=0"},
            "condition": "a or b",
        }
    )

    assert rule.required_literals == {
        FieldLiteral("image", "suffix", "\\a.exe"),
        FieldLiteral("hashes", "substring", "md5=0"),
    }


def test_keywords_need_their_text_anywhere_in_the_event():
    rule = sigma_rule({"keywords": ["Mimikatz", "sekurlsa::*", 4624], "condition": "keywords"})

    assert rule.required_literals == {
        FieldLiteral(ALL_VALUES, "substring", "mimikatz"),
        FieldLiteral(ALL_VALUES, "substring", "sekurlsa::"),
        FieldLiteral(ALL_VALUES, "substring", "4624"),
    }


def test_skipped_keyword_rules_still_match_a_keyword_in_any_value():
    rule = sigma_rule({"keywords": ["mimikatz", "sekurlsa::*"], "condition": "keywords"})
    events = [
        {"a": "first", "b": {"c": ["x", "run MIMIKATZ.exe"]}},
        {"a": "sekurlsa::logonpasswords"},
        {"a": "mimi", "b": "katz"},
        {"a": "sekurlsa:", "b": ":logonpasswords"},
        "plain text with mimikatz",
    ]

    assert [match.event_index for match in evaluate([rule], events)] == [0, 1, 4]


@pytest.mark.parametrize(
    "detection",
    [
        {"s": {"Image|endswith": "\\a.exe"}, "condition": "not s"},
        {"s": {"Image|cased": "A.exe"}, "condition": "s"},
        {"s": {"EventID": 4688}, "condition": "s"},
        {"s": {"Image": "*"}, "condition": "s"},
        {"s": {"Image": None}, "condition": "s"},
        {"s": {"Image|re": "a.*b"}, "condition": "s"},
        {"a": {"Image": "x"}, "b": {"EventID": 1}, "condition": "a or b"},
        {"s": {"Image": "x"}, "condition": ["s", "not s"]},
    ],
    ids=["not", "cased", "number", "any", "null", "regex", "or-number", "conditions"],
)
def test_a_rule_that_can_match_without_a_literal_is_called_on_every_event(detection):
    assert sigma_rule(detection).required_literals is None


def test_index_admits_rules_by_their_literals_and_keeps_rule_order():
    rules = [
        sigma_rule({"s": {"Image|endswith": "\\a.exe"}, "condition": "s"}),
        sigma_rule({"s": {"Image": "x"}, "condition": "not s"}),
        sigma_rule({"s": {"Image|startswith": "c:\\tools\\"}, "condition": "s"}),
        sigma_rule({"s": {"CommandLine|contains": "-enc"}, "condition": "s"}),
        sigma_rule({"s": {"OriginalFileName": "A.EXE"}, "condition": "s"}),
    ]
    index = RuleIndex([rule.required_literals for rule in rules])

    def candidates(event):
        return index.candidates(flatten_event(event).lowered)

    assert candidates({"Image": "C:\\Tools\\A.exe"}) == [0, 1, 2]
    assert candidates({"CommandLine": "x -ENC y", "OriginalFileName": "a.exe"}) == [1, 3, 4]
    assert candidates({"Image": "a.exe", "CommandLine": "-en"}) == [1]


def test_skipped_rules_still_match_every_event_they_should():
    rule = sigma_rule(CERTUTIL)
    events = [
        {"Image": "C:\\Windows\\System32\\CERTUTIL.EXE", "CommandLine": "certutil -urlcache"},
        {
            "Image": "C:\\x\\renamed.exe",
            "OriginalFileName": "certutil.exe",
            "CommandLine": "-encode",
        },
        {"Image": ["C:\\other.exe", "C:\\certutil.exe"], "CommandLine": "-encode"},
        {"Event": {"EventData": {"Image": "\\certutil.exe", "CommandLine": "-URLCACHE"}}},
        {"Image": "certutil.exe", "CommandLine": "-urlcache"},
        {"Image": "C:\\certutil.exe", "CommandLine": "-decode"},
    ]

    assert [match.event_index for match in evaluate([rule], events)] == [0, 1, 2, 3]


def test_random_rules_and_events_match_as_when_every_rule_is_called():
    generator = random.Random(13)
    modifiers = ["", "|contains", "|startswith", "|endswith", "|contains|all", "|cased"]

    def text():
        return "".join(generator.choice("ab*?") for _ in range(generator.randint(0, 4)))

    def selection():
        field = generator.choice("fg") + generator.choice(modifiers)
        values = [text() for _ in range(generator.randint(1, 3))]
        return {field: values[0] if len(values) == 1 else values}

    rules = [
        sigma_rule(
            {
                "sel_a": selection(),
                "sel_b": [selection(), selection()],
                "filter": selection(),
                "keywords": [text(), text()],
                "condition": generator.choice(CONDITIONS),
            }
        )
        for _ in range(200)
    ]
    events = [
        {
            field: "".join(generator.choice("abAB") for _ in range(generator.randint(0, 4)))
            for field in "fg"
            if generator.random() < 0.8
        }
        for _ in range(200)
    ]

    assert evaluate(rules, events) == _brute_force(rules, events)
    assert sum(rule.required_literals is not None for rule in rules) > 50


def test_regression_rules_match_as_when_every_rule_is_called():
    rules = [
        compile_sigma_rule(path.read_text(encoding="utf-8"))
        for path in sorted(REGRESSION_DATA.glob("*/rule.yml"))
    ]
    events = [
        event for path in sorted(REGRESSION_DATA.glob("*/*.json")) for event in load_events(path)
    ]

    matches = evaluate(rules, events)

    assert matches == _brute_force(rules, events)
    assert len(matches) > 100
    assert sum(rule.required_literals is not None for rule in rules) > 70


def test_remembered_values_give_the_same_answer(monkeypatch):
    rules = [
        compile_sigma_rule(path.read_text(encoding="utf-8"))
        for path in sorted(REGRESSION_DATA.glob("*/rule.yml"))
    ]
    flats = [
        flatten_event(event)
        for path in sorted(REGRESSION_DATA.glob("*/*.json"))
        for event in load_events(path)
    ]
    literals = [rule.required_literals for rule in rules]
    answers = [RuleIndex(literals).candidates(flat.lowered) for flat in flats]
    monkeypatch.setattr(literal_index, "MAX_REMEMBERED_VALUES", 10)
    index = RuleIndex(literals)

    assert [index.candidates(flat.lowered) for flat in flats * 2] == answers * 2
