"""Alerts from other tools (``POST /alerts``, ``POST /alerts/bulk``): one model and list
with the rules' alerts, resends counted into one alert (also when they arrive at once),
observables checked against the IOC store (CIDR-aware), and who may see what."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from models import Alert, AlertObservable
from tests.servers import running_gunicorn
from tests.suite_guards import GUARDS_KEY

SIEM_ALERT = {
    "source": "splunk",
    "source_ref": "notable-1001",
    "title": "Beaconing to a known C2 network",
    "severity": "high",
    "tags": ["C2", "beaconing"],
    "techniques": ["t1071.001"],
    "observables": [
        {"type": "ipv4", "value": "203.0.113.77"},
        {"type": "hostname", "value": "WS-042.corp.example"},
        {"type": "user", "value": "CORP\\alice"},
    ],
    "raw": {"search_name": "C2 beacon", "dest": "203.0.113.77"},
}


def alert_rows(app) -> list[Alert]:
    with app.app_context():
        from models import db

        return list(db.session.scalars(select(Alert).order_by(Alert.id)))


def post_alert(user, **changes):
    return user.client.post("/alerts", json={**SIEM_ALERT, **changes})


def test_siem_alert_is_created_with_its_fields(analyst):
    response = post_alert(analyst)

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert response.headers["Location"] == f"/alerts/{body['id']}"
    assert body["source"] == "splunk"
    assert body["source_ref"] == "notable-1001"
    assert body["rule_id"] is None and body["rule_name"] is None
    assert body["title"] == SIEM_ALERT["title"]
    assert body["tags"] == ["beaconing", "c2"]
    assert body["techniques"] == ["T1071.001"]
    assert body["count"] == 1
    assert body["status"] == "open"
    assert body["sample_event"] == SIEM_ALERT["raw"]
    assert {(o["type"], o["value"]) for o in body["observables"]} == {
        ("ipv4", "203.0.113.77"),
        ("hostname", "ws-042.corp.example"),
        ("user", "CORP\\alice"),
    }


def test_three_alerts_two_sharing_a_source_ref_become_two_alerts(app, analyst):
    first = post_alert(analyst)
    again = post_alert(analyst, observables=[{"type": "md5", "value": "A" * 32}])
    other = post_alert(analyst, source_ref="notable-1002", title="Other")

    assert [first.status_code, again.status_code, other.status_code] == [201, 200, 201]
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.get_json()["count"] == 2
    assert ("md5", "a" * 32) in {(o["type"], o["value"]) for o in again.get_json()["observables"]}
    assert sorted(alert.count for alert in alert_rows(app)) == [1, 2]


def test_a_retry_with_its_idempotency_key_counts_nothing_twice(app, analyst):
    headers = {"Idempotency-Key": "siem-delivery-1"}
    first = analyst.client.post("/alerts", json=SIEM_ALERT, headers=headers)
    retry = analyst.client.post("/alerts", json=SIEM_ALERT, headers=headers)
    resend = post_alert(analyst)

    assert [first.status_code, retry.status_code, resend.status_code] == [201, 201, 200]
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.get_json() == first.get_json()
    assert resend.get_json()["count"] == 2
    assert [alert.count for alert in alert_rows(app)] == [2]


def test_a_bulk_retry_with_its_idempotency_key_counts_nothing_twice(app, analyst):
    batch = {"alerts": [SIEM_ALERT, {**SIEM_ALERT, "source_ref": "notable-1002"}]}
    headers = {"Idempotency-Key": "siem-batch-1"}
    first = analyst.client.post("/alerts/bulk", json=batch, headers=headers)
    retry = analyst.client.post("/alerts/bulk", json=batch, headers=headers)

    assert [first.status_code, retry.status_code] == [200, 200]
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.get_json() == first.get_json()
    assert [alert.count for alert in alert_rows(app)] == [1, 1]


def test_concurrent_resends_fold_into_one_alert(app, analyst):
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def send() -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post(
            "/alerts",
            json=SIEM_ALERT,
            headers={"Authorization": f"Bearer {analyst.token}"},
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200, 200, 200, 201]
    (alert,) = alert_rows(app)
    assert alert.count == 4
    with app.app_context():
        from models import db

        observables = db.session.scalar(select(func.count()).select_from(AlertObservable))
    assert observables == 3


@pytest.mark.slow
def test_concurrent_retries_to_two_gunicorn_workers_fold_into_one_alert(
    app, database_url, analyst, request
):
    log_directory = request.config.stash[GUARDS_KEY].log_directory
    unlimited = {"RATELIMIT_DEFAULT": "100000 per minute", "RATELIMIT_PER_IP": "100000 per minute"}
    headers = {"Authorization": f"Bearer {analyst.token}"}
    with (
        running_gunicorn(database_url, log_directory, workers=2, **unlimited) as server,
        ThreadPoolExecutor(max_workers=8) as pool,
    ):
        answers = list(
            pool.map(lambda _: server.request("POST", "/alerts", headers, SIEM_ALERT), range(8))
        )

    assert sorted(answer.status for answer in answers) == [200] * 7 + [201]
    assert len({answer.json()["id"] for answer in answers}) == 1
    (alert,) = alert_rows(app)
    assert alert.count == 8


def test_concurrent_bulk_batches_carrying_the_same_alerts_fold(app, analyst):
    batch = [{**SIEM_ALERT, "source_ref": f"n-{number}"} for number in range(50)]
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def send(items) -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post(
            "/alerts/bulk",
            json={"alerts": items},
            headers={"Authorization": f"Bearer {analyst.token}"},
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=send, args=(items,)) for items in (batch, batch[::-1])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200, 200]
    rows = alert_rows(app)
    assert len(rows) == 50
    assert {alert.count for alert in rows} == {2}


def test_bulk_folds_repeats_within_the_batch_and_reports_each_item(analyst):
    items = [SIEM_ALERT, {**SIEM_ALERT, "source_ref": "notable-1002"}, SIEM_ALERT]

    response = analyst.client.post("/alerts/bulk", json={"alerts": items})

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["received"], body["created"], body["updated"]) == (3, 2, 1)
    first, second, third = body["alerts"]
    assert first["id"] == third["id"] != second["id"]
    assert [first["created"], second["created"], third["created"]] == [True, True, False]
    assert first["count"] == 2


def test_bulk_over_1000_alerts_is_400(analyst):
    items = [{**SIEM_ALERT, "source_ref": str(number)} for number in range(1001)]

    response = analyst.client.post("/alerts/bulk", json={"alerts": items})

    assert response.status_code == 400


def test_bulk_with_one_bad_observable_writes_nothing_and_names_it(app, analyst):
    bad = {**SIEM_ALERT, "source_ref": "x", "observables": [{"type": "ipv4", "value": "999.1.1.1"}]}

    response = analyst.client.post("/alerts/bulk", json={"alerts": [SIEM_ALERT, bad]})

    assert response.status_code == 422
    assert "1.observables.0.value" in response.get_json()["errors"]
    assert alert_rows(app) == []


def test_observable_inside_a_stored_network_is_flagged_with_the_ioc_id(analyst):
    network = analyst.client.post("/iocs", json={"type": "cidr", "value": "203.0.113.0/24"})
    assert network.status_code == 201
    network_id = network.get_json()["id"]

    body = post_alert(analyst).get_json()

    flagged = {o["value"]: o for o in body["observables"]}
    assert flagged["203.0.113.77"]["known_bad"] is True
    assert flagged["203.0.113.77"]["ioc_ids"] == [network_id]
    assert flagged["ws-042.corp.example"]["known_bad"] is False
    assert flagged["ws-042.corp.example"]["ioc_ids"] == []


def test_hostname_is_checked_as_a_domain(analyst):
    domain = analyst.client.post("/iocs", json={"type": "domain", "value": "ws-042.corp.example"})

    body = post_alert(analyst).get_json()

    flagged = {o["value"]: o for o in body["observables"]}
    assert flagged["ws-042.corp.example"]["ioc_ids"] == [domain.get_json()["id"]]


def test_a_red_ioc_is_not_named_on_an_alert_every_reader_sees(admin, analyst):
    admin.client.post("/iocs", json={"type": "cidr", "value": "203.0.113.0/24", "tlp": "red"})

    body = post_alert(analyst).get_json()

    flagged = {o["value"]: o for o in body["observables"]}
    assert flagged["203.0.113.77"] == {
        "type": "ipv4",
        "value": "203.0.113.77",
        "known_bad": False,
        "ioc_ids": [],
    }


def test_raw_original_over_the_cap_is_422(app, analyst):
    response = post_alert(analyst, raw={"blob": "x" * (64 * 1024)})

    assert response.status_code == 422
    assert "0.raw" in response.get_json()["errors"]
    assert alert_rows(app) == []


def test_malformed_technique_is_400(analyst):
    response = post_alert(analyst, techniques=["T15"])

    assert response.status_code == 400
    assert "techniques" in response.get_json()["errors"]


def test_unknown_observable_type_and_extra_fields_are_400(analyst):
    assert post_alert(analyst, observables=[{"type": "mutex", "value": "x"}]).status_code == 400
    assert post_alert(analyst, status="escalated").status_code == 400
    assert post_alert(analyst, count=99).status_code == 400
    assert post_alert(analyst, incident_id=1).status_code == 400


def test_viewer_cannot_post_alerts(viewer):
    assert post_alert(viewer).status_code == 403
    assert viewer.client.post("/alerts/bulk", json={"alerts": [SIEM_ALERT]}).status_code == 403


def test_tool_and_rule_alerts_share_one_list_with_filters(analyst):
    post_alert(analyst)
    post_alert(analyst, source_ref="b", tags=["other"], techniques=["T1566"], tlp="green")
    rule = analyst.client.post(
        "/rules",
        json={
            "name": "evil ip",
            "severity": "low",
            "detection": {"ioc": {"type": "ip", "value": "198.51.100.9"}},
        },
    )
    assert rule.status_code == 201
    analyst.client.post("/events", json={"src_ip": "198.51.100.9"})

    def listed(query: str) -> list[str | None]:
        response = analyst.client.get(f"/alerts?{query}")
        assert response.status_code == 200, response.get_json()
        return sorted(str(item["source_ref"]) for item in response.get_json()["items"])

    assert listed("") == ["None", "b", "notable-1001"]
    assert listed("source=splunk") == ["b", "notable-1001"]
    assert listed("tag=C2") == ["notable-1001"]
    assert listed("tag=other") == ["b"]
    assert listed("technique=t1566") == ["b"]
    assert listed("tlp=green") == ["b"]


def test_a_red_alert_is_hidden_from_other_non_admins(app, client, analyst, viewer, admin):
    alert_id = post_alert(analyst, tlp="red").get_json()["id"]

    assert viewer.client.get(f"/alerts/{alert_id}").status_code == 404
    assert viewer.client.get("/alerts").get_json()["items"] == []
    assert analyst.client.get(f"/alerts/{alert_id}").status_code == 200
    assert admin.client.get(f"/alerts/{alert_id}").status_code == 200


def test_intake_is_one_event_per_alert(app, analyst):
    from models import AuditEntry

    post_alert(analyst)
    post_alert(analyst)

    with app.app_context():
        from models import db

        actions = list(
            db.session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.object_type == "alert")
                .order_by(AuditEntry.id)
            )
        )
    assert actions == ["alert.create", "alert.group"]


def test_rule_efficacy_rates_rules_only_not_tool_alerts(analyst):
    post_alert(analyst)

    response = analyst.client.get("/reports/rules", query_string={"by": "rule"})

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["rows"] == []
