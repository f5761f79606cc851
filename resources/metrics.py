"""``/metrics``: Prometheus text exposition, for a scraper holding ``METRICS_TOKEN`` or an admin.

What is measured lives in :mod:`security.modules.metrics`.
"""

from __future__ import annotations

from flask import current_app
from flask_restful import Resource

from auth import authorize
from resources.openapi import Content, Operation
from security.modules.metrics import render_latest
from security.modules.principals import bearer_credential
from security.modules.utils import constant_time_equals


def _holds_metrics_token() -> bool:
    """A scraper's static token, compared in constant time; unset means scrapers must log in."""
    expected = current_app.config["METRICS_TOKEN"]
    given = bearer_credential()
    return bool(expected) and given is not None and constant_time_equals(given, expected)


class Metrics(Resource):
    openapi = {
        "get": Operation(
            "Prometheus metrics (an admin, or the METRICS_TOKEN as bearer)",
            permission="metrics:admin",
            responses={200: Content("text/plain", {"type": "string"})},
        )
    }

    def get(self):
        if not _holds_metrics_token():
            authorize("metrics:admin")
        return render_latest()


def register(api) -> None:
    api.add_resource(Metrics, "/metrics")
