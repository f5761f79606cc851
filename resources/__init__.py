"""Flask-RESTful resources, one module per area; each module's ``register(api)`` adds its routes.

Resources are the thin edge: read the request, validate it with a schema, call one
operation, shape the response. Rules live in the models and in ``security/``.
"""

from __future__ import annotations

from flask_restful import Api

from resources import (
    api_keys,
    attack,
    audit,
    auth,
    blocks,
    comments,
    custom_fields,
    detection,
    docs,
    evidence,
    health,
    incident_links,
    incident_templates,
    incidents,
    iocs,
    metrics,
    notifications,  # automation (issue 16)
    openapi,
    reports,
    sla_policies,
    sso,  # identity
    stix,
    tasks,
    taxii,
    users,  # identity
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
    users,  # identity
    sso,  # identity
    webhooks,  # automation (issue 16)
    # case work, part A
    incident_links,
    attack,
    notifications,  # automation (issue 16)
    # case work (issue 15, part B)
    tasks,
    incident_templates,
    custom_fields,
    evidence,
    comments,
    openapi,
    docs,
]


def register_resources(api: Api) -> None:
    for area in AREAS:
        area.register(api)
