"""The Postman collections: committed JSON is what the builder writes, and every documented
operation is exercised by at least one request (newman runs them: scripts/run_newman.sh)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

POSTMAN = Path(__file__).resolve().parent.parent / "postman"
COLLECTIONS = (
    "soc-incidents-api.postman_collection.json",
    "soc-incidents-api-owasp-tests.postman_collection.json",
)


def load_builder():
    spec = importlib.util.spec_from_file_location(
        "build_collections", POSTMAN / "build_collections.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def requests_of(items: list[dict]):
    for item in items:
        if "item" in item:
            yield from requests_of(item["item"])
        else:
            yield item


def collection_requests() -> list[tuple[str, str]]:
    """(METHOD, path) of every request, path without the query and with {{vars}} kept."""
    found = []
    for name in COLLECTIONS:
        document = json.loads((POSTMAN / name).read_text(encoding="utf-8"))
        for item in requests_of(document["item"]):
            raw = item["request"]["url"]["raw"].removeprefix("{{baseUrl}}")
            found.append((item["request"]["method"], raw.partition("?")[0]))
    return found


def template_matches(template: str, path: str) -> bool:
    """``/incidents/{incident_id}`` matches ``/incidents/{{incidentId}}`` or ``/incidents/7``."""
    pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
    return re.fullmatch(pattern, path) is not None


@pytest.mark.parametrize("name", [*COLLECTIONS, "local.postman_environment.json"])
def test_committed_file_is_what_the_builder_writes(name):
    builder = load_builder()
    expected = builder.render(builder.OUTPUTS[name]())
    assert (POSTMAN / name).read_text(encoding="utf-8") == expected, (
        "run .venv/bin/python postman/build_collections.py and commit the result"
    )


def test_collections_are_postman_v2_1():
    for name in COLLECTIONS:
        document = json.loads((POSTMAN / name).read_text(encoding="utf-8"))
        assert document["info"]["schema"].endswith("/collection/v2.1.0/collection.json")


def test_every_documented_operation_has_a_collection_request(client):
    document = client.get("/openapi.json").get_json()
    requests = collection_requests()
    missing = [
        f"{method.upper()} {template}"
        for template, operations in document["paths"].items()
        for method in operations
        if not any(
            sent_method == method.upper() and template_matches(template, path)
            for sent_method, path in requests
        )
    ]
    assert missing == [], "add a request for these to postman/functional.py or owasp.py"


def test_request_names_are_unique_so_loops_can_target_them():
    for name in COLLECTIONS:
        document = json.loads((POSTMAN / name).read_text(encoding="utf-8"))
        names = [item["name"] for item in requests_of(document["item"])]
        assert len(names) == len(set(names))
