"""Cursor pagination: stable keyset order, every row exactly once."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from sqlalchemy import insert

from models import Incident, db, utcnow


def bulk_insert_incidents(app, reporter_id: int, total: int) -> None:
    """Rows straight into the table (the API would take minutes); many share a timestamp,
    which is exactly what a keyset on (created_at, id) must handle."""
    base = utcnow()
    rows = [
        {
            "title": f"Incident {n}",
            "description": "",
            "severity": "low",
            "status": "new",
            "tlp": "amber",
            "reporter_id": reporter_id,
            "version": 1,
            "created_at": base - timedelta(seconds=n // 7),
            "updated_at": base,
        }
        for n in range(total)
    ]
    with app.app_context():
        db.session.execute(insert(Incident), rows)
        db.session.commit()


def test_listing_10000_incidents_returns_each_exactly_once(app, analyst):
    bulk_insert_incidents(app, analyst.id, 10_000)
    seen: list[int] = []
    cursor = None
    while True:
        query = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = analyst.client.get("/incidents", query_string=query).get_json()
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 10_000
    assert len(set(seen)) == 10_000


def test_rows_added_while_paging_do_not_shift_pages(app, analyst):
    bulk_insert_incidents(app, analyst.id, 30)
    first = analyst.client.get("/incidents?limit=10").get_json()
    analyst.client.post("/incidents", json={"title": "Newer", "severity": "low"})
    rest = []
    cursor = first["next_cursor"]
    while cursor:
        page = analyst.client.get("/incidents", query_string={"limit": 10, "cursor": cursor})
        rest.extend(item["id"] for item in page.get_json()["items"])
        cursor = page.get_json()["next_cursor"]
    ids = [item["id"] for item in first["items"]] + rest
    assert sorted(ids) == list(range(1, 31))


def test_default_page_size_is_50(app, analyst):
    bulk_insert_incidents(app, analyst.id, 60)
    page = analyst.client.get("/incidents").get_json()
    assert len(page["items"]) == 50
    assert page["next_cursor"]


KEYSET_LIST_ENDPOINTS = (
    "/incidents",
    "/iocs",
    "/rules",
    "/alerts",
    "/taxii/feeds",
    "/security/blocks",
    "/audit",
    "/api-keys",
)


def cursor_of(values: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


@pytest.mark.parametrize("path", KEYSET_LIST_ENDPOINTS)
@pytest.mark.parametrize("offset", ["+23:59", "-16:00", "+01:00"])
def test_a_cursor_timestamp_not_in_utc_is_a_422_on_every_list(admin, path, offset):
    cursor = cursor_of([f"2026-01-01T00:00:00{offset}", 1])
    response = admin.client.get(path, query_string={"cursor": cursor})
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert "cursor" in response.get_json()["detail"]


@pytest.mark.parametrize("path", KEYSET_LIST_ENDPOINTS)
def test_a_cursor_in_utc_is_accepted_on_every_list(admin, path):
    cursor = cursor_of(["2126-01-01T00:00:00Z", 1])
    assert admin.client.get(path, query_string={"cursor": cursor}).status_code == 200
