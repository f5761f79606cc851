"""Re-reporting a known IOC keeps its expiry unless the report says otherwise: no
``expires_at`` keeps the stored one, a later date wins over an earlier one, and only an
explicit ``null`` clears it, on every path that adds IOCs."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from models import Ioc, db, utcnow
from tests.taxii_helpers import poll_feed_body, store_iocs

pytest_plugins = ("tests.taxii_fixtures",)

VALUE = "expiring.example.com"


def stored_expiry(app) -> datetime | None:
    with app.app_context():
        return db.session.scalars(select(Ioc.expires_at)).one()


@pytest.fixture
def expiry(app) -> datetime:
    """A stored IOC that expires in ten days (stored as the system); returns when."""
    expires_at = utcnow().replace(microsecond=0) + timedelta(days=10)
    store_iocs(app, [{"type": "domain", "value": VALUE, "expires_at": expires_at}])
    return expires_at


def _stix_indicator(**fields) -> dict:
    return {
        "type": "bundle",
        "id": "bundle--1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f",
        "objects": [
            {
                "type": "indicator",
                "spec_version": "2.1",
                "id": "indicator--2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f6a",
                "created": "2026-01-01T00:00:00Z",
                "modified": "2026-01-01T00:00:00Z",
                "pattern": f"[domain-name:value = '{VALUE}']",
                "pattern_type": "stix",
                "valid_from": "2026-01-01T00:00:00Z",
                **fields,
            }
        ],
    }


REPORTS_WITHOUT_EXPIRY = {
    "post": ("/iocs", {"value": VALUE, "confidence": 90}),
    "bulk": ("/iocs/bulk", {"items": [{"value": VALUE, "confidence": 90}]}),
    "extract": ("/iocs/extract", {"text": f"seen {VALUE} again", "save": True}),
    "stix import": ("/stix/import", _stix_indicator()),
}


@pytest.mark.parametrize("path, body", REPORTS_WITHOUT_EXPIRY.values(), ids=REPORTS_WITHOUT_EXPIRY)
def test_re_adding_without_an_expiry_keeps_the_stored_one(app, analyst, expiry, path, body):
    response = analyst.client.post(path, json=body)
    assert response.status_code in (200, 201), response.get_json()
    assert stored_expiry(app) == expiry


def _later(expiry: datetime) -> str:
    return (expiry + timedelta(days=5)).isoformat().replace("+00:00", "Z")


def _earlier(expiry: datetime) -> str:
    return (expiry - timedelta(days=5)).isoformat().replace("+00:00", "Z")


def test_post_keeps_the_later_expiry(app, analyst, expiry):
    earlier = analyst.client.post("/iocs", json={"value": VALUE, "expires_at": _earlier(expiry)})
    assert earlier.status_code == 200
    assert stored_expiry(app) == expiry
    later = analyst.client.post("/iocs", json={"value": VALUE, "expires_at": _later(expiry)})
    assert later.status_code == 200
    assert stored_expiry(app) == expiry + timedelta(days=5)


def test_bulk_keeps_the_later_expiry(app, analyst, expiry):
    items = [{"value": VALUE, "expires_at": _earlier(expiry)}]
    assert analyst.client.post("/iocs/bulk", json={"items": items}).status_code == 200
    assert stored_expiry(app) == expiry
    items = [{"value": VALUE, "expires_at": _later(expiry)}]
    assert analyst.client.post("/iocs/bulk", json={"items": items}).status_code == 200
    assert stored_expiry(app) == expiry + timedelta(days=5)


def test_stix_import_keeps_the_later_valid_until(app, analyst, expiry):
    bundle = _stix_indicator(valid_until=_later(expiry))
    assert analyst.client.post("/stix/import", json=bundle).status_code == 200
    assert stored_expiry(app) == expiry + timedelta(days=5)


@pytest.mark.parametrize(
    "path, body",
    [
        ("/iocs", {"value": VALUE, "expires_at": None}),
        ("/iocs/bulk", {"items": [{"value": VALUE, "expires_at": None}]}),
    ],
    ids=["post", "bulk"],
)
def test_an_explicit_null_clears_the_expiry(app, analyst, expiry, path, body):
    response = analyst.client.post(path, json=body)
    assert response.status_code in (200, 201), response.get_json()
    assert stored_expiry(app) is None


def test_a_feed_poll_keeps_the_expiry_the_feed_does_not_give(
    app, consumer_app, live_server, collection, admin, consumer_admin
):
    store_iocs(app, [{"type": "domain", "value": VALUE, "tlp": "green"}])
    expires_at = utcnow().replace(microsecond=0) + timedelta(days=10)
    store_iocs(consumer_app, [{"type": "domain", "value": VALUE, "expires_at": expires_at}])
    feed = poll_feed_body(live_server, collection, admin)
    created = consumer_admin.client.post("/taxii/feeds", json=feed)
    assert created.status_code == 201, created.get_json()
    poll = consumer_admin.client.post(f"/taxii/feeds/{created.get_json()['id']}/poll")
    assert poll.status_code == 200, poll.get_json()
    assert poll.get_json()["result"]["merged"] == 1
    assert stored_expiry(consumer_app) == expires_at
