"""The audit log as admins read it (GET /audit): logins, failures and denials are in it, the
filters narrow it, and it pages with a cursor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def audit(admin, query: str = "") -> list[dict]:
    response = admin.client.get(f"/audit{query}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def test_logins_and_failed_logins_are_audited(admin, client):
    client.post("/auth/login", json={"username": admin.username, "password": "Wrong-Pass-123!"})
    outcomes = [entry["outcome"] for entry in audit(admin, "?action=auth.login")]
    assert outcomes == ["failure", "success"]


def test_permission_denials_are_audited_with_the_actor(admin, viewer):
    response = viewer.client.post("/incidents", json={"title": "x", "severity": "low"})
    assert response.status_code == 403
    [entry] = audit(admin, "?action=auth.permission_denied")
    assert (entry["actor"], entry["outcome"]) == (viewer.username, "denied")
    assert entry["details"]["permission"] == "incidents:write"


def test_writes_are_audited_with_object_and_request_id(admin, analyst):
    response = analyst.client.post(
        "/incidents",
        json={"title": "Phishing wave", "severity": "high"},
        headers={"X-Request-ID": "audit-trace-0001"},
    )
    incident_id = str(response.get_json()["id"])
    [entry] = audit(admin, f"?object_type=incident&object_id={incident_id}")
    assert (entry["action"], entry["actor"]) == ("incident.create", analyst.username)
    assert entry["request_id"] == "audit-trace-0001"


def test_actor_filter_ignores_case(admin, analyst):
    entries = audit(admin, f"?actor={analyst.username.upper()}")
    assert entries
    assert {entry["actor"] for entry in entries} == {analyst.username}


def test_time_window_filters_the_entries(admin):
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert audit(admin, f"?since={tomorrow}") == []
    assert audit(admin, f"?until={tomorrow}") != []


def test_a_window_ending_before_it_starts_is_422(admin):
    response = admin.client.get("/audit?since=2030-01-02T00:00:00Z&until=2030-01-01T00:00:00Z")
    assert response.status_code == 422
    assert "since" in response.get_json()["errors"]


def test_the_log_pages_newest_first_with_a_cursor(admin, analyst, viewer):
    first = admin.client.get("/audit?limit=2").get_json()
    second = admin.client.get(f"/audit?limit=2&cursor={first['next_cursor']}").get_json()
    first_ids = [entry["id"] for entry in first["items"]]
    second_ids = [entry["id"] for entry in second["items"]]
    assert first_ids == sorted(first_ids, reverse=True)
    assert max(second_ids) < min(first_ids)


def test_only_admins_read_the_audit_log(analyst):
    assert analyst.client.get("/audit").status_code == 403
