"""Helpers shared by the Sigma engine tests: rules from a detection dict, regression data."""

import json
from pathlib import Path
from typing import Any

import yaml

from security.modules.sigma import CompiledSigmaRule, compile_sigma_rule

REGRESSION_DATA = Path(__file__).resolve().parent.parent / "data" / "sigma-regression"


def rule_yaml(detection: dict[str, Any], **metadata: Any) -> str:
    """YAML text of a minimal valid Sigma rule with the given detection section."""
    document = {"title": "Test rule", "logsource": {"product": "test"}, **metadata}
    document["detection"] = detection
    return yaml.safe_dump(document, sort_keys=False)


def sigma_rule(detection: dict[str, Any], **metadata: Any) -> CompiledSigmaRule:
    """Compile a minimal Sigma rule with the given detection section."""
    return compile_sigma_rule(rule_yaml(detection, **metadata))


def load_events(path: Path) -> list[dict[str, Any]]:
    """The events of a regression file: one or more JSON objects written one after another."""
    text = path.read_text(encoding="utf-8")
    decoder = json.JSONDecoder()
    events, position = [], 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position == len(text):
            return events
        event, position = decoder.raw_decode(text, position)
        events.append(event)
