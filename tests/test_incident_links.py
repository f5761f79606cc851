"""Alerts merged into incidents and out again, duplicates merged, related incidents, and
TLP red need-to-know on all of them (``resources/incident_links.py``)."""

from __future__ import annotations

import pytest

from tests.test_alert_intake import SIEM_ALERT


def new_incident(user, **fields) -> dict:
    body = {"title": "Phishing wave", "severity": "high", **fields}
    response = user.client.post("/incidents", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def new_alert(user, ref: str, **fields) -> dict:
    response = user.client.post("/alerts", json={**SIEM_ALERT, "source_ref": ref, **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def merge(user, incident_id: int, *alert_ids: int):
    return user.client.post(f"/incidents/{incident_id}/alerts", json={"alert_ids": list(alert_ids)})


def incident_iocs(user, incident_id: int) -> list[int]:
    response = user.client.get(f"/incidents/{incident_id}/iocs")
    assert response.status_code == 200, response.get_json()
    return sorted(item["id"] for item in response.get_json()["items"])


@pytest.fixture
def network_id(analyst) -> int:
    response = analyst.client.post("/iocs", json={"type": "cidr", "value": "203.0.113.0/24"})
    assert response.status_code == 201
    return response.get_json()["id"]


def test_merge_carries_tags_techniques_known_bad_iocs_and_observables(analyst, network_id):
    incident = new_incident(analyst, tags=["phishing"])
    first = new_alert(analyst, "a1")
    second = new_alert(
        analyst,
        "a2",
        tags=["c2", "lateral"],
        techniques=["T1021"],
        observables=[{"type": "filename", "value": "evil.exe"}],
    )

    response = merge(analyst, incident["id"], first["id"], second["id"])

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["incident"]["tags"] == ["beaconing", "c2", "lateral", "phishing"]
    assert body["incident"]["techniques"] == ["T1021", "T1071.001"]
    carried = {item["alert"]["id"]: item["carried"] for item in body["merged"]}
    assert carried[first["id"]] == {
        "tags": ["beaconing", "c2"],
        "techniques": ["T1071.001"],
        "ioc_ids": [network_id],
    }
    assert carried[second["id"]] == {"tags": ["lateral"], "techniques": ["T1021"], "ioc_ids": []}
    assert incident_iocs(analyst, incident["id"]) == [network_id]
    listed = analyst.client.get(f"/alerts?incident_id={incident['id']}").get_json()["items"]
    assert sorted(alert["id"] for alert in listed) == sorted([first["id"], second["id"]])
    assert all(alert["status"] == "escalated" for alert in listed)
    shown = analyst.client.get(f"/incidents/{incident['id']}/alerts").get_json()["items"]
    observed = {(o["type"], o["value"]) for alert in shown for o in alert["observables"]}
    assert ("filename", "evil.exe") in observed and ("ipv4", "203.0.113.77") in observed


def test_unmerge_restores_the_alert_and_removes_exactly_what_it_carried(analyst, network_id):
    incident = new_incident(analyst, tags=["c2"], techniques=["T1566"])
    acknowledged = new_alert(analyst, "a1", techniques=["T1071.001", "T1566"])
    patched = analyst.client.patch(f"/alerts/{acknowledged['id']}", json={"status": "acknowledged"})
    assert patched.status_code == 200
    before = analyst.client.get(f"/incidents/{incident['id']}").get_json()
    merge(analyst, incident["id"], acknowledged["id"])

    response = analyst.client.delete(f"/incidents/{incident['id']}/alerts/{acknowledged['id']}")

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["alert"]["status"] == "acknowledged"
    assert body["alert"]["incident_id"] is None
    assert body["alert"]["merge_carried"] is None
    assert body["removed"] == {
        "tags": ["beaconing"],
        "techniques": ["T1071.001"],
        "ioc_ids": [network_id],
    }
    after = analyst.client.get(f"/incidents/{incident['id']}").get_json()
    assert after["tags"] == before["tags"] == ["c2"]
    assert after["techniques"] == before["techniques"] == ["T1566"]
    assert incident_iocs(analyst, incident["id"]) == []
    assert analyst.client.get(f"/alerts?incident_id={incident['id']}").get_json()["items"] == []


def test_unmerge_keeps_what_another_merged_alert_still_brings(analyst, network_id):
    incident = new_incident(analyst)
    first = new_alert(analyst, "a1")
    second = new_alert(analyst, "a2", tags=["c2"], techniques=[])
    merge(analyst, incident["id"], first["id"], second["id"])

    removed = analyst.client.delete(f"/incidents/{incident['id']}/alerts/{first['id']}")

    assert removed.get_json()["removed"] == {
        "tags": ["beaconing"],
        "techniques": ["T1071.001"],
        "ioc_ids": [],
    }
    assert analyst.client.get(f"/incidents/{incident['id']}").get_json()["tags"] == ["c2"]
    assert incident_iocs(analyst, incident["id"]) == [network_id]
    # The remaining alert now carries what it kept, so its own unmerge removes it.
    last = analyst.client.delete(f"/incidents/{incident['id']}/alerts/{second['id']}")
    assert last.get_json()["removed"]["tags"] == ["c2"]
    assert last.get_json()["removed"]["ioc_ids"] == [network_id]
    assert analyst.client.get(f"/incidents/{incident['id']}").get_json()["tags"] == []


def test_an_alert_merges_into_one_incident_only(analyst):
    alert = new_alert(analyst, "a1")
    first, second = new_incident(analyst), new_incident(analyst)
    assert merge(analyst, first["id"], alert["id"]).status_code == 200

    response = merge(analyst, second["id"], alert["id"])

    assert response.status_code == 409
    assert response.get_json()["incident_id"] == first["id"]


def test_merging_a_missing_alert_is_422_and_changes_nothing(analyst):
    incident = new_incident(analyst)
    alert = new_alert(analyst, "a1")

    response = merge(analyst, incident["id"], alert["id"], 999_999)

    assert response.status_code == 422
    assert response.get_json()["missing_alert_ids"] == [999_999]
    assert analyst.client.get(f"/alerts/{alert['id']}").get_json()["incident_id"] is None


def test_unmerging_an_alert_of_another_incident_is_404(analyst):
    alert = new_alert(analyst, "a1")
    first, second = new_incident(analyst), new_incident(analyst)
    merge(analyst, first["id"], alert["id"])

    assert (
        analyst.client.delete(f"/incidents/{second['id']}/alerts/{alert['id']}").status_code == 404
    )


def test_escalating_a_tool_alert_carries_its_techniques_and_links_back(analyst, network_id):
    alert = new_alert(analyst, "a1")

    response = analyst.client.post(f"/alerts/{alert['id']}/escalate")

    assert response.status_code == 201, response.get_json()
    incident = response.get_json()["incident"]
    assert incident["techniques"] == ["T1071.001"]
    assert incident["tags"] == ["beaconing", "c2"]
    assert response.get_json()["alert"]["incident_id"] == incident["id"]
    assert incident_iocs(analyst, incident["id"]) == [network_id]


def test_viewer_cannot_merge_or_unmerge(analyst, viewer):
    incident = new_incident(analyst)
    alert = new_alert(analyst, "a1")

    assert merge(viewer, incident["id"], alert["id"]).status_code == 403
    merge(analyst, incident["id"], alert["id"])
    assert (
        viewer.client.delete(f"/incidents/{incident['id']}/alerts/{alert['id']}").status_code == 403
    )


def test_merge_body_refuses_unknown_fields(analyst):
    incident = new_incident(analyst)
    response = analyst.client.post(
        f"/incidents/{incident['id']}/alerts", json={"alert_ids": [1], "incident_id": 2}
    )
    assert response.status_code == 400


# --- duplicates ---------------------------------------------------------------------------


def test_merging_a_duplicate_moves_alerts_iocs_and_comments_and_closes_it(analyst, network_id):
    target = new_incident(analyst, tags=["phishing"])
    duplicate = new_incident(analyst, title="Same phish", tags=["dup"], techniques=["T1566"])
    alert = new_alert(analyst, "a1")
    merge(analyst, duplicate["id"], alert["id"])
    analyst.client.post(f"/incidents/{duplicate['id']}/comments", json={"body": "seen on WS-042"})

    response = analyst.client.post(
        f"/incidents/{target['id']}/merge", json={"duplicate_id": duplicate["id"]}
    )

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["moved"] == {"alerts": 1, "iocs": 1, "comments": 1, "tasks": 0, "evidence": 0}
    assert body["duplicate"]["status"] == "closed"
    assert body["duplicate"]["merged_into_id"] == target["id"]
    assert body["incident"]["tags"] == ["beaconing", "c2", "dup", "phishing"]
    assert body["incident"]["techniques"] == ["T1071.001", "T1566"]
    assert analyst.client.get(f"/alerts/{alert['id']}").get_json()["incident_id"] == target["id"]
    assert incident_iocs(analyst, target["id"]) == [network_id]
    assert incident_iocs(analyst, duplicate["id"]) == []
    timeline = analyst.client.get(f"/incidents/{target['id']}/timeline").get_json()["items"]
    assert "seen on WS-042" in [entry["comment"] for entry in timeline]
    assert "incident_merge" in [entry["kind"] for entry in timeline]


def test_a_merged_duplicate_cannot_be_merged_again(analyst):
    target, duplicate, other = new_incident(analyst), new_incident(analyst), new_incident(analyst)
    analyst.client.post(f"/incidents/{target['id']}/merge", json={"duplicate_id": duplicate["id"]})

    again = analyst.client.post(
        f"/incidents/{other['id']}/merge", json={"duplicate_id": duplicate["id"]}
    )
    itself = analyst.client.post(
        f"/incidents/{other['id']}/merge", json={"duplicate_id": other["id"]}
    )

    assert again.status_code == 409
    assert itself.status_code == 422


def test_merging_a_red_duplicate_keeps_it_red(admin, analyst):
    target = new_incident(analyst)
    duplicate = new_incident(analyst, tlp="red")

    response = analyst.client.post(
        f"/incidents/{target['id']}/merge", json={"duplicate_id": duplicate["id"]}
    )

    assert response.get_json()["incident"]["tlp"] == "red"


# --- related ------------------------------------------------------------------------------


def test_related_finds_an_older_incident_sharing_the_network(analyst, network_id):
    older = new_incident(analyst, title="Old C2 case")
    analyst.client.post(f"/incidents/{older['id']}/iocs", json={"ioc_ids": [network_id]})
    unrelated = new_incident(analyst, title="Unrelated")
    current = new_incident(analyst, title="New beacon")
    observed = new_alert(
        analyst, "a1", observables=[{"type": "ipv4", "value": "203.0.113.5"}], techniques=[]
    )
    merge(analyst, current["id"], observed["id"])

    response = analyst.client.get(f"/incidents/{current['id']}/related")

    assert response.status_code == 200, response.get_json()
    items = response.get_json()["items"]
    assert [item["incident"]["id"] for item in items] == [older["id"]]
    # The observable itself (inside the network), and the network IOC its merge linked.
    assert items[0]["shared"] == [
        {"type": "cidr", "value": "203.0.113.0/24", "matched": "203.0.113.0/24"},
        {"type": "ipv4", "value": "203.0.113.5", "matched": "203.0.113.0/24"},
    ]
    assert items[0]["shared_count"] == 2
    assert unrelated["id"] not in [item["incident"]["id"] for item in items]


def test_an_address_observable_is_related_to_a_network_elsewhere_without_ioc_links(analyst):
    first = new_incident(analyst)
    second = new_incident(analyst)
    merge(
        analyst,
        first["id"],
        new_alert(
            analyst,
            "a1",
            observables=[
                {"type": "cidr", "value": "10.20.0.0/16"},
                {"type": "user", "value": "bob"},
            ],
        )["id"],
    )
    merge(
        analyst,
        second["id"],
        new_alert(
            analyst,
            "a2",
            observables=[{"type": "ipv4", "value": "10.20.3.4"}, {"type": "user", "value": "bob"}],
        )["id"],
    )
    third = new_incident(analyst)
    merge(
        analyst,
        third["id"],
        new_alert(analyst, "a3", observables=[{"type": "user", "value": "bob"}])["id"],
    )

    items = analyst.client.get(f"/incidents/{second['id']}/related").get_json()["items"]

    assert [(item["incident"]["id"], item["shared_count"]) for item in items] == [
        (first["id"], 2),
        (third["id"], 1),
    ]
    assert {"type": "ipv4", "value": "10.20.3.4", "matched": "10.20.0.0/16"} in items[0]["shared"]


def test_ioc_incidents_lists_linked_and_observed_incidents(analyst, network_id):
    linked = new_incident(analyst)
    analyst.client.post(f"/incidents/{linked['id']}/iocs", json={"ioc_ids": [network_id]})
    observed = new_incident(analyst)
    alert = new_alert(analyst, "a1")
    merge(analyst, observed["id"], alert["id"])
    new_incident(analyst)

    response = analyst.client.get(f"/iocs/{network_id}/incidents")

    assert response.status_code == 200, response.get_json()
    assert sorted(item["id"] for item in response.get_json()["items"]) == sorted(
        [linked["id"], observed["id"]]
    )


# --- TLP red ------------------------------------------------------------------------------


def test_a_viewer_sees_none_of_a_red_incidents_alerts_or_relations(analyst, viewer, network_id):
    red = new_incident(analyst, tlp="red")
    alert = new_alert(analyst, "a1")
    merge(analyst, red["id"], alert["id"])
    open_case = new_incident(analyst)
    analyst.client.post(f"/incidents/{open_case['id']}/iocs", json={"ioc_ids": [network_id]})

    assert viewer.client.get(f"/incidents/{red['id']}/alerts").status_code == 404
    assert viewer.client.get(f"/incidents/{red['id']}/related").status_code == 404
    assert viewer.client.get(f"/alerts/{alert['id']}").status_code == 404
    assert viewer.client.get(f"/alerts?incident_id={red['id']}").get_json()["items"] == []
    assert viewer.client.get("/alerts").get_json()["items"] == []
    related = viewer.client.get(f"/incidents/{open_case['id']}/related").get_json()["items"]
    assert related == []
    ioc_incidents = viewer.client.get(f"/iocs/{network_id}/incidents").get_json()["items"]
    assert [item["id"] for item in ioc_incidents] == [open_case["id"]]
    # The analyst who reported it still sees it all.
    related = analyst.client.get(f"/incidents/{open_case['id']}/related").get_json()["items"]
    assert [item["incident"]["id"] for item in related] == [red["id"]]


def test_a_hidden_incident_cannot_be_merged_into_or_merged_away(analyst, admin):
    red = new_incident(admin, tlp="red")
    mine = new_incident(analyst)
    alert = new_alert(analyst, "a1")

    assert merge(analyst, red["id"], alert["id"]).status_code == 404
    into_hidden = analyst.client.post(
        f"/incidents/{red['id']}/merge", json={"duplicate_id": mine["id"]}
    )
    hidden_away = analyst.client.post(
        f"/incidents/{mine['id']}/merge", json={"duplicate_id": red["id"]}
    )
    assert into_hidden.status_code == 404
    # The body names the duplicate: a hidden one is 422 like one that does not exist.
    assert hidden_away.status_code == 422
    missing = analyst.client.post(f"/incidents/{mine['id']}/merge", json={"duplicate_id": 999})
    assert missing.status_code == 422
    assert missing.get_json()["errors"] == hidden_away.get_json()["errors"]


def test_merge_unmerge_and_duplicate_merge_are_one_event_each(app, analyst):
    from sqlalchemy import select

    from models import AuditEntry, db

    incident, duplicate = new_incident(analyst), new_incident(analyst)
    first, second = new_alert(analyst, "a1"), new_alert(analyst, "a2")
    merge(analyst, incident["id"], first["id"], second["id"])
    analyst.client.delete(f"/incidents/{incident['id']}/alerts/{first['id']}")
    analyst.client.post(
        f"/incidents/{incident['id']}/merge", json={"duplicate_id": duplicate["id"]}
    )

    with app.app_context():
        entries = db.session.execute(
            select(AuditEntry.action, AuditEntry.object_id)
            .where(AuditEntry.action.in_(["alert.merge", "alert.unmerge", "incident.merge"]))
            .order_by(AuditEntry.id)
        ).all()
    assert [tuple(entry) for entry in entries] == [
        ("alert.merge", str(first["id"])),
        ("alert.merge", str(second["id"])),
        ("alert.unmerge", str(first["id"])),
        ("incident.merge", str(duplicate["id"])),
    ]


def test_an_alert_moved_with_a_duplicate_unmerges_without_taking_the_targets_own_labels(
    analyst, network_id
):
    target = new_incident(analyst, tags=["c2"], techniques=["T1071.001"])
    analyst.client.post(f"/incidents/{target['id']}/iocs", json={"ioc_ids": [network_id]})
    duplicate = new_incident(analyst)
    alert = new_alert(analyst, "a1")
    merge(analyst, duplicate["id"], alert["id"])
    analyst.client.post(f"/incidents/{target['id']}/merge", json={"duplicate_id": duplicate["id"]})

    response = analyst.client.delete(f"/incidents/{target['id']}/alerts/{alert['id']}")

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["removed"] == {
        "tags": ["beaconing"],
        "techniques": [],
        "ioc_ids": [],
    }
    after = analyst.client.get(f"/incidents/{target['id']}").get_json()
    assert after["tags"] == ["c2"]
    assert after["techniques"] == ["T1071.001"]
    assert incident_iocs(analyst, target["id"]) == [network_id]
