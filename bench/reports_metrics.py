"""Benchmark ``GET /reports/metrics`` over 100,000 incidents and 1,000,000 timeline entries.

Usage: ``.venv/bin/python bench/reports_metrics.py [--incidents 100000] [--rounds 5]``

Fills a scratch database (migrated like production) with SQL: 22 users, 50 rules,
``--incidents`` incidents spread over a year (all four severities, 5 % TLP red, one in
seven unassigned, 60 % closed, 10 % false positive, 10 % resolved, 20 % open), ten
timeline entries each (created, four status changes of which 5 % a reopen, five
comments) and one alert for every fifth incident. Then times the endpoint through the
app in-process (Flask's test client: the time is the server's own, authentication,
SQL, dumping and all) for every grouping, as an admin and as a viewer (whose TLP red
condition is in the query), and prints ``EXPLAIN (ANALYZE, BUFFERS)`` of the query the
slowest grouping ran. The scratch database is dropped at the end, also on Ctrl-C. The
server comes from ``BENCH_DATABASE_URL`` (default ``postgresql://postgres@127.0.0.1:5432/``).

Target (issue 18): under 1 s server-side.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event, text

from bench.throwaway_app import throwaway_app

GROUPINGS = ("severity", "assignee", "source", "rule", "week", "month", "week,severity")
ANALYSTS = 20
RULES = 50
TIMELINE_PER_INCIDENT = 10

FILL = [
    # 20 analysts after the admin (id 1) and the viewer (id 2).
    """
    INSERT INTO users (username, password_hash, role, is_active, created_at)
    SELECT 'analyst' || n, 'x', 'analyst', true, now() FROM generate_series(1, :analysts) n
    """,
    """
    INSERT INTO detection_rules (kind, name, description, severity, enabled, detection, tags,
                                 version, created_at, updated_at)
    SELECT CASE WHEN n % 3 = 0 THEN 'seed' ELSE 'sigma' END, 'rule ' || n, '',
           'high', true, '{}'::jsonb, ARRAY['attack.t1110'], 1, now(), now()
    FROM generate_series(1, :rules) n
    """,
    # Five minutes apart: 100,000 incidents span 347 days.
    """
    INSERT INTO incidents (title, description, severity, status, tlp, reporter_id,
                           assignee_id, version, created_at, updated_at, responded_at,
                           resolved_at)
    SELECT 'bench ' || g, '',
           (ARRAY['low', 'medium', 'high', 'critical'])[1 + g % 4],
           s.status,
           CASE WHEN g % 20 = 0 THEN 'red' ELSE 'amber' END,
           3 + g % :analysts,
           CASE WHEN g % 7 = 0 THEN NULL ELSE 3 + (g * 7) % :analysts END,
           5, c.at, c.at,
           c.at + (random() * 300) * interval '1 minute',
           CASE WHEN s.status = 'investigating' THEN NULL
                ELSE c.at + (60 + random() * 4000) * interval '1 minute' END
    FROM generate_series(1, :incidents) g,
         LATERAL (SELECT timestamptz '2025-12-01' + g * interval '5 minutes' AS at) c,
         LATERAL (SELECT CASE WHEN g % 10 < 6 THEN 'closed'
                              WHEN g % 10 = 6 THEN 'false_positive'
                              WHEN g % 10 = 7 THEN 'resolved'
                              ELSE 'investigating' END AS status) s
    """,
    """
    INSERT INTO incident_timeline (incident_id, actor_id, kind, from_status, to_status,
                                   changes, comment, created_at)
    SELECT i.id, i.reporter_id,
           CASE WHEN n = 1 THEN 'created' WHEN n <= 5 THEN 'status_change' ELSE 'comment' END,
           CASE WHEN n = 5 AND i.id % 20 = 1 THEN 'resolved'
                WHEN n BETWEEN 2 AND 5 THEN (ARRAY['new', 'triaged', 'investigating',
                                                   'contained'])[n - 1] END,
           CASE WHEN n = 1 THEN 'new'
                WHEN n = 5 AND i.id % 20 = 1 THEN 'investigating'
                WHEN n BETWEEN 2 AND 5 THEN (ARRAY['triaged', 'investigating', 'contained',
                                                   'resolved'])[n - 1] END,
           '{}'::jsonb,
           CASE WHEN n > 5 THEN 'note ' || n END,
           i.created_at + n * interval '7 minutes'
    FROM incidents i CROSS JOIN generate_series(1, :timeline) n
    """,
    """
    INSERT INTO alerts (rule_id, rule_name, severity, status, grouping, group_key,
                        group_values, count, first_seen, last_seen, sample_event, matched,
                        incident_id, version, created_at, updated_at)
    SELECT r.id, r.name, 'high', 'escalated', true, 'bench-' || i.id, '{}'::jsonb,
           1 + i.id % 40, i.created_at, i.created_at, '{}'::jsonb, '{}'::jsonb, i.id, 1,
           i.created_at, i.created_at
    FROM incidents i JOIN detection_rules r ON r.id = 1 + i.id % :rules
    WHERE i.id % 5 = 0
    """,
]


def fill(app: Any, incidents: int) -> None:
    from models import db

    parameters = {
        "analysts": ANALYSTS,
        "rules": RULES,
        "incidents": incidents,
        "timeline": TIMELINE_PER_INCIDENT,
    }
    started = time.perf_counter()
    with app.app_context():
        for statement in FILL:
            db.session.execute(text(statement), parameters)
        db.session.commit()
        counts = (
            db.session.execute(
                text(
                    "SELECT (SELECT count(*) FROM incidents) AS incidents,"
                    " (SELECT count(*) FROM incident_timeline) AS timeline,"
                    " (SELECT count(*) FROM alerts) AS alerts"
                )
            )
            .one()
            ._asdict()
        )
        with db.engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT")
            connection.exec_driver_sql("VACUUM ANALYZE")
    print(f"filled {counts} in {time.perf_counter() - started:.1f} s")


class LastQuery:
    """The SQL (and parameters) of the last ``SELECT`` run, to EXPLAIN it afterwards."""

    def __init__(self) -> None:
        self.statement = ""
        self.parameters: Any = None

    def __call__(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if "percentile_cont" in statement:
            self.statement, self.parameters = statement, parameters


def time_groupings(client: Any, headers: dict, rounds: int) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {}
    for grouping in GROUPINGS:
        client.get("/reports/metrics", query_string={"group_by": grouping}, headers=headers)
        runs = []
        for _ in range(rounds):
            started = time.perf_counter()
            response = client.get(
                "/reports/metrics", query_string={"group_by": grouping}, headers=headers
            )
            runs.append(time.perf_counter() - started)
            assert response.status_code == 200, response.get_data(as_text=True)[:500]
        timings[grouping] = runs
    return timings


def report(role: str, timings: dict[str, list[float]]) -> None:
    for grouping, runs in timings.items():
        print(
            f"{role:7} group_by={grouping:14} median {statistics.median(runs) * 1000:7.1f} ms, "
            f"max {max(runs) * 1000:7.1f} ms over {len(runs)} runs"
        )


def run(server_url: str, incidents: int, rounds: int) -> None:
    from auth import issue_token
    from models import db
    from security.modules.reports import REPORT_SETTINGS
    from security.modules.users import create_user

    with throwaway_app(server_url) as app:
        with app.app_context():
            tokens = {}
            for role in ("admin", "viewer"):
                user = create_user(f"bench-{role}", "Bench-Password-1234!", role)
                tokens[role], _ = issue_token(user, "127.0.0.1")
            db.session.commit()
        fill(app, incidents)
        client = app.test_client()
        print(f"load average before: {' '.join(f'{load:.1f}' for load in os.getloadavg())}")
        last_query = LastQuery()
        with app.app_context():
            event.listen(db.engine, "before_cursor_execute", last_query)
        slowest = ("", 0.0, "", None)
        for role, token in tokens.items():
            timings = time_groupings(client, {"Authorization": f"Bearer {token}"}, rounds)
            report(role, timings)
            for grouping, runs in timings.items():
                if statistics.median(runs) > slowest[1]:
                    slowest = (f"{role} {grouping}", statistics.median(runs), "", None)
        print(f"load average after: {' '.join(f'{load:.1f}' for load in os.getloadavg())}")
        role, grouping = slowest[0].split(" ")
        client.get(
            "/reports/metrics",
            query_string={"group_by": grouping},
            headers={"Authorization": f"Bearer {tokens[role]}"},
        )
        with app.app_context():
            event.remove(db.engine, "before_cursor_execute", last_query)
            raw = db.engine.raw_connection()
            try:
                cursor = raw.cursor()
                # The settings metrics() takes for its own transaction.
                cursor.execute(REPORT_SETTINGS.replace("LOCAL ", ""))
                cursor.execute(
                    "EXPLAIN (ANALYZE, BUFFERS) " + last_query.statement, last_query.parameters
                )
                plan = "\n".join(row[0] for row in cursor.fetchall())
            finally:
                raw.close()
        print(f"EXPLAIN (ANALYZE, BUFFERS), {role} group_by={grouping}:\n{plan}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    server = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/")
    run(server, arguments.incidents, arguments.rounds)


if __name__ == "__main__":
    main()
