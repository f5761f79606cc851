"""Every answer has exactly the fields its OpenAPI schema declares, for every endpoint.

One scenario makes a real request (real PostgreSQL) for each documented operation; every
success answer with a JSON body is compared, recursively, with the schema its operation
declares for that status: a field the schema lacks, or one it declares that the answer
lacks, fails. A documented operation the scenario does not reach fails too, so a new
endpoint must be added here.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest
from flask import request_finished
from marshmallow import Schema

from models.vocabulary import SEVERITIES
from resources.openapi import openapi_path
from schemas.common import ResponseSchema
from tests.helpers import STRONG_PASSWORD
from tests.sso_support import provider_user, sign_in
from tests.taxii_helpers import create_collection, feed_body, stix_indicator

pytest_plugins = ("tests.taxii_fixtures", "tests.sso_support")

INDICATOR_ID = "indicator--0a2002df-23be-413c-803d-3bb622eb5451"
Answer = tuple[str, int, Any]


def _resolve(document: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def shape_mismatches(document: dict, schema: dict, body: Any, where: str = "") -> list[str]:
    """Where ``body`` has a key ``schema`` does not declare, or lacks one it declares,
    in every object nested in it (declared objects only: free-form ones have no fields)."""
    schema = _resolve(document, schema)
    if isinstance(body, list) and "items" in schema:
        return [
            problem
            for index, item in enumerate(body)
            for problem in shape_mismatches(document, schema["items"], item, f"{where}[{index}]")
        ]
    if not isinstance(body, dict) or "properties" not in schema:
        return []
    declared, sent = set(schema["properties"]), set(body)
    problems = [f"{where or '.'}: {name} is not declared" for name in sorted(sent - declared)]
    problems += [f"{where or '.'}: {name} is missing" for name in sorted(declared - sent)]
    for name in sorted(declared & sent):
        child = schema["properties"][name]
        problems += shape_mismatches(document, child, body[name], f"{where}.{name}")
    return problems


@pytest.fixture
def answers(app) -> Iterator[list[Answer]]:
    """Each success answer of the test, as (``METHOD /openapi/path``, status, JSON body)."""
    recorded: list[Answer] = []

    def record(sender, response, **extra) -> None:
        from flask import request

        if request.url_rule is not None and 200 <= response.status_code < 300:
            operation = f"{request.method} {openapi_path(request.url_rule)}"
            body = response.get_json(silent=True) if response.is_json else None
            recorded.append((operation, response.status_code, body))

    request_finished.connect(record, app)
    yield recorded
    request_finished.disconnect(record, app)


def _ok(response, status: int = 200) -> Any:
    assert response.status_code == status, response.get_json(silent=True)
    return response.get_json(silent=True)


def exercise_auth_and_health(client, admin) -> None:
    login = {"username": admin.username, "password": STRONG_PASSWORD}
    _ok(client.with_token(None).post("/auth/login", json=login))
    _ok(admin.client.get("/auth/me"))
    user = {"username": "shape-viewer", "password": STRONG_PASSWORD, "role": "viewer"}
    _ok(admin.client.post("/auth/register", json=user), 201)
    _ok(client.get("/health"))
    _ok(client.get("/ready"))


def exercise_incidents(admin) -> int:
    incident = {"title": "Shape", "severity": "high", "assignee": admin.username}
    incident_id = _ok(admin.client.post("/incidents", json=incident), 201)["id"]
    path = f"/incidents/{incident_id}"
    _ok(admin.client.get("/incidents"))
    _ok(admin.client.get(path))
    _ok(admin.client.patch(path, json={"description": "edited"}))
    _ok(admin.client.patch(f"{path}/status", json={"status": "triaged"}))
    _ok(admin.client.post(f"{path}/comments", json={"body": "a note"}), 201)
    _ok(admin.client.get(f"{path}/timeline"))
    return incident_id


def exercise_iocs(admin, incident_id: int) -> None:
    ioc = {"value": "evil.example.com", "tags": ["c2"], "expires_at": "2099-01-01T00:00:00Z"}
    ioc_id = _ok(admin.client.post("/iocs", json=ioc), 201)["id"]
    _ok(admin.client.post("/iocs", json=ioc))
    _ok(admin.client.get("/iocs"))
    _ok(admin.client.get(f"/iocs/{ioc_id}"))
    _ok(admin.client.patch(f"/iocs/{ioc_id}", json={"confidence": 70}))
    bulk = {"items": [{"value": "10.0.0.0/8"}, {"value": "not an indicator"}]}
    _ok(admin.client.post("/iocs/bulk", json=bulk))
    _ok(admin.client.get("/iocs/check", query_string={"value": "10.1.2.3"}))
    _ok(admin.client.post("/iocs/check", json={"values": ["10.1.2.3", "nonsense"]}))
    text = "C2 at evil.example.com and 203.0.113[.]5"
    extract = {"text": text, "save": True, "incident_id": incident_id}
    _ok(admin.client.post("/iocs/extract", json=extract))
    _ok(admin.client.post(f"/incidents/{incident_id}/iocs", json={"ioc_ids": [ioc_id]}))
    _ok(admin.client.get(f"/incidents/{incident_id}/iocs"))


def exercise_detection(admin) -> None:
    rule = {
        "name": "Shape rule",
        "severity": "medium",
        "detection": {"ioc": {"type": "domain", "min_confidence": 10}},
    }
    rule_id = _ok(admin.client.post("/rules", json=rule), 201)["id"]
    _ok(admin.client.get("/rules"))
    _ok(admin.client.get(f"/rules/{rule_id}"))
    _ok(admin.client.patch(f"/rules/{rule_id}", json={"description": "edited"}))
    events = [{"dns": "evil.example.com", "host": "h1"}]
    _ok(admin.client.post(f"/rules/{rule_id}/test", json={"events": events}))
    _ok(admin.client.post("/events", json=events))
    _ok(admin.client.post("/events", json=[{"dns": "evil.example.com", "host": "h2"}]))
    alert_ids = [alert["id"] for alert in _ok(admin.client.get("/alerts"))["items"]]
    _ok(admin.client.get(f"/alerts/{alert_ids[0]}"))
    _ok(admin.client.patch(f"/alerts/{alert_ids[0]}", json={"status": "acknowledged"}))
    _ok(admin.client.post(f"/alerts/{alert_ids[-1]}/escalate", json={"title": "x"}), 201)


def exercise_api_keys(admin) -> None:
    key = _ok(admin.client.post("/api-keys", json={"name": "k", "scopes": ["iocs:read"]}), 201)
    _ok(admin.client.with_token(key["key"]).get("/iocs"))
    _ok(admin.client.get("/api-keys"))
    _ok(admin.client.get(f"/api-keys/{key['id']}"))
    _ok(admin.client.post(f"/api-keys/{key['id']}/rotate", json={"grace_seconds": 60}))
    _ok(admin.client.get(f"/api-keys/{key['id']}/usage"))
    _ok(admin.client.get(f"/api-keys/{key['id']}/findings"))


def exercise_stix_and_taxii(admin, live_server: str) -> None:
    bundle = {
        "type": "bundle",
        "id": "bundle--1a2002df-23be-413c-803d-3bb622eb5451",
        "objects": [stix_indicator(INDICATOR_ID, "[domain-name:value = 'stix.example.com']")],
    }
    _ok(admin.client.post("/stix/import", json=bundle))
    collection = create_collection(admin)
    path = f"/taxii/collections/{collection['id']}"
    _ok(admin.client.get("/taxii/collections"))
    _ok(admin.client.get(path))
    _ok(admin.client.patch(path, json={"description": "edited"}))
    credentials = {"auth_type": "basic", "username": admin.username, "password": STRONG_PASSWORD}
    feed = feed_body(live_server, collection, **credentials)
    feed_id = _ok(admin.client.post("/taxii/feeds", json=feed), 201)["id"]
    _ok(admin.client.get("/taxii/feeds"))
    _ok(admin.client.get(f"/taxii/feeds/{feed_id}"))
    _ok(admin.client.patch(f"/taxii/feeds/{feed_id}", json={"page_size": 50}))
    _ok(admin.client.post(f"/taxii/feeds/{feed_id}/poll"))


def exercise_blocks_and_audit(admin, client) -> None:
    for number in range(5):
        wrong = {"username": f"guess-{number}", "password": "Wrong-Password-123"}
        client.with_token(None).post("/auth/login", json=wrong)
    blocks = _ok(admin.client.get("/security/blocks"))["items"]
    _ok(admin.client.delete(f"/security/blocks/{blocks[0]['id']}"))
    _ok(admin.client.get("/audit"))


def exercise_reports(admin, incident_id: int) -> None:
    targets = {"response_minutes": 60, "resolution_minutes": 240}
    policy = {"targets": {severity: targets for severity in SEVERITIES}}
    policy_id = _ok(admin.client.post("/sla-policies", json=policy), 201)["id"]
    _ok(admin.client.get("/sla-policies"))
    _ok(admin.client.get(f"/sla-policies/{policy_id}"))
    _ok(admin.client.get("/reports/metrics", query_string={"group_by": "week,source"}))
    _ok(admin.client.get("/reports/rules"))
    _ok(admin.client.get("/reports/metrics.html"))
    _ok(admin.client.get(f"/incidents/{incident_id}/report"))


def exercise_identity(client, admin) -> None:
    """Users, passwords, sessions, the second factor and single sign-on (identity)."""
    user = {"username": "shape-mfa", "password": STRONG_PASSWORD, "role": "viewer"}
    user_id = _ok(admin.client.post("/auth/register", json=user), 201)["id"]
    _ok(admin.client.get("/users"))
    _ok(admin.client.get(f"/users/{user_id}"))
    edit = {"display_name": "Shape"}
    _ok(admin.client.patch(f"/users/{user_id}", json=edit, headers={"If-Match": '"1"'}))
    login = {"username": "shape-mfa", "password": STRONG_PASSWORD}
    token = _ok(client.with_token(None).post("/auth/login", json=login))["access_token"]
    own = client.with_token(token)
    _ok(own.get("/auth/sessions"))
    uri = _ok(own.post("/auth/mfa/enrol"))["otpauth_uri"]
    totp = pyotp.parse_uri(uri)
    _ok(own.post("/auth/mfa/confirm", json={"code": totp.now()}))
    challenge = _ok(client.with_token(None).post("/auth/login", json=login), 202)["challenge"]
    code = totp.at(time.time() + 30)
    _ok(client.with_token(None).post("/auth/mfa", json={"challenge": challenge, "code": code}))
    _ok(admin.client.delete(f"/users/{user_id}/mfa"), 204)
    _ok(admin.client.delete(f"/users/{user_id}/sessions"))
    reset = {"mode": "token"}
    _ok(admin.client.post(f"/users/{user_id}/password-reset", json=reset))
    provider_user("shape-sso", groups=["soc-analysts"], email="shape-sso@example.org")
    _ok(sign_in(client, "shape-sso"))
    _ok(admin.client.get("/auth/mfa-policy"))
    policy = {"required_roles": ["viewer"]}
    _ok(admin.client.patch("/auth/mfa-policy", json=policy, headers={"If-Match": '"1"'}))


def exercise_webhooks(admin) -> None:
    """automation (issue 16)."""
    hook = {"name": "soar", "url": "https://127.0.0.1:18299/", "event_types": ["incident.create"]}
    webhook_id = _ok(admin.client.post("/webhooks", json=hook), 201)["id"]
    _ok(admin.client.get("/webhooks"))
    _ok(admin.client.get(f"/webhooks/{webhook_id}"))
    _ok(admin.client.patch(f"/webhooks/{webhook_id}", json={"min_severity": "high"}))
    delivery_id = _ok(admin.client.post(f"/webhooks/{webhook_id}/test"), 202)["id"]
    _ok(admin.client.get(f"/webhooks/{webhook_id}/deliveries"))
    _ok(admin.client.post(f"/deliveries/{delivery_id}/redeliver"), 202)
    _ok(admin.client.get("/jobs"))
    _ok(admin.client.delete(f"/webhooks/{webhook_id}"), 204)
    mail = "mailto://127.0.0.1:18260?from=soc@example.com&to=admin@example.com"
    channel = {"name": "mail", "url": mail, "event_types": ["incident.assign"]}
    channel_id = _ok(admin.client.post("/notification-channels", json=channel), 201)["id"]
    _ok(admin.client.get("/notification-channels"))
    _ok(admin.client.get(f"/notification-channels/{channel_id}"))
    _ok(admin.client.patch(f"/notification-channels/{channel_id}", json={"enabled": False}))
    _ok(admin.client.post(f"/notification-channels/{channel_id}/test"), 202)
    _ok(admin.client.delete(f"/notification-channels/{channel_id}"), 204)


# case work, part A: alerts from tools, merges, related incidents, ATT&CK
def exercise_case_alerts(admin, incident_id: int) -> None:
    alert = {
        "source": "siem",
        "source_ref": "shape-1",
        "title": "Shape alert",
        "severity": "low",
        "techniques": ["T1566"],
        "observables": [{"type": "ipv4", "value": "10.1.2.3"}],
    }
    alert_id = _ok(admin.client.post("/alerts", json=alert), 201)["id"]
    _ok(admin.client.post("/alerts", json=alert))
    _ok(admin.client.post("/alerts/bulk", json={"alerts": [{**alert, "source_ref": "shape-2"}]}))
    path = f"/incidents/{incident_id}"
    _ok(admin.client.post(f"{path}/alerts", json={"alert_ids": [alert_id]}))
    _ok(admin.client.get(f"{path}/alerts"))
    _ok(admin.client.get(f"{path}/related"))
    ioc_id = _ok(admin.client.get("/iocs"))["items"][0]["id"]
    _ok(admin.client.get(f"/iocs/{ioc_id}/incidents"))
    _ok(admin.client.delete(f"{path}/alerts/{alert_id}"))
    duplicate = _ok(admin.client.post("/incidents", json={"title": "d", "severity": "low"}), 201)
    _ok(admin.client.post(f"{path}/merge", json={"duplicate_id": duplicate["id"]}))
    pattern = {
        "type": "attack-pattern",
        "spec_version": "2.1",
        "id": "attack-pattern--a62a8db3-f23a-4d8f-afd6-9dbc77e7813b",
        "created": "2020-03-02T18:45:07.892Z",
        "modified": "2023-10-01T02:28:45.147Z",
        "name": "Phishing",
        "external_references": [{"source_name": "mitre-attack", "external_id": "T1566"}],
    }
    bundle = {"type": "bundle", "id": "bundle--2a2002df-23be-413c-803d-3bb622eb5451"}
    _ok(admin.client.post("/stix/import", json={**bundle, "objects": [pattern]}))
    _ok(admin.client.get("/attack/techniques/T1566"))


def exercise_case_work(admin, incident_id: int) -> None:
    """Tasks, templates, custom fields and evidence (issue 15, part B)."""
    field = {"name": "unit", "label": "Unit", "field_type": "choice", "choices": ["it"]}
    field_id = _ok(admin.client.post("/custom-fields", json=field), 201)["id"]
    _ok(admin.client.get("/custom-fields"))
    _ok(admin.client.get(f"/custom-fields/{field_id}"))
    template = {
        "name": "shape",
        "title": "From a template",
        "severity": "low",
        "tasks": [{"title": "First", "mandatory": True}],
        "custom_fields": {"unit": "it"},
    }
    template_id = _ok(admin.client.post("/incident-templates", json=template), 201)["id"]
    base = f"/incident-templates/{template_id}"
    _ok(admin.client.get("/incident-templates"))
    _ok(admin.client.get(base))
    _ok(admin.client.patch(base, json={"severity": "medium"}))
    exported = _ok(admin.client.get(f"{base}/export"))
    _ok(admin.client.post("/incident-templates/import", json=exported))
    _ok(admin.client.post("/incident-templates/import", json={**exported, "name": "copy"}), 201)
    _ok(admin.client.post("/incidents", json={"template": "shape"}), 201)
    _ok(admin.client.get("/incidents", query_string={"custom_field": "unit:it"}))
    tasks = f"/incidents/{incident_id}/tasks"
    task = {"title": "Check", "assignee": admin.username, "due_at": "2099-01-01T00:00:00Z"}
    task_id = _ok(admin.client.post(tasks, json=task), 201)["id"]
    _ok(admin.client.get(tasks))
    _ok(admin.client.get(f"{tasks}/{task_id}"))
    _ok(admin.client.patch(f"{tasks}/{task_id}", json={"status": "in_progress"}))
    _ok(admin.client.get("/tasks", query_string={"assignee": "me", "status": "open"}))
    evidence = f"/incidents/{incident_id}/evidence"
    upload = {"file": (io.BytesIO(b"shape"), "shape.txt", "text/plain")}
    piece = _ok(admin.client.post(evidence, data=upload, content_type="multipart/form-data"), 201)
    _ok(admin.client.get(evidence))
    _ok(admin.client.get(f"{evidence}/{piece['id']}"))
    _ok(admin.client.get(f"{evidence}/{piece['id']}/content"))
    _ok(admin.client.delete(f"{evidence}/{piece['id']}"), 204)
    task_comments = f"{tasks}/{task_id}/comments"
    comment_id = _ok(admin.client.post(task_comments, json={"body": "started"}), 201)["id"]
    _ok(admin.client.get(task_comments))
    _ok(admin.client.patch(f"/comments/{comment_id}", json={"body": "started at 9"}))
    _ok(admin.client.get(f"/comments/{comment_id}"))
    _ok(admin.client.delete(f"/comments/{comment_id}"), 204)
    alert_id = _ok(admin.client.get("/alerts"))["items"][0]["id"]
    _ok(admin.client.post(f"/alerts/{alert_id}/comments", json={"body": "noisy"}), 201)
    _ok(admin.client.get(f"/alerts/{alert_id}/comments"))
    _ok(admin.client.delete(base), 204)
    _ok(admin.client.delete(f"/custom-fields/{field_id}"), 204)


@pytest.fixture
def every_answer(client, admin, answers, taxii_settings, live_server, sso) -> list[Answer]:
    exercise_auth_and_health(client, admin)
    incident_id = exercise_incidents(admin)
    exercise_iocs(admin, incident_id)
    exercise_detection(admin)
    exercise_api_keys(admin)
    exercise_stix_and_taxii(admin, live_server)
    exercise_blocks_and_audit(admin, client)
    exercise_reports(admin, incident_id)
    exercise_identity(client, admin)
    exercise_webhooks(admin)
    exercise_case_alerts(admin, incident_id)  # case work, part A
    exercise_case_work(admin, incident_id)
    return list(answers)


@pytest.fixture
def dumps_unlike_marshmallow(monkeypatch) -> list[str]:
    """Every object a response schema dumps meanwhile is dumped twice, by the schema and by
    marshmallow's own loop over its fields (``Schema._serialize``, the reference the
    schema's faster loop must agree with); where the two JSON texts differ, a line."""
    differences: list[str] = []
    faster = ResponseSchema._serialize

    def both(self: ResponseSchema, obj: Any, *, many: bool = False) -> Any:
        ours = faster(self, obj, many=many)
        reference = Schema._serialize(self, obj, many=many)
        ours_text, reference_text = (
            json.dumps(value, sort_keys=True, default=str) for value in (ours, reference)
        )
        if ours_text != reference_text:
            differences.append(f"{type(self).__name__}: {ours_text} != {reference_text}")
        return ours

    monkeypatch.setattr(ResponseSchema, "_serialize", both)
    return differences


