"""Rules the engine will not evaluate are refused at compile time with a message naming why."""

import pytest

from security.modules.sigma import SigmaRuleError, compile_sigma_rule

from .sigma_support import rule_yaml, sigma_rule


def _rejection(detection) -> str:
    with pytest.raises(SigmaRuleError) as raised:
        sigma_rule(detection)
    return str(raised.value)


def test_unknown_modifier_is_rejected_by_name():
    assert "foo" in _rejection({"selection": {"f|foo": "x"}, "condition": "selection"})


@pytest.mark.parametrize("modifier", ["expand", "hour", "minute", "day", "week", "month", "year"])
def test_modifier_pysigma_knows_but_the_engine_does_not_evaluate_is_rejected(modifier):
    value = "%placeholder%" if modifier == "expand" else 5
    detection = {"selection": {f"f|{modifier}": value}, "condition": "selection"}

    assert f"modifier '{modifier}' is not supported" in _rejection(detection)


def test_malformed_condition_is_rejected():
    message = _rejection({"selection": {"f": "x"}, "condition": "selection and"})

    assert "invalid condition 'selection and'" in message


def test_condition_naming_an_undefined_detection_is_rejected():
    message = _rejection({"selection": {"f": "x"}, "condition": "selection and filter"})

    assert "filter" in message


def test_selector_matching_no_detection_is_rejected():
    message = _rejection({"selection": {"f": "x"}, "condition": "1 of filter_*"})

    assert "filter_*" in message


def test_aggregation_in_condition_is_rejected():
    message = _rejection({"selection": {"f": "x"}, "condition": "selection | count() > 5"})

    assert "aggregation" in message


def test_correlation_rule_is_rejected():
    text = "title: c\ncorrelation:\n  type: event_count\n  rules: [a]\n  timespan: 1h\n"

    with pytest.raises(SigmaRuleError, match="correlation rules are not supported"):
        compile_sigma_rule(text)


def test_sigma_filter_document_is_rejected():
    text = "title: f\nlogsource: {product: test}\nfilter:\n  rules: [a]\n  selection: {f: x}\n"

    with pytest.raises(SigmaRuleError, match="filters"):
        compile_sigma_rule(text)


def test_invalid_yaml_is_rejected():
    with pytest.raises(SigmaRuleError, match="invalid YAML"):
        compile_sigma_rule("title: [unclosed\n")


def test_several_yaml_documents_are_rejected():
    with pytest.raises(SigmaRuleError, match="invalid YAML"):
        compile_sigma_rule(rule_yaml({"s": {"f": "x"}, "condition": "s"}) + "---\ntitle: b\n")


def test_yaml_that_is_not_a_mapping_is_rejected():
    with pytest.raises(SigmaRuleError, match="must be a YAML mapping"):
        compile_sigma_rule("- just\n- a list\n")


def test_rule_without_detection_is_rejected():
    with pytest.raises(SigmaRuleError, match="detection"):
        compile_sigma_rule("title: t\nlogsource: {product: test}\n")


def test_invalid_regular_expression_is_rejected():
    assert "invalid" in _rejection({"selection": {"f|re": "a(b"}, "condition": "selection"})


def test_regular_expression_re2_cannot_run_in_linear_time_is_rejected():
    message = _rejection({"selection": {"f|re": "(a)\\1"}, "condition": "selection"})

    assert "invalid" in message


def test_invalid_cidr_is_rejected():
    message = _rejection({"selection": {"ip|cidr": "10.0.0.0/33"}, "condition": "selection"})

    assert "CIDR" in message


def test_startswith_on_keywords_is_rejected():
    message = _rejection({"keywords": {"|startswith": "x"}, "condition": "keywords"})

    assert "modifier 'startswith' on a keyword is not supported" in message


def test_condition_that_is_not_a_string_is_rejected():
    message = _rejection({"selection": {"f": "x"}, "condition": 5})

    assert "a condition must be a string" in message


def test_field_name_that_is_not_a_string_is_rejected():
    assert "invalid Sigma rule" in _rejection({"selection": {5: "x"}, "condition": "selection"})


def test_null_keyword_is_rejected():
    message = _rejection({"keywords": None, "condition": "keywords"})

    assert "SigmaNull as a keyword" in message


def test_startswith_after_re_is_rejected():
    message = _rejection({"selection": {"f|re|startswith": "ab"}, "condition": "selection"})

    assert "modifier 'startswith' after 're' is not supported" in message
