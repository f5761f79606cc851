"""The TAXII 2.1 wire rules, including the traps the reference server (medallion) falls into:
media types and 406/415, TAXII error bodies on every error, malformed parameters as 400,
keyset paging over equal timestamps, versions compared as times, TLP red never served."""

from __future__ import annotations

import base64
import re

import pytest

from tests.helpers import STRONG_PASSWORD
from tests.taxii_helpers import (
    PATTERN_BOMBS,
    TAXII_ACCEPT,
    create_collection,
    minutes_ago,
    sample_items,
    set_update_time,
    stix_indicator,
    store_iocs,
    taxii_get,
)

pytest_plugins = ("tests.taxii_fixtures",)

MICROSECOND_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def _objects_path(collection: dict) -> str:
    return f"/taxii2/api/collections/{collection['id']}/objects/"


def _assert_taxii_error(response, status: int) -> dict:
    assert response.status_code == status
    assert response.headers["Content-Type"] == TAXII_ACCEPT
    body = response.get_json()
    assert body["http_status"] == str(status)
    assert body["title"]
    return body


def test_accept_without_version_is_served(admin, collection):
    response = taxii_get(admin, "/taxii2/", headers={"Accept": "application/taxii+json"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == TAXII_ACCEPT


def test_other_accept_is_406_with_a_taxii_error(admin):
    response = taxii_get(admin, "/taxii2/api/", headers={"Accept": "application/json"})
    _assert_taxii_error(response, 406)


def test_taxii_2_0_accept_is_406(admin):
    response = taxii_get(
        admin, "/taxii2/api/", headers={"Accept": "application/taxii+json;version=2.0"}
    )
    _assert_taxii_error(response, 406)


def test_post_with_other_content_type_is_415(admin, collection):
    response = admin.client.post(
        _objects_path(collection), json={"objects": []}, headers={"Accept": TAXII_ACCEPT}
    )
    _assert_taxii_error(response, 415)


def test_missing_credentials_are_401_with_challenge_and_taxii_body(client):
    response = client.get("/taxii2/", headers={"Accept": TAXII_ACCEPT})
    _assert_taxii_error(response, 401)
    assert "Basic" in response.headers["WWW-Authenticate"]


def test_discovery_without_trailing_slash_answers_taxii_too(client):
    _assert_taxii_error(client.get("/taxii2", headers={"Accept": TAXII_ACCEPT}), 401)


def test_wrong_basic_password_is_401_and_counted_by_the_brute_force_guard(app, client, admin):
    wrong = base64.b64encode(f"{admin.username}:Wrong-Password-1".encode()).decode()
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        response = client.get(
            "/taxii2/", headers={"Accept": TAXII_ACCEPT, "Authorization": f"Basic {wrong}"}
        )
        _assert_taxii_error(response, 401)
    right = base64.b64encode(f"{admin.username}:{STRONG_PASSWORD}".encode()).decode()
    response = client.get(
        "/taxii2/", headers={"Accept": TAXII_ACCEPT, "Authorization": f"Basic {right}"}
    )
    _assert_taxii_error(response, 429)
    assert "Retry-After" in response.headers


def test_unknown_path_under_taxii2_is_a_taxii_404(admin):
    _assert_taxii_error(taxii_get(admin, "/taxii2/nowhere/"), 404)


def test_unknown_collection_is_404(admin):
    path = "/taxii2/api/collections/5a3e1f0c-8a5b-4d1f-9c34-6f7e2b1d0a99/objects/"
    _assert_taxii_error(taxii_get(admin, path), 404)


def test_unsupported_method_is_a_taxii_405(admin, collection):
    response = admin.client.delete(
        f"/taxii2/api/collections/{collection['id']}/", headers={"Accept": TAXII_ACCEPT}
    )
    _assert_taxii_error(response, 405)


def test_errors_outside_taxii_stay_problem_json(admin):
    response = admin.client.get("/taxii/feeds/999")
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=ten",
        "next=not%20a%20token",
        "added_after=yesterday",
        "match[id]=not-an-id",
        "match[version]=newest",
        "match[spec_version]=two",
        "match[type]=",
        "match[colour]=red",
    ],
)
def test_malformed_parameters_are_400_not_500(admin, collection, query):
    response = taxii_get(admin, f"{_objects_path(collection)}?{query}")
    _assert_taxii_error(response, 400)


def test_a_well_formed_next_this_server_did_not_issue_is_422(admin, collection):
    response = taxii_get(admin, f"{_objects_path(collection)}?next=bm90LWEta2V5")
    _assert_taxii_error(response, 422)


