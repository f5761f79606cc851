"""Notifications for people through apprise: channels stored encrypted, the same filters
as webhooks plus "assigned to me", queued with the change, sent to a real SMTP server
(aiosmtpd) and a Mattermost-style HTTP receiver on 127.0.0.1; a channel tested by hand; a
worker killed mid-send (real ``flask worker`` processes) and the mail still arriving."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, text

from models import NotificationChannel, db
from security.modules import notifications, timers
from tests.automation_support import (
    Receiver,
    automation_app_fixtures,
    running_workers,
    start_worker,
    stop_worker,
    wait_until,
    webhook_receiver,
)

SMTP_PORT = 18260  # this area's range (18200-18299)


app, empty_queue = automation_app_fixtures()


class Mailbox:
    """Accepts every message (``messages``); while ``holding``, a message is kept in
    ``held`` and not answered until ``holding`` ends, then refused (451): the sender
    never learned it was taken, as when it dies mid-send."""

    def __init__(self) -> None:
        self.messages: list = []
        self.held: list = []
        self.holding = False
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content)
        if self.holding:
            self.held.append(message)
            while self.holding:
                await asyncio.sleep(0.05)
            return "451 Try again later"
        with self.lock:
            self.messages.append(message)
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=SMTP_PORT)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


MAIL_URL = f"mailto://127.0.0.1:{SMTP_PORT}?from=soc@example.com&to=analyst@example.com"


def add_channel(user, url: str = MAIL_URL, events=("incident.create",), **settings) -> dict:
    body = {"name": "mail", "url": url, "event_types": list(events), **settings}
    response = user.client.post("/notification-channels", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def queued_notifications(app) -> list[dict]:
    with app.app_context():
        return list(
            db.session.scalars(
                text(
                    "SELECT args FROM procrastinate_jobs WHERE task_name = 'notify'"
                    " AND status = 'todo' ORDER BY id"
                )
            )
        )


def send_queued(app) -> int:
    """Run the queued notify jobs here, as the worker would."""
    queued = queued_notifications(app)
    with app.app_context():
        for args in queued:
            notifications.send(**args)
    return len(queued)


def open_incident(user, **fields) -> dict:
    response = user.client.post(
        "/incidents", json={"title": "Ransom note", "severity": "high", **fields}
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_the_channel_url_is_stored_encrypted_and_never_answered(app, analyst):
    created = add_channel(analyst)
    assert "url" not in created and created["kind"] == "mailto"
    listed = analyst.client.get("/notification-channels").get_json()["items"]
    assert [item["id"] for item in listed] == [created["id"]] and "url" not in listed[0]
    with app.app_context():
        stored = db.session.scalar(select(NotificationChannel.url_encrypted))
    assert b"127.0.0.1" not in stored


def test_another_persons_channel_is_not_found(app, analyst, admin):
    created = add_channel(analyst)
    assert admin.client.get(f"/notification-channels/{created['id']}").status_code == 404


def test_a_viewer_has_no_channels(viewer):
    assert viewer.client.get("/notification-channels").status_code == 403


@pytest.mark.parametrize(
    "url",
    [
        "mailto://10.0.0.5:25?from=a@example.com&to=b@example.com",
        "mmost://169.254.169.254/token",
        "workflows://169.254.169.254:443/workflowid/signature",
        "msteams://team/tokenA/tokenB/tokenC",
        "ftp://example.com/",
        "mailto://",
    ],
)
def test_internal_or_unknown_channels_are_refused(app, analyst, url):
    body = {"name": "bad", "url": url, "event_types": ["incident.create"]}
    response = analyst.client.post("/notification-channels", json=body)
    assert response.status_code == 422
    assert "url" in response.get_json()["errors"]


def test_an_egress_allow_list_refuses_chat_services_it_does_not_list(app, analyst, monkeypatch):
    monkeypatch.setitem(app.config, "OUTBOUND_ONLY_ALLOWED_HOSTS", True)
    monkeypatch.setitem(app.config, "OUTBOUND_ALLOWED_HOSTS", ("127.0.0.1", "hooks.slack.com"))
    # Slack's API host (slack.com) is not listed; the public address is not either.
    refusals = {
        "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7": "slack.com",
        "workflows://8.8.8.8/id/sig": "OUTBOUND_ONLY_ALLOWED_HOSTS",
    }
    for url, reason in refusals.items():
        body = {"name": "chat", "url": url, "event_types": ["incident.create"]}
        refused = analyst.client.post("/notification-channels", json=body)
        assert refused.status_code == 422, url
        assert reason in refused.get_json()["errors"]["url"][0]
    listed = {
        "name": "chat",
        "url": "mmost://127.0.0.1:18261/t",
        "event_types": ["incident.create"],
    }
    assert analyst.client.post("/notification-channels", json=listed).status_code == 201


def test_an_event_is_mailed_through_a_real_smtp_server(app, analyst):
    add_channel(analyst)
    incident = open_incident(analyst)
    with smtp_server() as mailbox:
        assert send_queued(app) == 1
        deadline = time.monotonic() + 10
        while not mailbox.messages and time.monotonic() < deadline:
            time.sleep(0.05)
    [message] = mailbox.messages
    assert message["To"] == "analyst@example.com"
    assert f"incident {incident['id']} Ransom note" in message["Subject"]


def test_a_chat_channel_posts_to_its_server(app, analyst):
    with webhook_receiver(Receiver()) as receiver:
        port = receiver.url.split(":")[2].split("/")[0]
        add_channel(analyst, f"mmost://127.0.0.1:{port}/sometoken")
        open_incident(analyst)
        assert send_queued(app) == 1
    [got] = receiver.received
    assert "Ransom note" in got.json()["text"]


def test_a_rolled_back_change_notifies_nobody(app, analyst):
    add_channel(analyst)
    response = analyst.client.post(
        "/incidents", json={"title": "x", "severity": "high", "assignee": "nobody-at-all"}
    )
    assert response.status_code == 422
    assert queued_notifications(app) == []


def test_assigned_to_me_and_minimum_severity_filter(app, analyst, admin):
    add_channel(analyst, only_assigned_to_me=True, min_severity="high")
    open_incident(analyst, assignee=admin.username)
    open_incident(analyst, assignee=analyst.username, severity="low")
    mine = open_incident(analyst, assignee=analyst.username)
    [queued] = queued_notifications(app)
    assert f"incident {mine['id']}" in queued["title"]


def test_my_sla_about_to_breach_is_mailed_to_me(app, analyst, admin):
    add_channel(analyst, events=("incident.sla_approaching",), only_assigned_to_me=True)
    mine = open_incident(analyst, severity="critical", assignee=analyst.username)
    open_incident(analyst, severity="critical", assignee=admin.username)
    with app.app_context():  # 50 of the 60 resolution minutes gone: past the 0.8 share
        db.session.execute(text("UPDATE incidents SET created_at = now() - interval '50 minutes'"))
        db.session.commit()
        timers.run_all()
    with smtp_server() as mailbox:
        assert send_queued(app) == 1
        deadline = time.monotonic() + 10
        while not mailbox.messages and time.monotonic() < deadline:
            time.sleep(0.05)
    [message] = mailbox.messages
    assert "incident.sla_approaching" in message["Subject"]
    assert f"incident {mine['id']}" in message["Subject"]


def test_tlp_red_is_never_sent(app, analyst):
    add_channel(analyst)
    open_incident(analyst, tlp="red")
    assert queued_notifications(app) == []


def job_states(app, task: str = "notify") -> list[str]:
    with app.app_context():
        return list(
            db.session.scalars(
                text("SELECT status::text FROM procrastinate_jobs WHERE task_name = :task"),
                {"task": task},
            )
        )


def test_a_worker_killed_mid_send_is_replaced_and_the_mail_arrives_with_the_same_id(
    app, database_url, admin, analyst
):
    add_channel(analyst)
    open_incident(analyst)
    with smtp_server() as mailbox:
        mailbox.holding = True
        first = start_worker(database_url)
        try:
            wait_until(lambda: mailbox.held)  # the worker is inside the SMTP exchange now
            counts = admin.client.get("/jobs").get_json()  # its heartbeat is fresh
            assert (counts["running"], counts["stalled"]) == (1, 0)
            os.kill(first.pid, signal.SIGKILL)
            first.wait()
        finally:
            stop_worker(first)
        mailbox.holding = False
        # Nothing else would take it: the job stays 'doing' on a dead worker, which /jobs
        # counts as stalled once its heartbeat is WORKER_STALLED_SECONDS (3) old.
        assert job_states(app) == ["doing"]
        wait_until(lambda: admin.client.get("/jobs").get_json()["stalled"] == 1, timeout=10)
        counts = admin.client.get("/jobs").get_json()
        assert counts["running"] == 0 and counts["queued"] == 0
        with running_workers(database_url):
            wait_until(lambda: mailbox.messages)
            wait_until(lambda: job_states(app) == ["succeeded"])
    [held] = mailbox.held
    assert all(
        message[notifications.ID_HEADER] == held[notifications.ID_HEADER]
        for message in mailbox.messages
    )
    assert held[notifications.ID_HEADER] and mailbox.messages[0]["Subject"] == held["Subject"]


def test_a_stalled_timer_job_is_queued_again_too(app, database_url):
    """Any kind of job: here a timers run left 'doing' by a worker that is gone."""
    with app.app_context():
        db.session.execute(
            text(
                "INSERT INTO procrastinate_workers (last_heartbeat)"
                " VALUES (now() - interval '1 hour')"
            )
        )
        db.session.execute(
            text(
                "INSERT INTO procrastinate_jobs (queue_name, task_name, args, status,"
                " worker_id) SELECT 'automation', 'run_timers', '{\"timestamp\": 0}',"
                " 'doing', max(id) FROM procrastinate_workers"
            )
        )
        db.session.commit()
    with running_workers(database_url):
        wait_until(lambda: "succeeded" in job_states(app, "run_timers")[:1])


def test_only_the_jobs_of_silent_workers_are_queued_again_and_only_once(app):
    """In process: a job on a worker that beats stays running; one on a worker silent past
    WORKER_STALLED_SECONDS is queued again, once (a second sweep finds nothing)."""
    from security.modules import jobs

    with app.app_context():
        for age in ("1 hour", "0 seconds"):
            worker = db.session.scalar(
                text(
                    "INSERT INTO procrastinate_workers (last_heartbeat)"
                    " VALUES (now() - CAST(:age AS interval)) RETURNING id"
                ),
                {"age": age},
            )
            db.session.execute(
                text(
                    "INSERT INTO procrastinate_jobs (queue_name, task_name, args, status,"
                    " worker_id) VALUES ('automation', 'notify', '{}', 'doing', :worker)"
                ),
                {"worker": worker},
            )
        db.session.commit()
        assert {key: jobs.queue_counts()[key] for key in ("running", "stalled")} == {
            "running": 1,
            "stalled": 1,
        }

    async def sweep_twice() -> list[int]:
        queue = jobs.build_queue(app)
        async with queue.open_async():
            return [await jobs.retry_stalled(queue, 3) for _ in range(2)]

    assert asyncio.run(sweep_twice()) == [1, 0]
    assert sorted(job_states(app)) == ["doing", "todo"]


def send_test(user, channel_id: int):
    return user.client.post(f"/notification-channels/{channel_id}/test")


def test_a_channel_test_is_mailed_with_its_notification_id(app, analyst):
    channel = add_channel(analyst, enabled=False)  # checked before it is turned on
    response = send_test(analyst, channel["id"])
    assert response.status_code == 202
    answer = response.get_json()
    assert answer["channel"] == channel["id"]
    with smtp_server() as mailbox:
        assert send_queued(app) == 1
        wait_until(lambda: mailbox.messages, timeout=10)
    [message] = mailbox.messages
    assert "notification_channel.test" in message["Subject"]
    assert message[notifications.ID_HEADER] == answer["notification_id"]
    [text_part] = [part for part in message.walk() if part.get_content_type() == "text/plain"]
    text_body = text_part.get_payload(decode=True).decode()
    assert text_body.strip().endswith(f"notification-id: {answer['notification_id']}")


def test_an_admin_may_test_anyones_channel_others_may_not(app, analyst, admin, viewer):
    channel = add_channel(admin)
    assert send_test(analyst, channel["id"]).status_code == 404
    assert send_test(viewer, channel["id"]).status_code == 403
    assert queued_notifications(app) == []
    mine = add_channel(analyst)
    assert send_test(admin, mine["id"]).status_code == 202
    assert send_test(admin, 999999).status_code == 404
    [queued] = queued_notifications(app)
    assert queued["channel_id"] == mine["id"] and queued["test"] is True
    with app.app_context():
        tested = db.session.execute(
            text(
                "SELECT object_id, actor FROM audit_log WHERE action = 'notification_channel.test'"
            )
        ).all()
    assert [tuple(row) for row in tested] == [(str(mine["id"]), admin.username)]
