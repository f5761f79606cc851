"""A collection as a STIX 2.1 object store: what it keeps, how versions, duplicates, TLP
and deletes behave, and the TLP marking definitions consistent with everything else.
(tests/test_taxii_interop.py drives the same through the OASIS client under gunicorn.)"""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import select

from tests.taxii_helpers import (
    MALWARE,
    TAXII_ACCEPT,
    create_collection,
    sample_items,
    store_iocs,
    taxii_get,
)

pytest_plugins = ("tests.taxii_fixtures",)

TLP_RED_2 = "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"
TLP_GREEN_2 = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"


def _tlp_2_marking(stix_id: str, created: str, name: str, tlp: str) -> dict:
    """A marking definition carrying the TLP 2.0 extension, as partners write them."""
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": stix_id,
        "created": created,
        "name": name,
        "extensions": {
            "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d": {
                "extension_type": "property-extension",
                "tlp_2_0": tlp,
            }
        },
    }


def _objects_path(collection: dict) -> str:
    return f"/taxii2/api/collections/{collection['id']}/objects/"


def _post(user, collection: dict, objects: list[dict]) -> dict:
    response = user.client.post(
        _objects_path(collection),
        json={"objects": objects},
        headers={"Accept": TAXII_ACCEPT, "Content-Type": TAXII_ACCEPT},
    )
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def _delete(user, collection: dict, stix_id: str, **query):
    return user.client.delete(
        f"{_objects_path(collection)}{stix_id}/",
        query_string=query,
        headers={"Accept": TAXII_ACCEPT},
    )


def _version(stix_object: dict, modified: str, **changes) -> dict:
    return {**copy.deepcopy(stix_object), "modified": modified, **changes}


def _versions(user, collection: dict, stix_id: str) -> list[str]:
    response = taxii_get(user, f"{_objects_path(collection)}{stix_id}/versions/")
    assert response.status_code == 200, response.get_json()
    return response.get_json()["versions"]


def _stored_rows(app, stix_id: str) -> int:
    from models import TaxiiObject, db

    with app.app_context():
        return len(
            db.session.scalars(select(TaxiiObject).where(TaxiiObject.stix_id == stix_id)).all()
        )


def test_any_stix_object_is_kept_and_served_exactly_as_posted(admin, collection):
    status = _post(admin, collection, [MALWARE])
    assert (status["success_count"], status["failure_count"]) == (1, 0)
    body = taxii_get(admin, f"{_objects_path(collection)}{MALWARE['id']}/").get_json()
    assert body["objects"] == [MALWARE]


def test_versions_are_the_objects_own_timestamp_strings(admin, collection):
    seconds_only = _version(MALWARE, "2026-03-02T10:00:00Z")
    _post(admin, collection, [MALWARE, seconds_only])
    assert _versions(admin, collection, MALWARE["id"]) == [
        "2026-03-01T10:00:00.000Z",
        "2026-03-02T10:00:00Z",
    ]


def test_get_objects_serves_the_last_version_unless_asked(admin, collection):
    later = _version(MALWARE, "2026-03-05T00:00:00.000Z", name="Example loader v2")
    _post(admin, collection, [later, MALWARE])  # posted out of order
    path = f"{_objects_path(collection)}?match[type]=malware"
    assert [o["name"] for o in taxii_get(admin, path).get_json()["objects"]] == [
        "Example loader v2"
    ]
    first = taxii_get(admin, f"{path}&match[version]=first").get_json()["objects"]
    assert [o["modified"] for o in first] == [MALWARE["modified"]]
    every = taxii_get(admin, f"{path}&match[version]=all").get_json()["objects"]
    assert len(every) == 2


def test_tlp_markings_have_versions_manifest_records_and_date_added(app, admin, collection):
    store_iocs(app, sample_items(2))
    objects = taxii_get(admin, _objects_path(collection))
    manifest = taxii_get(admin, f"/taxii2/api/collections/{collection['id']}/manifest/")
    served = objects.get_json()["objects"]
    records = manifest.get_json()["objects"]
    markings = [o for o in served if o["type"] == "marking-definition"]
    assert len(markings) == 3
    for marking in markings:
        assert _versions(admin, collection, marking["id"]) == ["2022-10-01T00:00:00.000Z"]
    assert [(r["id"], r["version"]) for r in records] == [
        (o["id"], o.get("modified", o.get("created"))) for o in served
    ]
    for header in ("X-TAXII-Date-Added-First", "X-TAXII-Date-Added-Last"):
        assert objects.headers[header] == manifest.headers[header]
    assert objects.headers["X-TAXII-Date-Added-First"] == records[0]["date_added"]
    assert objects.headers["X-TAXII-Date-Added-Last"] == records[-1]["date_added"]


