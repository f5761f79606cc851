"""``/iocs`` and ``/incidents/<id>/iocs`` over HTTP."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import func, select

from models import AuditEntry, IncidentIoc, Ioc, db
from tests.helpers import make_user, statements_seen


def add(user, value: str, **fields) -> dict:
    response = user.client.post("/iocs", json={"value": value, **fields})
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


def create_incident(user, **fields) -> int:
    body = {"title": "Phishing wave", "severity": "high", **fields}
    response = user.client.post("/incidents", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def count_iocs(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Ioc))


def test_check_finds_the_stored_network_that_contains_an_address(analyst):
    add(analyst, "10.0.0.0/8", confidence=75)
    response = analyst.client.get("/iocs/check?value=10.1.2.3")
    assert response.status_code == 200
    body = response.get_json()
    assert body["known_bad"] is True
    assert body["matches"][0]["match"] == "cidr"
    assert body["matches"][0]["ioc"]["value"] == "10.0.0.0/8"
    assert body["matches"][0]["ioc"]["sighting_count"] == 1


def test_check_counts_and_reads_matches_with_their_creators_names_in_one_statement(
    app, analyst, admin
):
    """Each match names its creator; counting the sighting, reading the matches and their
    creators' names is one statement, which reads no creator's password hash or MFA
    secret."""
    add(analyst, "10.0.0.0/8", confidence=60)
    add(admin, "10.1.2.3", confidence=90)
    with statements_seen(app) as seen:
        response = analyst.client.get("/iocs/check?value=10.1.2.3")
    matches = response.get_json()["matches"]
    assert [(m["ioc"]["value"], m["ioc"]["created_by"]) for m in matches] == [
        ("10.1.2.3", admin.username),
        ("10.0.0.0/8", analyst.username),
    ]
    assert [m["ioc"]["sighting_count"] for m in matches] == [1, 1]
    (counting,) = [statement for statement, _ in seen if " iocs" in statement]
    assert "password_hash" not in counting
    assert "mfa_secret" not in counting
    # No creator read on its own (the token's own lookup, when due, joins its user).
    assert not [statement for statement, _ in seen if "FROM users" in statement]


def test_reading_iocs_reads_no_secrets_of_their_creators(app, analyst):
    """An IOC names its creator: reading it, a page of IOCs or a search does not read the
    creator's password hash or MFA secret to say so."""
    created = add(analyst, "evil.example.net")
    with statements_seen(app) as seen:
        one = analyst.client.get(f"/iocs/{created['id']}").get_json()
        page = analyst.client.get("/iocs").get_json()
        found = analyst.client.get("/iocs?q=evil").get_json()
    assert one["created_by"] == analyst.username
    assert [item["created_by"] for item in page["items"]] == [analyst.username]
    assert [item["created_by"] for item in found["items"]] == [analyst.username]
    ioc_reads = [statement for statement, _ in seen if "FROM iocs" in statement]
    assert len(ioc_reads) >= 3
    for statement in ioc_reads:
        assert "password_hash" not in statement
        assert "mfa_secret" not in statement


def test_concurrent_checks_of_one_value_lose_no_sighting(app, analyst):
    """Checks of one value from several threads at once each count: the count is
    incremented in the statement, under the row's lock, never read and written back."""
    created = add(analyst, "10.9.8.7")
    threads_count, checks_each = 4, 5
    barrier = threading.Barrier(threads_count)
    statuses: list[int] = []

    def check() -> None:
        client = app.test_client()
        headers = {"Authorization": f"Bearer {analyst.token}"}
        barrier.wait()
        for _ in range(checks_each):
            response = client.get("/iocs/check?value=10.9.8.7", headers=headers)
            statuses.append(response.status_code)

    threads = [threading.Thread(target=check) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200] * threads_count * checks_each
    stored = analyst.client.get(f"/iocs/{created['id']}").get_json()
    assert stored["sighting_count"] == threads_count * checks_each


def test_defanged_url_is_found_and_stored_refanged(analyst):
    created = add(analyst, "hxxps://evil[.]example[.]com/a?b=1")
    assert (created["type"], created["value"]) == ("url", "https://evil.example.com/a?b=1")
    check = analyst.client.get(
        "/iocs/check", query_string={"value": "hxxps://evil[.]example[.]com/a?b=1"}
    )
    assert check.get_json()["known_bad"] is True


