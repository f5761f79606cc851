"""Webhooks in one process: the admin API, the outbox written with the change, the SSRF
guard, signatures, one delivery attempt at a time (``webhooks.deliver`` called here, as a
worker would), and the timers. ``tests/test_automation_worker.py`` runs real workers."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text
from standardwebhooks.webhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

import idempotency
from models import AuditEntry, Ioc, SlaTimerMark, User, Webhook, WebhookDelivery, db, utcnow
from security.modules import incidents, timers, webhooks
from security.modules.principals import Principal, permissions_for_role
from security.outbound.secrets import decrypt_secret
from tests.automation_support import (
    FAST_SETTINGS,
    Receiver,
    automation_app_fixtures,
    empty_job_queue,
    webhook_receiver,
)

app, empty_queue = automation_app_fixtures()


def subscribe(admin, url: str, events=("incident.create",), **settings) -> dict:
    body = {"name": "soar", "url": url, "event_types": list(events), **settings}
    response = admin.client.post("/webhooks", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def open_incident(user, **fields) -> dict:
    body = {
        "title": "Beaconing host",
        "severity": "high",
        "description": "internal notes",
        **fields,
    }
    response = user.client.post("/incidents", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def deliveries(app) -> list[WebhookDelivery]:
    with app.app_context():
        rows = db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
        db.session.expunge_all()
        return list(rows)


def queued_delivery_jobs(app) -> list[int]:
    with app.app_context():
        return list(
            db.session.scalars(
                text(
                    "SELECT (args ->> 'delivery_id')::int FROM procrastinate_jobs"
                    " WHERE task_name = 'deliver_webhook' AND status = 'todo' ORDER BY id"
                )
            )
        )


def attempt(app, delivery_id: int) -> WebhookDelivery:
    """One attempt, as the worker's job makes it; the row afterwards."""
    with app.app_context():
        db.session.execute(
            text("UPDATE webhook_deliveries SET next_attempt_at = now() WHERE id = :id"),
            {"id": delivery_id},
        )
        db.session.commit()
        webhooks.deliver(delivery_id)
        row = db.session.get_one(WebhookDelivery, delivery_id)
        db.session.expunge(row)
        return row


# --- the admin API --------------------------------------------------------------------


def test_the_secret_is_answered_once_and_stored_only_encrypted(app, admin):
    created = subscribe(admin, "https://127.0.0.1:18299/soc")
    assert created["secret"].startswith("whsec_")
    read = admin.client.get(f"/webhooks/{created['id']}").get_json()
    listed = admin.client.get("/webhooks").get_json()["items"]
    assert "secret" not in read and all("secret" not in item for item in listed)
    with app.app_context():
        stored = db.session.get_one(Webhook, created["id"]).secret_encrypted
        assert created["secret"].encode() not in stored
        assert decrypt_secret(stored) == {"secret": created["secret"]}


def test_an_edit_checks_the_url_again_and_needs_the_current_version(app, admin):
    created = subscribe(admin, "https://127.0.0.1:18299/soc")
    path = f"/webhooks/{created['id']}"
    stale = admin.client.patch(path, json={"enabled": False}, headers={"If-Match": '"9"'})
    assert stale.status_code == 412
    refused = admin.client.patch(path, json={"url": "https://169.254.169.254/latest"})
    assert refused.status_code == 422
    edited = admin.client.patch(path, json={"enabled": False, "min_severity": "high"})
    assert edited.status_code == 200
    assert edited.get_json()["enabled"] is False and edited.get_json()["version"] == 2


def test_only_an_admin_manages_webhooks_and_reads_the_queue(app, analyst):
    assert analyst.client.get("/webhooks").status_code == 403
    assert analyst.client.get("/jobs").status_code == 403
    body = {"name": "x", "url": "https://hooks.example.com/", "event_types": ["incident.create"]}
    assert analyst.client.post("/webhooks", json=body).status_code == 403


