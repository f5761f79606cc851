"""``/openapi.json``: every route is declared, and real responses match what it says."""

from __future__ import annotations

import re
import tomllib

import pytest
from jsonschema import Draft202012Validator

from embedded_db import PROJECT_ROOT
from tests.helpers import STRONG_PASSWORD

RULE_VARIABLE = re.compile(r"<(?:[^:<>]+:)?(\w+)>")
SKIPPED_METHODS = {"HEAD", "OPTIONS"}


@pytest.fixture
def document(client) -> dict:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def assert_matches(document: dict, component: str, body) -> None:
    """Validate ``body`` against ``#/components/schemas/<component>`` of the served document."""
    schema = {"$ref": f"#/components/schemas/{component}", "components": document["components"]}
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
    assert errors == []


def test_every_route_of_the_app_is_in_the_document(app, document):
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = RULE_VARIABLE.sub(r"{\1}", rule.rule)
        for method in sorted(rule.methods - SKIPPED_METHODS):
            if method.lower() not in document["paths"].get(path, {}):
                missing.append(f"{method} {rule.rule}")
    assert missing == [], "declare these with an `openapi` attribute (resources/openapi.py)"


def test_document_is_openapi_3_1_with_bearer_security(document):
    assert document["openapi"] == "3.1.0"
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "a login token or an API key",
    }


def test_protected_operation_names_its_permission_and_scheme(document):
    create = document["paths"]["/incidents"]["post"]
    assert create["x-permission"] == "incidents:write"
    assert create["security"] == [{"bearerAuth": []}]


def test_public_operation_needs_no_credentials(document):
    assert document["paths"]["/health"]["get"]["security"] == []


def test_errors_are_documented_as_problem_json(document):
    responses = document["paths"]["/incidents/{incident_id}/status"]["patch"]["responses"]
    expected = {"200", "400", "401", "403", "404", "409", "412", "413", "414", "415", "429", "431"}
    assert set(responses) == expected
    assert responses["409"]["content"] == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }


def test_path_parameters_come_from_the_route_converter(document):
    parameters = document["paths"]["/incidents/{incident_id}"]["get"]["parameters"]
    assert parameters == [
        {
            "in": "path",
            "name": "incident_id",
            "required": True,
            "schema": {"type": "integer", "minimum": 0},
        }
    ]


def test_query_parameters_come_from_the_query_schema(document):
    parameters = document["paths"]["/incidents"]["get"]["parameters"]
    by_name = {parameter["name"]: parameter for parameter in parameters}
    assert by_name["limit"]["schema"] == {
        "type": "integer",
        "default": 50,
        "minimum": 1,
        "maximum": 500,
    }
    assert by_name["severity"]["schema"]["enum"] == ["low", "medium", "high", "critical"]


def test_response_schemas_reject_fields_they_do_not_list(document):
    assert document["components"]["schemas"]["Incident"]["additionalProperties"] is False


def test_incident_responses_match_the_document(document, analyst):
    created = analyst.client.post(
        "/incidents", json={"title": "Phishing wave", "severity": "high", "assignee": "analyst1"}
    )
    assert created.status_code == 201
    assert_matches(document, "Incident", created.get_json())
    incident_id = created.get_json()["id"]
    analyst.client.patch(f"/incidents/{incident_id}/status", json={"status": "triaged"})
    analyst.client.post(f"/incidents/{incident_id}/comments", json={"body": "looking"})
    assert_matches(document, "IncidentPage", analyst.client.get("/incidents").get_json())
    timeline = analyst.client.get(f"/incidents/{incident_id}/timeline").get_json()
    assert [entry["kind"] for entry in timeline["items"]] == ["created", "status_change", "comment"]
    assert_matches(document, "Timeline", timeline)


def test_auth_responses_match_the_document(document, client, admin):
    registered = admin.client.post(
        "/auth/register",
        json={"username": "viewer2", "password": STRONG_PASSWORD, "role": "viewer"},
    )
    assert registered.status_code == 201
    assert_matches(document, "User", registered.get_json())
    login = client.post("/auth/login", json={"username": "viewer2", "password": STRONG_PASSWORD})
    assert_matches(document, "LoginResponse", login.get_json())
    assert_matches(document, "Me", admin.client.get("/auth/me").get_json())


def test_error_bodies_match_the_problem_schema(document, viewer):
    response = viewer.client.post("/incidents", json={"title": "x", "severity": "low"})
    assert response.status_code == 403
    assert_matches(document, "Problem", response.get_json())


def test_health_and_readiness_match_the_document(document, client):
    assert_matches(document, "Health", client.get("/health").get_json())
    assert_matches(document, "Ready", client.get("/ready").get_json())


def test_the_fuzzers_if_match_exception_names_exactly_the_operations_taking_if_match(document):
    """scripts/schemathesis.toml lets a 400 for `If-Match: 0` pass in the coverage phase for
    the operations that take If-Match; one missing fails CI's fuzz step, one too many hides
    a real refusal."""
    settings = tomllib.loads((PROJECT_ROOT / "scripts" / "schemathesis.toml").read_text())
    (listed,) = [
        re.compile(operation["include-name-regex"])
        for operation in settings["operations"]
        if "include-name-regex" in operation
    ]
    operations = {
        f"{method.upper()} {path}": operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict)
    }
    taking = {
        name
        for name, operation in operations.items()
        if any(parameter.get("name") == "If-Match" for parameter in operation.get("parameters", []))
    }
    assert {name for name in operations if listed.match(name)} == taking
