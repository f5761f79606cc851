"""Request hygiene: request ids, body size (413 before reading), body media type (415 on
every endpoint), and X-Forwarded-For believed only from configured proxies."""

from __future__ import annotations

import io

from flask import Flask, request

from models import AuditEntry, db
from security.modules.hygiene import install_proxy_fix


class UnreadableStream(io.RawIOBase):
    """A body that fails the test if anyone reads it."""

    def readinto(self, buffer) -> int:
        raise AssertionError("the body was read although Content-Length was over the cap")


def test_a_sane_request_id_is_echoed(client):
    response = client.get("/health", headers={"X-Request-ID": "client-trace-0001"})
    assert response.headers["X-Request-ID"] == "client-trace-0001"


def test_an_insane_request_id_is_replaced(client):
    response = client.get("/health", headers={"X-Request-ID": "<script>alert(1)</script>"})
    assert response.headers["X-Request-ID"] != "<script>alert(1)</script>"
    assert len(response.headers["X-Request-ID"]) == 32


def test_error_bodies_carry_the_request_id(client):
    response = client.get("/auth/me", headers={"X-Request-ID": "client-trace-0002"})
    assert response.get_json()["request_id"] == "client-trace-0002"


def test_oversized_body_is_413_without_reading_it(app, client):
    declared = app.config["MAX_CONTENT_LENGTH"] + 1
    response = client.post(
        "/auth/login",
        headers={"Content-Type": "application/json"},
        environ_overrides={"wsgi.input": UnreadableStream(), "CONTENT_LENGTH": str(declared)},
    )
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"


def test_body_at_the_cap_is_not_refused_for_its_size(app, client):
    body = b" " * (app.config["MAX_CONTENT_LENGTH"] - 2) + b"{}"
    response = client.post("/auth/login", data=body, content_type="application/json")
    assert response.status_code == 400


def test_non_json_body_is_415_even_where_the_body_is_not_read(admin):
    response = admin.client.post("/auth/logout", data="hello", content_type="text/plain")
    assert response.status_code == 415


def test_request_without_body_needs_no_content_type(admin):
    assert admin.client.post("/auth/logout").status_code == 204


def test_forwarded_for_is_ignored_without_trusted_proxies(app, client):
    client.post(
        "/auth/login",
        json={"username": "nobody", "password": "Wrong-Password-123"},
        headers={"X-Forwarded-For": "203.0.113.9"},
    )
    with app.app_context():
        entry = db.session.scalars(db.select(AuditEntry)).one()
        assert entry.ip == "127.0.0.1"


def test_forwarded_for_is_believed_from_the_configured_number_of_proxies():
    application = Flask(__name__)
    application.config["TRUSTED_PROXIES"] = 1
    install_proxy_fix(application)
    application.add_url_rule("/ip", "ip", lambda: request.remote_addr)
    answer = application.test_client().get("/ip", headers={"X-Forwarded-For": "203.0.113.9"})
    assert answer.text == "203.0.113.9"
