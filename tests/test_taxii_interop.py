"""TAXII 2.1 interoperability end to end: the OASIS taxii2-client drives every endpoint of
the server running under gunicorn, every object it gets is checked with stix2-validator,
and the product's own feed poller (``flask taxii-poll``) polls the same server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from sqlalchemy import select
from taxii2client.v21 import ApiRoot, Collection, Server, as_pages

from tests.helpers import STRONG_PASSWORD
from tests.servers import running_gunicorn
from tests.suite_guards import GUARDS_KEY
from tests.taxii_helpers import (
    TAXII_ACCEPT,
    assert_valid_stix,
    basic_credentials,
    sample_items,
    store_iocs,
)

pytest_plugins = ("tests.taxii_fixtures",)
pytestmark = pytest.mark.slow

IDENTITY = {
    "type": "identity",
    "spec_version": "2.1",
    "id": "identity--6f8a2c7e-4b1d-4e3a-9f5c-2d7b8e1a0c94",
    "created": "2026-03-01T09:00:00.000Z",
    "modified": "2026-03-01T09:00:00.000Z",
    "name": "Partner CERT",
    "identity_class": "organization",
}
INDICATOR = {
    "type": "indicator",
    "spec_version": "2.1",
    "id": "indicator--2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f",
    "created_by_ref": IDENTITY["id"],
    "created": "2026-03-01T10:00:00.000Z",
    "modified": "2026-03-01T10:00:00.000Z",
    "name": "Loader C2",
    "indicator_types": ["malicious-activity"],
    "pattern": "[domain-name:value = 'c2.interop.example.com']",
    "pattern_type": "stix",
    "pattern_version": "2.1",
    "valid_from": "2026-03-01T10:00:00Z",
    "confidence": 80,
}
MALWARE = {
    "type": "malware",
    "spec_version": "2.1",
    "id": "malware--7d8e9f0a-1b2c-4d3e-8f4a-5b6c7d8e9f0a",
    "created_by_ref": IDENTITY["id"],
    "created": "2026-03-01T10:00:00.000Z",
    "modified": "2026-03-01T10:00:00.000Z",
    "name": "Example loader",
    "malware_types": ["dropper"],
    "is_family": True,
}
RELATIONSHIP = {
    "type": "relationship",
    "spec_version": "2.1",
    "id": "relationship--3e4f5a6b-7c8d-4e9f-a0b1-c2d3e4f5a6b7",
    "created_by_ref": IDENTITY["id"],
    "created": "2026-03-01T10:05:00.000Z",
    "modified": "2026-03-01T10:05:00.000Z",
    "relationship_type": "indicates",
    "source_ref": INDICATOR["id"],
    "target_ref": MALWARE["id"],
}
REPORT = {
    "type": "report",
    "spec_version": "2.1",
    "id": "report--4f5a6b7c-8d9e-4f0a-b1c2-d3e4f5a6b7c8",
    "created_by_ref": IDENTITY["id"],
    "created": "2026-03-01T11:00:00.000Z",
    "modified": "2026-03-01T11:00:00.000Z",
    "name": "Example loader infrastructure",
    "report_types": ["malware"],
    "published": "2026-03-01T11:00:00Z",
    "object_refs": [INDICATOR["id"], MALWARE["id"], RELATIONSHIP["id"]],
}
BUNDLE_OBJECTS = [IDENTITY, INDICATOR, MALWARE, RELATIONSHIP, REPORT]


@pytest.fixture(scope="module")
def taxii_server(request, app, database_url) -> Iterator[str]:
    """The app under gunicorn (2 workers) on the suite's database; yields its base URL."""
    log_directory = request.config.stash[GUARDS_KEY].log_directory
    with running_gunicorn(
        database_url,
        log_directory,
        workers=2,
        RATELIMIT_DEFAULT="100000 per minute",
        RATELIMIT_PER_IP="100000 per minute",
    ) as server:
        yield f"http://127.0.0.1:{server.port}"


def _collection(taxii_server: str, collection: dict, user) -> Collection:
    url = f"{taxii_server}/taxii2/api/collections/{collection['id']}/"
    return Collection(url, **basic_credentials(user))


def _all_objects(collection: Collection, **filters) -> list[dict]:
    pages = as_pages(collection.get_objects, per_request=50, **filters)
    return [stix_object for page in pages for stix_object in page.get("objects", [])]


def _all_manifest(collection: Collection, **filters) -> list[dict]:
    pages = as_pages(collection.get_manifest, per_request=50, **filters)
    return [record for page in pages for record in page.get("objects", [])]


def _version_of(stix_object: dict) -> str:
    return stix_object.get("modified") or stix_object["created"]


def test_client_discovers_the_server_and_adds_objects_with_a_status(
    taxii_server, collection, admin
):
    server = Server(f"{taxii_server}/taxii2/", **basic_credentials(admin))
    api_root = server.default
    assert api_root.url == f"{taxii_server}/taxii2/api/"
    assert "application/taxii+json;version=2.1" in api_root.versions
    (listed,) = [c for c in api_root.collections if c.id == collection["id"]]
    assert (listed.can_read, listed.can_write) == (True, True)
    status = listed.add_objects({"objects": BUNDLE_OBJECTS})
    assert (status.status, status.success_count, status.failure_count) == ("complete", 5, 0)
    again = ApiRoot(api_root.url, **basic_credentials(admin)).get_status(status.id)
    assert [entry["id"] for entry in again.successes] == [o["id"] for o in BUNDLE_OBJECTS]


