"""Admin views of TAXII: collection definitions and feeds (edit, delete, rotate secrets), and
the encryption of feed secrets with ENCRYPTION_KEY (several keys: rotation)."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from security.outbound.secrets import UndecryptableSecret, decrypt_secret, encrypt_secret
from tests.taxii_helpers import ENCRYPTION_KEY, create_collection, taxii_get

pytest_plugins = ("tests.taxii_fixtures",)


def _feed(admin, live_server: str, **fields) -> dict:
    body = {
        "name": "partner",
        "api_root_url": f"{live_server}/taxii2/api/",
        "collection_id": "c1",
        **fields,
    }
    response = admin.client.post("/taxii/feeds", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_a_secret_encrypted_with_an_older_key_still_decrypts_after_rotation(app, monkeypatch):
    with app.app_context():
        monkeypatch.setitem(app.config, "ENCRYPTION_KEYS", (ENCRYPTION_KEY,))
        token = encrypt_secret({"token": "s3cret"})
        monkeypatch.setitem(
            app.config, "ENCRYPTION_KEYS", (Fernet.generate_key().decode(), ENCRYPTION_KEY)
        )
        assert decrypt_secret(token) == {"token": "s3cret"}


def test_a_secret_under_a_forgotten_key_is_reported_not_garbled(app, monkeypatch):
    with app.app_context():
        monkeypatch.setitem(app.config, "ENCRYPTION_KEYS", (ENCRYPTION_KEY,))
        token = encrypt_secret({"token": "s3cret"})
        monkeypatch.setitem(app.config, "ENCRYPTION_KEYS", (Fernet.generate_key().decode(),))
        with pytest.raises(UndecryptableSecret, match="ENCRYPTION_KEY"):
            decrypt_secret(token)


def test_collection_definition_is_edited_with_if_match(admin, viewer):
    collection = create_collection(admin)
    path = f"/taxii/collections/{collection['id']}"
    stale = admin.client.patch(path, json={"read_roles": ["admin"]}, headers={"If-Match": '"9"'})
    assert stale.status_code == 412
    edited = admin.client.patch(path, json={"read_roles": ["admin"]}, headers={"If-Match": '"1"'})
    assert edited.status_code == 200
    assert edited.get_json()["max_tlp"] == "amber"  # untouched fields keep their value
    listed = taxii_get(viewer, "/taxii2/api/collections/").get_json()
    assert collection["id"] not in str(listed)


def test_deleted_collection_is_no_longer_served(admin):
    collection = create_collection(admin)
    assert admin.client.delete(f"/taxii/collections/{collection['id']}").status_code == 204
    response = taxii_get(admin, f"/taxii2/api/collections/{collection['id']}/")
    assert response.status_code == 404


def test_analyst_cannot_define_collections(analyst):
    assert analyst.client.post("/taxii/collections", json={"title": "x"}).status_code == 403


def test_feed_secret_is_replaced_only_when_given(app, taxii_settings, live_server, admin):
    from models import TaxiiFeed, db

    feed = _feed(admin, live_server, auth_type="bearer", token="first-token-value")
    path = f"/taxii/feeds/{feed['id']}"
    admin.client.patch(path, json={"poll_interval_seconds": 600})
    with app.app_context():
        stored = db.session.get(TaxiiFeed, feed["id"]).credentials_encrypted
        assert decrypt_secret(stored) == {"token": "first-token-value"}
    admin.client.patch(path, json={"token": "second-token-value"})
    with app.app_context():
        stored = db.session.get(TaxiiFeed, feed["id"]).credentials_encrypted
        assert decrypt_secret(stored) == {"token": "second-token-value"}


def test_pointing_a_feed_elsewhere_resets_its_watermark(app, taxii_settings, live_server, admin):
    from models import TaxiiFeed, db, utcnow

    feed = _feed(admin, live_server)
    with app.app_context():
        db.session.get(TaxiiFeed, feed["id"]).added_after = utcnow()
        db.session.commit()
    edited = admin.client.patch(f"/taxii/feeds/{feed['id']}", json={"collection_id": "c2"})
    assert edited.get_json()["added_after"] is None


def test_feed_names_are_unique(taxii_settings, live_server, admin):
    _feed(admin, live_server)
    body = {"name": "PARTNER", "api_root_url": f"{live_server}/taxii2/api/", "collection_id": "x"}
    assert admin.client.post("/taxii/feeds", json=body).status_code == 409


def test_deleted_feed_is_gone(taxii_settings, live_server, admin):
    feed = _feed(admin, live_server)
    assert admin.client.delete(f"/taxii/feeds/{feed['id']}").status_code == 204
    assert admin.client.get(f"/taxii/feeds/{feed['id']}").status_code == 404