def test_new_ioc_answers_201_with_etag_and_location(analyst):
    response = analyst.client.post("/iocs", json={"type": "domain", "value": "evil.example.com"})
    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["ETag"] == '"1"'
    assert response.headers["Location"] == f"/iocs/{body['id']}"
    assert body["created_by"] == "analyst1"


def test_known_value_answers_200_with_the_merged_ioc(analyst):
    first = add(analyst, "evil.example.com", confidence=20)
    response = analyst.client.post("/iocs", json={"value": "evil.example.com", "confidence": 60})
    assert response.status_code == 200
    assert response.get_json()["id"] == first["id"]
    assert response.get_json()["confidence"] == 60


def test_retry_with_the_same_idempotency_key_replays_the_first_answer(app, analyst):
    headers = {"Idempotency-Key": "ioc-retry-1"}
    body = {"value": "evil.example.com", "confidence": 20}
    first = analyst.client.post("/iocs", json=body, headers=headers)
    second = analyst.client.post("/iocs", json=body, headers=headers)
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.get_json() == first.get_json()
    with app.app_context():
        assert db.session.get(Ioc, first.get_json()["id"]).version == 1


def test_replayed_ioc_create_answers_with_the_first_etag_and_location(analyst):
    headers = {"Idempotency-Key": "ioc-headers-1"}
    body = {"value": "evil.example.com", "confidence": 20}
    first = analyst.client.post("/iocs", json=body, headers=headers)
    second = analyst.client.post("/iocs", json=body, headers=headers)
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.headers["ETag"] == first.headers["ETag"] == '"1"'
    assert second.headers["Location"] == first.headers["Location"]
    assert first.headers["Location"].endswith(f"/iocs/{first.get_json()['id']}")


def test_invalid_indicator_is_422_naming_the_reason(analyst):
    response = analyst.client.post("/iocs", json={"type": "domain", "value": "invoice.notatld"})
    assert response.status_code == 422
    assert "top-level domain" in response.get_json()["errors"]["value"][0]


def test_unknown_field_is_400(analyst):
    response = analyst.client.post("/iocs", json={"value": "evil.example.com", "id": 5})
    assert response.status_code == 400
    assert "id" in response.get_json()["errors"]


def test_bulk_reports_errors_by_index_and_stores_the_rest(app, analyst):
    items = [
        {"value": "198.51.100.1"},
        {"value": "198.51.100.2", "confidence": 101},
        {"value": "not-an-ioc"},
        {"value": "198.51.100.1", "tags": ["again"]},
    ]
    response = analyst.client.post("/iocs/bulk", json={"items": items, "source": "feed"})
    assert response.status_code == 200
    body = response.get_json()
    assert (body["created"], body["merged"], body["failed"]) == (1, 1, 2)
    assert [error["index"] for error in body["errors"]] == [1, 2]
    assert "confidence" in body["errors"][0]["errors"]
    assert [result["index"] for result in body["results"]] == [0, 3]
    assert count_iocs(app) == 1


def test_bulk_entry_that_is_not_an_object_is_an_error_at_its_index(app, analyst):
    items = [{"value": "198.51.100.7"}, "198.51.100.8", None, [{"value": "198.51.100.9"}]]
    response = analyst.client.post("/iocs/bulk", json={"items": items})
    assert response.status_code == 200
    body = response.get_json()
    assert [error["index"] for error in body["errors"]] == [1, 2, 3]
    assert [result["index"] for result in body["results"]] == [0]
    assert count_iocs(app) == 1


@pytest.mark.parametrize("items", [{"value": "198.51.100.7"}, "198.51.100.7", [], None])
def test_bulk_items_that_are_not_a_non_empty_array_are_400(analyst, items):
    response = analyst.client.post("/iocs/bulk", json={"items": items})
    assert response.status_code == 400
    assert "items" in response.get_json()["errors"]


