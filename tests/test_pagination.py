"""Cursor pagination: stable keyset order, every row exactly once."""

from __future__ import annotations

from datetime import timedelta

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
