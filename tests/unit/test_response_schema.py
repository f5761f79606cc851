"""``ResponseSchema``'s own loop over its fields gives what marshmallow's gives, on the
cases where a shortcut could go wrong: a value of another type than the field's, renamed
and re-pointed fields, fields that read their value their own way, a missing attribute.

``tests/test_response_shapes.py`` compares the two on every answer of the API.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from marshmallow import Schema, fields

from schemas.common import ComputedString, ResponseSchema, ResponseShapeError, timestamp


class Sample(ResponseSchema):
    count = fields.Integer(required=True)
    flag = fields.Boolean(required=True)
    name = fields.String(required=True)
    label = fields.String(required=True, data_key="display")
    alias = fields.String(required=True, attribute="nickname")
    digits = fields.Integer(required=True, as_string=True)
    ratio = fields.Float(required=True)
    seen_at = timestamp(nullable=True)
    shout = ComputedString(lambda sample: str(sample.name).upper())
    method = fields.Method("describe")
    tags = fields.List(fields.String(), required=True)

    def describe(self, sample: Any) -> str:
        return f"{sample.name}:{sample.count}"


@dataclass
class Row:
    count: Any = 3
    flag: Any = True
    name: Any = "alpha"
    label: Any = "Alpha"
    nickname: Any = "al"
    digits: Any = 42
    ratio: Any = 2
    seen_at: Any = field(default_factory=lambda: datetime(2026, 11, 30, 8, 0, tzinfo=UTC))
    tags: Any = field(default_factory=lambda: ["a", "b"])


def as_text(value: Any) -> str:
    """JSON text, so that ``1`` and ``True`` (equal in Python) differ as they do on the wire."""
    return json.dumps(value, sort_keys=True)


@pytest.mark.parametrize(
    "row",
    [
        Row(),
        Row(count=True, flag=1, name=7, digits=5, ratio=3, seen_at=None),
        Row(count=2.0, name="", label=None, tags=[1, "x"]),
        Row(seen_at=datetime(2026, 1, 2, 3, 4, 5, 600)),
    ],
    ids=["plain", "other types", "floats and nulls", "naive time"],
)
def test_an_object_dumps_as_marshmallow_dumps_it(row):
    schema = Sample()
    assert as_text(schema.dump(row)) == as_text(Schema._serialize(schema, row))


def test_values_of_another_type_are_formatted_by_their_field():
    dumped = Sample().dump(Row(count=True, name=7, digits=5, ratio=3))
    assert as_text([dumped["count"], dumped["name"], dumped["digits"], dumped["ratio"]]) == (
        '[1, "7", "5", 3.0]'
    )
    assert dumped["display"] == "Alpha" and dumped["alias"] == "al"
    assert dumped["method"] == "7:True" and dumped["shout"] == "7"
    assert dumped["seen_at"] == "2026-11-30T08:00:00Z"


def test_a_missing_attribute_is_named_not_skipped():
    @dataclass
    class Partial:
        count: int = 1

    with pytest.raises(ResponseShapeError, match="declares 'flag'"):
        Sample().dump(Partial())
