"""Domain events: one event per state change, told to subscribers after the commit, none
after a rollback; in-transaction subscribers write with the change; metrics subscribe."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import func, select

from models import AuditEntry, Incident, db
from security import events
from security.events import Event
from security.modules import audit, intel
from tests.detection_support import create_sigma_rule, post_events
from tests.helpers import STRONG_PASSWORD
from tests.test_events_alerts import ENCODED_POWERSHELL, EVIL_EVENT


class Recorder:
    """A subscriber that keeps every committed event, in order."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, sender: object, events: tuple[Event, ...]) -> None:
        self.events.extend(events)

    def seen(self) -> list[tuple[str, int | None]]:
        return [(event.type.value, event.subject_id) for event in self.events]

    def take(self) -> list[tuple[str, int | None]]:
        """What was seen since the last call."""
        seen = self.seen()
        self.events.clear()
        return seen


@pytest.fixture
def recorder(app) -> Iterator[Recorder]:
    recording = Recorder()
    with events.committed.connected_to(recording, sender=app):
        yield recording


def audit_count(app, action: str) -> int:
    with app.app_context():
        return db.session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)
        )


def open_incident(user, severity: str = "high") -> int:
    response = user.client.post("/incidents", json={"title": "Phishing", "severity": severity})
    assert response.status_code == 201
    return response.get_json()["id"]


# --- the incident workflow ----------------------------------------------------------------


def test_incident_workflow_emits_one_event_per_change(analyst, recorder):
    incident_id = open_incident(analyst)
    analyst.client.patch(f"/incidents/{incident_id}", json={"title": "Phishing wave"})
    analyst.client.patch(f"/incidents/{incident_id}", json={"assignee": "analyst1"})
    analyst.client.patch(f"/incidents/{incident_id}", json={"title": "Phishing wave"})  # no-op
    for status in ("triaged", "investigating", "contained", "resolved", "closed"):
        response = analyst.client.patch(f"/incidents/{incident_id}/status", json={"status": status})
        assert response.status_code == 200
    analyst.client.post(f"/incidents/{incident_id}/comments", json={"body": "done"})
    ioc_id = analyst.client.post(
        "/iocs", json={"type": "domain", "value": "evil.example.com"}
    ).get_json()["id"]
    analyst.client.post(f"/incidents/{incident_id}/iocs", json={"ioc_ids": [ioc_id]})
    analyst.client.post(f"/incidents/{incident_id}/iocs", json={"ioc_ids": [ioc_id]})  # linked

    assert recorder.seen() == [
        ("incident.create", incident_id),
        ("incident.update", incident_id),
        ("incident.assign", incident_id),
        *[("incident.status_change", incident_id)] * 5,
        ("incident.comment", incident_id),
        ("ioc.create", ioc_id),
        ("incident.ioc_link", incident_id),
    ]
    statuses = [event.data["to"] for event in recorder.events[3:8]]
    assert statuses == ["triaged", "investigating", "contained", "resolved", "closed"]
    assert recorder.events[0].subject_type == "incident"
    assert recorder.events[0].actor == events.Actor(analyst.id, "analyst1")


def test_an_edit_of_fields_and_assignee_is_two_events(analyst, recorder):
    incident_id = open_incident(analyst)
    recorder.take()

    analyst.client.patch(
        f"/incidents/{incident_id}",
        json={"title": "Phishing wave", "severity": "critical", "assignee": "analyst1"},
    )

    assert recorder.seen() == [
        ("incident.update", incident_id),
        ("incident.assign", incident_id),
    ]
    edited, assigned = (event.data for event in recorder.events)
    assert edited == {"fields": ["severity", "title"]}
    assert assigned == {"from": None, "to": "analyst1"}


def test_refused_changes_emit_nothing(analyst, recorder):
    incident_id = open_incident(analyst)
    recorder.take()

    illegal = analyst.client.patch(f"/incidents/{incident_id}/status", json={"status": "closed"})
    unknown = analyst.client.patch(f"/incidents/{incident_id}", json={"assignee": "nobody"})

    assert (illegal.status_code, unknown.status_code) == (409, 422)
    assert recorder.seen() == []


# --- the alert lifecycle ------------------------------------------------------------------


