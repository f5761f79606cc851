"""The TAXII 2.1 server, driven over HTTP by the OASIS client (taxii2-client).

Every object the server hands out here is checked with the OASIS stix2-validator.
"""

from __future__ import annotations

import requests
from taxii2client.v21 import ApiRoot, Collection, Server, as_pages

from tests.taxii_helpers import (
    assert_valid_stix,
    basic_credentials,
    minutes_ago,
    sample_items,
    set_update_time,
    store_iocs,
)

pytest_plugins = ("tests.taxii_fixtures",)


def _client_collection(live_server: str, collection: dict, user) -> Collection:
    url = f"{live_server}/taxii2/api/collections/{collection['id']}/"
    return Collection(url, **basic_credentials(user))


def test_client_discovers_the_api_root_and_lists_readable_collections(
    live_server, collection, admin, viewer
):
    server = Server(f"{live_server}/taxii2/", **basic_credentials(viewer))
    assert server.title
    assert server.default.url == f"{live_server}/taxii2/api/"
    api_root = server.api_roots[0]
    assert "application/taxii+json;version=2.1" in api_root.versions
    listed = api_root.collections
    assert [c.id for c in listed] == [collection["id"]]
    assert listed[0].can_read is True
    assert listed[0].can_write is False


def test_client_pages_through_1000_objects_with_limit_100(app, live_server, collection, admin):
    store_iocs(app, sample_items(1000))
    client_collection = _client_collection(live_server, collection, admin)
    pages = list(as_pages(client_collection.get_objects, per_request=100))
    objects = [o for page in pages for o in page.get("objects", [])]
    served = [o for o in objects if o["type"] in ("indicator", "vulnerability")]
    assert len(served) == 1000
    assert len({o["id"] for o in objects}) == len(objects)
    assert len(pages) >= 10
    assert all(len(page["objects"]) == 100 for page in pages[:-1])
    assert_valid_stix(objects)


def test_added_after_returns_only_objects_added_later(app, live_server, collection, admin):
    old_ids = store_iocs(app, sample_items(6))
    set_update_time(app, old_ids, minutes_ago(30))
    fresh = [{"type": "domain", "value": f"fresh-{i}.example.com"} for i in range(3)]
    store_iocs(app, fresh)
    envelope = _client_collection(live_server, collection, admin).get_objects(
        added_after=minutes_ago(10), type="indicator"
    )
    names = sorted(o["name"] for o in envelope["objects"])
    assert names == [f"fresh-{i}.example.com" for i in range(3)]


def test_match_type_returns_only_that_type(app, live_server, collection, admin):
    store_iocs(app, sample_items(12))
    envelope = _client_collection(live_server, collection, admin).get_objects(type="vulnerability")
    assert {o["type"] for o in envelope["objects"]} == {"vulnerability"}
    assert len(envelope["objects"]) == 2


def test_client_adds_objects_and_reads_their_status(live_server, collection, admin):
    indicator = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        "created": "2026-01-01T00:00:00.000Z",
        "modified": "2026-01-01T00:00:00.000Z",
        "pattern": "[domain-name:value = 'posted.example.com']",
        "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z",
        "confidence": 75,
    }
    malware = {
        "type": "malware",
        "spec_version": "2.1",
        "id": "malware--31b940d4-6f7f-459a-80ea-9c1f17b58abc",
        "created": "2026-01-01T00:00:00.000Z",
        "modified": "2026-01-01T00:00:00.000Z",
        "name": "Not an IOC",
        "is_family": False,
    }
    client_collection = _client_collection(live_server, collection, admin)
    status = client_collection.add_objects({"objects": [indicator, malware]})
    assert status.status == "complete"
    assert status.success_count == 2
    assert [entry["id"] for entry in status.successes] == [indicator["id"], malware["id"]]
    assert status.failure_count == 0
    fetched = ApiRoot(f"{live_server}/taxii2/api/", **basic_credentials(admin)).get_status(
        status.id
    )
    assert fetched.success_count == 2
    assert client_collection.get_object(malware["id"])["objects"] == [malware]
    envelope = client_collection.get_objects(type="indicator")
    by_id = {o["id"]: o for o in envelope["objects"]}
    assert by_id.pop(indicator["id"]) == indicator
    # The IOC it became, as the IOC store serves it.
    assert [o["name"] for o in by_id.values()] == ["posted.example.com"]
    assert next(iter(by_id.values()))["confidence"] == 75


def test_reposting_an_identical_object_succeeds_again(live_server, collection, admin):
    indicator = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": "indicator--0f5a0b5c-3d7e-4b0a-9c58-3b1a4f2a6d10",
        "created": "2026-01-01T00:00:00.000Z",
        "modified": "2026-01-01T00:00:00.000Z",
        "pattern": "[ipv4-addr:value = '203.0.113.9']",
        "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z",
    }
    client_collection = _client_collection(live_server, collection, admin)
    first = client_collection.add_objects({"objects": [indicator]})
    second = client_collection.add_objects({"objects": [indicator]})
    assert (first.success_count, second.success_count) == (1, 1)
    assert second.failure_count == 0


def test_bearer_token_authenticates_the_client(app, live_server, collection, admin):
    store_iocs(app, sample_items(2))
    session_auth = _Bearer(admin.token)
    url = f"{live_server}/taxii2/api/collections/{collection['id']}/"
    envelope = Collection(url, auth=session_auth).get_objects(type="indicator")
    assert len(envelope["objects"]) == 2


class _Bearer(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request):
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request
