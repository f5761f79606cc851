"""A real OpenID Connect provider on 127.0.0.1 for the tests: ``oidc-provider-mock`` (its
Flask app served by werkzeug in a thread) behind :class:`PkceFront`, and the app settings
that trust it (``sso`` fixture). Used by ``tests/test_sso.py`` and the response-shape
scenario.

The provider does not check PKCE itself (it registers no code-challenge extension), so
:class:`PkceFront`, a WSGI layer in front of it, does what a provider must: it remembers
each authorization request's ``code_challenge`` and refuses a token request whose
``code_verifier`` does not hash to it (RFC 7636, S256).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import flask
import oidc_provider_mock
import pytest
import requests
import werkzeug
import werkzeug.serving
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc.jwk import RSAKey

from tests.helpers import ApiClient

PORT = 18110
ISSUER = f"http://127.0.0.1:{PORT}"
CLIENT_ID = "soc-api"
MACHINE_AUDIENCE = "soc-api-machines"
REDIRECT_URI = "http://localhost/auth/oidc/callback"


class PkceFront:
    """RFC 7636 checks in front of the provider: a code is redeemed only with the verifier
    of the challenge its authorization request carried."""

    def __init__(self, provider_app) -> None:
        self.provider_app = provider_app
        self.challenges: dict[str, str] = {}  # redirect URI's code -> its code_challenge
        self.refused = 0

    def __call__(self, environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        request = werkzeug.Request({**environ, "wsgi.input": io.BytesIO(body)})
        grant = request.form.get("grant_type")
        if request.path == "/oauth2/token" and grant == "authorization_code":
            challenge = self.challenges.pop(request.form.get("code", ""), None)
            verifier = request.form.get("code_verifier", "")
            if challenge is None or create_s256_code_challenge(verifier) != challenge:
                self.refused += 1
                answer = werkzeug.Response('{"error": "invalid_grant"}', 400)
                return answer(environ, start_response)
        if request.path == "/oauth2/authorize" and request.method == "POST":
            return self._remember_challenge(request, environ, start_response)
        return self.provider_app(environ, start_response)

    def _remember_challenge(self, request, environ, start_response):
        answer = werkzeug.Response.from_app(self.provider_app, environ)
        code = parse_qs(urlparse(answer.headers.get("Location", "")).query).get("code")
        if code:
            self.challenges[code[0]] = request.args.get("code_challenge", "")
        return answer(environ, start_response)


@pytest.fixture(scope="session")
def provider() -> Iterator[dict]:
    """The provider, running; and its signing key as a joserfc key."""
    provider_app = oidc_provider_mock.app()
    front = PkceFront(provider_app)
    server = werkzeug.serving.make_server("127.0.0.1", PORT, front, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    with provider_app.test_request_context():
        provider_app.preprocess_request()  # its before_request hook exposes its storage
        private = flask.g.oidc_provider_mock_storage.jwk.as_dict(is_private=True)
    try:
        yield {"key": RSAKey.import_key(private), "front": front}
    finally:
        server.shutdown()
        thread.join()


@pytest.fixture
def sso(app, monkeypatch, provider) -> dict:
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # the local provider speaks http
    settings = {
        "OIDC_ISSUER": ISSUER,
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_CLIENT_SECRET": "local-test-secret",
        "OIDC_REDIRECT_URI": REDIRECT_URI,
        "OIDC_AUDIENCE": MACHINE_AUDIENCE,
        "OIDC_ROLE_CLAIM": "groups",
        "OIDC_ROLE_MAP": {"soc-admins": "admin", "soc-analysts": "analyst"},
        "OIDC_DEFAULT_ROLE": None,
        "OIDC_JIT_USERS": True,
        "OIDC_CLOCK_SKEW_SECONDS": 30,
        "OUTBOUND_ALLOWED_HOSTS": ("127.0.0.1",),
    }
    for name, value in settings.items():
        monkeypatch.setitem(app.config, name, value)
    return provider


def provider_user(sub: str, **claims) -> None:
    answer = requests.put(f"{ISSUER}/users/{sub}", json=claims, timeout=5)
    assert answer.status_code == 204


def sign_in(client: ApiClient, sub: str):
    """The browser's part: our login redirect, the provider's form, back to the callback."""
    start = client.get("/auth/oidc/login")
    assert start.status_code == 302, start.get_json()
    authorize = start.headers["Location"]
    query = parse_qs(urlparse(authorize).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["code_challenge"][0] and query["nonce"][0]
    form = requests.post(authorize, data={"sub": sub}, allow_redirects=False, timeout=5)
    assert form.status_code == 302, form.text
    back = parse_qs(urlparse(form.headers["Location"]).query)
    return client.get(f"/auth/oidc/callback?code={back['code'][0]}&state={back['state'][0]}")
