"""What the automation tests share: a webhook receiver on 127.0.0.1 that verifies what it
gets with the ``standardwebhooks`` library, real worker processes (``flask worker``) on
the test database, and an app configured for fast retries.

The receiver answers from a script (a list of statuses, or a pause before answering) and
keeps every request it got, with the time it arrived and whether its signature verified.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

from embedded_db import PROJECT_ROOT
from tests.processes import process_env

ENCRYPTION_KEY = Fernet.generate_key().decode()
# Fast clocks for tests; production defaults are in config.AUTOMATION_INT_SETTINGS.
FAST_SETTINGS = {
    "ENCRYPTION_KEY": ENCRYPTION_KEY,
    "OUTBOUND_ALLOWED_HOSTS": "127.0.0.1",
    "WEBHOOK_BACKOFF_BASE_MS": "1000",
    "WEBHOOK_MAX_ATTEMPTS": "4",
    "WEBHOOK_LEASE_SECONDS": "3",
    "WEBHOOK_TIMEOUT_SECONDS": "2",
    "AUTOMATION_TICK_SECONDS": "1",
    "WORKER_HEARTBEAT_SECONDS": "1",
    "WORKER_STALLED_SECONDS": "3",
}
WAIT_SECONDS = 30
WORKER_COMMAND = (sys.executable, "-m", "flask", "--app", "app:create_app", "worker")


@dataclass
class Received:
    """One request the receiver got."""

    at: float
    headers: dict[str, str]
    body: bytes
    verified: bool

    @property
    def message_id(self) -> str:
        return self.headers["webhook-id"]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook receiver: ``statuses`` answered in turn (the last one repeats), each after
    ``pause_seconds``; ``secret`` verifies the signatures once set."""

    statuses: list[int] = field(default_factory=lambda: [200])
    pause_seconds: float = 0.0
    secret: str | None = None
    location: str | None = None
    received: list[Received] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer_for(self, headers: dict[str, str], body: bytes) -> tuple[int, float]:
        verified = False
        if self.secret is not None:
            try:
                Verifier(self.secret).verify(body, headers)
                verified = True
            except WebhookVerificationError:
                verified = False
        with self.lock:
            index = len(self.received)
            self.received.append(Received(time.monotonic(), headers, body, verified))
            status = self.statuses[min(index, len(self.statuses) - 1)]
        return status, self.pause_seconds

    def wait_for(self, count: int, timeout: float = WAIT_SECONDS) -> list[Received]:
        """The requests once at least ``count`` arrived; fails the test after ``timeout``."""
        return wait_until(lambda: len(self.received) >= count, timeout) and list(self.received)


class _Handler(BaseHTTPRequestHandler):
    server: _ReceiverServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        headers = {name.lower(): value for name, value in self.headers.items()}
        status, pause = self.server.receiver.answer_for(headers, body)
        if pause:
            time.sleep(pause)
        self.send_response(status)
        if self.server.receiver.location:
            self.send_header("location", self.server.receiver.location)
        self.send_header("content-length", "0")
        self.end_headers()


class _ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, receiver: Receiver) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.receiver = receiver


@contextmanager
def webhook_receiver(receiver: Receiver | None = None) -> Iterator[Receiver]:
    """Serve ``receiver`` on a free port of 127.0.0.1 (its ``url`` set) while the block runs."""
    receiver = receiver or Receiver()
    server = _ReceiverServer(receiver)
    receiver.url = f"http://127.0.0.1:{server.server_port}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def wait_until(condition: Callable[[], Any], timeout: float = WAIT_SECONDS) -> Any:
    """``condition()`` once it is true; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not true within {timeout} s: {condition}")


def worker_env(database_url: str, **settings: str) -> dict[str, str]:
    return process_env(
        APP_ENV="testing",
        DATABASE_URL=database_url,
        SECRET_KEY="test-secret-key-that-is-long-enough-0123456789",
        **{**FAST_SETTINGS, **settings},
    )


@contextmanager
def running_workers(database_url: str, count: int = 1, **settings: str) -> Iterator[list]:
    """``count`` real worker processes (``flask worker``) on ``database_url``; each stopped
    (SIGTERM, then SIGKILL) when the block ends, unless the test killed it already."""
    processes = [start_worker(database_url, **settings) for _ in range(count)]
    try:
        yield processes
    finally:
        for process in processes:
            stop_worker(process)


def start_worker(database_url: str, **settings: str) -> subprocess.Popen:
    """One worker process; its log goes to a file under TMPDIR (kept for a failing test)."""
    log = tempfile.NamedTemporaryFile(prefix="worker-", suffix=".log", delete=False)  # noqa: SIM115
    command = [*WORKER_COMMAND, "--poll-seconds", "0.2"]
    return subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        env=worker_env(database_url, **settings),
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def stop_worker(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()


def automation_app_fixtures() -> tuple[Callable, Callable]:
    """An automation test module's ``app`` (the suite's database with :data:`FAST_SETTINGS`,
    one per module) and its autouse ``empty_queue``, declared once for every such module:
    ``app, empty_queue = automation_app_fixtures()``."""

    @pytest.fixture(scope="module")
    def app(database_url):
        from app import create_app
        from models import db
        from tests.conftest import app_settings

        application = create_app(app_settings(database_url, **FAST_SETTINGS))
        yield application
        with application.app_context():
            db.session.remove()
            db.engine.dispose()

    @pytest.fixture(autouse=True)
    def empty_queue(app):
        empty_job_queue(app)

    return app, empty_queue


def empty_job_queue(app) -> None:
    """The job queue's tables are not models, so the suite's cleaning leaves them alone."""
    from models import db

    with app.app_context():
        db.session.execute(text("TRUNCATE procrastinate_jobs, procrastinate_workers CASCADE"))
        db.session.commit()
