"""Seed-form rules (``detection={'ioc': {...}}``): CIDR, exact values, lists, and "any stored
IOC of this type with confidence >= N", checked against every indicator field of an event."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

import security
from models import DetectionRule, db, utcnow
from security.modules.detection import InvalidRule
from tests.detection_support import create_seed_rule, post_events


def matched_rules(body: dict) -> list[tuple[int, int]]:
    return [(match["event_index"], match["rule_id"]) for match in body["matches"]]


def add_ioc(app, ioc_type: str, value: str, confidence: int, **fields) -> None:
    with app.app_context():
        security.add_ioc(ioc_type, value, source="test feed", confidence=confidence, **fields)


def test_cidr_rule_matches_an_address_inside_the_network_in_any_field(analyst):
    rule = create_seed_rule(analyst, {"ioc": {"type": "ip", "value": "192.168.0.0/16"}})

    body = post_events(
        analyst, [{"network": {"destination": {"address": "192.168.4.20"}}}, {"dst": "10.0.0.1"}]
    )

    assert matched_rules(body) == [(0, rule["id"])]
    assert body["matches"][0]["matched"] == {"network.destination.address": ["192.168.4.20"]}


def test_exact_domain_rule_matches_the_normalised_value_only(analyst):
    rule = create_seed_rule(analyst, {"ioc": {"type": "domain", "value": "Evil.Example.COM."}})

    body = post_events(
        analyst,
        [
            {"query": "evil.example.com"},
            {"query": "notevil.example.com"},
            {"query": "EVIL.example.com"},
        ],
    )

    assert matched_rules(body) == [(0, rule["id"]), (2, rule["id"])]


def test_list_of_values_matches_any_of_them(analyst):
    rule = create_seed_rule(
        analyst, {"ioc": {"type": "ipv4", "value": ["203.0.113.7", "198.51.100.0/24"]}}
    )

    body = post_events(
        analyst, [{"src_ip": "203.0.113.7"}, {"src_ip": "198.51.100.99"}, {"src_ip": "203.0.113.8"}]
    )

    assert matched_rules(body) == [(0, rule["id"]), (1, rule["id"])]


def test_hash_rule_matches_any_hash_type_in_any_case(analyst):
    sha256 = "a" * 64
    rule = create_seed_rule(analyst, {"ioc": {"type": "hash", "value": [sha256, "b" * 32]}})

    body = post_events(analyst, [{"Hashes": {"SHA256": sha256.upper()}}, {"md5": "c" * 32}])

    assert matched_rules(body) == [(0, rule["id"])]


def test_text_merely_containing_an_indicator_is_not_a_candidate(analyst):
    create_seed_rule(analyst, {"ioc": {"type": "ip", "value": "192.0.2.1"}})

    body = post_events(analyst, {"CommandLine": "ping 192.0.2.1"})

    assert body["match_count"] == 0


def test_min_confidence_rule_matches_stored_iocs_at_or_above_the_threshold(app, analyst):
    add_ioc(app, "domain", "bad.example.org", 90)
    add_ioc(app, "domain", "meh.example.org", 40)
    rule = create_seed_rule(analyst, {"ioc": {"type": "domain", "min_confidence": 80}})

    body = post_events(
        analyst,
        [{"dns": "bad.example.org"}, {"dns": "meh.example.org"}, {"dns": "unknown.example.org"}],
    )

    assert matched_rules(body) == [(0, rule["id"])]


def test_min_confidence_ip_rule_matches_addresses_inside_stored_networks(app, analyst):
    add_ioc(app, "cidr", "10.20.0.0/16", 85)
    rule = create_seed_rule(analyst, {"ioc": {"type": "ip", "min_confidence": 80}})

    body = post_events(analyst, [{"SourceIp": "10.20.30.40"}, {"SourceIp": "10.21.0.1"}])

    assert matched_rules(body) == [(0, rule["id"])]


def test_min_confidence_rule_ignores_expired_iocs(app, analyst):
    add_ioc(app, "ipv4", "198.51.100.5", 95, expires_at=utcnow() - timedelta(days=1))
    create_seed_rule(analyst, {"ioc": {"type": "ipv4", "min_confidence": 50}})

    body = post_events(analyst, {"dst": "198.51.100.5"})

    assert body["match_count"] == 0


def test_min_confidence_rule_of_another_type_does_not_match(app, analyst):
    add_ioc(app, "domain", "bad.example.org", 90)
    create_seed_rule(analyst, {"ioc": {"type": "url", "min_confidence": 10}})

    body = post_events(analyst, {"dns": "bad.example.org"})

    assert body["match_count"] == 0


@pytest.mark.parametrize(
    ("detection", "reason"),
    [
        (
            {"ioc": {"type": "ip", "value": "10.0.0.0/8", "field": "x"}},
            "unknown keys in detection.ioc: field",
        ),
        (
            {"ioc": {"type": "ip", "value": "1.2.3.4"}, "extra": 1},
            "unknown keys in detection: extra",
        ),
        ({"ioc": {"type": "ip"}}, "exactly one of 'value' or 'min_confidence'"),
        ({"ioc": {"type": "ip", "value": "1.2.3.4", "min_confidence": 5}}, "exactly one of"),
        ({"ioc": {"type": "hostname", "value": "x"}}, "detection.ioc.type must be one of"),
        ({"ioc": {"type": "ipv4", "value": "10.1.2.3/24"}}, "10.1.2.3/24"),
        ({"ioc": {"type": "ipv4", "value": "2001:db8::/32"}}, "not an ipv4 address or network"),
        ({"ioc": {"type": "domain", "value": "not a domain"}}, "detection.ioc.value"),
        ({"ioc": {"type": "domain", "min_confidence": 101}}, "integer from 0 to 100"),
        ({"ioc": {"type": "domain", "value": []}}, "non-empty list"),
    ],
)
def test_invalid_seed_detection_is_422_naming_the_problem(analyst, detection, reason):
    response = analyst.client.post(
        "/rules", json={"name": "bad", "severity": "low", "detection": detection}
    )

    assert response.status_code == 422
    assert reason in response.get_json()["detail"]
    assert reason in response.get_json()["errors"]["detection"][0]


def test_create_threat_rule_seed_api_stores_a_rule(app):
    with app.app_context():
        rule = security.create_threat_rule(
            "Internal scan", "RFC 1918", {"ioc": {"type": "ip", "value": "192.168.0.0/16"}}, "high"
        )
        stored = db.session.get(DetectionRule, rule.id)
        assert (stored.kind, stored.severity, stored.detection["ioc"]["type"]) == (
            "seed",
            "high",
            "ip",
        )


def test_create_threat_rule_accepts_sigma_yaml_with_overrides(app):
    text = "title: T\nlogsource: {product: test}\ndetection: {sel: {a: b}, condition: sel}\n"
    with app.app_context():
        rule = security.create_threat_rule("Renamed", None, text, "critical")
        assert (rule.kind, rule.name, rule.severity) == ("sigma", "Renamed", "critical")


def test_create_threat_rule_refuses_an_invalid_rule_and_stores_nothing(app):
    with app.app_context():
        with pytest.raises(InvalidRule, match="unknown keys"):
            security.create_threat_rule("x", "", {"ioc": {"type": "ip", "values": []}}, "low")
        assert db.session.scalars(select(DetectionRule)).all() == []
