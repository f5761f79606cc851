"""Prometheus metrics: what is counted, how each request is timed, and the text exposition.

Counters of state changes are fed by :func:`count_state_changes`, a subscriber of the
domain events (:mod:`security.events`), so they count only what committed.

Under gunicorn every worker is a separate process; ``gunicorn.conf.py`` sets
``PROMETHEUS_MULTIPROC_DIR`` before any worker starts, prometheus-client then keeps each
worker's values in files there, and :func:`render_latest` merges them, so a scrape sees
the whole server whichever worker answers it. Without that variable (tests, ``flask
run``) the process's own registry is served.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

from flask import Flask, Response, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from security.events import Event, EventType

AUTH_ATTEMPTS = Counter(
    "auth_attempts_total",
    "Login attempts by outcome (success, failure, blocked, invalid).",
    ["status"],
)
SECURITY_INCIDENTS = Counter(
    "security_incidents_total", "Security incidents created, by severity.", ["severity"]
)
STATE_CHANGES = Counter(
    "domain_events_total", "Committed state changes, by domain event type.", ["type"]
)
RATE_LIMIT_REJECTIONS = Counter(
    "rate_limit_rejections_total", "Requests refused by a rate limit, by route.", ["endpoint"]
)
REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to answer a request, by route rule (not raw path), method and status.",
    ["endpoint", "method", "status"],
)
LOGIN_RULE = "/auth/login"
# How a login's HTTP status reads as an attempt outcome; other statuses are malformed input.
LOGIN_OUTCOMES = {200: "success", 401: "failure", 429: "blocked"}


def route_label() -> str:
    """The route rule (``/incidents/<int:incident_id>``): bounded, unlike raw paths."""
    return request.url_rule.rule if request.url_rule is not None else "<unmatched>"


def observe_request(response: Response, duration_seconds: float) -> None:
    """Record the request's duration and, for logins, the attempt's outcome."""
    rule = route_label()
    REQUEST_DURATION.labels(
        endpoint=rule, method=request.method, status=str(response.status_code)
    ).observe(duration_seconds)
    if rule == LOGIN_RULE and request.method == "POST":
        AUTH_ATTEMPTS.labels(status=LOGIN_OUTCOMES.get(response.status_code, "invalid")).inc()


def count_state_changes(app: Flask, events: Sequence[Event]) -> None:
    """Subscriber of :data:`security.events.committed`: each committed event by type, and
    incidents opened by severity."""
    for event in events:
        STATE_CHANGES.labels(type=event.type.value).inc()
        if event.type is EventType.INCIDENT_CREATED:
            SECURITY_INCIDENTS.labels(severity=event.data["severity"]).inc()


def render_latest() -> Response:
    """The text exposition format, merged across worker processes when there are several,
    followed by the job queue's metrics (:data:`AUTOMATION_REGISTRY`)."""
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    body = generate_latest(registry) + generate_latest(AUTOMATION_REGISTRY)
    return Response(body, content_type=CONTENT_TYPE_LATEST)


# --- automation (issue 16) --------------------------------------------------------------


class AutomationCollector(Collector):
    """The job queue and the webhook deliveries, read from the database at each scrape.

    Workers run in other processes, often on other machines, so their in-process
    counters would reach no scrape of the API; the database holds the truth for all of
    them: jobs by state, deliveries by status, failed attempts and dead letters by target
    (the webhook's host), and the commit-to-delivery latency of the last
    :data:`LATENCY_WINDOW_MINUTES`.
    """

    def collect(self) -> Iterator[Metric]:
        from security.modules import jobs, webhooks

        queue = GaugeMetricFamily(
            "job_queue_jobs", "Jobs in the queue, by state.", labels=["state"]
        )
        for state, count in jobs.queue_counts().items():
            queue.add_metric([state], count)
        yield queue
        deliveries = GaugeMetricFamily(
            "webhook_deliveries",
            "Webhook deliveries, by status (failed: dead letters).",
            labels=["status"],
        )
        for status, count in webhooks.delivery_counts().items():
            deliveries.add_metric([status], count)
        yield deliveries
        failures = GaugeMetricFamily(
            "webhook_delivery_failed_attempts",
            "Failed delivery attempts of the stored deliveries, by target host.",
            labels=["target"],
        )
        dead = GaugeMetricFamily(
            "webhook_delivery_dead_letters",
            "Deliveries that ran out of attempts, by target.",
            labels=["target"],
        )
        for target, (failed_attempts, dead_letters) in webhooks.failures_by_target().items():
            failures.add_metric([target], failed_attempts)
            dead.add_metric([target], dead_letters)
        yield failures
        yield dead
        latency = GaugeMetricFamily(
            "webhook_delivery_latency_seconds",
            f"Commit-to-delivery time of the deliveries of the last {LATENCY_WINDOW_MINUTES} "
            "minutes, by quantile.",
            labels=["quantile"],
        )
        for quantile, seconds in webhooks.delivery_latency(LATENCY_WINDOW_MINUTES).items():
            latency.add_metric([str(quantile)], seconds)
        yield latency


LATENCY_WINDOW_MINUTES = 15
AUTOMATION_REGISTRY = CollectorRegistry(auto_describe=False)
AUTOMATION_REGISTRY.register(AutomationCollector())
