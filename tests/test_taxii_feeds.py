"""TAXII feeds: registering remote servers (secrets encrypted, URLs checked against SSRF) and
polling them with the OASIS client, into this database or into a second, empty one."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import make_url

from embedded_db import embedded_client_binary
from models import Ioc, TaxiiFeed, db, utcnow
from tests.scripted_taxii_server import COLLECTION_ID, Script, scripted_taxii_server
from tests.taxii_helpers import (
    ENCRYPTION_KEY,
    PATTERN_BOMBS,
    feed_body,
    poll_feed_body,
    sample_items,
    stix_indicator,
    store_iocs,
)

# pg_dump and the consumer database are reached by URL (see the url_form marker).
pytestmark = pytest.mark.url_form

pytest_plugins = ("tests.taxii_fixtures",)

FEED_SECRET = "Feed-Secret-7f3c9a1e-Do-Not-Leak"


def _create_feed(user, body: dict) -> dict:
    response = user.client.post("/taxii/feeds", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _stored_iocs(app) -> set[tuple]:
    with app.app_context():
        rows = db.session.execute(select(Ioc.type, Ioc.value, Ioc.confidence, Ioc.tlp))
        return {tuple(row) for row in rows}


def _dump_of_feeds_table(database_url: str) -> str:
    """pg_dump of the feeds table, over TCP or the embedded server's Unix socket."""
    url = make_url(database_url)
    command = [str(embedded_client_binary("pg_dump")), "--data-only", "--table=taxii_feeds"]
    command += ["-h", url.host or url.query["host"], "-p", str(url.port or 5432)]
    command += ["-U", url.username or "postgres", "--no-password", url.database]
    env = {**os.environ, "PGPASSWORD": url.password or ""}
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_feed_credentials_are_never_returned(taxii_settings, live_server, collection, admin):
    body = feed_body(
        live_server, collection, auth_type="basic", username="reader", password=FEED_SECRET
    )
    created = _create_feed(admin, body)
    assert created["has_credentials"] is True
    fetched = admin.client.get(f"/taxii/feeds/{created['id']}").get_json()
    listed = admin.client.get("/taxii/feeds").get_json()
    for shown in (created, fetched, listed):
        assert FEED_SECRET not in str(shown)
        assert "password" not in str(shown)


def test_feed_secrets_are_unreadable_in_a_database_dump(
    app, database_url, taxii_settings, live_server, collection, admin
):
    _create_feed(admin, feed_body(live_server, collection, auth_type="bearer", token=FEED_SECRET))
    with app.app_context():
        dump = _dump_of_feeds_table(database_url)
        stored = db.session.scalar(select(TaxiiFeed.credentials_encrypted))
    assert "primary" in dump
    assert FEED_SECRET not in dump
    assert FEED_SECRET.encode().hex() not in dump
    assert bytes(stored).startswith(b"gAAAAA")


def test_credentials_without_encryption_key_are_refused_clearly(
    app, monkeypatch, taxii_settings, live_server, collection, admin
):
    monkeypatch.setitem(app.config, "ENCRYPTION_KEYS", ())
    body = feed_body(live_server, collection, auth_type="bearer", token=FEED_SECRET)
    response = admin.client.post("/taxii/feeds", json=body)
    assert response.status_code == 422
    assert "ENCRYPTION_KEY" in response.get_json()["detail"]
    assert (
        admin.client.post("/taxii/feeds", json=feed_body(live_server, collection)).status_code
        == 201
    )


def test_credentials_that_do_not_match_the_auth_type_are_422(
    taxii_settings, live_server, collection, admin
):
    body = feed_body(live_server, collection, auth_type="basic", token=FEED_SECRET)
    response = admin.client.post("/taxii/feeds", json=body)
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"token", "username", "password"}


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/taxii2/api/",
        "http://10.0.0.5/taxii2/api/",
        "http://169.254.169.254/latest/",
        "http://localhost/taxii2/api/",
    ],
)
def test_feed_at_a_private_address_is_refused_without_allowlisting(admin, url):
    body = {"name": "internal", "api_root_url": url, "collection_id": "x"}
    response = admin.client.post("/taxii/feeds", json=body)
    assert response.status_code == 422
    assert "TAXII_ALLOWED_HOSTS" in response.get_json()["detail"]
    assert admin.client.get("/taxii/feeds").get_json()["items"] == []


def test_poll_is_refused_when_the_address_is_no_longer_allowed(
    app, monkeypatch, taxii_settings, live_server, collection, admin
):
    feed = _create_feed(admin, feed_body(live_server, collection))
    monkeypatch.setitem(app.config, "OUTBOUND_ALLOWED_HOSTS", ())
    response = admin.client.post(f"/taxii/feeds/{feed['id']}/poll")
    assert response.status_code == 502
    assert "TAXII_ALLOWED_HOSTS" in response.get_json()["detail"]
    assert (
        "TAXII_ALLOWED_HOSTS"
        in admin.client.get(f"/taxii/feeds/{feed['id']}").get_json()["last_error"]
    )


