"""Real workers (``flask worker`` processes) on the test database: deliveries to a local
receiver that verifies every request with ``standardwebhooks``, retries with their
delays, a worker killed with SIGKILL mid-delivery, two workers side by side, the SLA
timer and a TAXII feed polled on its interval, without cron."""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections import Counter

from sqlalchemy import func, select, text

from models import AuditEntry, WebhookDelivery, db
from tests.automation_support import (
    FAST_SETTINGS,
    Receiver,
    automation_app_fixtures,
    running_workers,
    start_worker,
    stop_worker,
    wait_until,
    webhook_receiver,
)
from tests.scripted_taxii_server import COLLECTION_ID, Script, scripted_taxii_server

app, empty_queue = automation_app_fixtures()


def subscribe(admin, url: str, events=("incident.create",)) -> dict:
    body = {"name": "soar", "url": url, "event_types": list(events)}
    response = admin.client.post("/webhooks", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def open_incident(user, severity: str = "high") -> dict:
    response = user.client.post("/incidents", json={"title": "Phish", "severity": severity})
    assert response.status_code == 201
    return response.get_json()


def delivery_rows(app) -> list[tuple[str, int, str]]:
    with app.app_context():
        rows = db.session.execute(
            select(WebhookDelivery.status, WebhookDelivery.attempts, WebhookDelivery.message_id)
        )
        return [tuple(row) for row in rows]


def test_three_500s_then_200_delivers_on_the_fourth_attempt_with_growing_delays(
    app, database_url, admin, analyst
):
    with webhook_receiver(Receiver(statuses=[500, 500, 500, 200])) as receiver:
        receiver.secret = subscribe(admin, receiver.url)["secret"]
        open_incident(analyst)
        with running_workers(database_url):
            got = receiver.wait_for(4)
            wait_until(lambda: delivery_rows(app)[0][0] == "delivered")
    assert len(got) == 4 and all(request.verified for request in got)
    assert len({request.message_id for request in got}) == 1
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(got)]
    # Waits of [0.5, 1], [1, 2] and [2, 4] s (equal jitter), each late by at most the
    # worker's 0.2 s poll.
    assert gaps[0] < gaps[2] and gaps[1] >= gaps[0] - 0.3 and gaps[2] >= gaps[1] - 0.3
    assert gaps[0] >= 0.45 and gaps[2] >= 1.9
    assert delivery_rows(app) == [("delivered", 4, got[0].message_id)]


def test_a_receiver_that_never_answers_ends_failed_and_is_redelivered_by_hand(
    app, database_url, admin, analyst
):
    silent = Receiver(statuses=[200], pause_seconds=3)  # past WEBHOOK_TIMEOUT_SECONDS (2)
    with webhook_receiver(silent) as receiver:
        receiver.secret = subscribe(admin, receiver.url)["secret"]
        open_incident(analyst)
        with running_workers(database_url):
            wait_until(lambda: delivery_rows(app)[0][0] == "failed", timeout=60)
            [(_status, attempts, message_id)] = delivery_rows(app)
            assert attempts == int(FAST_SETTINGS["WEBHOOK_MAX_ATTEMPTS"])
            with app.app_context():
                delivery_id = db.session.scalar(select(WebhookDelivery.id))
            receiver.pause_seconds = 0
            before = len(receiver.received)
            response = admin.client.post(f"/deliveries/{delivery_id}/redeliver")
            assert response.status_code == 202
            wait_until(lambda: delivery_rows(app)[0][0] == "delivered")
    assert len(receiver.received) == before + 1
    assert receiver.received[-1].message_id == message_id and receiver.received[-1].verified


