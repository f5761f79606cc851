"""Security headers on every response, errors included; HSTS on HTTPS; CORS only for the
configured origins. (tests/suite_guards.py also checks the headers on every response the
suite receives; these tests pin the exact policy.)"""

from __future__ import annotations

import flask
import pytest
from flask import Response

from tests.conftest import app_settings
from tests.servers import running_gunicorn

EXPECTED = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}
ALLOWED_ORIGIN = "https://console.example.org"


@pytest.mark.parametrize(
    "method, path, status",
    [
        ("GET", "/health", 200),
        ("GET", "/no/such/thing", 404),
        ("DELETE", "/health", 405),
        ("GET", "/auth/me", 401),
    ],
)
def test_security_headers_are_on_successes_and_errors(client, method, path, status):
    response = client.request(method, path)
    assert response.status_code == status
    assert {name: response.headers.get(name) for name in EXPECTED} == EXPECTED
    assert "Server" not in response.headers


def test_authenticated_responses_are_not_stored(admin):
    assert admin.client.get("/auth/me").headers["Cache-Control"] == "no-store"


def test_the_login_response_carrying_a_token_is_not_stored(client, admin):
    response = client.post(
        "/auth/login", json={"username": admin.username, "password": admin.password}
    )
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"


def test_no_request_keeps_or_reads_state_in_a_cookie(app):
    """Callers name themselves on every request; Flask's signed-cookie session (readable
    by anyone holding ``SECRET_KEY``, and ridden cross-site by a browser) is not there to
    read or to write."""
    with app.test_request_context("/incidents", headers={"Cookie": "session=eyJ1c2VyIjoxfQ"}):
        assert dict(flask.session) == {}
        with pytest.raises(RuntimeError):
            flask.session["user_id"] = 1


def test_hsts_is_sent_over_https(client):
    response = client.get("/health", base_url="https://localhost")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_hsts_is_not_sent_over_plain_http_unless_configured(app, client, monkeypatch):
    assert "Strict-Transport-Security" not in client.get("/health").headers
    monkeypatch.setitem(app.config, "HSTS_ENABLED", True)
    assert "Strict-Transport-Security" in client.get("/health").headers


def test_no_cross_origin_access_without_configured_origins(client):
    response = client.get("/health", headers={"Origin": ALLOWED_ORIGIN})
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.fixture(scope="module")
def cors_client(database_url):
    from app import create_app

    application = create_app(app_settings(database_url, CORS_ORIGINS=ALLOWED_ORIGIN))
    return application.test_client()


def test_configured_origin_may_read_responses(cors_client):
    response = cors_client.get("/health", headers={"Origin": ALLOWED_ORIGIN})
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "X-Request-ID" in response.headers["Access-Control-Expose-Headers"]


def test_preflight_from_configured_origin_allows_the_authorization_header(cors_client):
    response = cors_client.options(
        "/incidents",
        headers={
            "Origin": ALLOWED_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "authorization" in response.headers["Access-Control-Allow-Headers"].lower()


def test_other_origins_get_no_cross_origin_access(cors_client):
    response = cors_client.get("/health", headers={"Origin": "https://evil.example.net"})
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.slow
@pytest.mark.url_form
def test_gunicorn_sends_no_server_banner(database_url, suite_guards):
    with running_gunicorn(database_url, suite_guards.log_directory, workers=1) as server:
        answers = [server.request("GET", path) for path in ("/health", "/nowhere")]
    for answer in answers:
        assert "Server" not in answer.headers
        assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_the_suite_guard_flags_a_response_without_the_headers(app, suite_guards):
    with app.test_request_context("/anything"):
        suite_guards.inspect(app, Response("plain"))
    flagged = list(suite_guards.header_violations)
    suite_guards.header_violations.clear()
    assert any("X-Frame-Options" in problem for problem in flagged)
