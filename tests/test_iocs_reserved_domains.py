"""Domains under the reserved test TLDs (RFC 2606, RFC 6761) on the explicit write paths.

Exercises, sandboxes and partners' test feeds write indicators such as ``c2.example`` on
purpose, so ``POST /iocs``, ``/iocs/bulk`` and ``/stix/import`` keep them; only free-text
extraction leaves them out (tests/unit/test_extraction.py).
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models import Ioc, db


def _stored(app) -> list[tuple[str, str]]:
    with app.app_context():
        return sorted((i.type, i.value) for i in db.session.scalars(select(Ioc)).unique())


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("foo.example", ("domain", "foo.example")),
        ("C2.Lab.TEST", ("domain", "c2.lab.test")),
        ("hxxps://drop[.]sinkhole[.]invalid/x", ("url", "https://drop.sinkhole.invalid/x")),
        ("admin@web.localhost", ("email", "admin@web.localhost")),
    ],
)
def test_ioc_under_a_reserved_tld_is_created(app, analyst, value, stored):
    response = analyst.client.post("/iocs", json={"value": value})
    assert response.status_code == 201, response.get_json()
    assert (response.get_json()["type"], response.get_json()["value"]) == stored
    assert _stored(app) == [stored]


def test_unknown_tld_is_still_refused(app, analyst):
    response = analyst.client.post("/iocs", json={"type": "domain", "value": "foo.examples"})
    assert response.status_code == 422
    assert "top-level domain" in response.get_json()["errors"]["value"][0]
    assert _stored(app) == []


def test_bulk_stores_reserved_tld_domains(app, analyst):
    items = [{"value": "a.example"}, {"value": "b.test"}, {"type": "domain", "value": "c.invalid"}]
    response = analyst.client.post("/iocs/bulk", json={"items": items, "source": "exercise"})
    assert response.status_code == 200
    assert (response.get_json()["created"], response.get_json()["failed"]) == (3, 0)
    assert _stored(app) == [("domain", "a.example"), ("domain", "b.test"), ("domain", "c.invalid")]


def test_stix_import_stores_a_reserved_tld_domain(app, analyst):
    bundle = {
        "type": "bundle",
        "id": "bundle--0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
        "objects": [
            {
                "type": "indicator",
                "spec_version": "2.1",
                "id": "indicator--7d8e9f0a-1b2c-4d3e-8f4a-5b6c7d8e9f0a",
                "created": "2026-01-01T00:00:00.000Z",
                "modified": "2026-01-01T00:00:00.000Z",
                "pattern": "[domain-name:value = 'beacon.example']",
                "pattern_type": "stix",
                "valid_from": "2026-01-01T00:00:00Z",
            }
        ],
    }
    response = analyst.client.post("/stix/import?source=partner-x", json=bundle)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["created"] == 1
    assert _stored(app) == [("domain", "beacon.example")]