def test_an_unknown_event_type_is_a_bad_request(admin):
    body = {"name": "x", "url": "https://hooks.example.com/", "event_types": ["auth.login"]}
    response = admin.client.post("/webhooks", json=body)
    assert response.status_code == 400
    assert "event_types" in response.get_json()["errors"]


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hook",
        "https://localhost/hook",  # a name resolving to loopback
        "https://10.1.2.3/hook",
    ],
)
def test_internal_targets_are_refused_unless_allowed(app, admin, monkeypatch, url):
    monkeypatch.setitem(app.config, "OUTBOUND_ALLOWED_HOSTS", ())
    body = {"name": "internal", "url": url, "event_types": ["incident.create"]}
    response = admin.client.post("/webhooks", json=body)
    assert response.status_code == 422
    assert "url" in response.get_json()["errors"]
    assert admin.client.get("/webhooks").get_json()["items"] == []


def test_an_allowed_internal_host_may_be_a_target_even_over_http(app, admin):
    assert subscribe(admin, "http://127.0.0.1:18299/hook")["url"].startswith("http://127.0.0.1")


def test_plain_http_to_a_public_address_is_refused(admin):
    body = {"name": "plain", "url": "http://93.184.216.34/hook", "event_types": ["incident.create"]}
    response = admin.client.post("/webhooks", json=body)
    assert response.status_code == 422
    assert "https" in response.get_json()["errors"]["url"][0]


# --- the outbox -----------------------------------------------------------------------


def test_a_committed_change_writes_its_delivery_and_its_job(app, admin, analyst):
    hook = subscribe(admin, "https://127.0.0.1:18299/soc")
    incident = open_incident(analyst)
    [delivery] = deliveries(app)
    assert (delivery.webhook_id, delivery.event_type, delivery.status) == (
        hook["id"],
        "incident.create",
        "pending",
    )
    assert delivery.payload["data"]["incident"]["id"] == incident["id"]
    assert queued_delivery_jobs(app) == [delivery.id]


def test_a_rolled_back_change_writes_neither_delivery_nor_job(app, admin, analyst):
    subscribe(admin, "https://127.0.0.1:18299/soc")
    with app.test_request_context():
        user = db.session.get_one(User, analyst.id)
        principal = Principal.of(user, permissions_for_role("analyst"), "token", 0)
        incidents.create_incident(principal, {"title": "never", "severity": "high"})
        assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 1
        db.session.rollback()
    assert deliveries(app) == []
    assert queued_delivery_jobs(app) == []


def test_a_request_failing_after_the_change_leaves_no_delivery(app, admin, analyst):
    subscribe(admin, "https://127.0.0.1:18299/soc")
    response = analyst.client.post(
        "/incidents", json={"title": "x", "severity": "high", "assignee": "nobody-at-all"}
    )
    assert response.status_code == 422
    assert deliveries(app) == [] and queued_delivery_jobs(app) == []


def test_tlp_red_never_leaves_the_product(app, admin, analyst):
    subscribe(admin, "https://127.0.0.1:18299/soc")
    open_incident(analyst, tlp="red")
    assert deliveries(app) == []


def test_event_types_and_minimum_severity_choose_the_deliveries(app, admin, analyst):
    subscribe(admin, "https://127.0.0.1:18298/", ["incident.create"], min_severity="high")
    subscribe(admin, "https://127.0.0.1:18297/", ["incident.status_change"])
    open_incident(analyst, severity="low")
    open_incident(analyst, severity="critical")
    [delivery] = deliveries(app)
    assert delivery.payload["data"]["incident"]["severity"] == "critical"


def test_a_payload_carries_only_what_the_event_is_about(app, admin, analyst):
    subscribe(admin, "https://127.0.0.1:18299/soc", ["incident.status_change"])
    incident = open_incident(analyst)
    changed = analyst.client.patch(
        f"/incidents/{incident['id']}/status", json={"status": "triaged"}
    )
    assert changed.status_code in (200, 201), changed.get_json()
    [delivery] = deliveries(app)
    assert delivery.payload["type"] == "incident.status_change"
    assert set(delivery.payload["data"]) == {"incident", "change"}
    assert set(delivery.payload["data"]["incident"]) == {
        "id",
        "title",
        "severity",
        "status",
        "tlp",
        "assignee",
    }
    assert delivery.payload["data"]["change"] == {"from": "new", "to": "triaged"}
    assert "internal notes" not in json.dumps(delivery.payload)


