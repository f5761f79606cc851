"""Throughput of event ingestion through the full path: 10,000 events, 100 Sigma rules.

Run from the repository root: ``.venv/bin/python -m bench.detection_events``
(``BENCH_DATABASE_URL``, default ``postgresql+psycopg2://postgres@127.0.0.1:5432/``, names the
server; a throwaway database is created on it and dropped at the end).

The 100 rules are the first SigmaHQ regression rules, uploaded as YAML through
``POST /rules``; the 10,000 events are those rules' regression events cycled with
distinct record ids (:func:`bench.sigma_events.build_events`). Each round sends them as
two ``POST /events`` requests of 5,000 through Flask's test client, so every request
loads the enabled rules from PostgreSQL, parses the JSON body, evaluates, groups the
matches and upserts the alerts (opening incidents for the high and critical ones) in
one transaction. Request bodies are encoded before the clock starts: that is the
client's work. Round 1 starts with a cold rule cache (each rule compiled on first use);
the figure is the median of the rounds, in events per second, on one process.
"""

import json
import os
import statistics
import time
import uuid

from app import create_app
from bench.sigma_events import build_events
from tests.conftest import app_settings, database_url_for, drop_database
from tests.helpers import ApiClient, create_user_row, login
from tests.unit.sigma_support import REGRESSION_DATA

RULE_COUNT = 100
BATCH_SIZE = 5_000
ROUNDS = 3
SERVER_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/")
# The benchmark sends more requests than the default per-client limits allow.
UNLIMITED = {"RATELIMIT_DEFAULT": "100000 per minute", "RATELIMIT_PER_IP": "100000 per minute"}


def upload_rules(client: ApiClient) -> None:
    for path in sorted(REGRESSION_DATA.glob("*/rule.yml"))[:RULE_COUNT]:
        response = client.request(
            "POST",
            "/rules",
            data=path.read_text(encoding="utf-8"),
            headers={"Content-Type": "application/yaml"},
        )
        assert response.status_code == 201, response.get_json()


def ingest_round(client: ApiClient, bodies: list[bytes]) -> tuple[float, int, int]:
    """Send every batch once; returns (seconds, matches, alerts written)."""
    matches = alerts = 0
    started = time.perf_counter()
    for body in bodies:
        response = client.request(
            "POST", "/events", data=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 200, response.get_json()
        result = response.get_json()
        matches += result["match_count"]
        alerts += result["alert_count"]
    return time.perf_counter() - started, matches, alerts


def main() -> None:
    database_url = database_url_for(SERVER_URL, f"soc_bench_{uuid.uuid4().hex[:12]}")
    try:
        app = create_app(app_settings(database_url, **UNLIMITED))
        create_user_row(app, "bench", "analyst")
        anonymous = ApiClient(app.test_client())
        client = anonymous.with_token(login(anonymous, "bench"))
        upload_rules(client)
        events = build_events()
        bodies = [
            json.dumps(events[start : start + BATCH_SIZE]).encode()
            for start in range(0, len(events), BATCH_SIZE)
        ]
        rounds = [ingest_round(client, bodies) for _ in range(ROUNDS)]
        with app.app_context():
            from models import db

            db.engine.dispose()
    finally:
        drop_database(database_url)
    seconds = statistics.median(timing for timing, _, _ in rounds)
    megabytes = sum(len(body) for body in bodies) / 1e6
    print(f"rules: {RULE_COUNT} Sigma (uploaded via POST /rules, loaded from PostgreSQL)")
    print(f"events: {len(events)} per round in {len(bodies)} requests ({megabytes:.1f} MB JSON)")
    for number, (timing, matches, alerts) in enumerate(rounds, 1):
        print(
            f"round {number}: {timing:.2f} s, {len(events) / timing:,.0f} events/s, "
            f"{matches} matches, {alerts} alerts written"
        )
    print(f"events/s: {len(events) / seconds:,.0f} (median of {ROUNDS} rounds)")


if __name__ == "__main__":
    main()
