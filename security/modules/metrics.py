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
from collections.abc import Sequence

from flask import Flask, Response, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

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
    """The text exposition format, merged across worker processes when there are several."""
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
