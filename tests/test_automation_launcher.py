"""``./run.sh`` (``launcher.py serve``) runs one job-queue worker beside gunicorn, on the
embedded PostgreSQL (a Unix socket, no URL given), and stops it with the server.

Real processes, as an operator runs them: the launcher with its own instance directory,
an admin made with ``launcher.py create-admin``, a webhook test delivery that only the
worker can send, to a receiver on 127.0.0.1 that verifies its signature.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import psutil
import pytest
import requests

from embedded_db import PROJECT_ROOT
from tests.automation_support import webhook_receiver
from tests.helpers import STRONG_PASSWORD
from tests.processes import LAUNCHER_STARTUP_SECONDS, process_env, run_in_project, wait_for_http_ok

pytestmark = pytest.mark.slow

PORT = 18201  # this area's range (18200-18299)
STOPPED_WITHIN_SECONDS = 40


def worker_processes(launcher: subprocess.Popen) -> list[psutil.Process]:
    children = psutil.Process(launcher.pid).children(recursive=True)
    return [child for child in children if child.cmdline()[-1:] == ["worker"]]


def test_serve_runs_one_worker_on_the_embedded_database_and_stops_it_with_the_server(tmp_path):
    env = process_env(
        SOC_INSTANCE_DIR=str(tmp_path / "instance"),
        GUNICORN_BIND=f"127.0.0.1:{PORT}",
        OUTBOUND_ALLOWED_HOSTS="127.0.0.1",
    )
    created = run_in_project(
        ["launcher.py", "create-admin", "boss", "--password-stdin"], env, STRONG_PASSWORD + "\n"
    )
    assert created.returncode == 0, created.stderr
    base = f"http://127.0.0.1:{PORT}"
    with (tmp_path / "serve.log").open("w") as log:
        launcher = subprocess.Popen(
            [sys.executable, "launcher.py", "serve"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_http_ok(f"{base}/ready", time.monotonic() + LAUNCHER_STARTUP_SECONDS, launcher)
        workers = worker_processes(launcher)
        assert len(workers) == 1
        login = {"username": "boss", "password": STRONG_PASSWORD}
        token = requests.post(f"{base}/auth/login", json=login, timeout=10).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        with webhook_receiver() as receiver:
            hook = {"name": "soar", "url": receiver.url, "event_types": ["incident.create"]}
            created_hook = requests.post(f"{base}/webhooks", json=hook, headers=auth, timeout=10)
            assert created_hook.status_code == 201, created_hook.text
            receiver.secret = created_hook.json()["secret"]
            hook_id = created_hook.json()["id"]
            test = requests.post(f"{base}/webhooks/{hook_id}/test", headers=auth, timeout=10)
            assert test.status_code == 202
            [got] = receiver.wait_for(1)
        assert got.verified and got.json()["type"] == "webhook.test"
    finally:
        if launcher.poll() is None:
            launcher.send_signal(signal.SIGTERM)
            launcher.wait(timeout=60)
    _, alive = psutil.wait_procs(workers, timeout=STOPPED_WITHIN_SECONDS)
    assert alive == []
