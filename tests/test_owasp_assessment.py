"""OWASP-Assessment.md makes no claim without a test: every test and collection request it
cites exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSESSMENT = (ROOT / "OWASP-Assessment.md").read_text(encoding="utf-8")
PYTEST_REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")
POSTMAN_REFERENCE = re.compile(r"`postman:([^`]+)`")
COLLECTIONS = (
    "soc-incidents-api.postman_collection.json",
    "soc-incidents-api-owasp-tests.postman_collection.json",
)
TOP_TEN_ITEMS = [f"### API{n} " for n in range(1, 11)] + [f"### A{n:02d} " for n in range(1, 11)]


def request_names() -> set[str]:
    names: set[str] = set()

    def walk(items: list[dict]) -> None:
        for item in items:
            if "item" in item:
                walk(item["item"])
            else:
                names.add(item["name"])

    for name in COLLECTIONS:
        walk(json.loads((ROOT / "postman" / name).read_text(encoding="utf-8"))["item"])
    return names


def test_every_cited_pytest_test_exists():
    missing = [
        f"{path}::{name}"
        for path, name in PYTEST_REFERENCE.findall(ASSESSMENT)
        if not re.search(rf"^def {name}\(", (ROOT / path).read_text(encoding="utf-8"), re.M)
    ]
    assert missing == []


def test_every_cited_collection_request_exists():
    known = request_names()
    missing = [name for name in POSTMAN_REFERENCE.findall(ASSESSMENT) if name not in known]
    assert missing == []


def test_every_top_ten_item_has_its_section():
    assert [item for item in TOP_TEN_ITEMS if item not in ASSESSMENT] == []


def test_the_assessment_cites_tests():
    assert len(PYTEST_REFERENCE.findall(ASSESSMENT)) >= 50
    assert len(POSTMAN_REFERENCE.findall(ASSESSMENT)) >= 50