def test_bulk_accepts_a_body_larger_than_the_default_cap(app, analyst):
    items = [
        {"value": f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", "description": "x" * 150}
        for i in range(6000)
    ]
    payload = json.dumps({"items": items})
    assert len(payload) > app.config["MAX_CONTENT_LENGTH"]
    response = analyst.client.post(
        "/iocs/bulk", data=payload, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["created"] == 6000


def test_bulk_over_ten_thousand_items_is_400(analyst):
    items = [{"value": "192.0.2.1"}] * 10_001
    response = analyst.client.post("/iocs/bulk", json={"items": items})
    assert response.status_code == 400
    assert "items" in response.get_json()["errors"]


def test_list_filters_and_pages(analyst):
    for index in range(3):
        add(analyst, f"host{index}.example.com", tags=["phish"], confidence=80)
    add(analyst, "192.0.2.1", tags=["phish"], confidence=80)
    add(analyst, "low.example.com", confidence=10)
    first = analyst.client.get("/iocs?type=domain&tag=phish&min_confidence=50&limit=2").get_json()
    assert [item["value"] for item in first["items"]] == ["host2.example.com", "host1.example.com"]
    rest = analyst.client.get(
        f"/iocs?type=domain&tag=phish&min_confidence=50&limit=2&cursor={first['next_cursor']}"
    ).get_json()
    assert [item["value"] for item in rest["items"]] == ["host0.example.com"]
    assert rest["next_cursor"] is None


def test_list_by_query_and_activity(analyst):
    add(analyst, "evil.example.com", description="seen in the march campaign")
    add(analyst, "old.example.com", expires_at="2020-01-01T00:00:00Z")
    by_text = analyst.client.get("/iocs?q=march").get_json()["items"]
    assert [item["value"] for item in by_text] == ["evil.example.com"]
    expired = analyst.client.get("/iocs?active=false").get_json()["items"]
    assert [item["value"] for item in expired] == ["old.example.com"]


def test_patch_with_a_stale_version_is_412_and_with_the_current_one_updates(analyst):
    created = add(analyst, "evil.example.com")
    url = f"/iocs/{created['id']}"
    updated = analyst.client.patch(url, json={"confidence": 95}, headers={"If-Match": '"1"'})
    assert updated.status_code == 200
    assert (updated.get_json()["confidence"], updated.headers["ETag"]) == (95, '"2"')
    stale = analyst.client.patch(url, json={"tlp": "green"}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412
    assert analyst.client.get(url).get_json()["tlp"] == "amber"


def test_patch_cannot_change_the_value(analyst):
    created = add(analyst, "evil.example.com")
    response = analyst.client.patch(f"/iocs/{created['id']}", json={"value": "other.example.com"})
    assert response.status_code == 400


def test_delete_removes_the_ioc(app, analyst):
    created = add(analyst, "evil.example.com")
    assert analyst.client.delete(f"/iocs/{created['id']}").status_code == 204
    assert analyst.client.get(f"/iocs/{created['id']}").status_code == 404
    assert count_iocs(app) == 0


def test_every_write_is_audited(app, analyst):
    created = add(analyst, "evil.example.com")
    add(analyst, "evil.example.com")
    analyst.client.patch(f"/iocs/{created['id']}", json={"confidence": 1})
    analyst.client.post("/iocs/bulk", json={"items": [{"value": "192.0.2.1"}]})
    analyst.client.delete(f"/iocs/{created['id']}")
    with app.app_context():
        actions = db.session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.action.like("ioc.%"), AuditEntry.actor == "analyst1")
            .order_by(AuditEntry.id)
        ).all()
    assert actions == ["ioc.create", "ioc.merge", "ioc.update", "ioc.bulk_import", "ioc.delete"]


def test_batch_check_answers_each_value_and_reports_invalid_ones_inline(analyst):
    add(analyst, "10.0.0.0/8")
    response = analyst.client.post(
        "/iocs/check", json={"values": ["10.0.0.1", "nonsense!", "8.8.8.8"]}
    )
    assert response.status_code == 200
    items = response.get_json()["items"]
    assert [item["known_bad"] for item in items] == [True, False, False]
    assert items[1]["error"] is not None and items[0]["error"] is None


def test_check_of_a_non_indicator_is_422(analyst):
    response = analyst.client.get("/iocs/check?value=hello")
    assert response.status_code == 422


def test_extract_finds_defanged_iocs_and_reports_the_known_ones(app, analyst):
    known = add(analyst, "evil.example.com")
    text = "Beacon to hxxps://evil[.]example[.]com/a?b=1 and 203.0.113[.]5; see invoice.pdf"
    response = analyst.client.post("/iocs/extract", json={"text": text})
    assert response.status_code == 200
    body = response.get_json()
    assert body["found"]["url"] == ["https://evil.example.com/a?b=1"]
    assert body["found"]["ipv4"] == ["203.0.113.5"]
    assert [check["matches"][0]["ioc"]["id"] for check in body["known"]] == [known["id"]]
    assert body["stored"] == []
    assert count_iocs(app) == 1


def test_extract_with_save_stores_and_links_to_the_incident(app, analyst):
    incident_id = create_incident(analyst)
    text = "C2 at 203.0.113[.]5 and hxxp://bad[.]example[.]net/x"
    response = analyst.client.post(
        "/iocs/extract",
        json={"text": text, "save": True, "source": "report-7", "incident_id": incident_id},
    )
    assert response.status_code == 200
    stored = {item["value"]: item for item in response.get_json()["stored"]}
    assert "203.0.113.5" in stored and "http://bad.example.net/x" in stored
    assert {item["source"] for item in stored.values()} == {"report-7"}
    linked = analyst.client.get(f"/incidents/{incident_id}/iocs").get_json()["items"]
    assert {item["value"] for item in linked} == set(stored)


def test_viewer_may_extract_but_not_save(viewer):
    assert viewer.client.post("/iocs/extract", json={"text": "1.2.3.4"}).status_code == 200
    response = viewer.client.post("/iocs/extract", json={"text": "1.2.3.4", "save": True})
    assert response.status_code == 403


def test_link_iocs_to_an_incident_and_list_them(app, analyst):
    incident_id = create_incident(analyst)
    first, second = add(analyst, "evil.example.com"), add(analyst, "192.0.2.1")
    url = f"/incidents/{incident_id}/iocs"
    response = analyst.client.post(url, json={"ioc_ids": [first["id"], second["id"]]})
    assert response.status_code == 200
    assert response.get_json()["linked"] == sorted([first["id"], second["id"]])
    again = analyst.client.post(url, json={"ioc_ids": [first["id"]]}).get_json()
    assert again["linked"] == []
    assert {item["id"] for item in analyst.client.get(url).get_json()["items"]} == {
        first["id"],
        second["id"],
    }
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(IncidentIoc)) == 2


