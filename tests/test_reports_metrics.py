"""/reports/metrics and /reports/rules: numbers over a data set with known timestamps,
each computed by hand below, for a range that keeps the second of two weeks.

The data set (policy version 1: high = 60 min response / 240 min resolution, low =
24 h / 5 d, critical = 15 min / 60 min). In range, week of 2026-01-12:

- A high, analyst1: triaged +10 min, resolved +100 min; escalated from a "Brute force" alert.
- B high, analyst1: triaged +30, resolved +200, reopened +210, resolved +300, closed +310.
- C high, unassigned: triaged +90, still investigating.
- D low, admin1: triaged +20, false positive +50.
- R critical, TLP red, reported by admin1: triaged +5, resolved +30 (hidden from viewers).

Out of range (the week before): E high, triaged +1000 and resolved +2000; F low, open.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from models import db
from tests.reports_support import open_incident, raise_alert

WEEK_1 = datetime(2026, 1, 5, tzinfo=UTC)
WEEK_2 = datetime(2026, 1, 12, tzinfo=UTC)
IN_RANGE = {"created_after": "2026-01-12T00:00:00Z", "created_before": "2026-01-19T00:00:00Z"}
DAY = timedelta(days=1)
RESOLVE = (("investigating", 0), ("contained", 0), ("resolved", 0))


def _resolve_at(minutes: int) -> list[tuple[str, int]]:
    return [(status, minutes) for status, _ in RESOLVE]


@pytest.fixture
def data_set(app, admin, analyst, viewer):
    with app.app_context():
        a = open_incident(
            WEEK_2,
            severity="high",
            reporter="analyst1",
            assignee="analyst1",
            steps=[("triaged", 10), *_resolve_at(100)],
        )
        raise_alert(a, "Brute force", count=40)
        raise_alert(None, "Brute force", count=7)
        open_incident(
            WEEK_2 + timedelta(hours=1),
            severity="high",
            reporter="analyst1",
            assignee="analyst1",
            steps=[
                ("triaged", 30),
                *_resolve_at(200),
                ("investigating", 210),
                ("contained", 300),
                ("resolved", 300),
                ("closed", 310),
            ],
        )
        open_incident(
            WEEK_2 + timedelta(days=1),
            severity="high",
            reporter="analyst1",
            steps=[("triaged", 90), ("investigating", 95)],
        )
        open_incident(
            WEEK_2 + timedelta(days=2),
            severity="low",
            reporter="analyst1",
            assignee="admin1",
            steps=[("triaged", 20), ("false_positive", 50)],
        )
        open_incident(
            WEEK_2 + timedelta(days=3),
            severity="critical",
            reporter="admin1",
            tlp="red",
            steps=[("triaged", 5), *_resolve_at(30)],
        )
        open_incident(
            WEEK_1 + timedelta(days=1),
            severity="high",
            reporter="analyst1",
            steps=[("triaged", 1000), *_resolve_at(2000)],
        )
        open_incident(WEEK_1 + timedelta(days=2), severity="low", reporter="analyst1")
        db.session.commit()


def metrics(user, **query):
    response = user.client.get("/reports/metrics", query_string={**IN_RANGE, **query})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def rows_by(body: dict, grouping: str) -> dict:
    return {row["group"][grouping]: row for row in body["rows"]}


HIGH = {
    "group": {"severity": "high"},
    "opened": 3,
    "resolved": 2,
    "closed": 1,
    "false_positives": 0,
    "reopened": 1,
    # MTTA 600, 1800, 5400 s: p90 at rank 1.8 = 1800 + 0.8 * 3600.
    "mtta_mean_seconds": 2600.0,
    "mtta_p50_seconds": 1800.0,
    "mtta_p90_seconds": 4680.0,
    # MTTR 6000, 18000 s (B's last resolution; C is unresolved).
    "mttr_mean_seconds": 12000.0,
    "mttr_p50_seconds": 12000.0,
    "mttr_p90_seconds": 16800.0,
    "response_sla_compliance": pytest.approx(2 / 3),
    "resolution_sla_compliance": pytest.approx(1 / 3),
    "false_positive_rate": 0.0,
    "reopen_rate": 0.5,
    "backlog_under_1d": 0,
    "backlog_1d_to_7d": 0,
    "backlog_7d_to_30d": 0,
    "backlog_over_30d": 1,
    "sla_policy_versions": [1],
}
LOW = {
    "group": {"severity": "low"},
    "opened": 1,
    "resolved": 1,
    "closed": 0,
    "false_positives": 1,
    "reopened": 0,
    "mtta_mean_seconds": 1200.0,
    "mtta_p50_seconds": 1200.0,
    "mtta_p90_seconds": 1200.0,
    "mttr_mean_seconds": 3000.0,
    "mttr_p50_seconds": 3000.0,
    "mttr_p90_seconds": 3000.0,
    "response_sla_compliance": 1.0,
    "resolution_sla_compliance": 1.0,
    "false_positive_rate": 1.0,
    "reopen_rate": 0.0,
    "backlog_under_1d": 0,
    "backlog_1d_to_7d": 0,
    "backlog_7d_to_30d": 0,
    "backlog_over_30d": 0,
    "sla_policy_versions": [1],
}


def test_metrics_by_severity_equal_the_hand_computed_values(data_set, viewer):
    body = metrics(viewer, group_by="severity")
    assert body["group_by"] == ["severity"]
    assert body["rows"] == [HIGH, LOW]


def test_a_viewer_s_metrics_leave_out_the_tlp_red_incident_an_admin_s_include(
    data_set, admin, viewer
):
    assert "critical" not in rows_by(metrics(viewer), "severity")
    critical = rows_by(metrics(admin), "severity")["critical"]
    assert (critical["opened"], critical["mtta_p50_seconds"], critical["mttr_p50_seconds"]) == (
        1,
        300.0,
        1800.0,
    )
    assert rows_by(metrics(admin), "severity")["high"] == HIGH


def test_metrics_by_assignee(data_set, viewer):
    rows = rows_by(metrics(viewer, group_by="assignee"), "assignee")
    assert list(rows) == ["admin1", "analyst1", None]
    analyst = rows["analyst1"]
    # MTTA 600 and 1800 s; MTTR 6000 and 18000 s.
    assert (analyst["opened"], analyst["mtta_p50_seconds"], analyst["mtta_p90_seconds"]) == (
        2,
        1200.0,
        1680.0,
    )
    assert (analyst["mttr_p50_seconds"], analyst["mttr_p90_seconds"]) == (12000.0, 16800.0)
    assert rows[None]["opened"] == 1 and rows[None]["mttr_p50_seconds"] is None
    assert rows["admin1"]["false_positive_rate"] == 1.0


def test_metrics_by_rule_and_by_source(data_set, viewer):
    by_rule = rows_by(metrics(viewer, group_by="rule"), "rule")
    assert {rule: row["opened"] for rule, row in by_rule.items()} == {"Brute force": 1, None: 3}
    assert by_rule["Brute force"]["mttr_p50_seconds"] == 6000.0
    by_source = rows_by(metrics(viewer, group_by="source"), "source")
    assert {source: row["opened"] for source, row in by_source.items()} == {
        "manual": 3,
        "seed": 1,
    }


def test_an_incident_opened_from_another_tools_alert_counts_under_that_tool(analyst, viewer):
    alert = {"source": "splunk", "source_ref": "notable-1", "title": "C2", "severity": "high"}
    alert_id = analyst.client.post("/alerts", json=alert).get_json()["id"]
    assert analyst.client.post(f"/alerts/{alert_id}/escalate").status_code == 201
    analyst.client.post("/incidents", json={"title": "By hand", "severity": "low"})
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    window = {"created_after": today.isoformat(), "created_before": (today + DAY).isoformat()}
    body = viewer.client.get("/reports/metrics", query_string={"group_by": "source", **window})
    by_source = rows_by(body.get_json(), "source")
    assert {source: row["opened"] for source, row in by_source.items()} == {
        "manual": 1,
        "splunk": 1,
    }


def test_metrics_by_week_and_severity(data_set, viewer):
    body = metrics(viewer, group_by="week,severity", created_after="2026-01-01T00:00:00Z")
    opened = {
        (row["group"]["week"], row["group"]["severity"]): row["opened"] for row in body["rows"]
    }
    assert opened == {
        ("2026-01-05", "high"): 1,
        ("2026-01-05", "low"): 1,
        ("2026-01-12", "high"): 3,
        ("2026-01-12", "low"): 1,
    }
    month = metrics(viewer, group_by="month")["rows"]
    assert [(row["group"], row["opened"]) for row in month] == [({"month": "2026-01"}, 4)]


def test_metrics_as_csv_are_the_same_table(data_set, viewer):
    response = viewer.client.get(
        "/reports/metrics", query_string=IN_RANGE, headers={"Accept": "text/csv"}
    )
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [row["group_severity"] for row in rows] == ["high", "low"]
    assert rows[0]["mtta_p90_seconds"] == "4680.0"
    assert rows[0]["sla_policy_versions"] == "1"
    assert set(rows[0]) == {"group_severity", *HIGH} - {"group"}


def test_an_unoffered_media_type_is_406(viewer):
    response = viewer.client.get("/reports/metrics", headers={"Accept": "image/png"})
    assert response.status_code == 406


def test_an_unknown_grouping_is_400(viewer):
    response = viewer.client.get("/reports/metrics", query_string={"group_by": "colour"})
    assert response.status_code == 400
    assert "group_by" in response.get_json()["errors"]


def test_a_repeated_grouping_counts_once_and_a_third_is_400(viewer):
    repeated = viewer.client.get("/reports/metrics", query_string={"group_by": "severity,severity"})
    assert repeated.status_code == 200
    assert repeated.get_json()["group_by"] == ["severity"]
    three = viewer.client.get("/reports/metrics", query_string={"group_by": "severity,week,month"})
    assert three.status_code == 400
    assert "group_by" in three.get_json()["errors"]


def test_rule_efficacy_counts_alerts_matches_escalations_and_precision(data_set, viewer):
    response = viewer.client.get("/reports/rules", query_string={"by": "rule"})
    assert response.status_code == 200, response.get_json()
    [row] = response.get_json()["rows"]
    assert row == {
        "rule_id": row["rule_id"],
        "rule": "Brute force",
        "source": "seed",
        "alerts": 2,
        "events_matched": 47,
        "escalated": 1,
        "dismissed": 0,
        "incidents": 1,
        "false_positives": 0,
        "precision": 1.0,
    }


def test_rule_efficacy_as_csv(data_set, viewer):
    response = viewer.client.get("/reports/rules", headers={"Accept": "text/csv"})
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(row["rule"], row["alerts"], row["precision"]) for row in rows] == [
        ("Brute force", "2", "1.0")
    ]
