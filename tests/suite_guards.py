"""Checks the whole suite is held to, whatever each test asserts itself (a pytest plugin).

1. Every response the app gives during the suite carries the security headers: Flask's
   ``request_finished`` signal (sent for every response, errors included, by every app
   instance in the process) records what is missing, and an autouse fixture fails the
   test that received it.
2. No credential reaches a log line: every log record of the session is written, through
   the app's own JSON handler, to a capture directory (servers started by tests add their
   logs there too). Credentials seen in requests and responses (passwords sent, tokens
   and API keys issued) are collected on the way, and ``test_logging``'s last test, which
   :func:`pytest_collection_modifyitems` moves to the end of the run, greps for them.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response, request, request_finished

EXPECTED_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}
CREDENTIAL_PATTERN = re.compile(r"\b(?:sat|sak)_[A-Za-z0-9_.-]{16,}")
SECRET_FIELD_NAMES = ("password", "secret", "token", "api_key", "key")
MIN_HARVESTED_LENGTH = 8
# Only the product's app (create_app) is held to the policy, not bare apps tests build.
PRODUCT_APP = "app"
LAST_TEST = "test_no_credential_appears_in_any_log_line_of_the_suite"


def header_problems(response: Response, secure: bool, authenticated: bool) -> list[str]:
    """What the response lacks of the header policy (empty when it complies)."""
    expected = dict(EXPECTED_HEADERS)
    problems = []
    if response.mimetype == "text/html":
        # A page has a policy of its own, which still starts from nothing and allows no framing.
        policy = response.headers.get("Content-Security-Policy", "")
        del expected["Content-Security-Policy"]
        if not (policy.startswith("default-src 'none';") and "frame-ancestors 'none'" in policy):
            problems.append(f"Content-Security-Policy of a page: {policy!r}")
    problems += [
        f"{name}: expected {value!r}, got {response.headers.get(name)!r}"
        for name, value in expected.items()
        if response.headers.get(name) != value
    ]
    if "Server" in response.headers:
        problems.append("Server header present")
    if not response.headers.get("X-Request-ID"):
        problems.append("X-Request-ID missing")
    if authenticated and "no-store" not in response.headers.get("Cache-Control", ""):
        problems.append("Cache-Control: no-store missing on an authenticated response")
    if secure and "Strict-Transport-Security" not in response.headers:
        problems.append("Strict-Transport-Security missing on HTTPS")
    return problems


@dataclass
class SuiteGuards:
    log_directory: Path
    secrets: set[str] = field(default_factory=set)
    header_violations: list[str] = field(default_factory=list)

    def log_lines(self, *more_directories: Path) -> Iterator[tuple[str, int, str]]:
        """``(file, line number, line)`` for every captured log line, and for every ``*.log``
        below ``more_directories`` (where tests leave the output of processes they ran)."""
        paths = sorted(self.log_directory.glob("*.log"))
        for directory in more_directories:
            paths.extend(sorted(directory.rglob("*.log")))
        for path in paths:
            with path.open(encoding="utf-8", errors="replace") as stream:
                for number, line in enumerate(stream, start=1):
                    yield str(path), number, line

    def collect_secrets(self, value: Any, under_secret_name: bool = False) -> None:
        """Remember credentials found in a JSON value: by field name, or by token prefix."""
        if isinstance(value, dict):
            for key, item in value.items():
                named = any(word in str(key).lower() for word in SECRET_FIELD_NAMES)
                self.collect_secrets(item, named)
        elif isinstance(value, list):
            for item in value:
                self.collect_secrets(item, under_secret_name)
        elif isinstance(value, str) and (
            CREDENTIAL_PATTERN.fullmatch(value)
            or (under_secret_name and len(value) >= MIN_HARVESTED_LENGTH)
        ):
            self.secrets.add(value)

    def inspect(self, sender: Flask, response: Response, **extra: Any) -> None:
        """``request_finished`` receiver; never raises (that would change the response)."""
        if sender.import_name != PRODUCT_APP:
            return
        try:
            authenticated = "Authorization" in request.headers
            for problem in header_problems(response, request.is_secure, authenticated):
                self.header_violations.append(f"{request.method} {request.path}: {problem}")
            if request.is_json and (request.content_length or 0) <= 64 * 1024:
                self.collect_secrets(request.get_json(silent=True))
            if authenticated:
                self.collect_secrets(request.headers["Authorization"].partition(" ")[2], True)
            if response.is_json and not response.is_streamed:
                self.collect_secrets(response.get_json(silent=True))
        except (
            Exception
        ) as error:  # reported by the fixture: raising here would change the response
            self.header_violations.append(f"guard failed on {request.path}: {error!r}")


GUARDS_KEY = pytest.StashKey[SuiteGuards]()


def pytest_configure(config: pytest.Config) -> None:
    from security.modules.logging_setup import json_log_handler

    directory = Path(tempfile.mkdtemp(prefix="soc-test-logs-"))
    guards = SuiteGuards(directory)
    config.stash[GUARDS_KEY] = guards
    handler = json_log_handler(open(directory / "session.log", "a", encoding="utf-8"))  # noqa: SIM115
    handler.set_name("suite-capture")
    root = logging.getLogger()
    root.addHandler(handler)
    # INFO is where Flask-Limiter logs its keys and the app its access lines.
    root.setLevel(min(root.level or logging.INFO, logging.INFO))
    request_finished.connect(guards.inspect)


def pytest_unconfigure(config: pytest.Config) -> None:
    guards = config.stash.get(GUARDS_KEY, None)
    if guards is None:
        return
    request_finished.disconnect(guards.inspect)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == "suite-capture"]:
        root.removeHandler(handler)
        handler.close()
    shutil.rmtree(guards.log_directory, ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the log check last, so it sees the log lines of every other test."""
    last = [item for item in items if item.name == LAST_TEST]
    items[:] = [item for item in items if item.name != LAST_TEST] + last


@pytest.fixture
def suite_guards(request: pytest.FixtureRequest) -> SuiteGuards:
    return request.config.stash[GUARDS_KEY]


@pytest.fixture(autouse=True)
def responses_carry_security_headers(suite_guards: SuiteGuards) -> Iterator[None]:
    """Fail the test if any response it received missed the header policy."""
    suite_guards.header_violations.clear()
    yield
    violations = list(suite_guards.header_violations)
    suite_guards.header_violations.clear()
    assert not violations, "responses without the security headers:\n" + "\n".join(violations)
