"""The API's JSON, written and read by orjson (``security.modules.utils.dump_json`` and
``load_json``), means what ``json`` made of the same values: times as ISO 8601 ``Z``,
sets as sorted lists, integer keys as strings, and integers beyond 64 bits, which orjson
alone refuses."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from security.modules.utils import dump_json, json_default, load_json

VALUES = [
    {"at": datetime(2026, 11, 30, 8, 0, 1, 250, tzinfo=UTC), "day": date(2026, 11, 30)},
    {"at": datetime(2026, 11, 30, 9, 0, tzinfo=timezone(timedelta(hours=1)))},
    {"naive": datetime(2026, 11, 30, 8, 0)},
    {"tags": {"b", "a"}, 3: "integer key", "text": "Zoë \u2603 \ud83d\ude00"},
    {"huge": 2**70, "negative": -(2**65), "float": 0.1},
    [None, True, 1, 1.5, "", [], {}],
]


@pytest.mark.parametrize("value", VALUES)
def test_written_json_means_what_json_dumps_wrote(value):
    assert json.loads(dump_json(value)) == json.loads(json.dumps(value, default=json_default))


def test_times_are_iso_8601_in_utc_with_z():
    written = dump_json({"at": datetime(2026, 11, 30, 9, 0, tzinfo=timezone(timedelta(hours=1)))})
    assert written == b'{"at":"2026-11-30T08:00:00Z"}'


@pytest.mark.parametrize(
    "text",
    ['{"a": [1, 2.5, "x", null, true]}', '{"big": 123456789012345678901234567890}', "[]"],
)
def test_read_json_is_what_json_loads_reads(text):
    assert load_json(text) == json.loads(text)
    assert load_json(text.encode()) == json.loads(text)


def test_malformed_json_is_still_refused():
    with pytest.raises(ValueError):
        load_json('{"a": ')