def test_posted_bundle_comes_back_unchanged_through_objects_versions_and_manifest(
    taxii_server, collection, admin
):
    client = _collection(taxii_server, collection, admin)
    client.add_objects({"objects": BUNDLE_OBJECTS})
    posted_ids = [o["id"] for o in BUNDLE_OBJECTS]
    served = {o["id"]: o for o in client.get_objects(id=posted_ids)["objects"]}
    assert served == {o["id"]: o for o in BUNDLE_OBJECTS}
    for posted in BUNDLE_OBJECTS:
        assert client.get_object(posted["id"])["objects"] == [posted]
        assert client.object_versions(posted["id"])["versions"] == [_version_of(posted)]
    manifest = client.get_manifest(id=posted_ids)["objects"]
    assert {(r["id"], r["version"]) for r in manifest} == {
        (o["id"], _version_of(o)) for o in BUNDLE_OBJECTS
    }
    assert {r["media_type"] for r in manifest} == {"application/stix+json;version=2.1"}


def test_every_served_object_is_valid_and_listed_alike_everywhere(
    app, taxii_server, collection, admin
):
    store_iocs(app, sample_items(12))
    client = _collection(taxii_server, collection, admin)
    client.add_objects({"objects": BUNDLE_OBJECTS})
    objects = _all_objects(client)
    assert_valid_stix(objects)
    # 3 TLP markings, the 5 posted objects, 12 IOCs, and the IOC the indicator became.
    assert len(objects) == 3 + 5 + 12 + 1
    manifest = _all_manifest(client)
    assert [(r["id"], r["version"]) for r in manifest] == [
        (o["id"], _version_of(o)) for o in objects
    ]
    for stix_object in objects:
        versions = client.object_versions(stix_object["id"])["versions"]
        assert versions == [_version_of(stix_object)]
        every = client.get_manifest(id=stix_object["id"], version="all")["objects"]
        assert [record["version"] for record in every] == versions


def test_new_versions_by_modified_and_delete_of_one_version_or_all(taxii_server, collection, admin):
    client = _collection(taxii_server, collection, admin)
    versions = [
        {**MALWARE, "modified": f"2026-03-0{day}T00:00:00.000Z", "name": f"loader v{day}"}
        for day in (2, 3, 4)
    ]
    client.add_objects({"objects": versions})
    assert client.get_object(MALWARE["id"])["objects"] == [versions[-1]]
    assert client.get_object(MALWARE["id"], version="first")["objects"] == [versions[0]]
    client.delete_object(MALWARE["id"], version=versions[1]["modified"])
    assert client.object_versions(MALWARE["id"])["versions"] == [
        versions[0]["modified"],
        versions[2]["modified"],
    ]
    client.delete_object(MALWARE["id"], version="all")
    with pytest.raises(requests.HTTPError) as gone:
        client.get_object(MALWARE["id"])
    assert gone.value.response.status_code == 404


def test_an_exact_duplicate_is_a_success_again(taxii_server, collection, admin):
    client = _collection(taxii_server, collection, admin)
    first = client.add_objects({"objects": [REPORT, MALWARE]})
    second = client.add_objects({"objects": [REPORT, MALWARE]})
    assert (first.success_count, second.success_count, second.failure_count) == (2, 2, 0)
    assert len(client.object_versions(REPORT["id"])["versions"]) == 1


def test_delete_is_refused_to_a_reader(taxii_server, collection, admin, viewer):
    _collection(taxii_server, collection, admin).add_objects({"objects": [MALWARE]})
    url = f"{taxii_server}/taxii2/api/collections/{collection['id']}/objects/{MALWARE['id']}/"
    response = requests.delete(
        url,
        headers={"Accept": TAXII_ACCEPT},
        auth=(viewer.username, STRONG_PASSWORD),
        timeout=10,
    )
    assert response.status_code == 403
    assert response.json()["http_status"] == "403"


def test_the_products_feed_poller_polls_its_own_server(
    app, consumer_app, taxii_server, collection, admin, consumer_admin
):
    from models import Ioc, db

    store_iocs(app, sample_items(7))
    _collection(taxii_server, collection, admin).add_objects({"objects": BUNDLE_OBJECTS})
    body = {
        "name": "own-server",
        "api_root_url": f"{taxii_server}/taxii2/api/",
        "collection_id": collection["id"],
        "auth_type": "basic",
        "username": admin.username,
        "password": STRONG_PASSWORD,
        "page_size": 4,
    }
    assert consumer_admin.client.post("/taxii/feeds", json=body).status_code == 201
    result = consumer_app.test_cli_runner().invoke(args=["taxii-poll", "--feed", "own-server"])
    assert result.exit_code == 0, result.output
    # 3 markings + 5 posted + 7 IOCs + the IOC the posted indicator became, in pages of 4.
    assert "own-server: 16 objects in 4 pages, 8 IOCs created" in result.output
    with consumer_app.app_context():
        values = set(db.session.scalars(select(Ioc.value)))
    assert "c2.interop.example.com" in values
    assert {item["value"] for item in sample_items(7)} <= values
