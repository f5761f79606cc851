"""Domain events: one event per state change, told to subscribers after the commit, none
after a rollback; in-transaction subscribers write with the change; metrics subscribe."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import func, select

from models import AuditEntry, AuthBlock, AuthToken, Incident, TaxiiCollection, db
from security import events
from security.events import Event
from security.modules import audit, intel
from tests.detection_support import create_sigma_rule, post_events
from tests.helpers import STRONG_PASSWORD, login
from tests.taxii_helpers import (
    MALWARE,
    TAXII_ACCEPT,
    create_collection,
    feed_body,
    poll_feed_body,
)
from tests.test_events_alerts import ENCODED_POWERSHELL, EVIL_EVENT

pytest_plugins = ("tests.taxii_fixtures",)


class Recorder:
    """A subscriber that keeps every committed event, in order."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, sender: object, events: tuple[Event, ...]) -> None:
        self.events.extend(events)

    def seen(self) -> list[tuple[str, int | str | None]]:
        return [(event.type.value, event.subject_id) for event in self.events]

    def take(self) -> list[tuple[str, int | str | None]]:
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


def audit_outcomes(app, action: str) -> list[str]:
    with app.app_context():
        return list(
            db.session.scalars(
                select(AuditEntry.outcome)
                .where(AuditEntry.action == action)
                .order_by(AuditEntry.id)
            )
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


# --- sessions -----------------------------------------------------------------------------


def newest_token_id(app, user_id: int) -> int:
    with app.app_context():
        return db.session.scalars(
            select(AuthToken.id).where(AuthToken.user_id == user_id).order_by(AuthToken.id.desc())
        ).first()


def test_a_login_and_a_logout_are_one_event_each_and_a_failed_login_none(
    app, analyst, client, recorder
):
    failed = client.post("/auth/login", json={"username": "analyst1", "password": "Wrong-1234!"})
    token = login(client, "analyst1")
    token_id = newest_token_id(app, analyst.id)
    client.with_token(token).post("/auth/logout")

    assert failed.status_code == 401
    assert recorder.seen() == [("auth.login", token_id), ("auth.logout", token_id)]
    assert {event.subject_type for event in recorder.events} == {"auth_token"}
    assert recorder.events[0].actor == events.Actor(analyst.id, "analyst1")
    assert audit_outcomes(app, "auth.login")[-2:] == ["failure", "success"]


def test_logging_out_with_an_api_key_changes_nothing(app, analyst, client, recorder):
    key = analyst.client.post("/api-keys", json={"name": "ci", "scopes": ["iocs:read"]})
    recorder.take()

    response = client.with_token(key.get_json()["key"]).post("/auth/logout")

    assert response.status_code == 204
    assert recorder.seen() == []
    assert audit_count(app, "auth.logout") == 1  # the call is audited all the same


# --- login blocks -------------------------------------------------------------------------


def block_the_client(client) -> None:
    """Five failed logins from one address, under five usernames: the address is blocked."""
    for number in range(5):
        response = client.with_token(None).post(
            "/auth/login", json={"username": f"guess-{number}", "password": "Wrong-1234!"}
        )
        assert response.status_code == 401


def only_block_id(app) -> int:
    with app.app_context():
        return db.session.scalars(select(AuthBlock.id)).one()


def test_a_block_created_and_lifted_is_one_event_each(app, admin, client, recorder):
    recorder.take()
    block_the_client(client)
    block_id = only_block_id(app)
    lifted = admin.client.delete(f"/security/blocks/{block_id}")
    again = admin.client.delete(f"/security/blocks/{block_id}")
    missing = admin.client.delete("/security/blocks/999999")

    assert (lifted.status_code, again.status_code, missing.status_code) == (200, 409, 404)
    assert recorder.seen() == [("auth.block_created", block_id), ("auth.block_lifted", block_id)]
    created, lifted_event = recorder.events
    assert created.subject_type == "auth_block"
    assert created.data == {"scope": "ip", "subject": "127.0.0.1", "failures": 5}
    assert created.actor == events.Actor(None, "guess-4")
    assert lifted_event.actor == events.Actor(admin.id, admin.username)
    assert audit_outcomes(app, "auth.block_created") == ["denied"]
    assert again.get_json()["detail"] == f"Block {block_id} was already lifted."


def test_a_lift_rolled_back_emits_nothing_and_keeps_the_block(app, admin, client, recorder):
    block_the_client(client)
    block_id = only_block_id(app)
    recorder.take()

    with events.recorded.connected_to(refuse, sender=app):
        response = admin.client.delete(f"/security/blocks/{block_id}")

    assert response.status_code == 500
    assert recorder.seen() == []
    with app.app_context():
        assert db.session.get(AuthBlock, block_id).lifted_at is None


# --- TAXII collections, objects and feeds -------------------------------------------------


def test_a_collection_and_its_objects_change_with_one_event_each(admin, recorder):
    recorder.take()
    collection_id = create_collection(admin)["id"]
    path = f"/taxii/collections/{collection_id}"
    admin.client.patch(path, json={"read_roles": ["admin"]}, headers={"If-Match": '"1"'})
    objects = f"/taxii2/api/collections/{collection_id}/objects/"
    taxii = {"Accept": TAXII_ACCEPT, "Content-Type": TAXII_ACCEPT}
    posted = admin.client.post(objects, json={"objects": [MALWARE]}, headers=taxii)
    deleted = admin.client.delete(f"{objects}{MALWARE['id']}/", headers={"Accept": TAXII_ACCEPT})
    admin.client.delete(path)

    assert (posted.status_code, deleted.status_code) == (202, 200)
    assert recorder.seen() == [
        ("taxii.collection_create", collection_id),
        ("taxii.collection_update", collection_id),
        ("taxii.objects_added", collection_id),  # a malware object: nothing for the IOC store
        ("taxii.object_delete", collection_id),
        ("taxii.collection_delete", collection_id),
    ]
    assert {event.subject_type for event in recorder.events} == {"taxii_collection"}
    assert recorder.events[3].data == {"stix_id": MALWARE["id"], "versions": 1}


def test_a_collection_created_in_a_failing_request_emits_nothing(app, admin, recorder):
    recorder.take()
    with events.recorded.connected_to(refuse, sender=app):
        response = admin.client.post("/taxii/collections", json={"title": "Lost"})

    assert response.status_code == 500
    assert recorder.seen() == []
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(TaxiiCollection)) == 0


