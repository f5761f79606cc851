"""Single sign-on against a real OpenID Connect provider on 127.0.0.1.

The provider is ``oidc-provider-mock`` (its Flask app served by werkzeug in a thread): it
publishes discovery and JWKS, shows a login form, issues authorization codes and ID tokens
signed with its key. It has no client-credentials grant, so the machine-client tests sign
their JWTs with the provider's own signing key (the one its JWKS publishes, read from its
storage) -- what a client-credentials token from it would be.

PKCE is checked by the provider's front (``tests/sso_support.PkceFront``).
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import select

from models import AuditEntry, User, db
from tests.sso_support import (
    CLIENT_ID,
    ISSUER,
    MACHINE_AUDIENCE,
    REDIRECT_URI,
    provider_user,
    sign_in,
)

pytest_plugins = ("tests.sso_support",)


def machine_token(key: RSAKey, **overrides) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": MACHINE_AUDIENCE,
        "sub": "soar-client",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "groups": ["soc-analysts"],
        **overrides,
    }
    return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)


def test_authorization_code_flow_with_pkce_ends_in_a_bearer_token(app, client, sso):
    provider_user("alice", groups=["soc-analysts"], email="alice@example.org")
    answer = sign_in(client, "alice")
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["token_type"] == "Bearer"
    assert body["user"]["role"] == "analyst"
    me = client.with_token(body["access_token"]).get("/auth/me").get_json()
    assert (me["username"], me["credential_type"]) == ("alice@example.org", "token")
    with app.app_context():
        user = db.session.scalars(select(User).where(User.sso_subject == "alice")).one()
        assert user.sso_issuer == ISSUER
        created = db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "user.create")
        ).one()
        assert created.details["source"] == "sso"


def test_a_code_redeemed_without_its_verifier_is_refused(client, sso):
    provider_user("frank", groups=["soc-analysts"], email="frank@example.org")
    start = client.get("/auth/oidc/login")
    authorize = start.headers["Location"]
    form = requests.post(authorize, data={"sub": "frank"}, allow_redirects=False, timeout=5)
    code = parse_qs(urlparse(form.headers["Location"]).query)["code"][0]
    stolen = requests.post(
        f"{ISSUER}/oauth2/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        auth=(CLIENT_ID, "local-test-secret"),
        timeout=5,
    )
    assert stolen.status_code == 400
    assert sso["front"].refused >= 1


def test_the_group_claim_maps_to_its_role(client, sso):
    provider_user("root", groups=["staff", "soc-admins"], email="root@example.org")
    assert sign_in(client, "root").get_json()["user"]["role"] == "admin"


def test_a_changed_group_changes_the_role_at_next_sign_in(client, sso):
    provider_user("bob", groups=["soc-admins"], email="bob@example.org")
    first = sign_in(client, "bob").get_json()
    assert first["user"]["role"] == "admin"
    provider_user("bob", groups=["soc-analysts"], email="bob@example.org")
    assert sign_in(client, "bob").get_json()["user"]["role"] == "analyst"
    time.sleep(0.6)  # past the verified-token cache: the demotion ended the admin session
    assert client.with_token(first["access_token"]).get("/auth/me").status_code == 401


def test_no_mapped_group_means_no_access(client, sso):
    provider_user("mallory", groups=["marketing"], email="mallory@example.org")
    assert sign_in(client, "mallory").status_code == 403


def test_without_just_in_time_accounts_an_unknown_identity_is_refused(
    app, client, sso, monkeypatch
):
    monkeypatch.setitem(app.config, "OIDC_JIT_USERS", False)
    provider_user("carol", groups=["soc-analysts"], email="carol@example.org")
    assert sign_in(client, "carol").status_code == 403


def test_a_forged_state_is_refused(client, sso):
    provider_user("dave", groups=["soc-analysts"], email="dave@example.org")
    start = client.get("/auth/oidc/login")
    form = requests.post(
        start.headers["Location"], data={"sub": "dave"}, allow_redirects=False, timeout=5
    )
    code = parse_qs(urlparse(form.headers["Location"]).query)["code"][0]
    assert client.get(f"/auth/oidc/callback?code={code}&state=forged").status_code == 401


def test_sso_accounts_have_no_local_password(client, sso):
    provider_user("erin", groups=["soc-analysts"], email="erin@example.org")
    token = sign_in(client, "erin").get_json()["access_token"]
    change = {"current_password": "Whatever-Was-Never-Set-1", "new_password": "Brand-New-Pass-77!"}
    assert client.with_token(token).post("/auth/password", json=change).status_code == 409


def test_a_client_credentials_jwt_is_accepted(sso, client):
    answer = client.with_token(machine_token(sso["key"])).get("/auth/me")
    assert answer.status_code == 200, answer.get_json()
    assert (answer.get_json()["role"], answer.get_json()["credential_type"]) == ("analyst", "jwt")


def test_clock_skew_is_tolerated(sso, client):
    early = machine_token(sso["key"], nbf=int(time.time()) + 10)
    assert client.with_token(early).get("/auth/me").status_code == 200


# Functions of the moment the test runs, not of collection: a suite that reaches this
# test ten minutes after collecting it must still send a token that is not yet valid.
@pytest.mark.parametrize(
    "claims",
    [
        lambda now: {"exp": now - 120},
        lambda now: {"nbf": now + 600},
        lambda now: {"aud": "someone-else"},
        lambda now: {"iss": "http://127.0.0.1:1"},
    ],
    ids=["expired", "not-yet-valid", "wrong-audience", "wrong-issuer"],
)
def test_an_invalid_jwt_is_401(sso, client, claims):
    token = machine_token(sso["key"], **claims(int(time.time())))
    assert client.with_token(token).get("/auth/me").status_code == 401


def test_a_jwt_signed_by_another_key_is_401(sso, client):
    impostor = RSAKey.generate_key(2048, parameters={"kid": sso["key"].kid})
    token = machine_token(impostor)
    assert client.with_token(token).get("/auth/me").status_code == 401


def test_a_deactivated_machine_client_is_401(sso, client, admin):
    token = machine_token(sso["key"])
    machine = client.with_token(token).get("/auth/me").get_json()
    change = admin.client.patch(
        f"/users/{machine['id']}", json={"is_active": False}, headers={"If-Match": '"1"'}
    )
    assert change.status_code == 200
    assert client.with_token(token).get("/auth/me").status_code == 401
