"""``Idempotency-Key`` on every create endpoint: a retry with the same key and body replays
the first answer (one row), another body is 422, and a replay never hands out an object
deleted since, nor a secret shown once."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from models import (
    Alert,
    ApiKey,
    DetectionRule,
    IdempotencyRecord,
    Incident,
    Ioc,
    TaxiiCollection,
    TaxiiFeed,
    TimelineEntry,
    User,
    db,
)
from resources.openapi import document_for
from tests.detection_support import create_sigma_rule, post_events
from tests.helpers import STRONG_PASSWORD
from tests.unit.sigma_support import rule_yaml

pytest_plugins = ("tests.taxii_fixtures",)

SEED_DETECTION = {"ioc": {"type": "domain", "value": "evil.example.net"}}
ENCODED_POWERSHELL = {
    "selection": {"CommandLine|contains": "-EncodedCommand"},
    "condition": "selection",
}


@dataclass(frozen=True)
class CreateEndpoint:
    """One create endpoint: how to reach it with a valid body, and what it stores."""

    name: str
    model: type
    path: Callable[[Any], str]
    body: dict[str, Any]
    other_body: dict[str, Any]


def _incident_path(admin) -> str:
    response = admin.client.post("/incidents", json={"title": "Phish", "severity": "low"})
    return f"/incidents/{response.get_json()['id']}/comments"


def _alert_path(admin) -> str:
    create_sigma_rule(admin, ENCODED_POWERSHELL, level="medium")
    alert = post_events(admin, {"CommandLine": "powershell -EncodedCommand SQBFAFgA"})
    return f"/alerts/{alert['alerts'][0]['id']}/escalate"


ENDPOINTS = [
    CreateEndpoint(
        "incident",
        Incident,
        lambda admin: "/incidents",
        {"title": "Phish", "severity": "low"},
        {"title": "Other", "severity": "low"},
    ),
    CreateEndpoint(
        "comment",
        TimelineEntry,
        _incident_path,
        {"body": "Blocked the sender"},
        {"body": "Another note"},
    ),
    CreateEndpoint(
        "ioc",
        Ioc,
        lambda admin: "/iocs",
        {"value": "evil.example.com"},
        {"value": "other.example.com"},
    ),
    CreateEndpoint(
        "rule",
        DetectionRule,
        lambda admin: "/rules",
        {"name": "Seed", "severity": "low", "detection": SEED_DETECTION},
        {"name": "Seed 2", "severity": "low", "detection": SEED_DETECTION},
    ),
    CreateEndpoint(
        "escalation",
        Incident,
        _alert_path,
        {"title": "Encoded PowerShell"},
        {"title": "Something else"},
    ),
    CreateEndpoint(
        "alert",
        Alert,
        lambda admin: "/alerts",
        {"source": "splunk", "source_ref": "n-1", "title": "Beacon", "severity": "low"},
        {"source": "splunk", "source_ref": "n-2", "title": "Beacon", "severity": "low"},
    ),
    CreateEndpoint(
        "user",
        User,
        lambda admin: "/auth/register",
        {"username": "newcomer", "password": STRONG_PASSWORD, "role": "viewer"},
        {"username": "newcomer2", "password": STRONG_PASSWORD, "role": "viewer"},
    ),
    CreateEndpoint(
        "collection",
        TaxiiCollection,
        lambda admin: "/taxii/collections",
        {"title": "Shared"},
        {"title": "Other"},
    ),
]


def _rows(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def _feed_endpoint(live_server: str) -> CreateEndpoint:
    body = {"name": "partner", "api_root_url": f"{live_server}/taxii2/api/", "collection_id": "c1"}
    return CreateEndpoint(
        "feed", TaxiiFeed, lambda admin: "/taxii/feeds", body, {**body, "name": "other"}
    )


@pytest.fixture(params=[*ENDPOINTS, "feed"], ids=[*(e.name for e in ENDPOINTS), "feed"])
def endpoint(request) -> CreateEndpoint:
    if request.param == "feed":
        request.getfixturevalue("taxii_settings")
        return _feed_endpoint(request.getfixturevalue("live_server"))
    return request.param


def test_every_create_operation_documents_the_idempotency_key(app):
    document = document_for(app)
    creates = [
        f"POST {path}"
        for path, operations in document["paths"].items()
        if "201" in operations.get("post", {}).get("responses", {})
    ]
    lacking = [
        name
        for name in creates
        if "Idempotency-Key"
        not in {
            parameter.get("name") for parameter in document["paths"][name[5:]]["post"]["parameters"]
        }
    ]
    assert len(creates) >= 9
    assert lacking == []


def test_a_retry_with_the_same_key_replays_the_first_answer(app, admin, endpoint):
    path = endpoint.path(admin)
    before = _rows(app, endpoint.model)
    headers = {"Idempotency-Key": f"retry-{endpoint.name}"}

    first = admin.client.post(path, json=endpoint.body, headers=headers)
    second = admin.client.post(path, json=endpoint.body, headers=headers)

    assert first.status_code == 201, first.get_json()
    assert second.status_code == 201, second.get_json()
    assert second.get_json() == first.get_json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers.get("Location") == first.headers.get("Location")
    assert _rows(app, endpoint.model) == before + 1


def test_the_same_key_with_another_body_is_422_and_creates_nothing(app, admin, endpoint):
    path = endpoint.path(admin)
    headers = {"Idempotency-Key": f"reuse-{endpoint.name}"}
    assert admin.client.post(path, json=endpoint.body, headers=headers).status_code == 201
    created = _rows(app, endpoint.model)

    response = admin.client.post(path, json=endpoint.other_body, headers=headers)

    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert "Idempotency-Key" in response.get_json()["detail"]
    assert _rows(app, endpoint.model) == created


def test_the_same_key_on_another_incident_does_not_replay_a_comment(app, admin):
    headers = {"Idempotency-Key": "comment-1"}
    body = {"body": "Blocked the sender"}
    assert admin.client.post(_incident_path(admin), json=body, headers=headers).status_code == 201

    response = admin.client.post(_incident_path(admin), json=body, headers=headers)

    assert response.status_code == 422
    assert _rows(app, TimelineEntry) == 3  # two "created" entries and the first comment


@pytest.mark.parametrize(
    ("path", "body", "item"),
    [
        ("/iocs", {"value": "evil.example.com"}, "/iocs/{id}"),
        (
            "/rules",
            {"name": "Seed", "severity": "low", "detection": SEED_DETECTION},
            "/rules/{id}",
        ),
        ("/taxii/collections", {"title": "Shared"}, "/taxii/collections/{id}"),
    ],
)
def test_a_replay_after_the_object_was_deleted_is_409_not_its_stale_id(
    app, admin, path, body, item
):
    headers = {"Idempotency-Key": "deleted-since"}
    first = admin.client.post(path, json=body, headers=headers).get_json()
    assert admin.client.delete(item.format(id=first["id"])).status_code == 204

    replay = admin.client.post(path, json=body, headers=headers)

    assert replay.status_code == 409
    assert replay.mimetype == "application/problem+json"
    assert "deleted" in replay.get_json()["detail"]
    assert "id" not in replay.get_json()
    fresh = admin.client.post(path, json=body, headers={"Idempotency-Key": "a-new-key"})
    assert fresh.status_code == 201


def test_an_api_key_is_never_stored_with_its_key_and_a_replay_is_409_naming_it(app, analyst):
    headers = {"Idempotency-Key": "issue-1"}
    body = {"name": "ci", "scopes": ["iocs:read"]}
    first = analyst.client.post("/api-keys", json=body, headers=headers)
    assert first.status_code == 201
    issued = first.get_json()

    replay = analyst.client.post("/api-keys", json=body, headers=headers)

    assert replay.status_code == 409
    assert replay.get_json()["id"] == issued["id"]
    assert issued["key"] not in replay.get_data(as_text=True)
    assert _rows(app, ApiKey) == 1
    with app.app_context():
        stored = db.session.scalars(select(IdempotencyRecord)).one()
        assert issued["key"] not in str(stored.response_body)
        assert issued["key"] not in str(stored.response_headers)


def test_the_stored_fingerprint_is_keyed_so_a_password_cannot_be_tested_offline(app, admin):
    raw = json.dumps({"username": "newcomer", "password": STRONG_PASSWORD, "role": "viewer"})
    headers = {"Idempotency-Key": "user-1", "Content-Type": "application/json"}
    response = admin.client.request("POST", "/auth/register", data=raw, headers=headers)
    assert response.status_code == 201
    with app.app_context():
        stored = db.session.scalars(select(IdempotencyRecord)).one()
    assert stored.request_fingerprint != hashlib.sha256(raw.encode()).hexdigest()


def test_sigma_uploads_with_the_same_key_and_another_query_are_different_requests(app, admin):
    text = rule_yaml(ENCODED_POWERSHELL, level="medium")
    headers = {"Idempotency-Key": "sigma-1", "Content-Type": "application/yaml"}
    first = admin.client.request("POST", "/rules", data=text, headers=headers)
    assert first.status_code == 201

    second = admin.client.request("POST", "/rules?enabled=false", data=text, headers=headers)

    assert second.status_code == 422
    assert _rows(app, DetectionRule) == 1