def test_paging_covers_markings_posted_objects_and_iocs_with_matching_headers(
    app, admin, collection
):
    _post(admin, collection, [MALWARE])
    store_iocs(app, sample_items(3))
    manifest_path = f"/taxii2/api/collections/{collection['id']}/manifest/"
    seen, query = [], {"limit": 2}
    while True:
        response = taxii_get(admin, manifest_path, query_string=query)
        body = response.get_json()
        records = body["objects"]
        assert response.headers["X-TAXII-Date-Added-First"] == records[0]["date_added"]
        assert response.headers["X-TAXII-Date-Added-Last"] == records[-1]["date_added"]
        seen.extend(record["id"] for record in records)
        if not body["more"]:
            break
        query = {"limit": 2, "next": body["next"]}
    assert len(seen) == len(set(seen)) == 3 + 1 + 3
    # A poller resuming after the last date_added it saw gets nothing again.
    after_last = {"added_after": response.headers["X-TAXII-Date-Added-Last"]}
    assert taxii_get(admin, manifest_path, query_string=after_last).get_json() == {}


def test_manifest_match_id_with_every_version(admin, collection):
    _post(admin, collection, [MALWARE, _version(MALWARE, "2026-03-05T00:00:00.000Z")])
    response = taxii_get(
        admin,
        f"/taxii2/api/collections/{collection['id']}/manifest/",
        query_string={"match[id]": MALWARE["id"], "match[version]": "all"},
    )
    versions = [record["version"] for record in response.get_json()["objects"]]
    assert versions == ["2026-03-01T10:00:00.000Z", "2026-03-05T00:00:00.000Z"]


def test_an_exact_duplicate_is_a_success_and_is_kept_once(app, admin, collection):
    _post(admin, collection, [MALWARE])
    again = _post(admin, collection, [MALWARE])
    assert (again["success_count"], again["failure_count"]) == (1, 0)
    assert "already" in again["successes"][0]["message"]
    assert _stored_rows(app, MALWARE["id"]) == 1


def test_a_different_object_under_a_stored_version_is_refused(app, admin, collection):
    _post(admin, collection, [MALWARE])
    status = _post(admin, collection, [{**MALWARE, "name": "Rewritten history"}])
    assert status["failure_count"] == 1
    assert "different object" in status["failures"][0]["message"]
    body = taxii_get(admin, f"{_objects_path(collection)}{MALWARE['id']}/").get_json()
    assert body["objects"] == [MALWARE]


def test_a_partners_copy_of_an_oasis_tlp_marking_is_that_marking(app, admin, collection):
    # The same instant as OASIS's 2022-10-01T00:00:00.000Z, written differently.
    green = _tlp_2_marking(TLP_GREEN_2, "2022-10-01T00:00:00Z", "TLP:GREEN", "green")
    status = _post(admin, collection, [green, {**MALWARE, "object_marking_refs": [TLP_GREEN_2]}])
    assert (status["success_count"], status["failure_count"]) == (2, 0)
    assert _versions(admin, collection, TLP_GREEN_2) == ["2022-10-01T00:00:00.000Z"]


def test_an_observable_without_timestamps_is_kept_once(app, admin, collection):
    observable = {
        "type": "domain-name",
        "spec_version": "2.1",
        "id": "domain-name--3c10e93f-798e-5a26-a0c1-08156efab7f5",
        "value": "example.com",
    }
    first, again = _post(admin, collection, [observable]), _post(admin, collection, [observable])
    assert (first["success_count"], again["success_count"]) == (1, 1)
    assert _stored_rows(app, observable["id"]) == 1
    body = taxii_get(admin, f"{_objects_path(collection)}{observable['id']}/").get_json()
    assert body["objects"] == [observable]


def test_objects_marked_tlp_red_are_neither_kept_nor_served(app, admin, collection):
    custom_red = _tlp_2_marking(
        "marking-definition--4e7b1c3a-2d5f-4a6b-9c8d-7e6f5a4b3c2d",
        "2026-01-01T00:00:00.000Z",
        "Partner's own TLP:RED",
        "red",
    )
    assert _post(admin, collection, [custom_red])["success_count"] == 1
    red_by_standard = {**MALWARE, "object_marking_refs": [TLP_RED_2]}
    red_by_custom = {
        **MALWARE,
        "id": "malware--0c7b5b88-8ff7-4a4d-aa9d-feb398cd0061",
        "object_marking_refs": [custom_red["id"]],
    }
    status = _post(admin, collection, [red_by_standard, red_by_custom])
    assert status["failure_count"] == 2
    assert all("TLP:RED" in failure["message"] for failure in status["failures"])
    body = str(taxii_get(admin, f"{_objects_path(collection)}?match[version]=all").get_json())
    assert MALWARE["id"] not in body and red_by_custom["id"] not in body
    assert custom_red["id"] not in body  # the definition of red is not served either
    assert _stored_rows(app, MALWARE["id"]) == 0