# --- one attempt ------------------------------------------------------------------------


def test_a_delivery_verifies_with_the_standard_webhooks_library(app, admin, analyst):
    with webhook_receiver() as receiver:
        hook = subscribe(admin, receiver.url)
        receiver.secret = hook["secret"]
        open_incident(analyst)
        [delivery] = deliveries(app)
        done = attempt(app, delivery.id)
    [got] = receiver.received
    assert got.verified
    assert got.message_id == delivery.message_id
    assert got.json()["type"] == "incident.create"
    assert (done.status, done.attempts, done.response_code) == ("delivered", 1, 200)
    assert done.latency_ms is not None


def test_a_tampered_body_or_an_old_timestamp_fails_verification(app, admin, analyst):
    with webhook_receiver() as receiver:
        hook = subscribe(admin, receiver.url)
        open_incident(analyst)
        attempt(app, deliveries(app)[0].id)
    [got] = receiver.received
    verifier = Verifier(hook["secret"])
    verifier.verify(got.body, got.headers)
    tampered = got.body.replace(b'"high"', b'"low"')
    with pytest.raises(WebhookVerificationError):
        verifier.verify(tampered, got.headers)
    old = utcnow() - timedelta(minutes=10)
    replayed = webhooks.signed_headers(hook["secret"], got.message_id, got.body.decode(), old)
    with pytest.raises(WebhookVerificationError):
        verifier.verify(got.body, replayed)
    with pytest.raises(WebhookVerificationError):
        Verifier("whsec_" + "A" * 44).verify(got.body, got.headers)


def test_a_failed_attempt_is_retried_later_and_the_last_one_is_a_dead_letter(app, admin, analyst):
    with webhook_receiver(Receiver(statuses=[500])) as receiver:
        subscribe(admin, receiver.url)
        open_incident(analyst)
        [delivery] = deliveries(app)
        waits = []
        for _ in range(int(FAST_SETTINGS["WEBHOOK_MAX_ATTEMPTS"])):
            before = utcnow()
            row = attempt(app, delivery.id)
            waits.append((row.next_attempt_at - before).total_seconds())
    assert row.status == "failed" and row.attempts == 4 and row.response_code == 500
    assert len(receiver.received) == 4
    assert len({got.message_id for got in receiver.received}) == 1
    base = int(FAST_SETTINGS["WEBHOOK_BACKOFF_BASE_MS"]) / 1000
    for number, wait in enumerate(waits[:3], start=1):
        ceiling = base * 2 ** (number - 1)
        assert ceiling / 2 - 0.1 <= wait <= ceiling + 0.1
    listed = admin.client.get(f"/webhooks/{delivery.webhook_id}/deliveries").get_json()["items"]
    assert listed[0]["status"] == "failed" and "secret" not in json.dumps(listed)
    assert admin.client.get("/jobs").get_json()["deliveries"]["failed"] == 1


def test_a_redelivery_by_hand_sends_the_dead_letter_again_with_its_webhook_id(app, admin, analyst):
    with webhook_receiver(Receiver(statuses=[500, 500, 500, 500, 200])) as receiver:
        subscribe(admin, receiver.url)
        open_incident(analyst)
        [delivery] = deliveries(app)
        for _ in range(4):
            attempt(app, delivery.id)
        empty_job_queue(app)
        response = admin.client.post(f"/deliveries/{delivery.id}/redeliver")
        assert response.status_code == 202
        assert response.get_json()["status"] == "pending"
        assert queued_delivery_jobs(app) == [delivery.id]
        row = attempt(app, delivery.id)
    assert row.status == "delivered"
    assert {got.message_id for got in receiver.received} == {delivery.message_id}
    with app.app_context():
        redeliveries = db.session.scalar(
            select(func.count()).where(AuditEntry.action == "delivery.redeliver")
        )
    assert redeliveries == 1


