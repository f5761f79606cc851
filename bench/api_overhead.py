"""What an API request costs beside Flask itself: each hot endpoint's request rate as a
ratio of a Flask hello-world's, measured in the same run with the same load generator.

Run from the repository root: ``.venv/bin/python -m bench.api_overhead [--seconds 5]
[--rounds 3] [--profile]`` (needs ``wrk``; a throwaway database on ``BENCH_DATABASE_URL``,
dropped at the end; rate-limit counters in the machine's Redis under a key prefix of its
own).

Three servers run side by side under ``gunicorn.conf.py`` (the API's worker class, 2
workers x 4 threads) in production mode: the hello-world, the API, and the floor
(``bench/query_floor.py``: each endpoint's Redis script and SQL statements on a bare
Flask route, nothing else). ``wrk`` drives one at a time with 2 threads x 16 connections
to 127.0.0.1 for a fixed time. Each round measures the hello-world before and after every
API and floor run, and each ratio is taken against the higher of the two figures beside
it; the figure printed is the median over the rounds. The floor's ratio is the most an
endpoint could reach with its round trips on this machine. The rate limits stay on
(Redis, as in production) but are set high enough never to refuse.

``--profile`` also counts, in process, the Redis commands and SQL statements of one
request per endpoint and prints where a request's time goes (cProfile, cumulative).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import logging
import os
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis
from sqlalchemy import event

from app import create_app
from tests.conftest import app_settings, database_url_for, drop_database
from tests.helpers import ApiClient, create_user_row, login
from tests.processes import PROJECT_ROOT, free_port, process_env, wait_for_http_ok

SERVER_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET_KEY = "bench-secret-key-0123456789-abcdefghijklmnop"  # noqa: S105 - a throwaway server
UNLIMITED = {
    "RATELIMIT_DEFAULT": "100000000 per minute",
    "RATELIMIT_PER_IP": "100000000 per minute",
}
INCIDENTS = 120
INCIDENT = {"title": "Phishing wave", "severity": "high", "description": "credential harvesting"}
CHECKED_VALUE = "198.51.100.7"
WRK = ["wrk", "--threads", "2", "--connections", "16"]
TARGETS = {"incident": 0.35, "incident_list": 0.20, "ioc_check": 0.30, "incident_create": 0.15}


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str
    body: dict | None = None


@dataclass(frozen=True)
class Fixture:
    """What the seeded database offers the load: a token and an incident to read."""

    database_url: str
    token: str
    analyst_id: int
    incident_id: int

    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint("incident", "GET", f"/incidents/{self.incident_id}"),
            Endpoint("incident_list", "GET", "/incidents?limit=50"),
            Endpoint("ioc_check", "GET", f"/iocs/check?value={CHECKED_VALUE}"),
            Endpoint("incident_create", "POST", "/incidents", INCIDENT),
        ]


def seed(database_url: str, settings: dict[str, str]) -> Fixture:
    """Migrate the throwaway database; an analyst, their token, incidents and one IOC."""
    app = create_app(app_settings(database_url, **settings))
    analyst_id = create_user_row(app, "bench", "analyst")
    anonymous = ApiClient(app.test_client())
    client = anonymous.with_token(login(anonymous, "bench"))
    incident_ids = []
    for _ in range(INCIDENTS):
        response = client.post("/incidents", json=INCIDENT)
        assert response.status_code == 201, response.get_json()
        incident_ids.append(response.get_json()["id"])
    ioc = {"type": "ipv4", "value": CHECKED_VALUE}
    response = client.post("/iocs", json=ioc)
    assert response.status_code == 201, response.get_json()
    dispose(app)
    token = client.token or ""
    return Fixture(database_url, token, analyst_id, incident_ids[len(incident_ids) // 2])


def dispose(app) -> None:
    from models import db

    with app.app_context():
        db.engine.dispose()


@contextmanager
def gunicorn(application: str, env: dict[str, str], log: Path) -> Iterator[str]:
    """``application`` under gunicorn.conf.py on a free port; its base URL."""
    port = free_port()
    env = {**env, "GUNICORN_BIND": f"127.0.0.1:{port}"}
    command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", application]
    with log.open("w") as output:
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        probe = "/hello" if application.startswith("bench.") else "/health"
        wait_for_http_ok(f"http://127.0.0.1:{port}{probe}", time.monotonic() + 90, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def wrk_script(endpoint: Endpoint, token: str | None, directory: Path) -> Path:
    """A wrk Lua script setting the method, headers and body of ``endpoint``."""
    lines = [f'wrk.method = "{endpoint.method}"']
    if token:
        lines.append(f'wrk.headers["Authorization"] = "Bearer {token}"')
    if endpoint.body is not None:
        lines.append('wrk.headers["Content-Type"] = "application/json"')
        lines.append(f"wrk.body = {json.dumps(json.dumps(endpoint.body))}")
    path = directory / f"{endpoint.name}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


def requests_per_second(url: str, script: Path, seconds: int) -> float:
    """wrk's Requests/sec; any non-2xx answer fails the run (it would not be the endpoint's
    cost that was measured)."""
    command = [*WRK, "--duration", f"{seconds}s", "--script", str(script), url]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"wrk saw errors on {url}:\n{output}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    assert match, output
    return float(match.group(1))


def load_average() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def measure(
    fixture: Fixture, settings: dict[str, str], seconds: int, rounds: int, scratch: Path
) -> None:
    """The three servers run side by side; each round drives the hello-world before and
    after every API and floor run (h a1 h f1 h a2 h f2 ... h), and each ratio is against
    the higher of the two hello-world figures beside it: on a shared machine the
    hello-world alone moved by 1.7x within one run, so a ratio against figures taken
    minutes apart moved with it; and now and then one hello-world run comes out at a third
    of its neighbours (1,392 req/s between 4,325 and 4,557), which would inflate a ratio
    against a mean by half. The figures reported are the median ratios of the rounds."""
    env = process_env(
        APP_ENV="production",
        DATABASE_URL=fixture.database_url,
        SECRET_KEY=SECRET_KEY,
        BENCH_ANALYST_ID=str(fixture.analyst_id),
        **settings,
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    hello = Endpoint("hello", "GET", "/hello")
    hello_script = wrk_script(hello, None, scratch)
    scripts = {
        endpoint.name: wrk_script(endpoint, fixture.token, scratch)
        for endpoint in fixture.endpoints()
    }
    # (rate, ratio) of each run, by server ("api", "floor") and endpoint name
    runs: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    print(f"load before: {load_average()}")
    with (
        gunicorn("bench.hello_world:app", env, scratch / "hello.log") as hello_url,
        gunicorn("app:create_app()", env, scratch / "api.log") as api_url,
        gunicorn("bench.query_floor:app", env, scratch / "floor.log") as floor_url,
    ):
        for round_number in range(1, rounds + 1):
            before = requests_per_second(hello_url + hello.path, hello_script, seconds)
            figures = [f"hello {before:,.0f}"]
            for endpoint in fixture.endpoints():
                script = scripts[endpoint.name]
                for server, url in (("api", api_url), ("floor", floor_url)):
                    rate = requests_per_second(url + endpoint.path, script, seconds)
                    after = requests_per_second(hello_url + hello.path, hello_script, seconds)
                    runs[(server, endpoint.name)].append((rate, rate / max(before, after)))
                    figures += [f"{server} {endpoint.name} {rate:,.0f}", f"hello {after:,.0f}"]
                    before = after
            print(f"round {round_number} (req/s): " + ", ".join(figures))
    print(f"load after: {load_average()}")
    print(
        f"\n{'endpoint':<16} {'req/s':>8} {'ratio':>6} {'floor':>8} {'ratio':>6} "
        f"{'target':>6}  met  (medians of {rounds}; floor: bench/query_floor.py)"
    )
    for name in TARGETS:
        rate, ratio = _medians(runs[("api", name)])
        floor_rate, floor_ratio = _medians(runs[("floor", name)])
        met = "yes" if ratio >= TARGETS[name] else "no"
        print(
            f"{name:<16} {rate:>8,.0f} {ratio:>6.3f} {floor_rate:>8,.0f} {floor_ratio:>6.3f} "
            f"{TARGETS[name]:>6.2f}  {met}"
        )


def _medians(runs: list[tuple[float, float]]) -> tuple[float, float]:
    """The median rate and the median ratio of an endpoint's runs."""
    rates, ratios = zip(*runs, strict=True)
    return statistics.median(rates), statistics.median(ratios)


