"""Sigma values and modifiers: each rule must match one event and must not match another."""

import base64

import pytest

from .sigma_support import sigma_rule


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def case(name, selection, matching, not_matching):
    """A rule 'selection' with one event it must match and one it must not."""
    return pytest.param(selection, matching, not_matching, id=name)


CASES = [
    # plain values and wildcards
    case("plain_value_is_whole_value", {"f": "cmd.exe"}, {"f": "cmd.exe"}, {"f": "xcmd.exe"}),
    case("plain_value_ignores_case", {"f": "CMD.exe"}, {"f": "cmd.EXE"}, {"f": "cmd"}),
    case("star_matches_any_run", {"f": "a*c"}, {"f": "a-bbb-c"}, {"f": "a-bbb-d"}),
    case("star_matches_empty_run", {"f": "ab*"}, {"f": "ab"}, {"f": "a"}),
    case(
        "stars_inside_value",
        {"f": "*\\temp\\\\*.ps1"},
        {"f": "C:\\Temp\\x\\a.ps1"},
        {"f": "C:\\Temp.ps1"},
    ),
    case("star_spans_lines", {"f": "a*c"}, {"f": "a\nb\nc"}, {"f": "a\nb"}),
    case("question_mark_is_one_char", {"f": "a?c"}, {"f": "abc"}, {"f": "abbc"}),
    case("escaped_star_is_literal", {"f": "a\\*c"}, {"f": "a*c"}, {"f": "abc"}),
    case("escaped_question_mark_is_literal", {"f": "a\\?c"}, {"f": "a?c"}, {"f": "abc"}),
    case("escaped_backslash_before_star", {"f": "a\\\\*"}, {"f": "a\\xyz"}, {"f": "axyz"}),
    case(
        "windows_path_backslashes_are_literal",
        {"f": "C:\\Windows\\x"},
        {"f": "c:\\windows\\x"},
        {"f": "C:/Windows/x"},
    ),
    case("lone_star_matches_any_value", {"f": "*"}, {"f": ""}, {"g": "x"}),
    case("empty_string_matches_empty_value", {"f": ""}, {"f": ""}, {"f": " "}),
    case("value_list_is_or", {"f": ["a", "b"]}, {"f": "b"}, {"f": "c"}),
    case("field_map_is_and", {"f": "a", "g": "b"}, {"f": "a", "g": "b"}, {"f": "a", "g": "c"}),
    # numbers and booleans
    case("number_matches_number", {"EventID": 4688}, {"EventID": 4688}, {"EventID": 4689}),
    case(
        "number_matches_numeric_text", {"EventID": 4688}, {"EventID": "4688"}, {"EventID": "4688x"}
    ),
    case("numeric_text_matches_number", {"EventID": "4688"}, {"EventID": 4688}, {"EventID": 46880}),
    case("number_list_is_or", {"EventID": [1, 4688]}, {"EventID": 1}, {"EventID": 2}),
    case("boolean_matches_boolean", {"f": True}, {"f": True}, {"f": False}),
    case("boolean_matches_boolean_text", {"f": False}, {"f": "False"}, {"f": "0"}),
    # null and exists
    case("null_matches_missing_field", {"f": None}, {"g": "x"}, {"f": "x"}),
    case("null_matches_json_null", {"f": None}, {"f": None}, {"f": ""}),
    case("exists_true_needs_the_field", {"f|exists": True}, {"f": ""}, {"g": "x"}),
    case("exists_true_ignores_json_null", {"f|exists": True}, {"f": 0}, {"f": None}),
    case("exists_false_needs_no_field", {"f|exists": False}, {"g": "x"}, {"f": "x"}),
    # contains / startswith / endswith / all
    case("contains", {"f|contains": "mimi"}, {"f": "x MimiKatz y"}, {"f": "mim ikatz"}),
    case("contains_list_is_or", {"f|contains": ["aa", "bb"]}, {"f": "xbbx"}, {"f": "ab"}),
    case(
        "contains_all_needs_every_value",
        {"f|contains|all": ["-enc", "-nop"]},
        {"f": "-nop -enc x"},
        {"f": "-enc x"},
    ),
    case(
        "contains_keeps_inner_wildcards", {"f|contains": "a*c"}, {"f": "xxabbcxx"}, {"f": "xxcbaxx"}
    ),
    case(
        "startswith",
        {"f|startswith": "C:\\Users\\"},
        {"f": "c:\\users\\bob"},
        {"f": "D:\\C:\\Users\\"},
    ),
    case(
        "endswith", {"f|endswith": "\\cmd.exe"}, {"f": "C:\\x\\CMD.EXE"}, {"f": "C:\\cmd.exe.bak"}
    ),
    case(
        "endswith_list_is_or",
        {"f|endswith": ["\\a.exe", "\\b.exe"]},
        {"f": "c:\\b.exe"},
        {"f": "c:\\c.exe"},
    ),
    case("all_on_plain_values", {"f|all": ["a*", "*b"]}, {"f": "axb"}, {"f": "axa"}),
    # cased
    case("cased_is_case_sensitive", {"f|cased": "Foo"}, {"f": "Foo"}, {"f": "foo"}),
    case("contains_cased", {"f|contains|cased": "Foo"}, {"f": "xFoox"}, {"f": "xfoox"}),
    # regular expressions
    case("re_searches_anywhere", {"f|re": "ab+c"}, {"f": "xxabbbcxx"}, {"f": "ac"}),
    case("re_is_case_sensitive", {"f|re": "abc"}, {"f": "abc"}, {"f": "ABC"}),
    case("re_i_ignores_case", {"f|re|i": "abc"}, {"f": "xABCx"}, {"f": "ab"}),
    case("re_inline_flag_ignores_case", {"f|re": "(?i)abc"}, {"f": "ABC"}, {"f": "AB"}),
    case("re_anchors_are_honoured", {"f|re": "^abc$"}, {"f": "abc"}, {"f": "abcd"}),
    case("re_m_anchors_lines", {"f|re|m": "^b$"}, {"f": "a\nb\nc"}, {"f": "a\nbb\nc"}),
    case("re_without_m_anchors_value", {"f|re": "^b$"}, {"f": "b"}, {"f": "a\nb\nc"}),
    case("re_s_dot_matches_newline", {"f|re|s": "a.c"}, {"f": "a\nc"}, {"f": "a\n\nc"}),
    case("re_without_s_dot_skips_newline", {"f|re": "a.c"}, {"f": "abc"}, {"f": "a\nc"}),
    case("re_contains_still_searches", {"f|re|contains": "b+c"}, {"f": "abbcd"}, {"f": "acd"}),
    case("re_on_number", {"f|re": "^46"}, {"f": 4688}, {"f": 5688}),
    # cidr
    case("cidr_ipv4", {"ip|cidr": "10.0.0.0/8"}, {"ip": "10.20.30.40"}, {"ip": "11.0.0.1"}),
    case("cidr_ipv6", {"ip|cidr": "2001:db8::/32"}, {"ip": "2001:db8::1"}, {"ip": "2001:db9::1"}),
    case(
        "cidr_list_is_or",
        {"ip|cidr": ["10.0.0.0/8", "192.168.0.0/16"]},
        {"ip": "192.168.1.1"},
        {"ip": "172.16.0.1"},
    ),
    case(
        "cidr_ignores_non_addresses",
        {"ip|cidr": "10.0.0.0/8"},
        {"ip": "10.0.0.1"},
        {"ip": "10.0.0.1.evil"},
    ),
    case("cidr_ipv4_rule_ignores_ipv6", {"ip|cidr": "0.0.0.0/0"}, {"ip": "8.8.8.8"}, {"ip": "::1"}),
    # base64 and friends
    case(
        "base64_matches_encoded_value",
        {"f|base64": "secret"},
        {"f": _b64(b"secret")},
        {"f": "secret"},
    ),
    case(
        "base64_contains",
        {"f|base64|contains": "secret"},
        {"f": "x " + _b64(b"secret")},
        {"f": _b64(b"secre")},
    ),
    case(
        "base64offset_offset_0",
        {"f|base64offset|contains": "http://"},
        {"f": _b64(b"http://x")},
        {"f": _b64(b"ftp://x")},
    ),
    case(
        "base64offset_offset_1",
        {"f|base64offset|contains": "http://"},
        {"f": _b64(b"Ahttp://x")},
        {"f": _b64(b"Ahttps://x")},
    ),
    case(
        "base64offset_offset_2",
        {"f|base64offset|contains": "http://"},
        {"f": _b64(b"ABhttp://x")},
        {"f": _b64(b"ABhtp://x")},
    ),
    case(
        "wide_base64offset",
        {"f|wide|base64offset|contains": "ping"},
        {"f": _b64("x ping".encode("utf-16le"))},
        {"f": _b64(b"x ping")},
    ),
    case(
        "utf16_base64",
        {"f|utf16|base64": "ab"},
        {"f": _b64(b"\xff\xfe" + "ab".encode("utf-16le"))},
        {"f": _b64("ab".encode("utf-16le"))},
    ),
    # windash
    case(
        "windash_matches_dash",
        {"f|windash|contains": " -nop "},
        {"f": "ps -nop x"},
        {"f": "ps nop x"},
    ),
    case(
        "windash_matches_slash",
        {"f|windash|contains": " -nop "},
        {"f": "ps /nop x"},
        {"f": "ps \\nop x"},
    ),
    case(
        "windash_matches_en_dash",
        {"f|windash|contains": " -nop "},
        {"f": "ps \u2013nop x"},
        {"f": "ps _nop x"},
    ),
    case(
        "windash_with_all_keeps_each_value_or_linked",
        {"f|windash|contains|all": [" -a ", " -b "]},
        {"f": "x /a -b y"},
        {"f": "x /a y"},
    ),
    # numeric comparisons
    case("gt", {"n|gt": 5}, {"n": 6}, {"n": 5}),
    case("gte", {"n|gte": 5}, {"n": 5}, {"n": 4}),
    case("lt", {"n|lt": 5}, {"n": 4}, {"n": 5}),
    case("lte", {"n|lte": 5}, {"n": 5}, {"n": 6}),
    case("gt_on_numeric_text", {"n|gt": 5}, {"n": "10"}, {"n": "ten"}),
    case("lt_on_float", {"n|lt": 1.5}, {"n": 1.25}, {"n": 1.5}),
    case("comparisons_ignore_booleans", {"n|gte": 0}, {"n": 0}, {"n": True}),
    # field references and negation
    case(
        "fieldref_equal_fields",
        {"User|fieldref": "ParentUser"},
        {"User": "a", "ParentUser": "A"},
        {"User": "a", "ParentUser": "b"},
    ),
    case(
        "fieldref_needs_the_other_field",
        {"User|fieldref": "ParentUser"},
        {"User": "", "ParentUser": ""},
        {"User": ""},
    ),
    case(
        "fieldref_startswith",
        {"f|fieldref|startswith": "g"},
        {"f": "abc", "g": "ab"},
        {"f": "abc", "g": "bc"},
    ),
    case("neq_negates", {"f|neq": "a"}, {"f": "b"}, {"f": "A"}),
]


