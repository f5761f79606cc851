"""The bulk item loader's shortcut gives exactly what IocItemSchema gives, item by item."""

from __future__ import annotations

import random
from typing import Any

from marshmallow import ValidationError

from schemas.iocs import BulkItemLoader, IocItemSchema
from security.modules.intel import RejectedItem

# Values for each field, valid and not: wrong types, bounds, bool-as-int, None, dates.
FIELD_VALUES: dict[str, list[Any]] = {
    "type": ["ipv4", "domain", "sha256", "nope", "", 4, None],
    "value": ["192.0.2.1", "evil.example.com", "x" * 4096, "x" * 4097, "", 7, None, ["a"]],
    "confidence": [0, 55, 100, -1, 101, True, "50", 50.0, 50.5, None],
    "source": ["feed", "f" * 255, "f" * 256, "", 3, None],
    "description": ["", "seen in a phishing wave", "d" * 20_001, 5],
    "tags": [[], ["a", "b"], ["t" * 64], ["t" * 65], [""], ["a"] * 51, "a", [1], None],
    "tlp": ["clear", "amber+strict", "red", "purple", None],
    "first_seen": ["2026-01-01T00:00:00Z", "2026-01-01T00:00:00+02:00", "yesterday"],
    "expires_at": [None, "2027-01-01T00:00:00Z"],
    "unknown": ["refused"],
}


def random_items(count: int) -> list[Any]:
    rng = random.Random(20261125)
    items: list[Any] = ["not an object", None, 5, []]
    for _ in range(count):
        names = rng.sample(sorted(FIELD_VALUES), rng.randint(0, 5))
        if rng.random() < 0.7:
            names.append("value")
        items.append({name: rng.choice(FIELD_VALUES[name]) for name in names})
    return items


def schema_outcome(item: Any) -> tuple[str, Any]:
    try:
        return "loaded", IocItemSchema().load(item)
    except ValidationError as error:
        return "rejected", error.normalized_messages()


def loader_outcome(loader: BulkItemLoader, item: Any) -> tuple[str, Any]:
    try:
        return "loaded", loader(item)
    except RejectedItem as error:
        return "rejected", error.errors


def test_loader_agrees_with_the_schema_on_thousands_of_items():
    loader = BulkItemLoader()
    items = random_items(3_000)
    disagreements = [item for item in items if loader_outcome(loader, item) != schema_outcome(item)]
    assert disagreements == []
    shortcuts = sum(1 for item in items if type(item) is dict and loader._passes_unchanged(item))
    assert shortcuts > 100, "too few items exercise the shortcut for the comparison to count"


def test_loader_takes_the_shortcut_for_plain_items():
    loader = BulkItemLoader()
    item = {"type": "ipv4", "value": "192.0.2.1", "confidence": 80, "tags": ["c2"]}
    assert loader._passes_unchanged(item)
    assert loader(item) == item and loader(item) is not item


def test_loader_leaves_dates_to_the_schema():
    assert not BulkItemLoader()._passes_unchanged(
        {"value": "192.0.2.1", "first_seen": "2026-01-01T00:00:00Z"}
    )