def test_objects_are_ascending_by_date_added_with_microsecond_headers(app, admin, collection):
    ids = store_iocs(app, sample_items(3))
    for offset, ioc_id in enumerate(ids):
        set_update_time(app, [ioc_id], minutes_ago(10 - offset))
    response = taxii_get(admin, f"{_objects_path(collection)}?match[type]=indicator")
    assert response.status_code == 200
    first = response.headers["X-TAXII-Date-Added-First"]
    last = response.headers["X-TAXII-Date-Added-Last"]
    assert MICROSECOND_TIMESTAMP.match(first) and MICROSECOND_TIMESTAMP.match(last)
    assert first < last
    manifest = taxii_get(admin, f"/taxii2/api/collections/{collection['id']}/manifest/")
    added = [entry["date_added"] for entry in manifest.get_json()["objects"]]
    assert added == sorted(added)
    assert all(MICROSECOND_TIMESTAMP.match(moment) for moment in added)


def test_paging_never_skips_objects_with_equal_date_added(app, admin, collection):
    ids = store_iocs(app, sample_items(25))
    set_update_time(app, ids, minutes_ago(5))
    seen, query = [], "limit=4&match[type]=indicator,vulnerability"
    while True:
        body = taxii_get(admin, f"{_objects_path(collection)}?{query}").get_json()
        seen.extend(o["id"] for o in body.get("objects", []))
        if not body.get("more"):
            break
        query = f"limit=4&match[type]=indicator,vulnerability&next={body['next']}"
    assert len(seen) == 25
    assert len(set(seen)) == 25


def test_next_works_without_the_original_limit(app, admin, collection):
    store_iocs(app, sample_items(5))
    first = taxii_get(admin, f"{_objects_path(collection)}?limit=2").get_json()
    rest = taxii_get(admin, f"{_objects_path(collection)}?next={first['next']}").get_json()
    assert rest["more"] is False
    assert {o["id"] for o in first["objects"]}.isdisjoint(o["id"] for o in rest["objects"])


def test_versions_are_compared_as_times_not_strings(app, admin, collection):
    store_iocs(app, [{"type": "domain", "value": "versioned.example.com"}])
    body = taxii_get(admin, f"{_objects_path(collection)}?match[type]=indicator").get_json()
    indicator = body["objects"][0]
    versions_path = f"{_objects_path(collection)}{indicator['id']}/versions/"
    (version,) = taxii_get(admin, versions_path).get_json()["versions"]
    # The same instant written with an offset instead of Z: equal as a time only.
    same_instant = version.replace("Z", "+00:00")
    response = taxii_get(
        admin,
        f"{_objects_path(collection)}{indicator['id']}/",
        query_string={"match[version]": same_instant},
    )
    assert [o["id"] for o in response.get_json()["objects"]] == [indicator["id"]]


