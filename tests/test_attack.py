"""MITRE ATT&CK techniques on incidents and alerts: the form check, the catalogue loaded
from a STIX bundle file (``flask attack-load``) or by STIX import, names and tactics shown,
Sigma tags flowing to alerts and incidents, and attack-patterns in an incident's export."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from taxii2client.v21 import Collection

from tests.detection_support import create_sigma_rule, post_events
from tests.taxii_helpers import basic_credentials
from tests.test_alert_intake import SIEM_ALERT

pytest_plugins = ("tests.taxii_fixtures",)


def attack_pattern(technique: str, name: str, *tactics: str) -> dict:
    return {
        "type": "attack-pattern",
        "spec_version": "2.1",
        "id": f"attack-pattern--{uuid.uuid5(uuid.NAMESPACE_URL, technique)}",
        "created": "2020-01-01T00:00:00.000Z",
        "modified": "2024-01-01T00:00:00.000Z",
        "name": name,
        "external_references": [
            {"source_name": "mitre-attack", "external_id": technique, "url": "https://attack"}
        ],
        "kill_chain_phases": [
            {"kill_chain_name": "mitre-attack", "phase_name": tactic} for tactic in tactics
        ],
    }


SMALL_BUNDLE = {
    "type": "bundle",
    "id": "bundle--5a3c2d4e-1111-4000-8000-000000000001",
    "objects": [
        attack_pattern("T1566", "Phishing", "initial-access"),
        attack_pattern("T1059", "Command and Scripting Interpreter", "execution"),
        attack_pattern("T1059.001", "PowerShell", "execution"),
        attack_pattern("T1071.001", "Web Protocols", "command-and-control"),
        {"type": "x-mitre-tactic", "id": "x-mitre-tactic--1", "name": "Execution"},
    ],
}


def load_catalogue(app, tmp_path: Path, bundle: dict | None = None):
    path = tmp_path / "enterprise-attack.json"
    path.write_text(json.dumps(bundle or SMALL_BUNDLE))
    with app.app_context():
        return app.test_cli_runner().invoke(args=["attack-load", str(path)])


@pytest.fixture
def catalogue(app, tmp_path):
    result = load_catalogue(app, tmp_path)
    assert result.exit_code == 0, result.output
    return result


def test_attack_load_reports_what_it_loaded(catalogue):
    assert "loaded 4 techniques (1 other objects skipped)" in catalogue.output


def test_attack_load_refuses_a_file_that_is_not_a_bundle(app, tmp_path):
    result = load_catalogue(app, tmp_path, {"type": "not-a-bundle"})

    assert result.exit_code == 1
    assert "Not a STIX bundle" in result.output


def test_without_a_catalogue_well_formed_ids_are_accepted_without_names(analyst):
    response = analyst.client.post(
        "/incidents", json={"title": "x", "severity": "low", "techniques": ["t9999"]}
    )

    assert response.status_code == 201, response.get_json()
    assert response.get_json()["techniques"] == ["T9999"]
    assert response.get_json()["technique_details"] == [
        {"id": "T9999", "name": None, "tactics": []}
    ]


def test_malformed_technique_id_is_400_with_or_without_a_catalogue(analyst):
    response = analyst.client.post(
        "/incidents", json={"title": "x", "severity": "low", "techniques": ["T15.1"]}
    )

    assert response.status_code == 400
    assert "techniques" in response.get_json()["errors"]


def test_with_a_catalogue_unknown_ids_are_422_and_known_ones_show_names(analyst, catalogue):
    unknown = analyst.client.post(
        "/incidents", json={"title": "x", "severity": "low", "techniques": ["T1566", "T9999"]}
    )
    known = analyst.client.post(
        "/incidents", json={"title": "x", "severity": "low", "techniques": ["t1059.001", "T1566"]}
    )

    assert unknown.status_code == 422
    assert unknown.get_json()["errors"] == {
        "techniques": ["T9999 is not in the loaded ATT&CK catalogue"]
    }
    assert known.status_code == 201, known.get_json()
    assert known.get_json()["technique_details"] == [
        {"id": "T1059.001", "name": "PowerShell", "tactics": ["execution"]},
        {"id": "T1566", "name": "Phishing", "tactics": ["initial-access"]},
    ]


def test_with_a_catalogue_an_edit_or_an_alert_with_an_unknown_id_is_422(analyst, catalogue):
    incident = analyst.client.post("/incidents", json={"title": "x", "severity": "low"})
    edit = analyst.client.patch(
        f"/incidents/{incident.get_json()['id']}", json={"techniques": ["T9999"]}
    )
    alert = analyst.client.post("/alerts", json={**SIEM_ALERT, "techniques": ["T9999"]})
    known = analyst.client.post("/alerts", json=SIEM_ALERT)

    assert edit.status_code == 422
    assert alert.status_code == 422
    assert alert.get_json()["errors"] == {
        "0.techniques": ["T9999 is not in the loaded ATT&CK catalogue"]
    }
    assert known.status_code == 201
    assert known.get_json()["technique_details"] == [
        {"id": "T1071.001", "name": "Web Protocols", "tactics": ["command-and-control"]}
    ]


def test_a_technique_can_be_read_from_the_catalogue(viewer, catalogue):
    response = viewer.client.get("/attack/techniques/t1059.001")

    assert response.status_code == 200
    assert response.get_json()["name"] == "PowerShell"
    assert viewer.client.get("/attack/techniques/T9999").status_code == 404


def test_incidents_filter_by_tag_and_technique(analyst):
    analyst.client.post(
        "/incidents",
        json={"title": "a", "severity": "low", "tags": ["Phishing"], "techniques": ["T1566"]},
    )
    analyst.client.post("/incidents", json={"title": "b", "severity": "low", "tags": ["ransom"]})

    def titles(query: str) -> list[str]:
        response = analyst.client.get(f"/incidents?{query}")
        assert response.status_code == 200, response.get_json()
        return [item["title"] for item in response.get_json()["items"]]

    assert titles("tag=phishing") == ["a"]
    assert titles("tag=ransom") == ["b"]
    assert titles("technique=t1566") == ["a"]
    assert analyst.client.get("/incidents?technique=phish").status_code == 400


def test_attack_patterns_arriving_by_stix_import_load_the_catalogue(analyst):
    response = analyst.client.post("/stix/import", json=SMALL_BUNDLE)

    assert response.status_code == 200, response.get_json()
    assert analyst.client.get("/attack/techniques/T1566").get_json()["name"] == "Phishing"


def test_attack_patterns_added_to_a_taxii_collection_load_the_catalogue(
    live_server, collection, admin, viewer
):
    url = f"{live_server}/taxii2/api/collections/{collection['id']}/"
    client_collection = Collection(url, **basic_credentials(admin))

    status = client_collection.add_objects({"objects": SMALL_BUNDLE["objects"][:2]})

    assert status.status == "complete"
    technique = viewer.client.get("/attack/techniques/T1059").get_json()
    assert technique["name"] == "Command and Scripting Interpreter"
    assert technique["tactics"] == ["execution"]


def test_sigma_attack_tags_flow_to_the_alert_and_its_incident(analyst):
    create_sigma_rule(
        analyst,
        {"sel": {"CommandLine|contains": "-enc"}, "condition": "sel"},
        level="high",
        tags=["attack.execution", "attack.t1059.001"],
    )

    body = post_events(analyst, {"CommandLine": "powershell -enc AAAA", "Computer": "ws1"})

    (alert,) = body["alerts"]
    stored = analyst.client.get(f"/alerts/{alert['id']}").get_json()
    assert stored["techniques"] == ["T1059.001"]
    incident = analyst.client.get(f"/incidents/{alert['incident_id']}").get_json()
    assert incident["techniques"] == ["T1059.001"]


def test_an_incidents_stix_export_includes_its_attack_patterns(analyst, catalogue):
    incident = analyst.client.post(
        "/incidents", json={"title": "x", "severity": "low", "techniques": ["T1566", "T1059"]}
    ).get_json()

    response = analyst.client.get(f"/incidents/{incident['id']}/stix")

    assert response.status_code == 200
    objects = json.loads(response.data)["objects"]
    patterns = {
        obj["external_references"][0]["external_id"]: obj
        for obj in objects
        if obj["type"] == "attack-pattern"
    }
    assert sorted(patterns) == ["T1059", "T1566"]
    assert patterns["T1566"]["name"] == "Phishing"
    assert patterns["T1566"]["kill_chain_phases"] == [
        {"kill_chain_name": "mitre-attack", "phase_name": "initial-access"}
    ]
