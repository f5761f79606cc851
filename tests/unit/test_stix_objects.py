"""Checking any posted STIX 2.1 object as a collection keeps it (no database)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from security.modules.stix_mapping import InvalidStixObject, stix_object_facts

INDICATOR = {
    "type": "indicator",
    "spec_version": "2.1",
    "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
    "created": "2026-01-01T00:00:00.000Z",
    "modified": "2026-01-02T00:00:00.123Z",
    "pattern": "[domain-name:value = 'a.example.com']",
    "pattern_type": "stix",
    "valid_from": "2026-01-01T00:00:00Z",
}


def test_the_version_is_modified_as_an_instant():
    facts = stix_object_facts(INDICATOR)
    assert facts.version == datetime(2026, 1, 2, 0, 0, 0, 123000, tzinfo=UTC)
    assert (facts.stix_id, facts.stix_type, facts.tlp) == (INDICATOR["id"], "indicator", None)


def test_a_pathologically_nested_pattern_is_this_objects_failure_only():
    deep = "[" + "(" * 5000 + "domain-name:value = 'a.example.com'" + ")" * 5000 + "]"
    with pytest.raises(InvalidStixObject):
        stix_object_facts({**INDICATOR, "pattern": deep})


@pytest.mark.parametrize(
    "changes",
    [
        {"id": "malware--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"},
        {"id": "indicator--not-a-uuid"},
        {"spec_version": "2.0"},
        {"modified": "yesterday"},
        {"pattern": 5},
    ],
)
def test_invalid_objects_say_why(changes):
    with pytest.raises(InvalidStixObject, match=r"\w"):
        stix_object_facts({**INDICATOR, **changes})


def test_the_definition_of_tlp_red_is_itself_red():
    red = {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
        "created": "2022-10-01T00:00:00.000Z",
        "name": "TLP:RED",
        "extensions": {
            "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d": {
                "extension_type": "property-extension",
                "tlp_2_0": "red",
            }
        },
    }
    assert stix_object_facts(red).tlp == "red"
