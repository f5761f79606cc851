"""The scripted SOC day (issue 15's first acceptance item), end to end through the API on
real PostgreSQL: a SIEM's alerts (a resend racing the first), a CIDR IOC flagging an
observable, an incident from a template with its tasks, both alerts merged, a file
attached, the mandatory-task check on resolving, related incidents, and TLP red
need-to-know across alerts, tasks, evidence and relations."""

from __future__ import annotations

import hashlib
import io
import threading

import pytest

CIDR = "203.0.113.0/24"
INSIDE = "203.0.113.77"
TEMPLATE = {
    "name": "c2-beacon",
    "title": "C2 beaconing",
    "severity": "high",
    "tlp": "amber",
    "tags": ["c2"],
    "description": "## Scope\n\n## Hosts\n",
    "tasks": [
        {"title": "Isolate the host", "mandatory": True},
        {"title": "Block the C2 network", "mandatory": True},
        {"title": "Collect a memory image"},
        {"title": "Notify the asset owner"},
    ],
}
ALERT = {
    "source": "splunk",
    "source_ref": "notable-1",
    "title": "Beaconing to a known C2 network",
    "severity": "high",
    "tags": ["beaconing"],
    "techniques": ["T1071.001"],
    "observables": [
        {"type": "ipv4", "value": INSIDE},
        {"type": "hostname", "value": "ws-042.corp.example"},
    ],
    "raw": {"search_name": "C2 beacon", "dest": INSIDE},
}
OTHER_ALERT = {
    **ALERT,
    "source_ref": "notable-2",
    "title": "PowerShell download cradle",
    "techniques": ["T1059.001"],
    "observables": [{"type": "process", "value": "powershell.exe"}],
}
EVIDENCE = b"GET /beacon HTTP/1.1\r\nHost: 203.0.113.77\r\n\r\n"


@pytest.fixture
def siem(analyst):
    """The SIEM's client: an API key of the analyst's, scoped to writing alerts."""
    issued = analyst.client.post(
        "/api-keys", json={"name": "splunk", "scopes": ["alerts:write", "alerts:read"]}
    )
    assert issued.status_code == 201, issued.get_json()
    return analyst.client.with_token(issued.get_json()["key"])


def _ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.get_json()
    return response.get_json()


def _post_at_once(app, token: str, bodies: list[dict]) -> list[int]:
    """Post each body from its own thread, released together."""
    barrier = threading.Barrier(len(bodies))
    statuses: list[int] = []

    def send(body: dict) -> None:
        client = app.test_client()
        barrier.wait()
        answer = client.post("/alerts", json=body, headers={"Authorization": f"Bearer {token}"})
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=send, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(statuses)


def _move(analyst, incident_id: int, *statuses: str) -> None:
    for status in statuses:
        _ok(analyst.client.patch(f"/incidents/{incident_id}/status", json={"status": status}))