def test_alert_lifecycle_emits_one_event_per_change(analyst, recorder):
    rule_id = create_sigma_rule(analyst, ENCODED_POWERSHELL, level="medium")["id"]
    alert_id = post_events(analyst, [EVIL_EVENT] * 3)["alerts"][0]["id"]
    post_events(analyst, [EVIL_EVENT] * 2)
    analyst.client.patch(f"/alerts/{alert_id}", json={"status": "acknowledged"})
    incident_id = analyst.client.post(f"/alerts/{alert_id}/escalate").get_json()["incident"]["id"]
    other_id = post_events(analyst, {**EVIL_EVENT, "Computer": "ws-18"})["alerts"][0]["id"]
    analyst.client.patch(f"/alerts/{other_id}", json={"status": "dismissed"})

    assert recorder.seen() == [
        ("rule.create", rule_id),
        ("alert.create", alert_id),
        ("alert.group", alert_id),
        ("alert.status_change", alert_id),
        ("incident.create", incident_id),
        ("alert.escalate", alert_id),
        ("alert.create", other_id),
        ("alert.status_change", other_id),
    ]
    created, grouped = recorder.events[1].data, recorder.events[2].data
    assert (created["new_matches"], created["count"]) == (3, 3)
    assert (grouped["new_matches"], grouped["count"]) == (2, 5)
    assert recorder.events[5].data == {"incident_id": incident_id, "automatic": False}


def test_a_severe_alert_opens_its_incident_with_the_events(app, analyst, recorder):
    create_sigma_rule(analyst, ENCODED_POWERSHELL, level="high")
    recorder.take()

    body = post_events(analyst, [EVIL_EVENT, {**EVIL_EVENT, "Computer": "ws-18"}])

    first, second = (alert["id"] for alert in body["alerts"])
    opened = body["incidents_created"]
    assert recorder.seen() == [
        ("alert.create", first),
        ("alert.create", second),
        ("incident.create", opened[0]),
        ("alert.escalate", first),
        ("incident.create", opened[1]),
        ("alert.escalate", second),
    ]
    assert audit_count(app, "alert.create") == 2


def test_one_ingestion_writes_its_alert_events_with_one_statement(app, analyst, recorder):
    create_sigma_rule(analyst, ENCODED_POWERSHELL, level="medium")
    batch = [{**EVIL_EVENT, "Computer": f"ws-{number}"} for number in range(50)]
    statements: list[str] = []

    def count_audit_inserts(conn, cursor, statement, *args) -> None:
        if statement.startswith("INSERT INTO audit_log"):
            statements.append(statement)

    with app.app_context():
        engine = db.engine
    sqlalchemy_event.listen(engine, "before_cursor_execute", count_audit_inserts)
    try:
        post_events(analyst, batch)
    finally:
        sqlalchemy_event.remove(engine, "before_cursor_execute", count_audit_inserts)

    assert audit_count(app, "alert.create") == 50
    assert len(statements) == 2  # the 50 alert.create rows, then the events.ingest summary


# --- rollback: nothing is told ------------------------------------------------------------


def refuse(sender: object, events: tuple[Event, ...]) -> None:
    """A subscriber that fails (in the transaction: the request fails after its change)."""
    raise RuntimeError("the outbox is full")


def test_a_request_failing_after_the_change_emits_nothing(app, analyst, recorder):
    with events.recorded.connected_to(refuse, sender=app):
        response = analyst.client.post("/incidents", json={"title": "Lost", "severity": "low"})

    assert response.status_code == 500
    assert recorder.seen() == []
    assert audit_count(app, "incident.create") == 0
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Incident)) == 0


def test_an_engine_call_rolled_back_emits_nothing(app, recorder):
    with app.app_context():
        intel.add_ioc("domain", "rolled-back.example.com")
        db.session.rollback()
        kept_id = intel.add_ioc("domain", "kept.example.com").id
        db.session.commit()

    assert recorder.seen() == [("ioc.create", kept_id)]
    assert recorder.events[0].actor == events.SYSTEM


def test_a_session_closed_without_commit_drops_its_events(app, recorder):
    with app.app_context():
        intel.add_ioc("domain", "abandoned.example.com")
        db.session.close()
        db.session.commit()

    assert recorder.seen() == []


def test_a_failing_committed_subscriber_leaves_the_change_and_the_others(app, analyst, recorder):
    with events.committed.connected_to(refuse, sender=app):
        response = analyst.client.post("/incidents", json={"title": "Kept", "severity": "low"})

    assert response.status_code == 201
    assert recorder.seen() == [("incident.create", response.get_json()["id"])]


