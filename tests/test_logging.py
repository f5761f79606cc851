"""Structured logs: JSON lines with request context, secrets masked, and — checked last, over
everything the suite logged — no token, password or API key in any line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from security.modules.logging_setup import json_log_handler
from security.modules.utils import mask_sensitive_data
from tests.suite_guards import CREDENTIAL_PATTERN

TOKEN = "sat_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0U1v"
API_KEY = "sak_" + "k3yPr3f1x_" + "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0"


@pytest.mark.parametrize(
    "text, secret",
    [
        (f"Authorization: Bearer {TOKEN}", TOKEN),
        (f"key {API_KEY} used", API_KEY),
        ('{"username": "bob", "password": "Correct Horse 42!"}', "Correct Horse 42!"),
        ("POST /x?api_key=abcdef123456&limit=5", "abcdef123456"),
        ("token=zzzzzzzz9 next", "zzzzzzzz9"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
        ("postgresql://postgres:s3cr3t-pw@db:5432/soc", "s3cr3t-pw"),
        ("card 4111 1111 1111 1111 on file", "4111 1111 1111"),
        ("ssn 123-45-6789 on file", "123-45-6789"),
    ],
)
def test_sensitive_values_are_masked(text, secret):
    assert secret not in mask_sensitive_data(text)


def test_numbers_failing_the_luhn_check_are_not_taken_for_cards():
    assert mask_sensitive_data("order 4111 1111 1111 1112") == "order 4111 1111 1111 1112"


def test_masking_keeps_the_shape_of_what_it_masks():
    assert mask_sensitive_data("password=hunter2xx&limit=5") == "password=***&limit=5"


def test_masking_a_mapping_masks_values_under_sensitive_keys():
    masked = mask_sensitive_data({"Authorization": "x", "user": {"password": "p", "name": "n"}})
    assert masked == {"Authorization": "***", "user": {"password": "***", "name": "n"}}


def test_masking_twice_changes_nothing_more():
    once = mask_sensitive_data(f"Bearer {TOKEN} password=abc123456")
    assert mask_sensitive_data(once) == once


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """Everything logged during the test, through the app's own handler."""
    stream = io.StringIO()
    handler = json_log_handler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def records(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_every_log_line_is_one_json_object(log_stream):
    logging.getLogger("soc.test").warning("two\nlines")
    assert [record["message"] for record in records(log_stream)] == ["two\nlines"]


def test_access_line_carries_request_context_and_no_body(admin, log_stream):
    response = admin.client.post("/auth/logout", headers={"X-Request-ID": "trace-0001-abcd"})
    assert response.status_code == 204
    access = [r for r in records(log_stream) if r["logger"] == "soc.access"]
    assert len(access) == 1
    line = access[0]
    assert line["request_id"] == "trace-0001-abcd"
    assert (line["method"], line["path"], line["status"]) == ("POST", "/auth/logout", 204)
    assert line["principal_id"] == admin.id
    assert line["duration_ms"] >= 0


def test_login_line_never_holds_the_password(client, log_stream):
    client.post("/auth/login", json={"username": "someone", "password": "Never-Logged-987!"})
    assert "Never-Logged-987!" not in log_stream.getvalue()
    assert "/auth/login" in log_stream.getvalue()


def test_lines_logged_during_a_request_carry_its_request_id(app, log_stream):
    with app.test_request_context("/anything", headers={"X-Request-ID": "trace-0002-abcd"}):
        app.preprocess_request()
        logging.getLogger("soc.test").warning("inside")
    assert records(log_stream)[0]["request_id"] == "trace-0002-abcd"


def test_a_token_logged_by_any_library_is_masked(log_stream):
    logging.getLogger("some.library").warning("retrying with headers %s", {"auth": TOKEN})
    assert TOKEN not in log_stream.getvalue()
    assert "sat_***" in log_stream.getvalue()


def test_tracebacks_are_masked_too(log_stream):
    try:
        raise ValueError(f"bad credential {API_KEY}")
    except ValueError:
        logging.getLogger("soc.test").exception("failed")
    assert API_KEY not in log_stream.getvalue()
    assert "ValueError" in records(log_stream)[0]["exc_info"]


def test_the_suite_capture_masks_what_it_writes(suite_guards):
    logging.getLogger("soc.test").warning("leak attempt %s", TOKEN)
    for handler in logging.getLogger().handlers:
        handler.flush()
    assert TOKEN not in (suite_guards.log_directory / "session.log").read_text()


def test_no_credential_appears_in_any_log_line_of_the_suite(suite_guards, tmp_path_factory):
    """Runs last (see tests/suite_guards.py): every line the suite logged, every secret it used,
    including the log files of processes tests started in their temporary directories."""
    for handler in logging.getLogger().handlers:
        handler.flush()
    leaks = []
    access_lines = 0
    for name, number, line in suite_guards.log_lines(tmp_path_factory.getbasetemp()):
        access_lines += '"soc.access"' in line
        if CREDENTIAL_PATTERN.search(line):
            leaks.append(f"{name}:{number}: a token or API key")
        leaks.extend(
            f"{name}:{number}: a secret the suite sent or received"
            for secret in suite_guards.secrets
            if secret in line
        )
    assert not leaks, "credentials reached the logs:\n" + "\n".join(leaks)
    if suite_guards.secrets:
        assert access_lines, "the suite sent credentials but the log capture saw no request"