def test_a_redirect_to_an_internal_address_is_not_followed(app, admin, analyst):
    redirect = Receiver(statuses=[307])
    with webhook_receiver(redirect) as receiver:
        receiver.location = "http://169.254.169.254/latest/meta-data/"
        subscribe(admin, receiver.url)
        open_incident(analyst)
        row = attempt(app, deliveries(app)[0].id)
    assert row.status == "pending" and row.response_code is None
    assert "169.254.169.254" in row.last_error
    assert len(receiver.received) == 1


def test_a_test_delivery_goes_to_the_webhook_whatever_it_subscribes_to(app, admin):
    with webhook_receiver() as receiver:
        hook = subscribe(admin, receiver.url, ["incident.sla_breached"])
        receiver.secret = hook["secret"]
        response = admin.client.post(f"/webhooks/{hook['id']}/test")
        assert response.status_code == 202
        attempt(app, response.get_json()["id"])
    [got] = receiver.received
    assert got.verified and got.json()["type"] == "webhook.test"


def test_jobs_answers_the_queue_depth(app, admin, analyst):
    subscribe(admin, "https://127.0.0.1:18299/soc")
    open_incident(analyst)
    open_incident(analyst)
    answer = admin.client.get("/jobs").get_json()
    assert answer["queued"] == 2 and answer["running"] == 0
    assert answer["deliveries"] == {"pending": 2, "delivering": 0, "delivered": 0, "failed": 0}


# --- the timers -------------------------------------------------------------------------


def age_incident(app, incident_id: int, minutes: int) -> None:
    with app.app_context():
        db.session.execute(
            text(
                "UPDATE incidents SET created_at = now() - make_interval(mins => :minutes)"
                " WHERE id = :id"
            ),
            {"minutes": minutes, "id": incident_id},
        )
        db.session.commit()


def run_timers(app) -> None:
    with app.app_context():
        timers.run_all()


def sla_events(app) -> list[tuple[str, str]]:
    with app.app_context():
        entries = db.session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action.like("incident.sla_%"))
            .order_by(AuditEntry.id)
        ).all()
        return [(entry.action, entry.details["kind"]) for entry in entries]


def test_an_sla_breach_is_announced_once_per_incident_and_kind(app, analyst):
    incident = open_incident(analyst, severity="critical")  # respond in 15, resolve in 60 min
    age_incident(app, incident["id"], 20)
    run_timers(app)
    run_timers(app)
    assert sla_events(app) == [("incident.sla_breached", "response")]
    age_incident(app, incident["id"], 50)  # 50 of 60 minutes: past the 0.8 share
    run_timers(app)
    run_timers(app)
    assert sla_events(app)[1:] == [("incident.sla_approaching", "resolution")]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SlaTimerMark)) == 2


def test_an_incident_that_responded_in_time_has_no_response_breach(app, analyst):
    incident = open_incident(analyst, severity="critical")
    analyst.client.patch(f"/incidents/{incident['id']}/status", json={"status": "triaged"})
    age_incident(app, incident["id"], 20)
    run_timers(app)
    assert ("incident.sla_breached", "response") not in sla_events(app)


def test_an_expired_ioc_is_announced_once(app, analyst):
    response = analyst.client.post(
        "/iocs", json={"type": "ipv4", "value": "203.0.113.7", "source": "test"}
    )
    assert response.status_code == 201, response.get_json()
    with app.app_context():
        db.session.execute(text("UPDATE iocs SET expires_at = now() - interval '1 minute'"))
        db.session.commit()
    run_timers(app)
    run_timers(app)
    with app.app_context():
        expired = db.session.scalars(
            select(AuditEntry.object_id).where(AuditEntry.action == "ioc.expired")
        ).all()
        ioc_id = db.session.scalar(select(Ioc.id))
    assert expired == [str(ioc_id)]