def test_a_feed_and_its_polls_change_with_one_event_each(
    app, monkeypatch, taxii_settings, live_server, admin, recorder
):
    collection = create_collection(admin)
    body = poll_feed_body(live_server, collection, admin)
    feed_id = admin.client.post("/taxii/feeds", json=body).get_json()["id"]
    path = f"/taxii/feeds/{feed_id}"
    admin.client.patch(path, json={"poll_interval_seconds": 600})
    refused = admin.client.patch(path, json={"api_root_url": "http://10.0.0.1/taxii2/api/"})
    polled = admin.client.post(f"{path}/poll")
    monkeypatch.setitem(app.config, "OUTBOUND_ALLOWED_HOSTS", ())
    failed = admin.client.post(f"{path}/poll")
    admin.client.delete(path)

    assert (refused.status_code, polled.status_code, failed.status_code) == (422, 200, 502)
    assert [seen for seen in recorder.seen() if seen[0].startswith("taxii.feed")] == [
        ("taxii.feed_create", feed_id),
        ("taxii.feed_update", feed_id),
        ("taxii.feed_polled", feed_id),
        ("taxii.feed_polled", feed_id),
        ("taxii.feed_delete", feed_id),
    ]
    polls = [event for event in recorder.events if event.type.value == "taxii.feed_polled"]
    assert polls[0].data["error"] is None
    assert "TAXII_ALLOWED_HOSTS" in polls[1].data["error"]
    assert audit_outcomes(app, "taxii.feed_polled") == ["success", "failure"]


def test_reencrypting_feed_secrets_is_one_event_per_feed(
    app, monkeypatch, taxii_settings, live_server, admin, recorder
):
    from cryptography.fernet import Fernet

    collection = create_collection(admin)
    body = feed_body(live_server, collection, auth_type="bearer", token="feed-secret-value")
    feed_id = admin.client.post("/taxii/feeds", json=body).get_json()["id"]
    recorder.take()
    keys = app.config["ENCRYPTION_KEYS"]
    monkeypatch.setitem(app.config, "ENCRYPTION_KEYS", (Fernet.generate_key().decode(), *keys))

    result = app.test_cli_runner().invoke(args=["reencrypt-secrets"])

    assert result.exit_code == 0, result.output
    assert recorder.seen() == [("taxii.feed_reencrypt", feed_id)]
    assert recorder.events[0].actor == events.CLI
    assert "feed-secret-value" not in str(recorder.events[0].data)
