"""The OpenAPI document and the behaviour agree: what the document allows is accepted, what
it refuses is refused (one test per mismatch class schemathesis found with all checks)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator

pytest_plugins = ("tests.taxii_fixtures",)

SEED_RULE = {
    "name": "Seed",
    "severity": "low",
    "detection": {"ioc": {"type": "domain", "value": "evil.example.net"}},
}


@pytest.fixture
def document(client) -> dict:
    return client.get("/openapi.json").get_json()


def _string_schemas(schema: Any) -> Iterator[dict]:
    """Every ``type: string`` schema inside ``schema`` (properties, items)."""
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "string":
        yield schema
    for child in (schema.get("properties") or {}).values():
        yield from _string_schemas(child)
    yield from _string_schemas(schema.get("items"))


def _operations(document: dict) -> Iterator[tuple[str, dict]]:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            yield f"{method.upper()} {path}", operation


def test_a_body_boolean_is_json_true_or_false_only(admin):
    refused = admin.client.post("/taxii/collections", json={"title": "x", "active_only": 0})
    assert refused.status_code == 400
    assert "active_only" in refused.get_json()["errors"]
    accepted = admin.client.post("/taxii/collections", json={"title": "x", "active_only": False})
    assert accepted.status_code == 201


def test_a_query_boolean_is_the_word_true_or_false(admin):
    assert admin.client.get("/rules?enabled=1").status_code == 400
    assert admin.client.get("/security/blocks?include_inactive=yes").status_code == 400
    assert admin.client.get("/rules?enabled=true").status_code == 200


def test_every_documented_string_refuses_nul_like_the_server(document, admin):
    strings = [
        schema
        for component in document["components"]["schemas"].values()
        for schema in _string_schemas(component)
        if "enum" not in schema and "format" not in schema
    ]
    assert len(strings) > 50
    for schema in strings:
        assert re.search(schema.get("pattern", ""), "a\x00b") is None, schema
    response = admin.client.post("/incidents", json={"title": "a\x00b", "severity": "low"})
    assert response.status_code == 400


def test_a_field_that_must_not_be_blank_says_so_in_the_document(document, admin):
    sources = document["components"]["schemas"]["CollectionCreate"]["properties"]["sources"]
    pattern = sources["items"]["pattern"]
    for blank in (" ", "\u00a0", "\u3000\t"):
        assert re.search(pattern, blank) is None
        response = admin.client.post("/taxii/collections", json={"title": "x", "sources": [blank]})
        assert response.status_code == 400
    assert re.search(pattern, " feed ") is not None


@pytest.mark.parametrize("component", ["IncidentUpdate", "IocUpdate", "RuleUpdate"])
def test_an_empty_patch_is_refused_by_the_document_too(document, component):
    assert document["components"]["schemas"][component]["minProperties"] == 1


def test_linking_extracted_iocs_needs_save_in_the_document_too(document, admin):
    validator = Draft202012Validator(document["components"]["schemas"]["IocExtract"])
    assert not validator.is_valid({"text": "evil.example.com", "incident_id": 1})
    assert validator.is_valid({"text": "evil.example.com", "incident_id": 1, "save": True})
    response = admin.client.post(
        "/iocs/extract", json={"text": "evil.example.com", "incident_id": 1}
    )
    assert response.status_code == 400


def test_the_servers_request_line_and_header_limits_are_declared_everywhere(document):
    lacking = [
        name
        for name, operation in _operations(document)
        if not {"414", "431"} <= set(operation["responses"])
    ]
    assert lacking == []
    answer = document["paths"]["/health"]["get"]["responses"]["414"]["content"]
    assert "application/problem+json" in answer


def test_if_match_is_an_entity_tag_and_an_unknown_one_is_a_failed_precondition(document, admin):
    incident = admin.client.post("/incidents", json={"title": "x", "severity": "low"})
    path = f"/incidents/{incident.get_json()['id']}"
    parameter = next(
        parameter
        for parameter in document["paths"]["/incidents/{incident_id}"]["patch"]["parameters"]
        if parameter["name"] == "If-Match"
    )
    pattern = parameter["schema"]["pattern"]

    assert re.search(pattern, "1") is None
    assert (
        admin.client.patch(path, json={"title": "y"}, headers={"If-Match": "1"}).status_code == 400
    )
    for unknown in ('"abc"', '"9933200781733650833"', 'W/"x", "2"'):
        assert re.search(pattern, unknown) is not None
        response = admin.client.patch(path, json={"title": "y"}, headers={"If-Match": unknown})
        assert response.status_code == 412, unknown
    listed = admin.client.patch(path, json={"title": "y"}, headers={"If-Match": '"7", "1"'})
    assert listed.status_code == 200


def test_a_cursor_the_server_did_not_issue_is_422_and_declared(document, admin):
    response = admin.client.get("/iocs", query_string={"cursor": "0000"})
    assert response.status_code == 422
    assert "cursor" in response.get_json()["errors"]
    paged = [
        name
        for name, operation in _operations(document)
        if any(parameter.get("name") == "cursor" for parameter in operation["parameters"])
    ]
    assert paged
    for name in paged:
        assert "422" in dict(_operations(document))[name]["responses"], name


def test_query_parameters_on_a_json_rule_are_422_not_400(admin):
    response = admin.client.post("/rules?enabled=true", json=SEED_RULE)
    assert response.status_code == 422


def test_an_unknown_ioc_in_a_link_body_is_422_because_the_incident_exists(admin):
    incident = admin.client.post("/incidents", json={"title": "x", "severity": "low"})
    response = admin.client.post(
        f"/incidents/{incident.get_json()['id']}/iocs", json={"ioc_ids": [999999]}
    )
    assert response.status_code == 422


@pytest.mark.parametrize("confidence", [2.5e-42, "50", True])
def test_a_body_integer_is_a_json_number_without_a_fraction(admin, confidence):
    bulk = admin.client.post(
        "/iocs/bulk", json={"confidence": confidence, "items": [{"value": "evil.example.com"}]}
    )
    assert bulk.status_code == 400
    assert "confidence" in bulk.get_json()["errors"]
    single = admin.client.post("/iocs", json={"value": "evil.example.com", "confidence": 50.0})
    assert single.status_code == 201


@pytest.mark.parametrize(
    "query",
    [
        "/incidents?created_after=2026-02-01T00:00:00Z&created_before=2026-01-01T00:00:00Z",
        "/audit?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z",
    ],
)
def test_an_inverted_time_range_is_422_as_the_document_cannot_say_it(admin, query):
    response = admin.client.get(query)
    assert response.status_code == 422
    assert response.get_json()["errors"]


def _validator(document: dict, component: str) -> Draft202012Validator:
    """Validates against one component, its references resolved within the document."""
    return Draft202012Validator({**document, "$ref": f"#/components/schemas/{component}"})


def test_free_form_objects_in_a_body_refuse_nul_in_the_document_too(document, admin):
    validator = _validator(document, "IocBulk")
    assert validator.is_valid({"items": [{"value": "evil.example.com", "tags": ["a"]}]})
    assert not validator.is_valid({"items": [{"value": "evil.example.com", "tags": ["a\x00"]}]})
    assert not validator.is_valid({"items": [{"a\x00": 1}]})
    response = admin.client.post("/iocs/bulk", json={"items": [{"tags": ["a\x00"]}]})
    assert response.status_code == 400


def _maps(schema: Any) -> Iterator[dict]:
    """Every schema inside ``schema`` that maps names to values (``additionalProperties``)."""
    if isinstance(schema, dict):
        if isinstance(schema.get("additionalProperties"), dict):
            yield schema
        for child in schema.values():
            yield from _maps(child)
    elif isinstance(schema, list):
        for child in schema:
            yield from _maps(child)


def test_every_map_in_a_request_refuses_nul_in_its_keys_like_the_server(document, admin):
    bodies = [
        content["schema"]
        for _, operation in _operations(document)
        for content in operation.get("requestBody", {}).get("content", {}).values()
    ]
    components = document["components"]["schemas"]
    requests = [components[body["$ref"].rsplit("/", 1)[1]] for body in bodies if "$ref" in body]
    maps = list(_maps(requests))
    assert len(maps) > 5
    for schema in maps:
        assert re.search(schema["propertyNames"]["pattern"], "a\x00b") is None, schema
    template = {"name": "nul-key", "title": "t", "severity": "low", "custom_fields": {"a\x00": 1}}
    assert not _validator(document, "IncidentTemplateCreate").is_valid(template)
    assert admin.client.post("/incident-templates/import", json=template).status_code == 400


def test_an_answer_may_name_an_unstorable_parameter_it_refuses(document, admin):
    response = admin.client.get("/incidents?a%00=1&a%00=2")
    assert response.status_code == 400
    assert _validator(document, "Problem").is_valid(response.get_json())


def test_a_stix_bundle_id_is_matched_whole_in_the_document_and_the_server(document, admin):
    bundle_id = "bundle--0a2002df-23be-413c-803d-3bb622eb5451"
    validator = _validator(document, "StixBundle")
    assert validator.is_valid({"type": "bundle", "id": bundle_id})
    assert not validator.is_valid({"type": "bundle", "id": f"-{bundle_id}"})
    assert not validator.is_valid({"type": "bundle", "id": f"{bundle_id}x"})
    trailing = admin.client.post("/stix/import", json={"type": "bundle", "id": f"{bundle_id}x"})
    assert trailing.status_code == 400


def test_the_taxii_add_objects_body_is_documented_as_an_envelope(document):
    body = document["paths"]["/taxii2/api/collections/{collection_id}/objects/"]["post"]
    media = body["requestBody"]["content"]["application/taxii+json;version=2.1"]
    validator = Draft202012Validator({**document, **media["schema"]})
    assert validator.is_valid({"objects": [{"type": "indicator"}]})
    assert not validator.is_valid({"objects": None})
    assert not validator.is_valid({"objects": [{"type": "indicator"}], "more": 0})


@pytest.mark.parametrize(
    ("url", "status"),
    [("", 400), ("http://feed example/", 400), ("ftp://feed/", 400), ("http://[:::]/", 422)],
)
def test_a_feed_url_is_checked_by_the_pattern_the_document_shows(
    document, admin, taxii_settings, url, status
):
    field = document["components"]["schemas"]["FeedCreate"]["properties"]["api_root_url"]
    assert (re.search(field["pattern"], url) is not None) == (status == 422)
    body = {"name": "partner", "api_root_url": url, "collection_id": "c1"}
    response = admin.client.post("/taxii/feeds", json=body)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"


def test_taxii_filters_are_documented_as_the_server_reads_them(document):
    operation = document["paths"]["/taxii2/api/collections/{collection_id}/objects/"]["get"]
    schemas = {parameter["name"]: parameter["schema"] for parameter in operation["parameters"]}
    assert schemas["added_after"] == {"type": "string", "format": "date-time"}
    ids = schemas["match[id]"]["pattern"]
    uuid = "0a2002df-23be-413c-803d-3bb622eb5451"
    assert re.search(ids, f"indicator--{uuid}, vulnerability--{uuid}") is not None
    for refused in ("", "x", f"indicator--{uuid},"):
        assert re.search(ids, refused) is None, refused
    assert re.search(schemas["match[spec_version]"]["pattern"], "2.1") is not None
    assert re.search(schemas["match[spec_version]"]["pattern"], "two") is None


def test_a_bulk_item_that_is_no_object_is_documented_as_reported_by_index(document, admin):
    body = {"items": [[None, None], {"value": "evil.example.com"}]}
    assert _validator(document, "IocBulk").is_valid(body)
    response = admin.client.post("/iocs/bulk", json=body)
    assert response.status_code == 200
    assert [error["index"] for error in response.get_json()["errors"]] == [0]


def test_a_version_filter_documents_only_real_calendar_days(document):
    operation = document["paths"]["/taxii2/api/collections/{collection_id}/objects/"]["get"]
    versions = next(p for p in operation["parameters"] if p["name"] == "match[version]")
    pattern = versions["schema"]["pattern"]
    assert re.search(pattern, "last, 2026-01-31T00:00:00Z") is not None
    assert re.search(pattern, "2026-11-31T00:00:00Z") is None
    assert re.search(pattern, "2024-02-29T00:00:00Z") is not None
    assert re.search(pattern, "2100-02-29T00:00:00Z") is None
