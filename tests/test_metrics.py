"""/metrics: protected, Prometheus text, the counters the issue names, merged across workers."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from tests.servers import running_gunicorn

METRICS_TOKEN = "metrics-token-for-tests-0123456789abcdef"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_need_a_credential(client):
    assert client.get("/metrics").status_code == 401


def test_analysts_may_not_read_metrics(analyst):
    assert analyst.client.get("/metrics").status_code == 403


def test_admins_read_metrics_in_prometheus_text_format(admin):
    response = admin.client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {"auth_attempts", "http_request_duration_seconds"} <= names


def test_the_metrics_token_opens_metrics(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "METRICS_TOKEN", METRICS_TOKEN)
    assert client.with_token(METRICS_TOKEN).get("/metrics").status_code == 200
    assert client.with_token(METRICS_TOKEN[:-1] + "X").get("/metrics").status_code == 401


def test_login_attempts_are_counted_by_outcome(client, admin):
    before = sample("auth_attempts_total", status="failure")
    client.post("/auth/login", json={"username": "admin1", "password": "Wrong-Password-123"})
    assert sample("auth_attempts_total", status="failure") == before + 1


def test_created_incidents_are_counted_by_severity(analyst):
    before = sample("security_incidents_total", severity="critical")
    response = analyst.client.post(
        "/incidents", json={"title": "Ransomware on file server", "severity": "critical"}
    )
    assert response.status_code == 201
    assert sample("security_incidents_total", severity="critical") == before + 1


def test_request_durations_are_labelled_by_route_rule_not_raw_path(analyst):
    labels = {"endpoint": "/incidents/<int:incident_id>", "method": "GET", "status": "404"}
    before = sample("http_request_duration_seconds_count", **labels)
    analyst.client.get("/incidents/424242")
    assert sample("http_request_duration_seconds_count", **labels) == before + 1


def test_rate_limit_rejections_are_counted(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_PER_IP", "1 per minute")
    before = sample("rate_limit_rejections_total", endpoint="/auth/me")
    client.get("/auth/me")
    client.get("/auth/me")
    assert sample("rate_limit_rejections_total", endpoint="/auth/me") == before + 1


@pytest.mark.slow
def test_metrics_add_up_every_gunicorn_worker(database_url, suite_guards):
    requests = 40
    with running_gunicorn(
        database_url, suite_guards.log_directory, workers=2, METRICS_TOKEN=METRICS_TOKEN
    ) as server:
        server.request_many(requests, "GET", "/auth/me")
        served_by = server.pids_that_served("/auth/me")
        scrape = server.request("GET", "/metrics", {"Authorization": f"Bearer {METRICS_TOKEN}"})
    counted = sum(
        item.value
        for family in text_string_to_metric_families(scrape.body.decode())
        for item in family.samples
        if item.name == "http_request_duration_seconds_count"
        and item.labels["endpoint"] == "/auth/me"
    )
    assert len(served_by) == 2
    assert counted == requests