def test_a_soc_day(app, admin, analyst, viewer, siem):
    # Before the day: a known-bad network, and an older case that saw it.
    network = _ok(analyst.client.post("/iocs", json={"type": "cidr", "value": CIDR}), 201)
    older = _ok(
        analyst.client.post("/incidents", json={"title": "Old C2 case", "severity": "medium"}),
        201,
    )
    _ok(analyst.client.post(f"/incidents/{older['id']}/iocs", json={"ioc_ids": [network["id"]]}))
    _ok(admin.client.post("/incident-templates", json=TEMPLATE), 201)

    # The SIEM posts 3 alerts; two share a source_ref and arrive at the same moment.
    assert _post_at_once(app, siem.token, [ALERT, ALERT]) == [200, 201]
    _ok(siem.post("/alerts", json=OTHER_ALERT), 201)
    alerts = _ok(analyst.client.get("/alerts?source=splunk"))["items"]
    assert sorted(alert["count"] for alert in alerts) == [1, 2]
    beacon = next(alert for alert in alerts if alert["source_ref"] == "notable-1")
    cradle = next(alert for alert in alerts if alert["source_ref"] == "notable-2")
    flagged = {item["value"]: item for item in beacon["observables"]}
    assert flagged[INSIDE]["known_bad"] is True
    assert flagged[INSIDE]["ioc_ids"] == [network["id"]]
    assert flagged["ws-042.corp.example"]["known_bad"] is False

    # The analyst opens an incident from the template: its 4 tasks appear.
    incident = _ok(
        analyst.client.post(
            "/incidents", json={"template": "c2-beacon", "title": "Beaconing from WS-042"}
        ),
        201,
    )
    case = f"/incidents/{incident['id']}"
    tasks = _ok(analyst.client.get(f"{case}/tasks"))["items"]
    assert [task["title"] for task in tasks] == [task["title"] for task in TEMPLATE["tasks"]]

    # Both alerts merged: their observables and techniques are the incident's now.
    merged = _ok(
        analyst.client.post(f"{case}/alerts", json={"alert_ids": [beacon["id"], cradle["id"]]})
    )
    assert merged["incident"]["techniques"] == ["T1059.001", "T1071.001"]
    in_incident = _ok(analyst.client.get(f"{case}/alerts"))["items"]
    observed = {item["value"] for alert in in_incident for item in alert["observables"]}
    assert {INSIDE, "ws-042.corp.example", "powershell.exe"} <= observed
    assert network["id"] in [ioc["id"] for ioc in _ok(analyst.client.get(f"{case}/iocs"))["items"]]

    # A file attached: its SHA-256 answered and on the timeline.
    upload = analyst.client.post(
        f"{case}/evidence",
        data={"file": (io.BytesIO(EVIDENCE), "beacon.http", "text/plain")},
        content_type="multipart/form-data",
    )
    attached = _ok(upload, 201)
    assert attached["sha256"] == hashlib.sha256(EVIDENCE).hexdigest()
    timeline = _ok(analyst.client.get(f"{case}/timeline"))["items"]
    assert attached["sha256"] in [entry["changes"].get("sha256") for entry in timeline]

    # Resolving with the mandatory tasks open is 409 naming them; finished, it resolves.
    _move(analyst, incident["id"], "triaged", "investigating", "contained")
    refused = analyst.client.patch(f"{case}/status", json={"status": "resolved"})
    assert refused.status_code == 409
    assert [task["title"] for task in refused.get_json()["open_mandatory_tasks"]] == [
        "Isolate the host",
        "Block the C2 network",
    ]
    for task in tasks:
        _ok(analyst.client.patch(f"{case}/tasks/{task['id']}", json={"status": "done"}))
    resolved = _ok(analyst.client.patch(f"{case}/status", json={"status": "resolved"}))
    assert resolved["status"] == "resolved"

    # Related: the older incident shares the CIDR IOC.
    related = _ok(analyst.client.get(f"{case}/related"))["items"]
    assert [item["incident"]["id"] for item in related] == [older["id"]]
    assert {"type": "cidr", "value": CIDR, "matched": CIDR} in related[0]["shared"]

    # A TLP red incident with an alert, a task, a file and a relation: a viewer sees none.
    red = _ok(
        analyst.client.post(
            "/incidents", json={"title": "Insider", "severity": "high", "tlp": "red"}
        ),
        201,
    )
    secret = f"/incidents/{red['id']}"
    insider = _ok(siem.post("/alerts", json={**ALERT, "source_ref": "notable-3"}), 201)
    _ok(analyst.client.post(f"{secret}/alerts", json={"alert_ids": [insider["id"]]}))
    task = _ok(analyst.client.post(f"{secret}/tasks", json={"title": "Interview HR"}), 201)
    piece = _ok(
        analyst.client.post(
            f"{secret}/evidence",
            data={"file": (io.BytesIO(b"badge log"), "badges.csv", "text/csv")},
            content_type="multipart/form-data",
        ),
        201,
    )
    for path in (
        secret,
        f"{secret}/alerts",
        f"{secret}/tasks",
        f"{secret}/tasks/{task['id']}",
        f"{secret}/evidence",
        f"{secret}/evidence/{piece['id']}/content",
        f"{secret}/related",
        f"/alerts/{insider['id']}",
    ):
        assert viewer.client.get(path).status_code == 404, path
    assert _ok(viewer.client.get(f"/alerts?incident_id={red['id']}"))["items"] == []
    assert insider["id"] not in [a["id"] for a in _ok(viewer.client.get("/alerts"))["items"]]
    assert red["id"] not in [
        item["incident"]["id"] for item in _ok(viewer.client.get(f"{case}/related"))["items"]
    ]
    # The analyst who reported it sees it all.
    assert _ok(analyst.client.get(f"{secret}/tasks"))["items"][0]["id"] == task["id"]
