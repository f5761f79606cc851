"""Incidents: create, read, edit, list filters, SLA, idempotent create, optimistic concurrency."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import func, select

from models import AuditEntry, Incident, TimelineEntry, db, utcnow

INCIDENT = {"title": "Phishing wave", "severity": "high", "description": "credential harvesting"}


def create_incident(user, **overrides) -> dict:
    response = user.client.post("/incidents", json={**INCIDENT, **overrides})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def test_create_incident_starts_new_with_reporter_and_etag(analyst):
    response = analyst.client.post("/incidents", json=INCIDENT)
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "new"
    assert body["reporter"] == "analyst1"
    assert body["version"] == 1
    assert response.headers["ETag"] == '"1"'
    assert response.headers["Location"] == f"/incidents/{body['id']}"


def test_create_writes_timeline_and_audit(app, analyst):
    incident = create_incident(analyst)
    timeline = analyst.client.get(f"/incidents/{incident['id']}/timeline").get_json()["items"]
    assert [entry["kind"] for entry in timeline] == ["created"]
    with app.app_context():
        actions = db.session.scalars(select(AuditEntry.action)).all()
    assert "incident.create" in actions


def test_sla_due_times_follow_severity(analyst):
    incident = create_incident(analyst, severity="critical")
    sla = incident["sla"]
    assert sla["response_due"] > incident["created_at"]
    assert sla["response_breached"] is False
    assert sla["resolution_breached"] is False


def test_sla_breach_is_reported(app, analyst):
    incident = create_incident(analyst, severity="critical")
    with app.app_context():
        row = db.session.get(Incident, incident["id"])
        row.created_at = utcnow() - timedelta(minutes=30)
        db.session.commit()
    sla = analyst.client.get(f"/incidents/{incident['id']}").get_json()["sla"]
    assert sla["response_breached"] is True
    assert sla["resolution_breached"] is False


def test_unknown_field_is_rejected_and_nothing_is_written(app, analyst):
    response = analyst.client.post("/incidents", json={**INCIDENT, "reporter": "admin1"})
    assert response.status_code == 400
    assert "reporter" in response.get_json()["errors"]
    assert count(app, Incident) == 0


def test_mass_assignment_of_id_status_and_version_is_rejected(app, analyst):
    for field, value in (("id", 99), ("status", "closed"), ("version", 7)):
        response = analyst.client.post("/incidents", json={**INCIDENT, field: value})
        assert response.status_code == 400, field
    assert count(app, Incident) == 0


def test_wrong_types_are_400(analyst):
    response = analyst.client.post("/incidents", json={"title": 5, "severity": ["high"]})
    assert response.status_code == 400
    assert set(response.get_json()["errors"]) == {"title", "severity"}


def test_unknown_assignee_is_422(analyst):
    response = analyst.client.post("/incidents", json={**INCIDENT, "assignee": "nobody"})
    assert response.status_code == 422


def test_patch_changes_fields_and_bumps_version(analyst, viewer):
    incident = create_incident(analyst)
    response = analyst.client.patch(
        f"/incidents/{incident['id']}",
        json={"severity": "critical", "assignee": "viewer1"},
        headers={"If-Match": '"1"'},
    )
    assert response.status_code == 200
    body = response.get_json()
    assert (body["severity"], body["assignee"], body["version"]) == ("critical", "viewer1", 2)
    timeline = analyst.client.get(f"/incidents/{incident['id']}/timeline").get_json()["items"]
    assert timeline[-1]["kind"] == "edit"
    assert timeline[-1]["changes"]["severity"] == ["high", "critical"]


def test_patch_with_stale_if_match_is_412_and_changes_nothing(app, analyst):
    incident = create_incident(analyst)
    analyst.client.patch(f"/incidents/{incident['id']}", json={"title": "Renamed"})
    response = analyst.client.patch(
        f"/incidents/{incident['id']}", json={"title": "Lost"}, headers={"If-Match": '"1"'}
    )
    assert response.status_code == 412
    assert response.get_json()["current_version"] == 2
    with app.app_context():
        assert db.session.get(Incident, incident["id"]).title == "Renamed"


def test_concurrent_patches_with_same_if_match_one_wins(app, analyst):
    incident = create_incident(analyst)
    url = f"/incidents/{incident['id']}"
    barrier = threading.Barrier(2)
    results: dict[str, int] = {}

    def edit(title: str) -> None:
        client = app.test_client()
        barrier.wait()
        response = client.patch(
            url,
            json={"title": title},
            headers={"If-Match": '"1"', "Authorization": f"Bearer {analyst.token}"},
        )
        results[title] = response.status_code

    threads = [threading.Thread(target=edit, args=(title,)) for title in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results.values()) == [200, 412]
    winner = next(title for title, status in results.items() if status == 200)
    with app.app_context():
        row = db.session.get(Incident, incident["id"])
        assert (row.title, row.version) == (winner, 2)
        edits = db.session.scalar(
            select(func.count()).select_from(TimelineEntry).where(TimelineEntry.kind == "edit")
        )
        assert edits == 1


def test_retried_create_with_idempotency_key_creates_one_incident(app, analyst):
    headers = {"Idempotency-Key": "create-7f3a"}
    first = analyst.client.post("/incidents", json=INCIDENT, headers=headers)
    second = analyst.client.post("/incidents", json=INCIDENT, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.get_json()["id"] == second.get_json()["id"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert count(app, Incident) == 1


def test_replayed_create_answers_with_the_first_etag_and_location(analyst):
    headers = {"Idempotency-Key": "create-headers-1"}
    first = analyst.client.post("/incidents", json=INCIDENT, headers=headers)
    second = analyst.client.post("/incidents", json=INCIDENT, headers=headers)
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.headers["ETag"] == first.headers["ETag"] == '"1"'
    assert second.headers["Location"] == first.headers["Location"]
    assert first.headers["Location"].endswith(f"/incidents/{first.get_json()['id']}")


def test_concurrent_retries_with_same_key_create_one_incident(app, analyst):
    barrier = threading.Barrier(4)
    ids = []

    def create() -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post(
            "/incidents",
            json=INCIDENT,
            headers={"Idempotency-Key": "race-1", "Authorization": f"Bearer {analyst.token}"},
        )
        ids.append((response.status_code, response.get_json()["id"]))

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {status for status, _ in ids} == {201}
    assert len({incident_id for _, incident_id in ids}) == 1
    assert count(app, Incident) == 1


def test_idempotency_key_reused_with_other_body_is_422(analyst):
    headers = {"Idempotency-Key": "reuse-1"}
    analyst.client.post("/incidents", json=INCIDENT, headers=headers)
    response = analyst.client.post(
        "/incidents", json={**INCIDENT, "title": "Other"}, headers=headers
    )
    assert response.status_code == 422


def test_comment_is_added_to_timeline(analyst):
    incident = create_incident(analyst)
    response = analyst.client.post(
        f"/incidents/{incident['id']}/comments", json={"body": "Blocked sender domain"}
    )
    assert response.status_code == 201
    timeline = analyst.client.get(f"/incidents/{incident['id']}/timeline").get_json()["items"]
    assert timeline[-1]["kind"] == "comment"
    assert timeline[-1]["comment"] == "Blocked sender domain"


def test_list_filters_by_status_severity_and_assignee(analyst, viewer):
    create_incident(analyst, severity="low")
    target = create_incident(analyst, severity="critical", assignee="viewer1")
    listed = analyst.client.get("/incidents?severity=critical&assignee=viewer1&status=new")
    assert [item["id"] for item in listed.get_json()["items"]] == [target["id"]]


def test_list_full_text_search_over_title_and_description(analyst):
    create_incident(analyst, title="Ransomware on file server", description="encrypted shares")
    create_incident(analyst, title="Lost laptop", description="left on a train")
    found = analyst.client.get("/incidents?q=encrypted").get_json()["items"]
    assert [item["title"] for item in found] == ["Ransomware on file server"]


def test_search_with_sql_and_operators_is_safe(analyst):
    create_incident(analyst)
    for q in ("' OR 1=1 --", "phishing & | !", '{"$gt": ""}', "a:* <-> b"):
        response = analyst.client.get("/incidents", query_string={"q": q})
        assert response.status_code == 200, q


def test_list_created_range(analyst):
    incident = create_incident(analyst)
    after = analyst.client.get(
        "/incidents", query_string={"created_after": incident["created_at"]}
    ).get_json()["items"]
    before = analyst.client.get(
        "/incidents", query_string={"created_before": incident["created_at"]}
    ).get_json()["items"]
    assert [i["id"] for i in after] == [incident["id"]]
    assert before == []


def test_whitespace_only_title_is_400_and_nothing_is_written(app, analyst):
    response = analyst.client.post("/incidents", json={**INCIDENT, "title": "   "})
    assert response.status_code == 400
    assert "title" in response.get_json()["errors"]
    assert count(app, Incident) == 0


def test_whitespace_only_comment_is_400(analyst):
    incident = create_incident(analyst)
    response = analyst.client.post(f"/incidents/{incident['id']}/comments", json={"body": " \n "})
    assert response.status_code == 400
