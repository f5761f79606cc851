"""``/events`` and ``/alerts``: real SigmaHQ rules on their own events, matches grouped into
alerts (one alert for a burst, also under concurrency), incidents opened automatically or by
escalation, the alert workflow, permissions and limits."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
import yaml
from sqlalchemy import func, select, update

from config import ConfigError, load_settings
from models import Alert, AuditEntry, Incident, db, utcnow
from tests.detection_support import (
    create_seed_rule,
    create_sigma_rule,
    post_events,
    upload_sigma,
)
from tests.test_openapi import assert_matches
from tests.unit.sigma_support import REGRESSION_DATA, load_events

ENCODED_POWERSHELL = {
    "selection_img": {"Image|endswith": ["\\powershell.exe", "\\pwsh.exe"]},
    "selection_cli": {"CommandLine|contains|windash": ["-enc ", "-encodedcommand "]},
    "filter_admin": {"User|startswith": "CORP\\svc-"},
    "condition": "all of selection_* and not filter_admin",
}
EVIL_EVENT = {
    "Image": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
    "CommandLine": "powershell.exe /enc SQBFAFgA",
    "User": "CORP\\alice",
    "Computer": "ws-17.corp.example",
}


def count(app, model, *conditions) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*conditions))


def alerts_in_db(app) -> list[Alert]:
    with app.app_context():
        return db.session.scalars(select(Alert).order_by(Alert.id)).all()


@pytest.fixture
def high_rule(analyst) -> dict:
    return create_sigma_rule(analyst, ENCODED_POWERSHELL, level="high")


@pytest.fixture
def medium_rule(analyst) -> dict:
    return create_sigma_rule(analyst, ENCODED_POWERSHELL, level="medium")


# --- real SigmaHQ rules ---------------------------------------------------------------------


def regression_folders():
    for folder in sorted(path for path in REGRESSION_DATA.iterdir() if path.is_dir()):
        events = [event for path in sorted(folder.glob("*.json")) for event in load_events(path)]
        if events:
            yield folder, events


def test_every_regression_rule_matches_its_own_events_through_the_api(analyst):
    own_events: dict[int, set[int]] = {}
    expected: dict[int, int] = {}
    batch: list[dict] = []
    for folder, events in regression_folders():
        response = upload_sigma(
            analyst,
            (folder / "rule.yml").read_text(encoding="utf-8"),
            environ_base={"REMOTE_ADDR": "10.77.0.2"},
        )
        rule_id = response.get_json()["id"]
        own_events[rule_id] = set(range(len(batch), len(batch) + len(events)))
        info = yaml.safe_load((folder / "info.yml").read_text(encoding="utf-8"))
        expected[rule_id] = info["regression_tests_info"][0].get("match_count", 1)
        batch.extend(events)

    body = post_events(analyst, batch)

    assert not body["matches_truncated"]
    matched: dict[int, set[int]] = {rule_id: set() for rule_id in own_events}
    for match in body["matches"]:
        matched[match["rule_id"]].add(match["event_index"])
    short = {
        rule_id: (len(matched[rule_id] & own_events[rule_id]), expected[rule_id])
        for rule_id in own_events
        if len(matched[rule_id] & own_events[rule_id]) < expected[rule_id]
    }
    assert short == {}


def test_certutil_rule_does_not_match_a_benign_certutil_call(analyst):
    rule_text = (REGRESSION_DATA / "proc_creation_win_certutil_decode" / "rule.yml").read_text(
        encoding="utf-8"
    )
    upload_sigma(analyst, rule_text)

    body = post_events(
        analyst,
        [
            {"Image": "C:\\Windows\\System32\\certutil.exe", "CommandLine": "certutil -dump"},
            {"Image": "C:\\Windows\\System32\\certutil.exe", "CommandLine": "certutil /decode a b"},
        ],
    )

    assert [match["event_index"] for match in body["matches"]] == [1]


# --- hand-written events --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "should_match"),
    [
        ({}, True),
        ({"CommandLine": "pwsh.exe -EncodedCommand SQBFAFgA"}, True),
        ({"CommandLine": "powershell.exe -File run.ps1"}, False),
        ({"Image": "C:\\Tools\\cmd.exe"}, False),
        ({"User": "CORP\\svc-backup"}, False),
    ],
)
def test_hand_written_events_match_only_when_the_condition_holds(
    analyst, high_rule, changes, should_match
):
    body = post_events(analyst, {**EVIL_EVENT, **changes})

    assert (body["match_count"] == 1) is should_match


def test_match_reports_the_fields_the_rule_tested(analyst, medium_rule):
    body = post_events(analyst, EVIL_EVENT)

    (match,) = body["matches"]
    assert match["rule_id"] == medium_rule["id"]
    assert match["matched"] == {
        "image": [EVIL_EVENT["Image"]],
        "commandline": [EVIL_EVENT["CommandLine"]],
        "user": [EVIL_EVENT["User"]],
    }


def test_network_rule_with_cidr_and_numeric_comparison(analyst):
    create_sigma_rule(
        analyst,
        {
            "sel": {"DestinationIp|cidr": "10.0.0.0/8", "DestinationPort|gte": 4444},
            "condition": "sel",
        },
    )

    body = post_events(
        analyst,
        [
            {"DestinationIp": "10.1.2.3", "DestinationPort": 4444},
            {"DestinationIp": "10.1.2.3", "DestinationPort": 443},
            {"DestinationIp": "11.1.2.3", "DestinationPort": 5555},
        ],
    )

    assert [match["event_index"] for match in body["matches"]] == [0]


# --- grouping ----------------------------------------------------------------------------


def test_burst_of_identical_events_in_one_request_is_one_alert_and_one_incident(
    app, analyst, high_rule
):
    body = post_events(analyst, [EVIL_EVENT] * 1000)

    assert body["match_count"] == 1000
    assert body["alert_count"] == 1
    assert body["alerts"][0]["count"] == 1000
    assert len(body["incidents_created"]) == 1
    assert body["alerts"][0]["incident_id"] == body["incidents_created"][0]
    (alert,) = alerts_in_db(app)
    assert alert.count == 1000
    assert count(app, Incident) == 1


def test_burst_spread_over_several_requests_is_one_alert_and_one_incident(app, analyst, high_rule):
    bodies = [post_events(analyst, [EVIL_EVENT] * 250) for _ in range(4)]

    assert [body["alerts"][0]["created"] for body in bodies] == [True, False, False, False]
    (alert,) = alerts_in_db(app)
    assert alert.count == 1000
    assert alert.status == "escalated"
    assert count(app, Incident) == 1


def test_concurrent_ingestion_of_one_group_folds_into_one_alert(app, analyst, high_rule):
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def ingest() -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post(
            "/events",
            json=[EVIL_EVENT] * 300,
            headers={"Authorization": f"Bearer {analyst.token}"},
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=ingest) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200, 200]
    (alert,) = alerts_in_db(app)
    assert alert.count == 600
    assert count(app, Incident) == 1


def test_events_from_different_hosts_raise_separate_alerts(app, analyst, medium_rule):
    body = post_events(analyst, [EVIL_EVENT, {**EVIL_EVENT, "Computer": "ws-18"}, EVIL_EVENT])

    assert body["alert_count"] == 2
    assert sorted(alert.count for alert in alerts_in_db(app)) == [1, 2]
    assert {alert.group_values["host"] for alert in alerts_in_db(app)} == {
        "ws-17.corp.example",
        "ws-18",
    }


def test_default_group_includes_user_and_source_ip(analyst):
    create_seed_rule(analyst, {"ioc": {"type": "domain", "value": "evil.example.net"}})

    body = post_events(
        analyst,
        {"query": "evil.example.net", "host": {"name": "h1"}, "user": "bob", "src_ip": "10.0.0.9"},
    )

    assert body["alerts"][0]["group_values"] == {
        "host": "h1",
        "user": "bob",
        "source_ip": "10.0.0.9",
    }


def test_rule_defined_group_by_replaces_the_default(app, analyst):
    create_seed_rule(
        analyst, {"ioc": {"type": "domain", "value": "evil.example.net"}}, group_by=["query"]
    )

    body = post_events(
        analyst,
        [{"query": "evil.example.net", "host": "a"}, {"query": "evil.example.net", "host": "b"}],
    )

    assert body["alert_count"] == 1
    assert body["alerts"][0]["group_values"] == {"query": "evil.example.net"}


def test_sigma_rule_groups_by_a_field_its_detection_does_not_test(analyst, medium_rule):
    response = analyst.client.patch(
        f"/rules/{medium_rule['id']}", json={"group_by": ["Session Id"]}
    )
    assert response.status_code == 200, response.get_json()

    body = post_events(
        analyst,
        [{**EVIL_EVENT, "SessionId": "s1"}, {**EVIL_EVENT, "SessionId": "s2"}, EVIL_EVENT],
    )

    assert sorted(str(alert["group_values"]) for alert in body["alerts"]) == [
        "{'Session Id': 's1'}",
        "{'Session Id': 's2'}",
        "{}",
    ]


def test_ioc_rule_beside_sigma_rules_still_names_the_field_holding_the_indicator(
    analyst, medium_rule
):
    ioc_rule = create_seed_rule(analyst, {"ioc": {"type": "domain", "value": "evil.example.net"}})

    body = post_events(analyst, {**EVIL_EVENT, "dns": {"query": "evil.example.net"}})

    matched = {match["rule_id"]: match["matched"] for match in body["matches"]}
    assert matched[ioc_rule["id"]] == {"dns.query": ["evil.example.net"]}
    assert matched[medium_rule["id"]]["image"] == [EVIL_EVENT["Image"]]


def test_dismissed_alert_does_not_absorb_new_matches(app, analyst, medium_rule):
    first = post_events(analyst, EVIL_EVENT)["alerts"][0]
    analyst.client.patch(f"/alerts/{first['id']}", json={"status": "dismissed"})

    second = post_events(analyst, EVIL_EVENT)["alerts"][0]

    assert second["id"] != first["id"]
    assert second["created"] is True
    dismissed = analyst.client.get(f"/alerts/{first['id']}").get_json()
    assert (dismissed["status"], dismissed["count"], dismissed["grouping"]) == (
        "dismissed",
        1,
        False,
    )


def test_acknowledged_alert_keeps_counting(analyst, medium_rule):
    first = post_events(analyst, EVIL_EVENT)["alerts"][0]
    analyst.client.patch(f"/alerts/{first['id']}", json={"status": "acknowledged"})

    second = post_events(analyst, EVIL_EVENT)["alerts"][0]

    assert (second["id"], second["count"]) == (first["id"], 2)


def test_match_after_the_group_window_opens_a_new_alert(app, analyst, medium_rule):
    first = post_events(analyst, EVIL_EVENT)["alerts"][0]
    with app.app_context():
        db.session.execute(update(Alert).values(last_seen=utcnow() - timedelta(hours=2)))
        db.session.commit()

    second = post_events(analyst, EVIL_EVENT)["alerts"][0]

    assert second["id"] != first["id"]
    stale = analyst.client.get(f"/alerts/{first['id']}").get_json()
    assert (stale["status"], stale["grouping"]) == ("open", False)


# --- incidents ------------------------------------------------------------------------------


def test_high_alert_opens_an_incident_linked_to_it(analyst, high_rule):
    body = post_events(analyst, EVIL_EVENT)

    (incident_id,) = body["incidents_created"]
    alert = analyst.client.get(f"/alerts/{body['alerts'][0]['id']}").get_json()
    assert (alert["status"], alert["incident_id"]) == ("escalated", incident_id)
    incident = analyst.client.get(f"/incidents/{incident_id}").get_json()
    assert incident["severity"] == "high"
    assert incident["title"] == f"Alert: {high_rule['name']}"
    assert "ws-17.corp.example" in incident["description"]


def test_medium_alert_opens_no_incident_by_default(app, analyst, medium_rule):
    body = post_events(analyst, EVIL_EVENT)

    assert body["incidents_created"] == []
    assert count(app, Incident) == 0


def test_auto_incident_threshold_is_configurable(app, analyst, medium_rule):
    app.config["ALERT_AUTO_INCIDENT_SEVERITY"] = "medium"
    try:
        body = post_events(analyst, EVIL_EVENT)
    finally:
        app.config["ALERT_AUTO_INCIDENT_SEVERITY"] = "high"

    assert len(body["incidents_created"]) == 1


def test_auto_incidents_can_be_turned_off(app, analyst, high_rule):
    app.config["ALERT_AUTO_INCIDENT_SEVERITY"] = "none"
    try:
        body = post_events(analyst, EVIL_EVENT)
    finally:
        app.config["ALERT_AUTO_INCIDENT_SEVERITY"] = "high"

    assert body["incidents_created"] == []
    assert count(app, Incident) == 0


def test_auto_incident_severity_setting_is_validated():
    env = {"APP_ENV": "testing", "DATABASE_URL": "postgresql://db/soc"}

    with pytest.raises(ConfigError, match="ALERT_AUTO_INCIDENT_SEVERITY"):
        load_settings(env={**env, "ALERT_AUTO_INCIDENT_SEVERITY": "severe"})
    assert load_settings(env=env).alert_auto_incident_severity == "high"


def test_escalate_opens_an_incident_and_links_the_alert(app, analyst, medium_rule):
    alert = post_events(analyst, EVIL_EVENT)["alerts"][0]

    response = analyst.client.post(
        f"/alerts/{alert['id']}/escalate", json={"title": "Encoded PowerShell on ws-17"}
    )

    assert response.status_code == 201
    body = response.get_json()
    assert body["incident"]["title"] == "Encoded PowerShell on ws-17"
    assert body["incident"]["severity"] == "medium"
    assert (body["alert"]["status"], body["alert"]["incident_id"]) == (
        "escalated",
        body["incident"]["id"],
    )
    assert response.headers["Location"] == f"/incidents/{body['incident']['id']}"
    with app.app_context():
        actions = set(db.session.scalars(select(AuditEntry.action)))
    assert {"alert.escalate", "incident.create", "events.ingest"} <= actions


def test_escalate_without_a_body_uses_the_alert(analyst, medium_rule):
    alert = post_events(analyst, EVIL_EVENT)["alerts"][0]

    response = analyst.client.post(f"/alerts/{alert['id']}/escalate")

    assert response.status_code == 201
    assert response.get_json()["incident"]["title"].startswith("Alert: ")


def test_second_escalation_is_409_naming_the_incident(app, analyst, medium_rule):
    alert = post_events(analyst, EVIL_EVENT)["alerts"][0]
    incident = analyst.client.post(f"/alerts/{alert['id']}/escalate").get_json()["incident"]

    response = analyst.client.post(f"/alerts/{alert['id']}/escalate")

    assert response.status_code == 409
    assert response.get_json()["incident_id"] == incident["id"]
    assert count(app, Incident) == 1


def test_dismissed_alert_cannot_be_escalated(app, analyst, medium_rule):
    alert = post_events(analyst, EVIL_EVENT)["alerts"][0]
    analyst.client.patch(f"/alerts/{alert['id']}", json={"status": "dismissed"})

    response = analyst.client.post(f"/alerts/{alert['id']}/escalate")

    assert response.status_code == 409
    assert count(app, Incident) == 0


# --- the alert workflow and reading -------------------------------------------------------


def test_acknowledge_with_if_match_bumps_the_version(analyst, medium_rule):
    alert = post_events(analyst, EVIL_EVENT)["alerts"][0]

    response = analyst.client.patch(
        f"/alerts/{alert['id']}", json={"status": "acknowledged"}, headers={"If-Match": '"1"'}
    )

    assert response.status_code == 200
    assert response.get_json()["status"] == "acknowledged"
    assert response.headers["ETag"] == '"2"'


def test_patch_with_stale_if_match_is_412(analyst, medium_rule):
    alert = post_events(analyst, EVIL_EVENT)["alerts"][0]
    analyst.client.patch(f"/alerts/{alert['id']}", json={"status": "acknowledged"})

    response = analyst.client.patch(
        f"/alerts/{alert['id']}", json={"status": "dismissed"}, headers={"If-Match": '"1"'}
    )

    assert response.status_code == 412


def test_new_matches_do_not_stale_the_etag(analyst, medium_rule):
    alert = post_events(analyst, EVIL_EVENT)["alerts"][0]
    post_events(analyst, EVIL_EVENT)

    response = analyst.client.patch(
        f"/alerts/{alert['id']}", json={"status": "acknowledged"}, headers={"If-Match": '"1"'}
    )

    assert response.status_code == 200


def test_dismissed_alert_cannot_be_reopened_by_acknowledging(analyst, medium_rule):
    alert = post_events(analyst, EVIL_EVENT)["alerts"][0]
    analyst.client.patch(f"/alerts/{alert['id']}", json={"status": "dismissed"})

    response = analyst.client.patch(f"/alerts/{alert['id']}", json={"status": "acknowledged"})

    assert response.status_code == 409
    assert response.get_json()["allowed_transitions"] == []


def test_alert_status_changes_are_audited(app, analyst, medium_rule):
    alert = post_events(analyst, EVIL_EVENT)["alerts"][0]
    analyst.client.patch(f"/alerts/{alert['id']}", json={"status": "dismissed", "comment": "FP"})

    with app.app_context():
        entry = db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "alert.status_change")
        ).one()
    assert entry.details == {"from": "open", "to": "dismissed", "comment": "FP"}
    assert entry.actor == "analyst1"


def test_alert_list_filters_and_pages(analyst, medium_rule, high_rule):
    post_events(analyst, [EVIL_EVENT, {**EVIL_EVENT, "Computer": "ws-18"}])

    high = analyst.client.get("/alerts?severity=high").get_json()["items"]
    escalated = analyst.client.get("/alerts?status=escalated").get_json()["items"]
    first = analyst.client.get(f"/alerts?rule_id={medium_rule['id']}&limit=1").get_json()
    second = analyst.client.get(
        f"/alerts?rule_id={medium_rule['id']}&limit=1&cursor={first['next_cursor']}"
    ).get_json()

    medium = analyst.client.get("/alerts?severity=medium").get_json()["items"]
    assert len(high) == 2
    assert {alert["rule_id"] for alert in high} == {high_rule["id"]}
    assert [alert["id"] for alert in escalated] == [alert["id"] for alert in high]
    assert [first["items"][0]["id"], second["items"][0]["id"]] == [alert["id"] for alert in medium]
    assert second["next_cursor"] is None


def test_sample_event_is_bounded_and_storable(app, analyst):
    create_seed_rule(analyst, {"ioc": {"type": "domain", "value": "evil.example.net"}})
    event = {"query": "evil.example.net", "note": "nul\u0000byte", "blob": ["x" * 5000] * 50}

    post_events(analyst, event)

    (alert,) = alerts_in_db(app)
    assert len(json.dumps(alert.sample_event)) <= 16 * 1024 + 100
    assert alert.sample_event["truncated"] is True


def test_small_sample_event_is_stored_whole(app, analyst, medium_rule):
    post_events(analyst, EVIL_EVENT)

    (alert,) = alerts_in_db(app)
    assert alert.sample_event == EVIL_EVENT


# --- permissions and limits ---------------------------------------------------------------


def test_viewer_cannot_post_events(app, viewer, medium_rule):
    response = viewer.client.post("/events", json=EVIL_EVENT)

    assert response.status_code == 403
    assert count(app, Alert) == 0


def test_viewer_can_read_but_not_change_alerts(analyst, viewer, medium_rule):
    alert = post_events(analyst, EVIL_EVENT)["alerts"][0]

    assert viewer.client.get(f"/alerts/{alert['id']}").status_code == 200
    assert (
        viewer.client.patch(f"/alerts/{alert['id']}", json={"status": "dismissed"}).status_code
        == 403
    )
    assert viewer.client.post(f"/alerts/{alert['id']}/escalate").status_code == 403


def test_more_than_5000_events_is_400(analyst):
    response = analyst.client.post("/events", json=[{"a": 1}] * 5001)

    assert response.status_code == 400
    assert "5000" in response.get_json()["detail"]


def test_events_must_be_objects(analyst):
    response = analyst.client.post("/events", json=[{"a": 1}, "raw line"])

    assert response.status_code == 400
    assert response.get_json()["errors"] == {"events": ["not an object at index 1"]}


def test_events_accept_bodies_above_the_global_cap(analyst, medium_rule):
    events = [{**EVIL_EVENT, "padding": "p" * 1000} for _ in range(2000)]

    body = post_events(analyst, events)

    assert body["events"] == 2000


def test_events_body_over_16_mib_is_413(analyst):
    response = analyst.client.post(
        "/events",
        data=b"[" + b" " * (16 * 1024 * 1024) + b"]",
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 413


def test_ingestion_is_audited_once_per_request(app, analyst, medium_rule):
    post_events(analyst, [EVIL_EVENT] * 3)

    with app.app_context():
        entry = db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "events.ingest")
        ).one()
    assert entry.details["events"] == 3
    assert entry.details["matches"] == 3
    assert entry.details["alerts_created"] == 1


# --- the OpenAPI document tells the truth ---------------------------------------------------


def test_detection_responses_match_the_openapi_document(client, analyst, high_rule):
    document = client.get("/openapi.json").get_json()
    ingest = post_events(analyst, EVIL_EVENT)
    alert_id = ingest["alerts"][0]["id"]
    medium = create_sigma_rule(analyst, ENCODED_POWERSHELL, level="medium")
    medium_alert = post_events(analyst, {**EVIL_EVENT, "Computer": "ws-99"})["alerts"][1]
    escalation = analyst.client.post(f"/alerts/{medium_alert['id']}/escalate").get_json()
    dry_run = analyst.client.post(f"/rules/{medium['id']}/test", json={"events": [EVIL_EVENT]})

    assert_matches(document, "IngestResult", ingest)
    assert_matches(document, "Alert", analyst.client.get(f"/alerts/{alert_id}").get_json())
    assert_matches(document, "AlertPage", analyst.client.get("/alerts").get_json())
    assert_matches(document, "Escalation", escalation)
    assert_matches(document, "DryRun", dry_run.get_json())
    assert_matches(document, "Rule", medium)
    assert_matches(document, "RulePage", analyst.client.get("/rules").get_json())


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_a_non_finite_number_in_an_event_is_refused_with_400_naming_the_field(
    app, analyst, medium_rule, number
):
    body = json.dumps([EVIL_EVENT, EVIL_EVENT]).replace("}]", f', "score": {number}}}]')

    response = analyst.client.post(
        "/events", data=body, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert list(response.get_json()["errors"]) == ["[1].score"]
    assert count(app, Alert) == 0