def test_objects_above_the_collections_tlp_are_kept_but_not_served(admin):
    collection = create_collection(admin, max_tlp="clear")
    green = {**MALWARE, "object_marking_refs": [TLP_GREEN_2]}
    assert _post(admin, collection, [green])["success_count"] == 1
    missing = taxii_get(admin, f"{_objects_path(collection)}{MALWARE['id']}/")
    assert missing.status_code == 404
    edited = admin.client.get(f"/taxii/collections/{collection['id']}")
    admin.client.patch(
        f"/taxii/collections/{collection['id']}",
        json={"max_tlp": "green"},
        headers={"If-Match": edited.headers["ETag"]},
    )
    found = taxii_get(admin, f"{_objects_path(collection)}{MALWARE['id']}/").get_json()
    assert found["objects"] == [green]


def test_an_indicator_for_a_reserved_test_domain_is_kept(admin, collection):
    indicator = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": "indicator--5f0f3a1e-8c2d-4b7a-9e6f-0a1b2c3d4e5f",
        "created": "2026-01-01T00:00:00.000Z",
        "modified": "2026-01-01T00:00:00.000Z",
        "pattern": "[domain-name:value = 'login.portal.example']",
        "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z",
    }
    status = _post(admin, collection, [indicator])
    assert (status["success_count"], status["failure_count"]) == (1, 0)
    body = taxii_get(admin, f"{_objects_path(collection)}{indicator['id']}/").get_json()
    assert body["objects"] == [indicator]


def test_stix_2_0_objects_are_refused_by_a_2_1_collection(admin, collection):
    legacy = {key: value for key, value in MALWARE.items() if key != "spec_version"}
    status = _post(admin, collection, [legacy])
    assert status["failure_count"] == 1
    assert "STIX 2.1" in status["failures"][0]["message"]


def test_delete_removes_the_named_version_then_all(admin, collection):
    versions = [
        _version(MALWARE, f"2026-03-0{day}T00:00:00.000Z", name=f"v{day}") for day in (2, 3, 4)
    ]
    _post(admin, collection, versions)
    response = _delete(
        admin, collection, MALWARE["id"], **{"match[version]": "2026-03-03T00:00:00Z"}
    )
    assert response.status_code == 200
    assert _versions(admin, collection, MALWARE["id"]) == [
        "2026-03-02T00:00:00.000Z",
        "2026-03-04T00:00:00.000Z",
    ]
    assert _delete(admin, collection, MALWARE["id"]).status_code == 200  # the last
    assert _versions(admin, collection, MALWARE["id"]) == ["2026-03-02T00:00:00.000Z"]
    assert _delete(admin, collection, MALWARE["id"], **{"match[version]": "all"}).status_code == 200
    gone = taxii_get(admin, f"{_objects_path(collection)}{MALWARE['id']}/versions/")
    assert gone.status_code == 404
    assert _delete(admin, collection, MALWARE["id"]).status_code == 404


def test_delete_needs_write_access(admin, viewer, collection):
    _post(admin, collection, [MALWARE])
    response = _delete(viewer, collection, MALWARE["id"])
    assert response.status_code == 403
    assert response.headers["Content-Type"] == TAXII_ACCEPT
    assert len(_versions(admin, collection, MALWARE["id"])) == 1


def test_a_writer_who_may_not_read_may_not_delete(admin, analyst):
    collection = create_collection(admin, read_roles=["admin"], write_roles=["analyst"])
    _post(admin, collection, [MALWARE])
    assert _delete(analyst, collection, MALWARE["id"]).status_code == 403


@pytest.mark.parametrize("target", ["marking", "ioc"])
def test_the_tlp_markings_and_the_ioc_view_are_not_deletable(app, admin, collection, target):
    store_iocs(app, [{"type": "domain", "value": "kept.example.com", "tlp": "green"}])
    query = "match[type]=marking-definition" if target == "marking" else "match[type]=indicator"
    stix_id = taxii_get(admin, f"{_objects_path(collection)}?{query}").get_json()["objects"][0][
        "id"
    ]
    response = _delete(admin, collection, stix_id, **{"match[version]": "all"})
    assert response.status_code == 403
    assert response.get_json()["http_status"] == "403"
    assert taxii_get(admin, f"{_objects_path(collection)}{stix_id}/").status_code == 200


def test_deleting_a_collection_deletes_its_objects(app, admin, collection):
    _post(admin, collection, [MALWARE])
    path = f"/taxii/collections/{collection['id']}"
    etag = admin.client.get(path).headers["ETag"]
    assert admin.client.delete(path, headers={"If-Match": etag}).status_code == 204
    assert _stored_rows(app, MALWARE["id"]) == 0
