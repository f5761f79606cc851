"""The status workflow: every legal step writes one timeline entry and one audit entry;
every illegal one is 409 with the allowed next states and changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from models import AuditEntry, Incident, TimelineEntry, db
from models.incidents import TRANSITIONS
from models.vocabulary import INCIDENT_STATUSES

# A path from "new" to every status, so each transition can be tried from its source.
PATH_TO = {
    "new": [],
    "triaged": ["triaged"],
    "investigating": ["triaged", "investigating"],
    "contained": ["triaged", "investigating", "contained"],
    "resolved": ["triaged", "investigating", "contained", "resolved"],
    "closed": ["triaged", "investigating", "contained", "resolved", "closed"],
    "false_positive": ["false_positive"],
}
LEGAL = [(source, target) for source, targets in TRANSITIONS.items() for target in targets]
ILLEGAL = [
    (source, target)
    for source in INCIDENT_STATUSES
    for target in INCIDENT_STATUSES
    if target not in TRANSITIONS[source]
]


def incident_in(user, status: str) -> int:
    incident_id = user.client.post(
        "/incidents", json={"title": "Workflow", "severity": "medium"}
    ).get_json()["id"]
    for step in PATH_TO[status]:
        response = user.client.patch(f"/incidents/{incident_id}/status", json={"status": step})
        assert response.status_code == 200, response.get_json()
    return incident_id


def counts(app, incident_id: int) -> tuple[int, int]:
    with app.app_context():
        timeline = db.session.scalar(
            select(func.count())
            .select_from(TimelineEntry)
            .where(TimelineEntry.incident_id == incident_id)
        )
        audit = db.session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(
                AuditEntry.action == "incident.status_change",
                AuditEntry.object_id == str(incident_id),
            )
        )
        return timeline, audit


@pytest.mark.parametrize(("source", "target"), LEGAL)
def test_legal_transition_writes_one_timeline_and_audit_entry(app, analyst, source, target):
    incident_id = incident_in(analyst, source)
    timeline_before, audit_before = counts(app, incident_id)
    response = analyst.client.patch(
        f"/incidents/{incident_id}/status", json={"status": target, "comment": "why"}
    )
    assert response.status_code == 200
    assert response.get_json()["status"] == target
    assert counts(app, incident_id) == (timeline_before + 1, audit_before + 1)
    last = analyst.client.get(f"/incidents/{incident_id}/timeline").get_json()["items"][-1]
    assert (last["from_status"], last["to_status"], last["comment"]) == (source, target, "why")


@pytest.mark.parametrize(("source", "target"), ILLEGAL)
def test_illegal_transition_is_409_and_changes_nothing(app, analyst, source, target):
    incident_id = incident_in(analyst, source)
    before = counts(app, incident_id)
    with app.app_context():
        version_before = db.session.get(Incident, incident_id).version
    response = analyst.client.patch(f"/incidents/{incident_id}/status", json={"status": target})
    assert response.status_code == 409
    body = response.get_json()
    assert body["allowed_transitions"] == list(TRANSITIONS[source])
    assert body["current_status"] == source
    assert counts(app, incident_id) == before
    with app.app_context():
        row = db.session.get(Incident, incident_id)
        assert (row.status, row.version) == (source, version_before)


def test_unknown_status_is_400(analyst):
    incident_id = incident_in(analyst, "new")
    response = analyst.client.patch(f"/incidents/{incident_id}/status", json={"status": "done"})
    assert response.status_code == 400


def test_first_response_time_is_recorded_once(analyst):
    incident_id = incident_in(analyst, "investigating")
    incident = analyst.client.get(f"/incidents/{incident_id}").get_json()
    timeline = analyst.client.get(f"/incidents/{incident_id}/timeline").get_json()["items"]
    triaged_at = next(e["created_at"] for e in timeline if e["to_status"] == "triaged")
    assert incident["sla"]["responded_at"] == triaged_at


def test_reopening_clears_resolution_time(analyst):
    incident_id = incident_in(analyst, "resolved")
    assert analyst.client.get(f"/incidents/{incident_id}").get_json()["sla"]["resolved_at"]
    analyst.client.patch(f"/incidents/{incident_id}/status", json={"status": "investigating"})
    assert analyst.client.get(f"/incidents/{incident_id}").get_json()["sla"]["resolved_at"] is None