def profile(fixture: Fixture, settings: dict[str, str], requests: int = 300) -> None:
    """Per endpoint: Redis commands and SQL statements of one request, and a cProfile of
    ``requests`` of them through the test client (same database, same Redis)."""
    app = create_app(app_settings(fixture.database_url, **settings))
    client = ApiClient(app.test_client(), fixture.token)
    round_trips = _count_redis_round_trips()
    statements = []
    with app.app_context():
        from models import db

        event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    for endpoint in fixture.endpoints():
        client.request(endpoint.method, endpoint.path, json=endpoint.body)  # warm
        round_trips.clear()
        statements.clear()
        response = client.request(endpoint.method, endpoint.path, json=endpoint.body)
        assert response.status_code < 300, response.get_json()
        print(
            f"\n== {endpoint.method} {endpoint.path}: {len(round_trips)} Redis round trips "
            f"({', '.join(round_trips)}), {len(statements)} SQL statements"
        )
        for statement in statements:
            print("   SQL", " ".join(statement.split())[:110])
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(requests):
            client.request(endpoint.method, endpoint.path, json=endpoint.body)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(28)
    dispose(app)


def _count_redis_round_trips() -> list[str]:
    """The names of the commands this process sends to Redis from now on, one per round
    trip (a script's own commands run inside its one ``EVALSHA``)."""
    sent: list[str] = []
    execute = redis.Redis.execute_command

    def counting(self: redis.Redis, *args: object, **options: object) -> object:
        sent.append(str(args[0]))
        return execute(self, *args, **options)

    redis.Redis.execute_command = counting  # type: ignore[method-assign]
    return sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration per run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over every endpoint")
    parser.add_argument("--profile", action="store_true", help="also profile in process")
    arguments = parser.parse_args()
    logging.disable(logging.INFO)  # the in-process app's access lines
    if shutil.which("wrk") is None:
        raise SystemExit("error: wrk is not installed (apt-get install wrk)")
    database_url = database_url_for(SERVER_URL, f"soc_bench_{uuid.uuid4().hex[:12]}")
    settings = {
        **UNLIMITED,
        "RATELIMIT_STORAGE_URI": REDIS_URL,
        "RATELIMIT_KEY_PREFIX": f"bench-{uuid.uuid4().hex[:8]}",
    }
    try:
        fixture = seed(database_url, settings)
        with tempfile.TemporaryDirectory(prefix="api-overhead-") as scratch:
            measure(fixture, settings, arguments.seconds, arguments.rounds, Path(scratch))
        if arguments.profile:
            profile(fixture, settings)
    finally:
        drop_database(database_url)


if __name__ == "__main__":
    main()
