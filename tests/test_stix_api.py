"""STIX 2.1 over the JSON API: ``/stix/bundle``, ``/incidents/<id>/stix``, ``/stix/import``."""

from __future__ import annotations

import pytest
import stix2validator
from sqlalchemy import select

from models import Ioc, db
from security.modules.stix_mapping.patterns import MAX_PATTERN_DEPTH, MAX_PATTERN_TERMS
from tests.taxii_helpers import (
    PATTERN_BOMBS,
    pattern_with_alternatives,
    stix_indicator,
    store_iocs,
)

TLP_GREEN_2 = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"


def _assert_valid_bundle(bundle: dict) -> None:
    results = stix2validator.validate_instance(
        bundle, stix2validator.ValidationOptions(version="2.1")
    )
    assert results.is_valid, [str(error) for error in results.errors]


def _names(bundle: dict, stix_type: str) -> list[str]:
    return sorted(o["name"] for o in bundle["objects"] if o["type"] == stix_type)


def _bundle(*objects: dict) -> dict:
    return {
        "type": "bundle",
        "id": "bundle--6f5e4d3c-2b1a-4f0e-9d8c-7b6a5f4e3d2c",
        "objects": list(objects),
    }


def test_bundle_exports_iocs_with_tlp_2_markings_and_validates(app, viewer):
    store_iocs(
        app,
        [
            {"type": "domain", "value": "bad.example.com", "tlp": "green", "tags": ["apt"]},
            {"type": "cve", "value": "CVE-2021-44228", "tlp": "green"},
        ],
    )
    response = viewer.client.get("/stix/bundle")
    assert response.status_code == 200
    assert response.mimetype == "application/stix+json"
    bundle = response.get_json()
    _assert_valid_bundle(bundle)
    assert _names(bundle, "indicator") == ["bad.example.com"]
    assert _names(bundle, "vulnerability") == ["CVE-2021-44228"]
    assert _names(bundle, "marking-definition") == ["TLP:GREEN"]
    indicator = next(o for o in bundle["objects"] if o["type"] == "indicator")
    assert indicator["object_marking_refs"] == [TLP_GREEN_2]
    assert indicator["labels"] == ["apt"]


def test_bundle_never_carries_tlp_red(app, admin):
    store_iocs(app, [{"type": "domain", "value": "red.example.com", "tlp": "red"}])
    response = admin.client.get("/stix/bundle")
    assert "red.example.com" not in response.get_data(as_text=True)
    assert "TLP:RED" not in response.get_data(as_text=True)


def test_bundle_applies_the_ioc_filters(app, viewer):
    store_iocs(
        app,
        [
            {"type": "domain", "value": "sure.example.com", "confidence": 90},
            {"type": "domain", "value": "unsure.example.com", "confidence": 20},
            {"type": "ipv4", "value": "203.0.113.50", "confidence": 95},
        ],
    )
    bundle = viewer.client.get("/stix/bundle?type=domain&min_confidence=50").get_json()
    assert _names(bundle, "indicator") == ["sure.example.com"]


def test_the_same_ioc_keeps_its_stix_id_across_exports(app, viewer):
    store_iocs(app, [{"type": "domain", "value": "stable.example.com"}])
    first = viewer.client.get("/stix/bundle").get_json()
    second = viewer.client.get("/stix/bundle").get_json()
    assert _names(first, "indicator") == ["stable.example.com"]
    ids = [[o["id"] for o in b["objects"] if o["type"] == "indicator"] for b in (first, second)]
    assert ids[0] == ids[1]


def test_incident_bundle_holds_its_linked_iocs_only(app, analyst):
    linked_id, _ = store_iocs(
        app,
        [
            {"type": "domain", "value": "linked.example.com"},
            {"type": "domain", "value": "unrelated.example.com"},
        ],
    )
    incident = analyst.client.post(
        "/incidents", json={"title": "Phishing wave", "severity": "high"}
    ).get_json()
    link = analyst.client.post(f"/incidents/{incident['id']}/iocs", json={"ioc_ids": [linked_id]})
    assert link.status_code == 200, link.get_json()
    bundle = analyst.client.get(f"/incidents/{incident['id']}/stix").get_json()
    _assert_valid_bundle(bundle)
    assert _names(bundle, "indicator") == ["linked.example.com"]