def test_linking_an_unknown_ioc_is_422_and_links_nothing(app, analyst):
    incident_id = create_incident(analyst)
    known = add(analyst, "evil.example.com")
    response = analyst.client.post(
        f"/incidents/{incident_id}/iocs", json={"ioc_ids": [known["id"], 999999]}
    )
    assert response.status_code == 422
    assert response.get_json()["missing_ioc_ids"] == [999999]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(IncidentIoc)) == 0


def test_iocs_of_a_hidden_incident_are_404(app, client, analyst):
    other = make_user(app, client, "analyst2", "analyst")
    incident_id = create_incident(analyst, tlp="red")
    assert other.client.get(f"/incidents/{incident_id}/iocs").status_code == 404
    ioc = add(other, "evil.example.com")
    response = other.client.post(f"/incidents/{incident_id}/iocs", json={"ioc_ids": [ioc["id"]]})
    assert response.status_code == 404


def test_viewer_cannot_create_iocs(app, viewer):
    assert viewer.client.post("/iocs", json={"value": "evil.example.com"}).status_code == 403
    bulk = viewer.client.post("/iocs/bulk", json={"items": [{"value": "evil.example.com"}]})
    assert bulk.status_code == 403
    assert count_iocs(app) == 0


def test_viewer_can_read_and_check(analyst, viewer):
    created = add(analyst, "evil.example.com")
    assert viewer.client.get(f"/iocs/{created['id']}").status_code == 200
    assert viewer.client.get("/iocs/check?value=evil.example.com").get_json()["known_bad"]


def test_tlp_red_ioc_is_404_for_other_analysts(app, client, analyst, admin):
    other = make_user(app, client, "analyst2", "analyst")
    created = add(analyst, "secret.example.com", tlp="red")
    assert other.client.get(f"/iocs/{created['id']}").status_code == 404
    assert other.client.get("/iocs/check?value=secret.example.com").get_json()["matches"] == []
    assert other.client.get("/iocs").get_json()["items"] == []
    assert admin.client.get(f"/iocs/{created['id']}").status_code == 200


def test_anonymous_request_is_401(client):
    assert client.get("/iocs/check?value=10.1.2.3").status_code == 401
