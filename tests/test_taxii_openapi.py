"""The TAXII and STIX admin responses match what ``/openapi.json`` says of them."""

from __future__ import annotations

from tests.taxii_helpers import poll_feed_body, sample_items, store_iocs
from tests.test_openapi import assert_matches

pytest_plugins = ("tests.taxii_fixtures",)


def _document(client) -> dict:
    return client.get("/openapi.json").get_json()


def test_collection_definitions_match_the_document(client, admin, collection):
    document = _document(client)
    assert_matches(document, "CollectionDefinition", collection)
    listed = admin.client.get("/taxii/collections").get_json()
    assert_matches(document, "CollectionDefinitionPage", listed)


def test_feed_and_poll_responses_match_the_document(
    app, client, live_server, collection, admin, consumer_admin
):
    store_iocs(app, sample_items(2))
    body = poll_feed_body(live_server, collection, admin)
    feed = consumer_admin.client.post("/taxii/feeds", json=body).get_json()
    document = _document(client)
    assert_matches(document, "Feed", feed)
    polled = consumer_admin.client.post(f"/taxii/feeds/{feed['id']}/poll").get_json()
    assert_matches(document, "FeedPoll", polled)
    assert_matches(document, "FeedPage", consumer_admin.client.get("/taxii/feeds").get_json())


def test_stix_import_result_matches_the_document(client, analyst):
    bundle = {"type": "bundle", "id": "bundle--6f5e4d3c-2b1a-4f0e-9d8c-7b6a5f4e3d2c", "objects": []}
    result = analyst.client.post("/stix/import", json=bundle).get_json()
    assert_matches(_document(client), "StixImportResult", result)