def declared_json_schemas(document: dict) -> dict[tuple[str, int], dict]:
    """(``METHOD /path``, status) -> the JSON schema of each documented success body."""
    declared = {}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                media = response.get("content", {}).get("application/json", {})
                if int(status) < 300 and "$ref" in media.get("schema", {}):
                    declared[(f"{method.upper()} {path}", int(status))] = media["schema"]
    return declared


def test_every_answer_has_exactly_the_fields_its_schema_declares(client, every_answer):
    document = client.get("/openapi.json").get_json()
    declared = declared_json_schemas(document)
    mismatches = [
        f"{operation} {status} {problem}"
        for operation, status, body in every_answer
        if (operation, status) in declared
        for problem in shape_mismatches(document, declared[(operation, status)], body)
    ]
    assert mismatches == []
    reached = {(operation, status) for operation, status, _ in every_answer}
    assert sorted(set(declared) - reached) == [], "add a request for these to the scenario"


def test_every_answer_is_dumped_as_marshmallow_dumps_it(dumps_unlike_marshmallow, every_answer):
    """``ResponseSchema`` decides once per field how to read and format it; every answer
    of every operation must come out as marshmallow's per-value path makes it."""
    assert len(every_answer) > 100
    assert dumps_unlike_marshmallow == []


def test_every_declared_field_is_required_and_no_other_is_allowed(client):
    """What makes the document itself as strict as the comparison above: a client (and
    schemathesis) may count on every declared field and on no other."""
    document = client.get("/openapi.json").get_json()
    declared = declared_json_schemas(document)
    names = {schema["$ref"].rsplit("/", 1)[1] for schema in declared.values()}
    pending, seen, lax = list(names), set(), []
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        component = document["components"]["schemas"][name]
        pending.extend(_referenced(component))
        if "properties" not in component:
            continue
        if component.get("additionalProperties") is not False:
            lax.append(f"{name}: allows undeclared fields")
        if set(component.get("required", ())) != set(component["properties"]):
            lax.append(f"{name}: not every field is required")
    assert lax == []


def _referenced(schema: Any) -> Iterator[str]:
    if isinstance(schema, dict):
        if "$ref" in schema:
            yield schema["$ref"].rsplit("/", 1)[1]
        for value in schema.values():
            yield from _referenced(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _referenced(value)
