"""Helpers of the TAXII and STIX tests: IOCs in the store, collections, TAXII requests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet

from tests.helpers import STRONG_PASSWORD

# A STIX object the IOC store does not map (a malware family): stored and served as is.
MALWARE = {
    "type": "malware",
    "spec_version": "2.1",
    "id": "malware--31b940d4-6f7f-459a-80ea-9c1f17b58abc",
    "created": "2026-03-01T10:00:00.000Z",
    "modified": "2026-03-01T10:00:00.000Z",
    "name": "Example loader",
    "is_family": True,
}

TAXII_ACCEPT = "application/taxii+json;version=2.1"
ENCRYPTION_KEY = Fernet.generate_key().decode()


def create_collection(admin, **fields) -> dict:
    body = {"title": "High confidence", "min_confidence": 0, "max_tlp": "amber", **fields}
    response = admin.client.post("/taxii/collections", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def sample_items(count: int, **fields) -> list[dict]:
    """``count`` distinct valid IOCs, cycling through the types a collection serves."""
    makers = (
        lambda i: ("domain", f"host-{i}.example.com"),
        lambda i: ("ipv4", f"198.51.{i // 250}.{i % 250 + 1}"),
        lambda i: ("sha256", f"{i:064x}"),
        lambda i: ("url", f"https://bad-{i}.example.net/payload"),
        lambda i: ("cve", f"CVE-2024-{10000 + i}"),
        lambda i: ("email", f"phish-{i}@example.org"),
    )
    items = []
    for index in range(count):
        ioc_type, value = makers[index % len(makers)](index)
        items.append({"type": ioc_type, "value": value, "confidence": 80, "tlp": "green", **fields})
    return items


def store_iocs(app, items: list[dict]) -> list[int]:
    """Store IOCs straight through the IOC store (as the system); returns their ids."""
    from models import db
    from security.modules import intel

    with app.app_context():
        result = intel.bulk_add_iocs(items)
        assert not result.errors, result.errors
        db.session.commit()
        return [entry["id"] for entry in result.results]


def set_update_time(app, ioc_ids: list[int], moment: datetime) -> None:
    """Give IOCs one update time (= TAXII date_added), as concurrent writes can."""
    from sqlalchemy import update

    from models import Ioc, db

    with app.app_context():
        db.session.execute(update(Ioc).where(Ioc.id.in_(ioc_ids)).values(updated_at=moment))
        db.session.commit()


def minutes_ago(minutes: int) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


def taxii_get(user, path: str, **kwargs):
    headers = {"Accept": TAXII_ACCEPT, **kwargs.pop("headers", {})}
    return user.client.get(path, headers=headers, **kwargs)


def assert_valid_stix(objects: list[dict]) -> None:
    """Every object passes the OASIS stix2-validator (errors, not best-practice warnings)."""
    import stix2validator

    for stix_object in objects:
        results = stix2validator.validate_instance(
            stix_object, stix2validator.ValidationOptions(version="2.1")
        )
        assert results.is_valid, (stix_object["id"], [str(e) for e in results.errors])


def basic_credentials(user) -> dict:
    return {"user": user.username, "password": STRONG_PASSWORD}


def pattern_with_alternatives(count: int) -> str:
    """A STIX pattern naming ``count`` IPv4 addresses (10.0.0.0 upwards) as alternatives."""
    terms = (f"[ipv4-addr:value = '10.{i >> 16}.{i >> 8 & 255}.{i & 255}']" for i in range(count))
    return " OR ".join(terms)


# Patterns that exhausted the pattern parser's stack (500), by what makes them so.
PATTERN_BOMBS = {
    "nested 5,000 parentheses deep": "(" * 5000 + "[ipv4-addr:value = '198.51.100.9']" + ")" * 5000,
    "8,000 OR terms": pattern_with_alternatives(8000),
}


def stix_indicator(stix_id: str, pattern: str, **fields: Any) -> dict:
    """A STIX 2.1 indicator object with ``pattern``."""
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": stix_id,
        "created": "2026-01-01T00:00:00.000Z",
        "modified": "2026-01-01T00:00:00.000Z",
        "pattern": pattern,
        "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z",
        **fields,
    }


def feed_body(live_server: str, collection: dict, **fields) -> dict:
    """A ``POST /taxii/feeds`` body reading ``collection`` of the server at ``live_server``."""
    return {
        "name": "primary",
        "api_root_url": f"{live_server}/taxii2/api/",
        "collection_id": collection["id"],
        **fields,
    }


def poll_feed_body(live_server: str, collection: dict, producer_admin, **fields) -> dict:
    """A feed on the consumer that reads the producer's collection as its admin (Basic)."""
    credentials = {"username": producer_admin.username, "password": STRONG_PASSWORD}
    return feed_body(live_server, collection, auth_type="basic", **credentials, **fields)