def test_pruning_deletes_idempotency_records_past_their_day(app, analyst):
    analyst.client.post(
        "/incidents", json={"title": "x", "severity": "low"}, headers={"Idempotency-Key": "k1"}
    )
    with app.app_context():
        db.session.execute(
            text("UPDATE idempotency_records SET created_at = now() - interval '25 hours'")
        )
        db.session.commit()
        pruned = timers.prune_records()
    assert pruned["idempotency_records"] == 1
    assert timers.IDEMPOTENCY_RECORD_RETENTION == idempotency.RETENTION


def test_pruning_deletes_jobs_that_succeeded_over_a_day_ago(app):
    with app.app_context():
        for age in ("2 days", "1 hour"):
            db.session.execute(
                text(
                    "WITH job AS (INSERT INTO procrastinate_jobs (queue_name, task_name, status)"
                    " VALUES ('automation', 'run_timers', 'succeeded') RETURNING id)"
                    " INSERT INTO procrastinate_events (job_id, type, at)"
                    " SELECT id, 'succeeded', now() - CAST(:age AS interval) FROM job"
                ),
                {"age": age},
            )
        db.session.commit()
        assert timers.prune_records()["finished_jobs"] == 1
        assert db.session.scalar(text("SELECT count(*) FROM procrastinate_jobs")) == 1


def test_metrics_show_the_queue_the_latency_and_the_failures_by_target(app, admin, analyst):
    with webhook_receiver(Receiver(statuses=[500, 500, 500, 500, 200])) as failing:
        subscribe(admin, failing.url)
        open_incident(analyst)
        [dead] = deliveries(app)
        for _ in range(4):
            attempt(app, dead.id)
    with webhook_receiver() as working:
        subscribe(admin, working.url, ["incident.assign", "incident.create"])
        open_incident(analyst)
        fresh = [row for row in deliveries(app) if row.webhook.url == working.url]
        for row in fresh:
            attempt(app, row.id)
    text_format = admin.client.get("/metrics").get_data(as_text=True)
    failing_target = failing.url.split("/")[2]
    assert f'webhook_delivery_dead_letters{{target="{failing_target}"}} 1.0' in text_format
    assert f'webhook_delivery_failed_attempts{{target="{failing_target}"}} 4.0' in text_format
    assert 'webhook_deliveries{status="delivered"} 1.0' in text_format
    assert 'webhook_delivery_latency_seconds{quantile="0.99"}' in text_format
    assert 'job_queue_jobs{state="queued"}' in text_format
    assert 'job_queue_jobs{state="stalled"} 0.0' in text_format


def test_reencrypt_secrets_moves_webhook_secrets_and_channel_urls_to_the_new_key(
    app, admin, monkeypatch
):
    from cryptography.fernet import Fernet

    from models import NotificationChannel

    hook = subscribe(admin, "https://127.0.0.1:18299/soc")
    channel = {
        "name": "mail",
        "url": "mailto://127.0.0.1:18260?from=a@example.com&to=b@example.com",
        "event_types": ["incident.create"],
    }
    assert admin.client.post("/notification-channels", json=channel).status_code == 201
    new_key = Fernet.generate_key().decode()
    old_keys = app.config["ENCRYPTION_KEYS"]
    monkeypatch.setitem(app.config, "ENCRYPTION_KEYS", (new_key, *old_keys))
    result = app.test_cli_runner().invoke(args=["reencrypt-secrets"])
    assert result.exit_code == 0, result.output
    assert "re-encrypted 1 webhook secrets and 1 notification channel URLs" in result.output
    with app.app_context():
        secret = db.session.scalar(select(Webhook.secret_encrypted))
        url = db.session.scalar(select(NotificationChannel.url_encrypted))
    assert hook["secret"].encode() in Fernet(new_key).decrypt(secret)
    assert b"mailto://" in Fernet(new_key).decrypt(url)
