"""Real servers for acceptance tests: gunicorn running the app, and a private redis-server.

Each is a context manager that starts the process, waits until it answers, and stops it
(by its own pid) however the test ends. gunicorn's output goes to a file in the suite's
log capture directory, so the suite-wide credential check reads it too.
"""

from __future__ import annotations

import http.client
import json
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.processes import PROJECT_ROOT, free_port, process_env, wait_for_http_ok

STARTUP_SECONDS = 60
STOP_SECONDS = 20
SECRET_KEY = "gunicorn-test-secret-key-0123456789-abcdefghij"
PARALLEL_CONNECTIONS = 4


@dataclass
class HttpAnswer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class GunicornServer:
    port: int
    process: subprocess.Popen
    log_path: Path
    # The TLS client's context when the server serves TLS (GUNICORN_CERTFILE).
    client_context: ssl.SSLContext | None = None

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: Any = None
    ) -> HttpAnswer:
        """One request on a fresh connection, so successive requests spread over workers."""
        headers = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        connection = (
            http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            if self.client_context is None
            else http.client.HTTPSConnection(
                "127.0.0.1", self.port, timeout=10, context=self.client_context
            )
        )
        try:
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            return HttpAnswer(response.status, response.headers, response.read())
        finally:
            connection.close()

    def request_many(
        self, count: int, method: str, path: str, headers: dict[str, str] | None = None
    ) -> list[HttpAnswer]:
        """``count`` requests, a few at a time: concurrent connections keep both workers
        accepting, where strictly sequential ones often all land on the same worker."""
        with ThreadPoolExecutor(max_workers=PARALLEL_CONNECTIONS) as pool:
            return list(pool.map(lambda _: self.request(method, path, headers), range(count)))

    def pids_that_served(self, path: str) -> set[int]:
        """Which worker processes wrote an access line for ``path``."""
        return {
            record["pid"]
            for record in self.log_records()
            if record.get("logger") == "soc.access" and record.get("path") == path
        }

    def log_records(self) -> list[dict]:
        """The JSON log lines written so far (non-JSON lines are skipped)."""
        records = []
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_SECONDS)


@contextmanager
def running_gunicorn(
    database_url: str,
    log_directory: Path,
    workers: int = 2,
    client_context: ssl.SSLContext | None = None,
    **settings: str,
) -> Iterator[GunicornServer]:
    """gunicorn with ``gunicorn.conf.py`` in production mode on a free loopback port; with TLS
    settings, ``client_context`` is the context its readiness checks connect with."""
    port = free_port()
    log_path = log_directory / f"gunicorn-{port}.log"
    env = process_env(
        APP_ENV="production",
        DATABASE_URL=database_url,
        SECRET_KEY=SECRET_KEY,
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS=str(workers),
        **settings,
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        scheme = "http" if client_context is None else "https"
        wait_for_http_ok(f"{scheme}://127.0.0.1:{port}/health", deadline, process, client_context)
        server = GunicornServer(port, process, log_path, client_context)
        _wait_for_every_worker(server, workers, deadline)
        yield server
    finally:
        _stop(process)


def _wait_for_every_worker(server: GunicornServer, workers: int, deadline: float) -> None:
    """The first worker answers while the others may still be building the app; tests about
    several workers mean nothing until each has answered (``/health`` counts for no limit)."""
    while len(server.pids_that_served("/health")) < workers:
        if time.monotonic() > deadline:
            raise AssertionError(f"not all {workers} gunicorn workers answered in time")
        server.request_many(PARALLEL_CONNECTIONS * 2, "GET", "/health")
        time.sleep(0.1)


@contextmanager
def private_redis() -> Iterator[tuple[str, subprocess.Popen]]:
    """A redis-server of our own on a free port (never the machine's shared one), no disk."""
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.skip("redis-server is not installed; the Redis outage test needs its own server")
    port = free_port()
    process = subprocess.Popen(
        [
            executable,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        _wait_for_redis(url, process)
        yield url, process
    finally:
        _stop(process)


def _wait_for_redis(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 10
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"redis-server exited with {process.returncode}")
        try:
            client.ping()
            return
        except redis.ConnectionError:
            time.sleep(0.1)
    raise AssertionError("redis-server did not answer in time")


def shared_redis_url(database: int = 0) -> str:
    """The machine's Redis on 6379, or a skip saying it is not there."""
    url = f"redis://127.0.0.1:6379/{database}"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.ConnectionError:
        pytest.skip("no Redis answers on 127.0.0.1:6379")
    return url