def test_only_admins_manage_feeds(analyst):
    assert analyst.client.get("/taxii/feeds").status_code == 403


def test_second_poll_fetches_only_objects_added_since(
    app, live_server, collection, admin, consumer_admin
):
    store_iocs(app, sample_items(5))
    feed = _create_feed(consumer_admin, poll_feed_body(live_server, collection, admin, page_size=2))
    poll_path = f"/taxii/feeds/{feed['id']}/poll"
    first = consumer_admin.client.post(poll_path).get_json()["result"]
    store_iocs(app, [{"type": "domain", "value": "newer.example.com"}])
    second = consumer_admin.client.post(poll_path).get_json()["result"]
    # The IOCs, and the collection's TLP markings (clear, green, amber).
    assert first["objects"] == 5 + 3
    assert first["pages"] == 4
    assert (second["objects"], second["created"]) == (1, 1)


def test_a_feed_held_by_another_poller_is_not_polled(
    consumer_app, live_server, collection, admin, consumer_admin
):
    feed = _create_feed(consumer_admin, poll_feed_body(live_server, collection, admin))
    with consumer_app.app_context():
        db.session.execute(
            update(TaxiiFeed).where(TaxiiFeed.id == feed["id"]).values(poll_started_at=utcnow())
        )
        db.session.commit()
    assert consumer_admin.client.post(f"/taxii/feeds/{feed['id']}/poll").status_code == 409


def test_flask_taxii_poll_polls_due_feeds(
    app, consumer_app, live_server, collection, admin, consumer_admin
):
    store_iocs(app, sample_items(3))
    _create_feed(consumer_admin, poll_feed_body(live_server, collection, admin))
    result = consumer_app.test_cli_runner().invoke(args=["taxii-poll"])
    assert result.exit_code == 0, result.output
    assert "primary: 6 objects in 1 pages, 3 IOCs created" in result.output
    again = consumer_app.test_cli_runner().invoke(args=["taxii-poll"])
    assert again.exit_code == 0
    assert again.output == ""  # polled a moment ago: not due before its interval


