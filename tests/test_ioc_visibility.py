"""A TLP red IOC hidden from a caller is neither changed nor disclosed by any write path:
``POST /iocs``, bulk, extract with ``save`` and STIX import each keep the caller's report
as the caller's own record, and a store-backed rule never puts a red value into an alert
the whole team reads. (TAXII add objects needs ``taxii:write``, which only admins hold, and
they see every IOC; it stores through the same bulk path.)"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models import Alert, Ioc, db
from schemas.detection import AlertSchema
from tests.detection_support import create_seed_rule, post_events
from tests.helpers import make_user

RED_VALUE = "secret.example.com"
RED_DESCRIPTION = "source: internal informant"


@pytest.fixture
def red_ioc(admin) -> dict:
    """An admin's TLP red IOC, which analysts may not see."""
    response = admin.client.post(
        "/iocs",
        json={
            "type": "domain",
            "value": RED_VALUE,
            "tlp": "red",
            "confidence": 60,
            "tags": ["informant"],
            "description": RED_DESCRIPTION,
        },
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def stored_red_record(app, red_ioc: dict) -> tuple:
    with app.app_context():
        stored = db.session.get(Ioc, red_ioc["id"])
        return (stored.confidence, stored.tags, stored.description, stored.tlp, stored.version)


UNTOUCHED = (60, ["informant"], RED_DESCRIPTION, "red", 1)


def _indicator(pattern: str) -> dict:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": "indicator--6f1d2c3b-4a5e-4f60-8b7a-9c8d7e6f5a4b",
        "created": "2026-01-01T00:00:00Z",
        "modified": "2026-01-01T00:00:00Z",
        "pattern": pattern,
        "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z",
        "confidence": 100,
        "labels": ["leaked"],
    }


def test_posting_a_hidden_red_value_creates_the_callers_own_ioc(app, analyst, red_ioc):
    response = analyst.client.post(
        "/iocs", json={"value": RED_VALUE, "confidence": 100, "description": "mine"}
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["id"] != red_ioc["id"]
    assert (body["description"], body["confidence"], body["created_by"]) == (
        "mine",
        100,
        "analyst1",
    )
    assert stored_red_record(app, red_ioc) == UNTOUCHED
    again = analyst.client.post("/iocs", json={"value": RED_VALUE, "tags": ["again"]})
    assert (again.status_code, again.get_json()["id"]) == (200, body["id"])


def test_bulk_of_a_hidden_red_value_leaves_it_untouched_and_answers_no_id_of_it(
    app, analyst, red_ioc
):
    response = analyst.client.post(
        "/iocs/bulk",
        json={"items": [{"value": RED_VALUE, "confidence": 100, "description": "x"}]},
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["created"] == 1
    own_id = body["results"][0]["id"]
    assert own_id != red_ioc["id"]
    assert analyst.client.get(f"/iocs/{own_id}").status_code == 200
    assert stored_red_record(app, red_ioc) == UNTOUCHED


def test_stix_import_of_a_hidden_red_value_leaves_it_untouched(app, analyst, red_ioc):
    bundle = {
        "type": "bundle",
        "id": "bundle--0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e",
        "objects": [_indicator(f"[domain-name:value = '{RED_VALUE}']")],
    }
    response = analyst.client.post("/stix/import", json=bundle)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert red_ioc["id"] not in body["ioc_ids"]
    assert (body["created"], body["merged"]) == (1, 0)
    assert stored_red_record(app, red_ioc) == UNTOUCHED


def test_extract_with_save_answers_nothing_of_a_hidden_red_value(app, analyst, red_ioc):
    response = analyst.client.post(
        "/iocs/extract", json={"text": f"beacon to {RED_VALUE} seen", "save": True}
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["known"] == []
    assert [stored["id"] for stored in body["stored"]] != [red_ioc["id"]]
    assert RED_DESCRIPTION not in response.get_data(as_text=True)
    assert red_ioc["stix_id"] not in response.get_data(as_text=True)
    assert stored_red_record(app, red_ioc) == UNTOUCHED


def test_store_backed_rule_puts_no_red_value_into_an_alert(app, client, analyst, red_ioc):
    other = make_user(app, client, "analyst2", "analyst")
    shared = other.client.post("/iocs", json={"value": "open.example.com", "confidence": 90})
    assert shared.status_code == 201
    create_seed_rule(analyst, {"ioc": {"type": "domain", "min_confidence": 50}})

    body = post_events(analyst, [{"dns": RED_VALUE}, {"dns": "open.example.com"}])

    assert [match["event_index"] for match in body["matches"]] == [1]
    with app.app_context():
        alerts = db.session.scalars(select(Alert)).all()
        assert alerts and all(RED_VALUE not in str(AlertSchema().dump(alert)) for alert in alerts)


@pytest.mark.parametrize("path", ["/iocs", "/iocs/bulk"])
def test_a_red_report_never_hides_the_teams_record(app, client, analyst, path):
    team = analyst.client.post("/iocs", json={"value": "team.example.com", "tlp": "amber"})
    other = make_user(app, client, "analyst2", "analyst")
    item = {"value": "team.example.com", "tlp": "red", "description": "my informant"}
    body = {"items": [item]} if path == "/iocs/bulk" else item

    response = other.client.post(path, json=body)

    assert response.status_code in (200, 201), response.get_json()
    answer = response.get_json()
    own_id = answer["results"][0]["id"] if path == "/iocs/bulk" else answer["id"]
    assert own_id != team.get_json()["id"]
    assert other.client.get(f"/iocs/{own_id}").get_json()["tlp"] == "red"
    shared = analyst.client.get(f"/iocs/{team.get_json()['id']}").get_json()
    assert (shared["tlp"], shared["description"], shared["version"]) == ("amber", "", 1)
