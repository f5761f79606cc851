"""``create_app()`` registers what the app uses; importing a module registers nothing."""

from __future__ import annotations

import textwrap

import pytest
from flask import Flask

import auth
from errors import ApiError
from models import db
from tests.conftest import app_settings
from tests.helpers import make_user
from tests.processes import process_env, run_in_project

# An app whose API-key resource is replaced by one that registers no route: the engine's
# API-key module is then imported only where create_app() itself asks for it.
WITHOUT_API_KEY_RESOURCE = textwrap.dedent(
    """
    import sys, types

    stub = types.ModuleType("resources.api_keys")
    stub.register = lambda api: None
    sys.modules["resources.api_keys"] = stub

    from app import create_app

    app = create_app({settings!r})
    client = app.test_client()
    assert client.get("/api-keys").status_code == 404, "the API-key resource is still there"
    me = client.get("/auth/me", headers={{"Authorization": "Bearer {key}"}})
    print(me.status_code, me.get_json().get("credential_type"))
    """
)


@pytest.fixture
def api_key(app, client) -> str:
    analyst = make_user(app, client, "keyholder", "analyst")
    response = analyst.client.post("/api-keys", json={"name": "ci", "scopes": ["iocs:read"]})
    return response.get_json()["key"]


def test_an_app_without_the_api_key_resource_still_accepts_api_keys(database_url, api_key):
    script = WITHOUT_API_KEY_RESOURCE.format(settings=app_settings(database_url), key=api_key)
    result = run_in_project(["-c", script], process_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["200", "api_key"]


def test_an_app_accepts_only_the_credential_kinds_registered_with_it(app, api_key):
    """Every module is imported by now; an app that registered no resolver still refuses
    a valid key, so it is the registration in create_app() that makes keys work."""
    bare = Flask("bare")
    bare.config.update(app.config)
    db.init_app(bare)
    headers = {"Authorization": f"Bearer {api_key}"}
    with bare.test_request_context("/auth/me", headers=headers), pytest.raises(ApiError) as raised:
        auth.authenticate()
    assert raised.value.code == 401
    with app.test_request_context("/auth/me", headers=headers):
        assert auth.authenticate().credential_type == "api_key"