def test_added_after_with_an_offset_beyond_postgresqls_range_is_read_as_its_instant(
    app, admin, collection
):
    store_iocs(app, [{"type": "domain", "value": "offset.example.com"}])
    # 2000-01-02T23:00+23:00 is 2000-01-02T00:00Z: Python reads it, PostgreSQL would refuse it.
    response = taxii_get(
        admin,
        _objects_path(collection),
        query_string={"added_after": "2000-01-02T23:00:00+23:00", "match[type]": "indicator"},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert [o["name"] for o in response.get_json()["objects"]] == ["offset.example.com"]


def test_a_version_with_an_offset_the_document_does_not_allow_is_400(app, admin, collection):
    store_iocs(app, [{"type": "domain", "value": "late.example.com"}])
    body = taxii_get(admin, f"{_objects_path(collection)}?match[type]=indicator").get_json()
    response = taxii_get(
        admin,
        f"{_objects_path(collection)}{body['objects'][0]['id']}/",
        query_string={"match[version]": "2026-01-01T00:00:00+23:59"},
    )
    _assert_taxii_error(response, 400)


def test_get_object_by_id_and_404_for_an_object_outside_the_collection(app, admin, collection):
    store_iocs(app, [{"type": "domain", "value": "one.example.com"}])
    body = taxii_get(admin, f"{_objects_path(collection)}?match[type]=indicator").get_json()
    stix_id = body["objects"][0]["id"]
    found = taxii_get(admin, f"{_objects_path(collection)}{stix_id}/")
    assert found.get_json()["objects"][0]["name"] == "one.example.com"
    missing = "indicator--1b0e1a5e-9a3c-4f7a-8d6e-2c4b5a6d7e8f"
    _assert_taxii_error(taxii_get(admin, f"{_objects_path(collection)}{missing}/"), 404)


def test_object_path_that_is_no_stix_id_is_404_not_500(admin, collection):
    for object_id in ("indicator--not-a-uuid", "nothing", "indicator--"):
        response = taxii_get(admin, f"{_objects_path(collection)}{object_id}/versions/")
        _assert_taxii_error(response, 404)


def test_tlp_red_is_never_served_even_by_id(app, admin):
    collection = create_collection(admin, max_tlp="amber+strict")
    store_iocs(app, [{"type": "domain", "value": "secret.example.com", "tlp": "red"}])
    body = taxii_get(admin, _objects_path(collection)).get_json()
    assert "secret.example.com" not in str(body)
    assert "TLP:RED" not in str(body)


def test_red_collection_cannot_be_defined(admin):
    response = admin.client.post("/taxii/collections", json={"title": "All", "max_tlp": "red"})
    assert response.status_code == 400
    assert "max_tlp" in response.get_json()["errors"]


def test_collection_filters_confidence_and_tlp(app, admin):
    collection = create_collection(admin, min_confidence=70, max_tlp="green")
    store_iocs(
        app,
        [
            {"type": "domain", "value": "kept.example.com", "confidence": 70, "tlp": "green"},
            {"type": "domain", "value": "unsure.example.com", "confidence": 69, "tlp": "clear"},
            {"type": "domain", "value": "amber.example.com", "confidence": 90, "tlp": "amber"},
        ],
    )
    body = taxii_get(admin, f"{_objects_path(collection)}?match[type]=indicator").get_json()
    assert [o["name"] for o in body["objects"]] == ["kept.example.com"]


def test_tlp_marking_definitions_are_served_with_the_objects(app, admin, collection):
    store_iocs(app, sample_items(1))
    body = taxii_get(admin, f"{_objects_path(collection)}?match[type]=marking-definition")
    names = {o["name"] for o in body.get_json()["objects"]}
    assert names == {"TLP:CLEAR", "TLP:GREEN", "TLP:AMBER"}


def test_viewer_may_read_but_not_write(admin, viewer, collection):
    assert taxii_get(viewer, _objects_path(collection)).status_code == 200
    response = viewer.client.post(
        _objects_path(collection),
        data='{"objects": [{"type": "x"}]}',
        headers={"Accept": TAXII_ACCEPT, "Content-Type": TAXII_ACCEPT},
    )
    _assert_taxii_error(response, 403)


def test_collection_closed_to_a_role_is_invisible_to_it(admin, viewer):
    collection = create_collection(admin, read_roles=["analyst"])
    listed = taxii_get(viewer, "/taxii2/api/collections/").get_json()
    assert collection["id"] not in str(listed)
    _assert_taxii_error(taxii_get(viewer, _objects_path(collection)), 404)


def test_status_is_visible_only_to_its_poster_and_admins(admin, analyst, collection):
    envelope = {
        "objects": [
            {
                "type": "indicator",
                "spec_version": "2.1",
                "id": "indicator--5e0c1a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2b",
                "created": "2026-01-01T00:00:00Z",
                "modified": "2026-01-01T00:00:00Z",
                "pattern": "[url:value = 'http://a.example.com/']",
                "pattern_type": "stix",
                "valid_from": "2026-01-01T00:00:00Z",
            }
        ]
    }
    response = admin.client.post(
        _objects_path(collection),
        json=envelope,
        headers={"Accept": TAXII_ACCEPT, "Content-Type": TAXII_ACCEPT},
    )
    assert response.status_code == 202
    status_path = f"/taxii2/api/status/{response.get_json()['id']}/"
    assert taxii_get(admin, status_path).get_json()["success_count"] == 1
    _assert_taxii_error(taxii_get(analyst, status_path), 404)


def test_malformed_posted_objects_are_failures_in_the_status_not_500(admin, collection):
    base = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        "created": "2026-01-01T00:00:00Z",
        "modified": "2026-01-01T00:00:00Z",
        "pattern": "[domain-name:value = 'a.example.com']",
        "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z",
    }
    objects = [
        {**base, "extensions": [1]},
        {**base, "spec_version": "9.9"},
        {**base, "pattern": 5},
        {"type": "marking-definition", "id": "marking-definition--x", "extensions": 5},
    ]
    response = admin.client.post(
        _objects_path(collection),
        json={"objects": objects},
        headers={"Accept": TAXII_ACCEPT, "Content-Type": TAXII_ACCEPT},
    )
    assert response.status_code == 202
    status = response.get_json()
    assert (status["success_count"], status["failure_count"]) == (0, 4)


@pytest.mark.parametrize("bomb", PATTERN_BOMBS)
def test_an_oversized_pattern_fails_alone_in_the_status(app, admin, collection, bomb):
    bomb_id = "indicator--0b0b0b0b-0b0b-4b0b-8b0b-0b0b0b0b0b0b"
    valid_id = "indicator--1a1a1a1a-1a1a-4a1a-8a1a-1a1a1a1a1a1a"
    objects = [
        stix_indicator(bomb_id, PATTERN_BOMBS[bomb]),
        stix_indicator(valid_id, "[domain-name:value = 'kept.example.com']"),
    ]

    response = admin.client.post(
        _objects_path(collection),
        json={"objects": objects},
        headers={"Accept": TAXII_ACCEPT, "Content-Type": TAXII_ACCEPT},
    )

    assert response.status_code == 202, response.get_data(as_text=True)
    status = response.get_json()
    assert [entry["id"] for entry in status["successes"]] == [valid_id]
    assert [entry["id"] for entry in status["failures"]] == [bomb_id]
    assert "at most" in status["failures"][0]["message"]
