"""Rate limits: per principal and per IP, stricter on auth, shared by every gunicorn worker
through Redis, and still serving (per-process counters) when Redis goes away."""

from __future__ import annotations

import uuid

import pytest
import redis

from security.modules.ratelimit import limiter
from tests.helpers import STRONG_PASSWORD, create_user_row
from tests.servers import private_redis, running_gunicorn, shared_redis_url

WRONG_PASSWORD = "Wrong-Password-123"


def login_attempt(client, **kwargs):
    return client.with_token(None).post(
        "/auth/login", json={"username": "nobody", "password": WRONG_PASSWORD}, **kwargs
    )


def other_address(address: str) -> dict:
    return {"environ_base": {"REMOTE_ADDR": address}}


@pytest.fixture
def strict_login_limit(app, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_LOGIN", "2 per minute")


def test_login_beyond_its_limit_is_429_problem_with_retry_after(client, strict_login_limit):
    for _ in range(2):
        assert login_attempt(client).status_code == 401
    response = login_attempt(client)
    assert response.status_code == 429
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == 429
    assert response.get_json()["request_id"] == response.headers["X-Request-ID"]
    assert 0 < int(response.headers["Retry-After"]) <= 60
    assert response.headers["X-RateLimit-Limit"] == "2"
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert int(response.headers["X-RateLimit-Reset"]) > 0


def test_login_limit_is_counted_per_client_address(client, strict_login_limit):
    for _ in range(3):
        login_attempt(client)
    assert login_attempt(client, **other_address("192.0.2.10")).status_code == 401


def test_register_has_its_own_limit(admin, monkeypatch, app):
    monkeypatch.setitem(app.config, "RATELIMIT_REGISTER", "1 per minute")
    body = {"username": "new-user-1", "password": STRONG_PASSWORD, "role": "viewer"}
    assert admin.client.post("/auth/register", json=body).status_code == 201
    body["username"] = "new-user-2"
    assert admin.client.post("/auth/register", json=body).status_code == 429


def test_default_limit_counts_each_credential_separately(app, client, admin, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_DEFAULT", "3 per minute")
    other = client.with_token("sat_not-a-real-token-but-long-enough")
    for _ in range(3):
        assert admin.client.get("/auth/me").status_code == 200
    assert admin.client.get("/auth/me").status_code == 429
    assert other.get("/auth/me").status_code == 401


def test_per_ip_limit_stops_a_client_rotating_credentials(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_PER_IP", "3 per minute")
    statuses = [
        client.with_token(f"sat_forged-token-number-{n:04d}").get("/auth/me").status_code
        for n in range(4)
    ]
    assert statuses == [401, 401, 401, 429]


def test_health_and_ready_are_never_rate_limited(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_PER_IP", "1 per minute")
    statuses = {client.get(path).status_code for path in ("/health", "/ready") * 3}
    assert statuses == {200}


def test_limited_success_carries_rate_headers_but_no_retry_after(admin):
    response = admin.client.get("/auth/me")
    assert response.status_code == 200
    assert int(response.headers["X-RateLimit-Remaining"]) >= 0
    assert "Retry-After" not in response.headers


def test_counters_are_keyed_by_a_hash_never_the_raw_credential(admin):
    admin.client.get("/auth/me")
    keys = " ".join(limiter.storage.storage.keys())
    assert "credential:" in keys
    assert admin.token not in keys
    assert admin.token.removeprefix("sat_")[:16] not in keys


# --- acceptance against real gunicorn workers ------------------------------------------


@pytest.mark.slow
def test_limit_is_global_across_gunicorn_workers_with_redis(database_url, suite_guards):
    limit = 40
    with running_gunicorn(
        database_url,
        suite_guards.log_directory,
        workers=2,
        RATELIMIT_STORAGE_URI=shared_redis_url(),
        RATELIMIT_KEY_PREFIX=f"soc-test-{uuid.uuid4().hex}",
        RATELIMIT_DEFAULT=f"{limit} per minute",
    ) as server:
        within_limit = server.request_many(limit, "GET", "/auth/me")
        served_by = server.pids_that_served("/auth/me")
        last = server.request("GET", "/auth/me")
    assert len(served_by) == 2, "both workers must have answered for the test to mean anything"
    assert [answer.status for answer in within_limit] == [401] * limit
    assert last.status == 429
    assert int(last.headers["Retry-After"]) > 0
    assert last.json()["status"] == 429


@pytest.mark.slow
def test_requests_keep_being_served_when_redis_stops(app, database_url, suite_guards):
    create_user_row(app, "outage-user", "viewer")
    with (
        private_redis() as (redis_url, redis_process),
        running_gunicorn(
            database_url,
            suite_guards.log_directory,
            workers=2,
            RATELIMIT_STORAGE_URI=redis_url,
        ) as server,
    ):
        login = server.request(
            "POST", "/auth/login", body={"username": "outage-user", "password": STRONG_PASSWORD}
        )
        bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
        assert server.request("GET", "/auth/me", bearer).status == 200
        redis_process.terminate()
        redis_process.wait(timeout=10)
        statuses = [server.request("GET", "/auth/me", bearer).status for _ in range(20)]
        warnings = [
            record
            for record in server.log_records()
            if "storage unreachable" in record.get("message", "")
        ]
    assert statuses == [200] * 20
    assert 1 <= len(warnings) <= 2, "the outage is logged once per worker, not per request"


@pytest.mark.slow
def test_server_warns_when_several_workers_count_in_memory(database_url, suite_guards):
    with running_gunicorn(
        database_url, suite_guards.log_directory, workers=2, RATELIMIT_STORAGE_URI="memory://"
    ) as server:
        messages = [record.get("message", "") for record in server.log_records()]
    assert any("rate limits are counted per worker" in message for message in messages)


def redis_commands(url: str) -> dict[str, int]:
    """Commands the Redis server has run so far, by name (those run inside a script too)."""
    stats = redis.Redis.from_url(url).info("commandstats")
    return {name.removeprefix("cmdstat_"): entry["calls"] for name, entry in stats.items()}


@pytest.mark.slow
def test_every_limit_of_a_request_costs_one_redis_round_trip(app, database_url, suite_guards):
    create_user_row(app, "one-trip-user", "viewer")
    with (
        private_redis() as (redis_url, _),
        running_gunicorn(
            database_url, suite_guards.log_directory, workers=2, RATELIMIT_STORAGE_URI=redis_url
        ) as server,
    ):
        login = server.request(
            "POST", "/auth/login", body={"username": "one-trip-user", "password": STRONG_PASSWORD}
        )
        bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
        server.request_many(8, "GET", "/auth/me", bearer)  # every worker has loaded the script
        before = redis_commands(redis_url)
        answer = server.request("GET", "/auth/me", bearer)
        after = redis_commands(redis_url)
    sent = {name: after[name] - before.get(name, 0) for name in after}
    sent["info"] -= 1  # this test's own INFO
    from_clients = {
        name: count
        for name, count in sent.items()
        if count and name not in {"incrby", "expire", "ttl"}
    }
    assert from_clients == {"evalsha": 1}, "one script for the per-route, principal and IP limits"
    assert sent["incrby"] == 3
    assert answer.status == 200
    assert int(answer.headers["X-RateLimit-Limit"]) == 300
    assert int(answer.headers["X-RateLimit-Remaining"]) == 300 - 9  # 8 + this one
    assert int(answer.headers["X-RateLimit-Reset"]) > 0
