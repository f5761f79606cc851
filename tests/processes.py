"""Running the product's own entry points (python, flask, gunicorn, the launcher) as processes.

Startup and CLI behaviour (exit codes, the one-line errors, signals) only shows in a real
process, so these tests start one with a controlled environment instead of calling in.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STRONG_SECRET_KEY = "process-test-secret-key-0123456789-abcdefghij"
# Variables the product reads; a test states each one it wants instead of inheriting them.
PRODUCT_VARIABLES = (
    "APP_ENV",
    "DATABASE_URL",
    "SECRET_KEY",
    "ENCRYPTION_KEY",
    "TEST_DATABASE_URL",
    "SOC_INSTANCE_DIR",
    "RATELIMIT_STORAGE_URI",
    "GUNICORN_BIND",
    "GUNICORN_WORKERS",
)


def process_env(**settings: str) -> dict[str, str]:
    """This process's environment without the product's variables, plus ``settings``."""
    env = {key: value for key, value in os.environ.items() if key not in PRODUCT_VARIABLES}
    env.update(settings)
    return env


def run_in_project(
    arguments: list[str], env: dict[str, str], stdin: str = "", timeout: float = 60
) -> subprocess.CompletedProcess:
    """Run ``python ARGUMENTS`` in the project directory to its end, capturing its output."""
    return subprocess.run(
        [sys.executable, *arguments],
        cwd=PROJECT_ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def flask_create_admin(username: str, env: dict[str, str], *options: str, stdin: str = ""):
    """``flask create-admin USERNAME OPTIONS`` as an operator would run it."""
    arguments = ["-m", "flask", "--app", "app:create_app", "create-admin", username, *options]
    return run_in_project(arguments, env, stdin=stdin)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_http_ok(
    url: str, deadline: float, process: subprocess.Popen, context: ssl.SSLContext | None = None
) -> None:
    """Poll ``url`` until it answers 200; fail early if ``process`` exits, or at ``deadline``.
    ``context`` is the TLS client's for an ``https`` URL."""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"process exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise AssertionError(f"{url} did not answer 200 in time")


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


LAUNCHER_STARTUP_SECONDS = 90


@contextmanager
def launched_server(instance: Path, port: int, log_path: Path) -> Iterator[subprocess.Popen]:
    """``launcher.py serve`` answering on ``port``; stopped (with its children) afterwards."""
    env = process_env(SOC_INSTANCE_DIR=str(instance), GUNICORN_BIND=f"127.0.0.1:{port}")
    with log_path.open("w") as log:
        launcher = subprocess.Popen(
            [sys.executable, "launcher.py", "serve"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    descendants: list[psutil.Process] = []
    try:
        wait_for_http_ok(
            f"http://127.0.0.1:{port}/ready", time.monotonic() + LAUNCHER_STARTUP_SECONDS, launcher
        )
        descendants = psutil.Process(launcher.pid).children(recursive=True)
        yield launcher
    finally:
        if launcher.poll() is None:
            launcher.send_signal(signal.SIGTERM)
            launcher.wait(timeout=60)
        for process in descendants:
            if process.is_running() and process.name() != "postgres":
                process.kill()
