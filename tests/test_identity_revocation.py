"""Deactivating a user through ``PATCH /users/<id>`` reaches every worker and instance
within a second: their existing login token and their API key are refused everywhere. So
does the admins' second-factor policy (``PATCH /auth/mfa-policy``): a session of a role it
names, without a factor, is refused everywhere, and lifting it restores access everywhere.

Real servers, as in ``tests/test_credential_revocation.py`` (whose instances and helpers
this reuses): two gunicorn instances of two workers each on one database and one Redis;
every worker has just answered both credentials, so a stale cache would answer again.
"""

from __future__ import annotations

import time

import pytest

from tests.helpers import create_user_row
from tests.test_credential_revocation import (
    PROMISE_SECONDS,
    instances,
    login,
    refused_everywhere_within_a_second,
    served_everywhere,
    statuses,
)

__all__ = ["instances"]  # the module's gunicorn instances (a fixture)

pytestmark = pytest.mark.slow


def test_deactivated_users_token_and_api_key_are_refused_by_every_worker(app, instances):
    create_user_row(app, "identity-admin", "admin")
    user_id = create_user_row(app, "leaver", "analyst")
    admin = {"Authorization": f"Bearer {login(instances[0], 'identity-admin')}"}
    token = login(instances[0], "leaver")
    issued = instances[0].request(
        "POST",
        "/api-keys",
        {"Authorization": f"Bearer {token}"},
        body={"name": "soar", "scopes": ["iocs:read"]},
    )
    assert issued.status == 201, issued.body
    key = issued.json()["key"]
    path = "/iocs/check?value=198.51.100.7"
    served_everywhere(instances, "/auth/me", token)
    served_everywhere(instances, path, key)
    deactivate = instances[1].request(
        "PATCH",
        f"/users/{user_id}",
        {**admin, "If-Match": '"1"'},
        body={"is_active": False},
    )
    assert deactivate.status == 200, deactivate.body
    ended_at = time.monotonic()
    refused_everywhere_within_a_second(instances, "/auth/me", token, ended_at)
    refused_everywhere_within_a_second(instances, path, key, ended_at)


def test_a_required_factor_reaches_every_worker_within_a_second(app, instances):
    create_user_row(app, "policy-admin", "admin")
    create_user_row(app, "policy-analyst", "analyst")
    admin = {"Authorization": f"Bearer {login(instances[0], 'policy-admin')}"}
    token = login(instances[0], "policy-analyst")
    served_everywhere(instances, "/incidents", token)
    for roles, expected in ((["analyst"], {403}), ([], {200})):
        changed = instances[1].request(
            "PATCH", "/auth/mfa-policy", admin, body={"required_roles": roles}
        )
        assert changed.status == 200, changed.body
        time.sleep(PROMISE_SECONDS)
        assert set(statuses(instances, "/incidents", token)) == expected
