"""Ending a credential reaches every worker and every instance within one second.

Login tokens are trusted for a moment after the database last said they are valid
(``auth.VerifiedTokenCache``), so a request needs no database round trip to authenticate.
These tests hold the shortcut to its promise with real servers: two gunicorn instances of
two workers each, sharing the database and Redis. Every worker of both has just answered
the credential (so a stale cache would answer again); the credential is ended through one
worker of one instance (or by SQL, as an operator would); a second later, every request to
either instance is refused.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import update

from auth import VERIFIED_TOKEN_SECONDS
from models import AuthToken, User, db, utcnow
from tests.helpers import STRONG_PASSWORD, create_user_row
from tests.servers import GunicornServer, running_gunicorn, shared_redis_url
from tests.suite_guards import GUARDS_KEY

pytestmark = pytest.mark.slow

PROMISE_SECONDS = 1.0
REQUESTS_PER_INSTANCE = 16


@pytest.fixture(scope="module")
def instances(database_url, request) -> Iterator[tuple[GunicornServer, GunicornServer]]:
    """Two instances (2 workers each) on one database and one Redis."""
    shared = {
        "RATELIMIT_STORAGE_URI": shared_redis_url(),
        "RATELIMIT_KEY_PREFIX": f"soc-test-{uuid.uuid4().hex}",
    }
    log_directory = request.config.stash[GUARDS_KEY].log_directory  # suite_guards, per module
    with (
        running_gunicorn(database_url, log_directory, workers=2, **shared) as first,
        running_gunicorn(database_url, log_directory, workers=2, **shared) as second,
    ):
        yield first, second


def statuses(servers: tuple[GunicornServer, ...], path: str, bearer: str) -> list[int]:
    """The answers of every worker of every instance: each gets several concurrent calls."""
    headers = {"Authorization": f"Bearer {bearer}"}
    answers = []
    for server in servers:
        answers += server.request_many(REQUESTS_PER_INSTANCE, "GET", path, headers)
    return [answer.status for answer in answers]


def served_everywhere(servers: tuple[GunicornServer, ...], path: str, bearer: str) -> None:
    """Call until every worker of every instance has answered ``path`` with 200 (so each
    one's cache holds the credential), failing on any other answer."""
    seen = [len(server.log_records()) for server in servers]
    route = path.partition("?")[0]
    deadline = time.monotonic() + 30
    while True:
        assert set(statuses(servers, path, bearer)) == {200}
        if all(
            len(_workers_that_served(server, route, since)) >= 2
            for server, since in zip(servers, seen, strict=True)
        ):
            return
        assert time.monotonic() < deadline, "not every worker answered"


def _workers_that_served(server: GunicornServer, route: str, since: int) -> set[int]:
    return {
        record["pid"]
        for record in server.log_records()[since:]
        if record.get("logger") == "soc.access" and record.get("path") == route
    }


def login(server: GunicornServer, username: str) -> str:
    answer = server.request(
        "POST", "/auth/login", body={"username": username, "password": STRONG_PASSWORD}
    )
    assert answer.status == 200, answer.body
    return answer.json()["access_token"]


def refused_everywhere_within_a_second(
    servers: tuple[GunicornServer, ...], path: str, bearer: str, ended_at: float
) -> None:
    time.sleep(max(0.0, ended_at + PROMISE_SECONDS - time.monotonic()))
    assert set(statuses(servers, path, bearer)) == {401}


def in_database(app, change: Callable[[], None]) -> None:
    with app.app_context():
        change()
        db.session.commit()


def test_the_promise_leaves_room_for_the_cache():
    assert VERIFIED_TOKEN_SECONDS < PROMISE_SECONDS


def test_logged_out_session_is_refused_by_every_worker_and_instance(app, instances):
    create_user_row(app, "logout-user", "viewer")
    token = login(instances[0], "logout-user")
    served_everywhere(instances, "/auth/me", token)
    logout = instances[0].request("POST", "/auth/logout", {"Authorization": f"Bearer {token}"})
    assert logout.status == 204
    refused_everywhere_within_a_second(instances, "/auth/me", token, time.monotonic())


def test_revoked_token_is_refused_by_every_worker_and_instance(app, instances):
    create_user_row(app, "revoked-user", "viewer")
    token = login(instances[0], "revoked-user")
    served_everywhere(instances, "/auth/me", token)
    in_database(app, lambda: db.session.execute(update(AuthToken).values(revoked_at=utcnow())))
    refused_everywhere_within_a_second(instances, "/auth/me", token, time.monotonic())


def test_deactivated_user_is_refused_by_every_worker_and_instance(app, instances):
    user_id = create_user_row(app, "deactivated-user", "viewer")
    token = login(instances[0], "deactivated-user")
    served_everywhere(instances, "/auth/me", token)
    in_database(
        app,
        lambda: db.session.execute(update(User).where(User.id == user_id).values(is_active=False)),
    )
    refused_everywhere_within_a_second(instances, "/auth/me", token, time.monotonic())


def test_revoked_api_key_is_refused_by_every_worker_and_instance(app, instances):
    create_user_row(app, "key-owner", "analyst")
    bearer = {"Authorization": f"Bearer {login(instances[0], 'key-owner')}"}
    issued = instances[0].request(
        "POST", "/api-keys", bearer, body={"name": "soar", "scopes": ["iocs:read"]}
    )
    assert issued.status == 201, issued.body
    key, key_id = issued.json()["key"], issued.json()["id"]
    path = "/iocs/check?value=198.51.100.7"
    served_everywhere(instances, path, key)
    assert instances[1].request("DELETE", f"/api-keys/{key_id}", bearer).status == 204
    refused_everywhere_within_a_second(instances, path, key, time.monotonic())