# --- the in-transaction hook (for an outbox) ----------------------------------------------


def write_delivery(sender: object, events: tuple[Event, ...]) -> None:
    """Writes a row per event in the change's transaction; refuses low incidents after."""
    for event in events:
        audit.record("outbox.test", object_type=event.subject_type, object_id=event.subject_id)
        if event.data.get("severity") == "low":
            raise RuntimeError("refused after writing")


def test_an_in_transaction_subscriber_writes_with_the_change(app, analyst):
    with events.recorded.connected_to(write_delivery, sender=app):
        kept = open_incident(analyst, "high")
        refused = analyst.client.post("/incidents", json={"title": "Lost", "severity": "low"})

    assert refused.status_code == 500
    with app.app_context():
        written = db.session.scalars(
            select(AuditEntry.object_id).where(AuditEntry.action == "outbox.test")
        ).all()
    assert written == [str(kept)]


# --- metrics ------------------------------------------------------------------------------


def sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_count_committed_changes_only(app, analyst):
    incidents = ("security_incidents_total", {"severity": "critical"})
    changes = ("domain_events_total", {"type": "incident.create"})
    before = sample(*incidents), sample(*changes)

    open_incident(analyst, "critical")
    with events.recorded.connected_to(refuse, sender=app):
        failed = analyst.client.post("/incidents", json={"title": "x", "severity": "critical"})

    assert failed.status_code == 500
    assert (sample(*incidents), sample(*changes)) == (before[0] + 1, before[1] + 1)


# --- IOCs, rules, API keys, users ---------------------------------------------------------


def test_ioc_changes_emit_one_event_each(app, analyst, recorder):
    item = {"type": "domain", "value": "evil.example.com"}
    ioc_id = analyst.client.post("/iocs", json=item).get_json()["id"]
    analyst.client.post("/iocs", json={**item, "confidence": 90})
    analyst.client.patch(f"/iocs/{ioc_id}", json={"description": "phishing kit"})
    analyst.client.delete(f"/iocs/{ioc_id}")

    assert recorder.seen() == [
        ("ioc.create", ioc_id),
        ("ioc.merge", ioc_id),
        ("ioc.update", ioc_id),
        ("ioc.delete", ioc_id),
    ]


def test_a_bulk_import_is_one_event_with_its_counts(app, analyst, recorder):
    analyst.client.post("/iocs", json={"type": "domain", "value": "known.example.com"})
    recorder.take()
    items = [{"type": "domain", "value": f"host-{number}.example.com"} for number in range(200)]

    analyst.client.post(
        "/iocs/bulk", json={"items": [*items, {"type": "domain", "value": "known.example.com"}]}
    )

    assert recorder.seen() == [("ioc.bulk_import", None)]
    assert recorder.events[0].data == {"created": 200, "merged": 1, "failed": 0}
    assert audit_count(app, "ioc.create") == 1


def test_rule_changes_emit_one_event_each(analyst, recorder):
    rule_id = create_sigma_rule(analyst, ENCODED_POWERSHELL, level="medium")["id"]
    analyst.client.patch(f"/rules/{rule_id}", json={"enabled": False})
    analyst.client.delete(f"/rules/{rule_id}")

    assert recorder.seen() == [
        ("rule.create", rule_id),
        ("rule.update", rule_id),
        ("rule.delete", rule_id),
    ]


def test_api_key_changes_emit_one_event_each(analyst, recorder):
    key_id = analyst.client.post(
        "/api-keys", json={"name": "ci", "scopes": ["iocs:read"]}
    ).get_json()["id"]
    analyst.client.post(f"/api-keys/{key_id}/rotate")
    analyst.client.delete(f"/api-keys/{key_id}")
    analyst.client.delete(f"/api-keys/{key_id}")  # already revoked: no change

    assert recorder.seen() == [
        ("apikey.create", key_id),
        ("apikey.rotate", key_id),
        ("apikey.revoke", key_id),
    ]
    assert recorder.events[0].subject_type == "api_key"
    assert "secret" not in str([event.data for event in recorder.events])


def test_registering_a_user_emits_user_create(admin, recorder):
    response = admin.client.post(
        "/auth/register",
        json={"username": "newbie", "password": STRONG_PASSWORD, "role": "viewer"},
    )

    assert recorder.seen() == [("user.create", response.get_json()["id"])]
    assert recorder.events[0].data == {"username": "newbie", "role": "viewer"}
