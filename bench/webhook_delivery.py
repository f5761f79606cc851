"""Webhook delivery: events made by API writes, delivered by real workers to a receiver.

``POST /incidents`` is called ``--events`` times (in process, through the whole API: auth,
validation, the incident, its audit entry, the outbox row and its job, all in one commit);
each webhook subscribed to ``incident.create`` then gets one signed delivery from
``--workers`` worker processes (``flask worker``) to a receiver on 127.0.0.1 that verifies
every signature with ``standardwebhooks``. Measured: deliveries per second from the first
commit to the last delivery, and the commit-to-delivery latency of each event (the time
its ``POST`` answered, after the commit, to the time the receiver got it), p50 and p99.

Run: ``.venv/bin/python -m bench.webhook_delivery [--events 10000] [--workers 2]
[--concurrency 4] [--drain]`` (``--drain``: every event written first, then the workers
started, to measure the workers' own rate on a backlog); a throwaway database on
``BENCH_DATABASE_URL``, dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url
from standardwebhooks.webhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

SERVER_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/")
RECEIVER_PORT = 18250  # the automation area's range (18200-18299)


class Arrivals:
    """What the receiver got: arrival time per incident, and signatures that failed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.at: dict[int, float] = {}
        self.duplicates = 0
        self.unverified = 0
        self.secret = ""


def _handler(arrivals: Arrivals) -> type[BaseHTTPRequestHandler]:
    import json

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

        def do_POST(self) -> None:
            now = time.time()
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            headers = {name.lower(): value for name, value in self.headers.items()}
            try:
                Verifier(arrivals.secret).verify(body, headers)
                verified = True
            except WebhookVerificationError:
                verified = False
            incident_id = json.loads(body)["data"]["incident"]["id"]
            with arrivals.lock:
                if not verified:
                    arrivals.unverified += 1
                elif incident_id in arrivals.at:
                    arrivals.duplicates += 1
                else:
                    arrivals.at[incident_id] = now
            self.send_response(204)
            self.end_headers()

    return Handler


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--drain",
        action="store_true",
        help="write every event first, then start the workers: their own rate on a backlog",
    )
    options = parser.parse_args()

    from app import create_app
    from models import db
    from tests.automation_support import FAST_SETTINGS, WORKER_COMMAND, stop_worker, worker_env
    from tests.conftest import drop_database
    from tests.helpers import ApiClient, make_user

    database_url = (
        make_url(SERVER_URL)
        .set(drivername="postgresql+psycopg2", database=f"soc_bench_{uuid.uuid4().hex[:10]}")
        .render_as_string(hide_password=False)
    )
    # The production tick and lease; fast retries (none are expected: the receiver answers).
    settings = {
        **FAST_SETTINGS,
        "ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "AUTOMATION_TICK_SECONDS": "10",
        "WEBHOOK_LEASE_SECONDS": "60",
    }
    app = create_app(
        {
            "DATABASE_URL": database_url,
            "APP_ENV": "testing",
            "SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789",
            "RATELIMIT_ENABLED": False,
            "LOG_LEVEL": "WARNING",
            **settings,
        }
    )
    arrivals = Arrivals()
    server = ThreadingHTTPServer(("127.0.0.1", RECEIVER_PORT), _handler(arrivals))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    workers: list = []
    try:
        client = ApiClient(app.test_client())
        admin = make_user(app, client, "bench-admin", "admin")
        hook = {
            "name": "bench",
            "url": f"http://127.0.0.1:{RECEIVER_PORT}/hook",
            "event_types": ["incident.create"],
        }
        arrivals.secret = admin.client.post("/webhooks", json=hook).get_json()["secret"]
        import subprocess

        from embedded_db import PROJECT_ROOT

        env = worker_env(database_url, **settings, LOG_LEVEL="WARNING")
        command = [*WORKER_COMMAND, "--concurrency", str(options.concurrency)]

        def start_workers() -> None:
            workers.extend(
                subprocess.Popen(command, cwd=PROJECT_ROOT, env=env) for _ in range(options.workers)
            )
            time.sleep(3)  # the workers import the app and start listening

        if not options.drain:
            start_workers()
        committed: dict[int, float] = {}
        started = writes_started = time.time()
        for number in range(options.events):
            response = admin.client.post(
                "/incidents", json={"title": f"bench {number}", "severity": "high"}
            )
            committed[response.get_json()["id"]] = time.time()
        writes_done = time.time()
        if options.drain:
            start_workers()
            started = time.time() - 3  # from the workers' start
        deadline = time.time() + 600
        while len(arrivals.at) < options.events and time.time() < deadline:
            time.sleep(0.2)
        finished = max(arrivals.at.values()) if arrivals.at else time.time()
        latencies = [arrivals.at[key] - committed[key] for key in arrivals.at]
        print(
            f"events: {options.events}, delivered: {len(arrivals.at)}, "
            f"duplicates: {arrivals.duplicates}, unverified: {arrivals.unverified}"
        )
        print(f"workers: {options.workers} x concurrency {options.concurrency}")
        print(f"API writes: {options.events / (writes_done - writes_started):.0f} per second")
        print(
            f"throughput: {len(arrivals.at) / (finished - started):.0f} deliveries per second "
            f"({'workers started' if options.drain else 'first commit'} to last delivery, "
            f"{finished - started:.1f} s)"
        )
        if latencies:
            print(
                f"commit-to-delivery latency: p50 {_percentile(latencies, 0.5) * 1000:.0f} ms, "
                f"p99 {_percentile(latencies, 0.99) * 1000:.0f} ms, "
                f"mean {statistics.fmean(latencies) * 1000:.0f} ms"
            )
        print(f"load average: {os.getloadavg()[0]:.1f}")
    finally:
        for worker in workers:
            stop_worker(worker)
        server.shutdown()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        drop_database(database_url)


if __name__ == "__main__":
    main()
