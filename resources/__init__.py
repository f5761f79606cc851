"""Flask-RESTful resources, one module per area; each module's ``register(api)`` adds its routes.

Resources are the thin edge: read the request, validate it with a schema, call one
operation, shape the response. Rules live in the models and in ``security/``.
"""

from __future__ import annotations

from flask_restful import Api

from resources import (
    api_keys,
    audit,
    auth,
    blocks,
    detection,
    docs,
    health,
    incidents,
    iocs,
    metrics,
    notifications,  # automation (issue 16)
    openapi,
    reports,
    sla_policies,
    stix,
    taxii,
    webhooks,  # automation (issue 16)
)

AREAS = [
    auth,
    health,
    incidents,
    iocs,
    detection,
    api_keys,
    metrics,
    blocks,
    audit,
    stix,
    taxii,
    sla_policies,
    reports,
    webhooks,  # automation (issue 16)
    notifications,  # automation (issue 16)
    openapi,
    docs,
]


def register_resources(api: Api) -> None:
    for area in AREAS:
        area.register(api)