ROUND_TRIP_IOCS = [
    {"type": "ipv4", "value": "203.0.113.7", "confidence": 90, "tlp": "clear"},
    {"type": "ipv6", "value": "2001:db8::7", "confidence": 40, "tlp": "green"},
    {"type": "cidr", "value": "198.51.100.0/24", "confidence": 65, "tlp": "amber"},
    {"type": "domain", "value": "evil.example.com", "confidence": 100, "tlp": "amber"},
    {"type": "url", "value": "https://evil.example.com/a?b=c", "confidence": 55},
    {"type": "email", "value": "ceo@evil.example.com", "confidence": 30, "tlp": "green"},
    {"type": "md5", "value": "d41d8cd98f00b204e9800998ecf8427e", "confidence": 80},
    {"type": "sha1", "value": "da39a3ee5e6b4b0d3255bfef95601890afd80709", "confidence": 81},
    {"type": "sha256", "value": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {
        "type": "sha512",
        "value": "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
        "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
        "tags": ["empty"],
    },
    {"type": "cve", "value": "CVE-2021-44228", "confidence": 95, "tlp": "clear"},
    {"type": "domain", "value": "red.example.com", "confidence": 99, "tlp": "red"},
]


def test_round_trip_into_a_second_empty_database_keeps_the_iocs(
    app, consumer_app, live_server, collection, admin, consumer_admin
):
    store_iocs(app, ROUND_TRIP_IOCS)
    feed = _create_feed(consumer_admin, poll_feed_body(live_server, collection, admin, page_size=5))
    response = consumer_admin.client.post(f"/taxii/feeds/{feed['id']}/poll")
    assert response.status_code == 200, response.get_json()
    exported = {ioc for ioc in _stored_iocs(app) if ioc[3] != "red"}
    assert len(exported) == len(ROUND_TRIP_IOCS) - 1
    assert _stored_iocs(consumer_app) == exported
    with consumer_app.app_context():
        sources = set(db.session.scalars(select(Ioc.source)))
        tags = db.session.scalar(select(Ioc.tags).where(Ioc.type == "sha512"))
    assert sources == {"taxii:primary"}
    assert tags == ["empty"]


def test_polling_a_collection_the_poll_itself_feeds_ends(
    app, taxii_settings, live_server, collection, admin
):
    store_iocs(app, sample_items(5))
    feed = _create_feed(admin, poll_feed_body(live_server, collection, admin, page_size=2))
    response = admin.client.post(f"/taxii/feeds/{feed['id']}/poll")
    assert response.status_code == 200, response.get_json()
    result = response.get_json()["result"]
    # Every IOC comes once (storing re-dates it, so the server offers it again: not taken).
    assert (result["objects"], result["merged"], result["created"]) == (5 + 3, 5, 0)


KEPT_INDICATOR = stix_indicator(
    "indicator--1a1a1a1a-1a1a-4a1a-8a1a-1a1a1a1a1a1a", "[domain-name:value = 'kept.example.com']"
)


def _scripted_feed(admin, api_root: str) -> dict:
    return _create_feed(
        admin, {"name": "scripted", "api_root_url": api_root, "collection_id": COLLECTION_ID}
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("page_seconds", "poll_seconds", "drip_headers"),
    [(2, 60, False), (60, 2, False), (2, 60, True)],
    ids=["body, page deadline", "body, poll deadline", "headers, page deadline"],
)
def test_a_feed_dripping_its_page_is_cut_off_at_the_deadline(
    app, taxii_settings, admin, monkeypatch, page_seconds, poll_seconds, drip_headers
):
    monkeypatch.setitem(app.config, "TAXII_PAGE_DEADLINE_SECONDS", page_seconds)
    monkeypatch.setitem(app.config, "TAXII_POLL_DEADLINE_SECONDS", poll_seconds)
    # 20 bytes at 0.5 s: the page takes 10 s, and each byte comes well within any read timeout.
    script = Script([KEPT_INDICATOR], drip_seconds=0.5, drip_headers=drip_headers)
    with scripted_taxii_server(script) as api_root:
        feed = _scripted_feed(admin, api_root)
        started = time.monotonic()
        response = admin.client.post(f"/taxii/feeds/{feed['id']}/poll")
        elapsed = time.monotonic() - started

    assert response.status_code == 502, response.get_data(as_text=True)
    assert "did not send a page within its deadline" in response.get_json()["detail"]
    assert 2 <= elapsed < 6  # unbounded, the script gives up after 10 s
    assert _stored_iocs(app) == set()


@pytest.mark.slow
@pytest.mark.parametrize("bomb", PATTERN_BOMBS)
def test_a_polled_page_keeps_its_indicators_beside_an_oversized_pattern(
    app, taxii_settings, admin, bomb
):
    bomb_id = "indicator--0b0b0b0b-0b0b-4b0b-8b0b-0b0b0b0b0b0b"
    page = [stix_indicator(bomb_id, PATTERN_BOMBS[bomb]), KEPT_INDICATOR]
    with scripted_taxii_server(Script(page)) as api_root:
        feed = _scripted_feed(admin, api_root)
        response = admin.client.post(f"/taxii/feeds/{feed['id']}/poll")

    assert response.status_code == 200, response.get_data(as_text=True)
    result = response.get_json()["result"]
    assert result["created"] == 1
    assert [failure["id"] for failure in result["failures"]] == [bomb_id]
    assert "at most" in result["failures"][0]["reason"]
    assert {value for _, value, _, _ in _stored_iocs(app)} == {"kept.example.com"}


def _stored_credentials(app) -> bytes:
    with app.app_context():
        return bytes(db.session.scalar(select(TaxiiFeed.credentials_encrypted)))


def test_reencrypt_secrets_moves_feed_credentials_to_the_new_key(
    app, monkeypatch, taxii_settings, live_server, collection, admin
):
    from cryptography.fernet import Fernet, InvalidToken

    _create_feed(admin, feed_body(live_server, collection, auth_type="bearer", token=FEED_SECRET))
    new_key = Fernet.generate_key().decode()
    monkeypatch.setitem(app.config, "ENCRYPTION_KEYS", (new_key, ENCRYPTION_KEY))
    with pytest.raises(InvalidToken):
        Fernet(new_key).decrypt(_stored_credentials(app))

    result = app.test_cli_runner().invoke(args=["reencrypt-secrets"])

    assert result.exit_code == 0, result.output
    assert "re-encrypted the credentials of 1 feeds" in result.output
    assert FEED_SECRET.encode() in Fernet(new_key).decrypt(_stored_credentials(app))


def test_reencrypt_secrets_without_the_old_key_changes_nothing(
    app, monkeypatch, taxii_settings, live_server, collection, admin
):
    from cryptography.fernet import Fernet

    _create_feed(admin, feed_body(live_server, collection, auth_type="bearer", token=FEED_SECRET))
    stored = _stored_credentials(app)
    monkeypatch.setitem(app.config, "ENCRYPTION_KEYS", (Fernet.generate_key().decode(),))

    result = app.test_cli_runner().invoke(args=["reencrypt-secrets"])

    assert result.exit_code == 1
    assert "feed 'primary'" in result.output
    assert _stored_credentials(app) == stored