def test_incident_bundle_of_an_unknown_incident_is_404(viewer):
    assert viewer.client.get("/incidents/4242/stix").status_code == 404


def test_import_stores_indicators_and_reports_what_did_not_map(app, analyst):
    bundle = _bundle(
        stix_indicator(
            "indicator--0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
            "[domain-name:value = 'imported.example.com']",
            confidence=85,
            object_marking_refs=[TLP_GREEN_2],
        ),
        stix_indicator(
            "indicator--1b2c3d4e-5f6a-4b7c-9d8e-0f1a2b3c4d5e",
            "[process:name = 'evil.exe']",
        ),
        {
            "type": "malware",
            "spec_version": "2.1",
            "id": "malware--2c3d4e5f-6a7b-4c8d-8e9f-1a2b3c4d5e6f",
            "created": "2026-01-01T00:00:00.000Z",
            "modified": "2026-01-01T00:00:00.000Z",
            "name": "Evil",
            "is_family": True,
        },
    )
    response = analyst.client.post("/stix/import?source=partner-x", json=bundle)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["created"] == 1
    assert [u["id"] for u in body["unmapped"]] == [
        "indicator--1b2c3d4e-5f6a-4b7c-9d8e-0f1a2b3c4d5e"
    ]
    assert "process:name" in body["unmapped"][0]["reason"]
    assert body["skipped"] == [
        {"id": "malware--2c3d4e5f-6a7b-4c8d-8e9f-1a2b3c4d5e6f", "type": "malware"}
    ]
    with app.app_context():
        stored = db.session.scalars(select(Ioc)).unique().one()
        assert (stored.type, stored.value) == ("domain", "imported.example.com")
        assert (stored.confidence, stored.tlp, stored.source) == (85, "green", "partner-x")


def test_import_applies_defaults_to_what_the_object_does_not_say(app, analyst):
    bundle = _bundle(
        stix_indicator(
            "indicator--3d4e5f6a-7b8c-4d9e-8f0a-2b3c4d5e6f7a",
            "[ipv4-addr:value = '203.0.113.77']",
        )
    )
    query = "?default_confidence=35&default_tlp=amber%2Bstrict"
    assert analyst.client.post(f"/stix/import{query}", json=bundle).status_code == 200
    with app.app_context():
        stored = db.session.scalars(select(Ioc)).unique().one()
        assert (stored.confidence, stored.tlp) == (35, "amber+strict")


def test_import_refuses_what_is_not_a_bundle(analyst):
    response = analyst.client.post("/stix/import", json={"type": "indicator", "id": "x"})
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/problem+json"


def test_viewer_cannot_import(viewer):
    assert viewer.client.post("/stix/import", json=_bundle()).status_code == 403


BOMB_ID = "indicator--0b0b0b0b-0b0b-4b0b-8b0b-0b0b0b0b0b0b"
VALID_ID = "indicator--1a1a1a1a-1a1a-4a1a-8a1a-1a1a1a1a1a1a"


@pytest.mark.parametrize("bomb", PATTERN_BOMBS)
def test_import_refuses_an_oversized_pattern_and_keeps_the_rest_of_the_bundle(app, analyst, bomb):
    bundle = _bundle(
        stix_indicator(BOMB_ID, PATTERN_BOMBS[bomb]),
        stix_indicator(VALID_ID, "[domain-name:value = 'kept.example.com']"),
    )

    response = analyst.client.post("/stix/import", json=bundle)

    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["created"] == 1
    assert [u["id"] for u in body["unmapped"]] == [BOMB_ID]
    assert "at most" in body["unmapped"][0]["reason"]
    with app.app_context():
        stored = db.session.scalars(select(Ioc)).unique().one()
        assert stored.value == "kept.example.com"


def test_a_pattern_at_the_size_limits_still_imports(app, analyst):
    nested = (
        "(" * (MAX_PATTERN_DEPTH - 1)
        + pattern_with_alternatives(MAX_PATTERN_TERMS)
        + ")" * (MAX_PATTERN_DEPTH - 1)
    )

    response = analyst.client.post("/stix/import", json=_bundle(stix_indicator(VALID_ID, nested)))

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["created"] == MAX_PATTERN_TERMS