def test_a_worker_killed_mid_delivery_still_delivers_with_the_same_webhook_id(
    app, database_url, admin, analyst
):
    holding = Receiver(statuses=[200], pause_seconds=1.5)
    with webhook_receiver(holding) as receiver:
        receiver.secret = subscribe(admin, receiver.url)["secret"]
        first = start_worker(database_url)
        try:
            open_incident(analyst)
            receiver.wait_for(1)  # the first worker is inside the request now
            os.kill(first.pid, signal.SIGKILL)
            first.wait()
            assert delivery_rows(app)[0][0] == "delivering"
        finally:
            stop_worker(first)
        receiver.pause_seconds = 0
        with running_workers(database_url):
            # The lease (WEBHOOK_LEASE_SECONDS, 3 s) runs out; a timer queues it again.
            wait_until(lambda: delivery_rows(app)[0][0] == "delivered")
    ids = [request.message_id for request in receiver.received]
    assert len(ids) >= 2 and len(set(ids)) == 1
    assert all(request.verified for request in receiver.received)


def test_two_workers_deliver_each_event_once_per_subscription(app, database_url, admin, analyst):
    with webhook_receiver() as first, webhook_receiver() as second:
        subscribe(admin, first.url)
        subscribe(admin, second.url)
        with running_workers(database_url, count=2):
            for _ in range(15):
                open_incident(analyst)
            first.wait_for(15)
            second.wait_for(15)
            time.sleep(2)  # room for any duplicate to arrive
    for receiver in (first, second):
        counts = Counter(request.message_id for request in receiver.received)
        assert len(counts) == 15 and set(counts.values()) == {1}
        incidents = {request.json()["data"]["incident"]["id"] for request in receiver.received}
        assert len(incidents) == 15


def test_an_incident_past_its_response_due_yields_one_breach_delivery_with_two_workers(
    app, database_url, admin, analyst
):
    with webhook_receiver() as receiver:
        receiver.secret = subscribe(admin, receiver.url, ["incident.sla_breached"])["secret"]
        incident = open_incident(analyst, severity="critical")  # respond within 15 minutes
        with app.app_context():
            db.session.execute(
                text("UPDATE incidents SET created_at = now() - interval '20 minutes'")
            )
            db.session.commit()
        with running_workers(database_url, count=2):
            receiver.wait_for(1)
            time.sleep(4)  # several ticks of both workers' timers
    [got] = receiver.received
    assert got.verified
    body = got.json()
    assert body["type"] == "incident.sla_breached"
    assert body["data"]["incident"]["id"] == incident["id"]
    assert body["data"]["change"]["kind"] == "response"


def polls(app) -> int:
    with app.app_context():
        return db.session.scalar(
            select(func.count()).where(AuditEntry.action == "taxii.feed_polled")
        )


def test_a_feed_is_polled_by_the_worker_on_its_interval_without_cron(app, database_url, admin):
    indicator = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": "indicator--4f9a7a3c-2f4d-4c1e-9d7a-7d4b1a0c5e11",
        "created": "2026-01-01T00:00:00.000Z",
        "modified": "2026-01-01T00:00:00.000Z",
        "pattern": "[ipv4-addr:value = '198.51.100.23']",
        "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z",
    }
    with scripted_taxii_server(Script([indicator])) as api_root:
        body = {
            "name": "partner",
            "api_root_url": api_root,
            "collection_id": COLLECTION_ID,
            "poll_interval_seconds": 60,
        }
        created = admin.client.post("/taxii/feeds", json=body)
        assert created.status_code == 201, created.get_json()
        with running_workers(database_url):
            wait_until(lambda: polls(app) == 1)
            time.sleep(3)  # three ticks: not due again before its 60 s
            assert polls(app) == 1
            with app.app_context():  # the clock moves on 61 s
                db.session.execute(
                    text("UPDATE taxii_feeds SET last_polled_at = now() - interval '61 seconds'")
                )
                db.session.commit()
            wait_until(lambda: polls(app) == 2)
    with app.app_context():
        assert db.session.scalar(text("SELECT count(*) FROM iocs WHERE value = '198.51.100.23'"))
