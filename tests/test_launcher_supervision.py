"""The launcher's children die with it, and one ``serve`` at a time runs per instance.

Real processes: ``launcher.py serve`` on a free port with its own instance directory (and
so its own embedded PostgreSQL), killed and started again as an operator would.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.helpers import STRONG_PASSWORD
from tests.processes import (
    LAUNCHER_STARTUP_SECONDS,
    free_port,
    launched_server,
    process_env,
    run_in_project,
)

CHILDREN_GONE_SECONDS = 10

pytestmark = pytest.mark.slow


def gunicorn_processes(launcher: subprocess.Popen) -> list[psutil.Process]:
    children = psutil.Process(launcher.pid).children(recursive=True)
    found = [process for process in children if "gunicorn" in " ".join(process.cmdline())]
    assert found, "the launcher started no gunicorn"
    return found


def create_admin(instance: Path, username: str) -> None:
    env = process_env(SOC_INSTANCE_DIR=str(instance))
    created = run_in_project(
        ["launcher.py", "create-admin", username, "--password-stdin"],
        env,
        stdin=STRONG_PASSWORD + "\n",
    )
    assert created.returncode == 0, created.stderr


def login_status(port: int, username: str) -> int:
    body = json.dumps({"username": username, "password": STRONG_PASSWORD})
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(
            "POST", "/auth/login", body=body, headers={"Content-Type": "application/json"}
        )
        return connection.getresponse().status
    finally:
        connection.close()


def test_gunicorn_stops_when_the_launcher_is_killed(tmp_path):
    instance, port = tmp_path / "instance", free_port()
    with launched_server(instance, port, tmp_path / "first.log") as launcher:
        served_by = gunicorn_processes(launcher)
        launcher.kill()
        launcher.wait(timeout=10)
        _, alive = psutil.wait_procs(served_by, timeout=CHILDREN_GONE_SECONDS)
    assert alive == [], f"still running after the launcher died: {alive}"

    # The next start takes over the same port and instance, and logins work.
    with launched_server(instance, port, tmp_path / "second.log"):
        create_admin(instance, "after-kill")
        assert login_status(port, "after-kill") == 200


def test_a_second_serve_refuses_and_the_first_keeps_serving(tmp_path):
    instance = tmp_path / "instance"
    first_port, second_port = free_port(), free_port()
    with launched_server(instance, first_port, tmp_path / "first.log"):
        create_admin(instance, "first-server")
        env = process_env(SOC_INSTANCE_DIR=str(instance), GUNICORN_BIND=f"127.0.0.1:{second_port}")
        started = time.monotonic()
        second = run_in_project(["launcher.py", "serve"], env, timeout=LAUNCHER_STARTUP_SECONDS)
        refused_in = time.monotonic() - started
        status = login_status(first_port, "first-server")
    lines = second.stderr.strip().splitlines()
    assert second.returncode == 5
    assert lines == [lines[0]] and "already running" in lines[0], second.stderr
    assert refused_in < 10
    assert status == 200