@pytest.mark.parametrize(("selection", "matching", "not_matching"), CASES)
def test_rule_matches_exactly_the_intended_event(selection, matching, not_matching):
    rule = sigma_rule({"selection": selection, "condition": "selection"})

    assert rule.matches(matching)
    assert not rule.matches(not_matching)


def test_keywords_match_anywhere_in_any_string_value():
    rule = sigma_rule({"keywords": ["mimikatz", "sekurlsa::"], "condition": "keywords"})

    assert rule.matches({"a": {"b": ["x", "run SEKURLSA::logonpasswords"]}})
    assert not rule.matches({"mimikatz": "key names are not values"})


def test_keywords_match_inside_numeric_event_values():
    rule = sigma_rule({"keywords": ["4688"], "condition": "keywords"})

    assert rule.matches({"EventID": 14688})
    assert not rule.matches({"EventID": 4689})


def test_keywords_with_all_need_every_keyword():
    rule = sigma_rule({"keywords": {"|all": ["alpha", "beta"]}, "condition": "keywords"})

    assert rule.matches({"a": "alpha", "b": {"c": "beta"}})
    assert not rule.matches({"a": "alpha"})


def test_keywords_can_be_cased():
    rule = sigma_rule({"keywords": {"|cased": "Alpha"}, "condition": "keywords"})

    assert rule.matches({"a": "xAlphax"})
    assert not rule.matches({"a": "alpha"})


def test_keyword_regular_expression_searches_every_value():
    rule = sigma_rule({"keywords": {"|re": "[0-9]{3}-[0-9]{4}"}, "condition": "keywords"})

    assert rule.matches({"a": "x", "b": "call 555-1234"})
    assert not rule.matches({"a": "555-123"})


def test_wildcards_cannot_make_matching_backtrack_exponentially():
    rule = sigma_rule({"selection": {"f": "*a*a*a*a*a*a*a*a*a*a*a*a*b"}, "condition": "selection"})

    assert not rule.matches({"f": "a" * 5000})


def test_keyword_number_is_searched_as_text():
    rule = sigma_rule({"keywords": [4688], "condition": "keywords"})

    assert rule.matches({"message": "event 4688 logged"})
    assert not rule.matches({"message": "event 4689 logged"})
