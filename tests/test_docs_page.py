"""``/docs`` in a real browser: headless Chromium (Debian's ``chromium``, driven by
Playwright) loads the page from a real gunicorn server, waits for Swagger UI to list the
operations, and checks that every path of the OpenAPI document is listed, that the page
asked nothing of any other origin, and that its content security policy refused nothing;
then that "Try it out" on ``GET /auth/me`` answers 401 until "Authorize" is given a login
token, and 200 with the caller's username after.
The screenshot is written to ``test-output/docs-page.png`` (``TEST_OUTPUT_DIR`` to change
it), where it outlives the run.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from tests.helpers import STRONG_PASSWORD, create_user_row
from tests.processes import PROJECT_ROOT
from tests.servers import GunicornServer, running_gunicorn
from tests.suite_guards import GUARDS_KEY

pytestmark = pytest.mark.slow

RENDER_SECONDS = 60
# What one click waits for at most: Swagger UI redraws in milliseconds, the request it
# sends is answered by a local server.
STEP_SECONDS = 15
OUTPUT_DIRECTORY = Path(os.environ.get("TEST_OUTPUT_DIR", PROJECT_ROOT / "test-output"))


def chromium_path() -> str:
    """Debian's chromium; CI (``.ci/run``) installs it, elsewhere the test is skipped."""
    found = shutil.which("chromium")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


@pytest.fixture(scope="module")
def server(database_url: str, pytestconfig: pytest.Config) -> Iterator[GunicornServer]:
    log_directory = pytestconfig.stash[GUARDS_KEY].log_directory
    with running_gunicorn(database_url, log_directory, workers=1) as started:
        yield started


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium for the module; each test gets its own context (no shared storage)."""
    executable = chromium_path()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class DocsVisit:
    """``/docs`` rendered in a fresh browser context, and what the page asked for and logged."""

    origin: str
    page: Page
    requested: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    def requests_elsewhere(self) -> list[str]:
        return [url for url in self.requested if not url.startswith(f"{self.origin}/")]

    def policy_violations(self) -> list[str]:
        """Chromium reports every request or script the policy refused on the console."""
        return [line for line in self.console if "Content Security Policy" in line]


@pytest.fixture
def docs(server: GunicornServer, browser: Browser) -> Iterator[DocsVisit]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        visit = DocsVisit(f"http://127.0.0.1:{server.port}", context.new_page())
        visit.page.on("request", lambda sent: visit.requested.append(sent.url))
        visit.page.on("console", lambda message: visit.console.append(message.text))
        visit.page.goto(f"{visit.origin}/docs")
        visit.page.wait_for_selector(".opblock-summary-path", timeout=RENDER_SECONDS * 1000)
        yield visit
    finally:
        context.close()


def test_the_docs_page_lists_every_path_and_loads_nothing_from_elsewhere(docs):
    with urllib.request.urlopen(f"{docs.origin}/openapi.json", timeout=10) as answer:  # noqa: S310
        paths = set(json.load(answer)["paths"])
    OUTPUT_DIRECTORY.mkdir(parents=True, exist_ok=True)
    screenshot = OUTPUT_DIRECTORY / "docs-page.png"
    listed = set(
        docs.page.eval_on_selector_all(
            ".opblock-summary-path", "nodes => nodes.map(n => n.dataset.path)"
        )
    )
    docs.page.screenshot(path=str(screenshot), full_page=False)

    assert paths - listed == set()
    assert docs.requests_elsewhere() == []
    assert f"{docs.origin}/openapi.json" in docs.requested
    assert docs.policy_violations() == []
    assert screenshot.stat().st_size > 0


def login_token(app, server: GunicornServer, username: str) -> str:
    """A viewer's login token, from the server under test (its ``/auth/login``)."""
    create_user_row(app, username, "viewer")
    answer = server.request(
        "POST", "/auth/login", body={"username": username, "password": STRONG_PASSWORD}
    )
    assert answer.status == 200, answer.body
    return answer.json()["access_token"]


def authorize(page: Page, token: str) -> None:
    """Click "Authorize", put the token in the bearer scheme's field, confirm, close."""
    page.locator(".auth-wrapper button.authorize").click(timeout=STEP_SECONDS * 1000)
    dialog = page.locator(".modal-ux")
    dialog.get_by_label("auth-bearer-value").fill(token, timeout=STEP_SECONDS * 1000)
    dialog.locator("button.authorize").click(timeout=STEP_SECONDS * 1000)
    dialog.locator("button.btn-done").click(timeout=STEP_SECONDS * 1000)
    expect(dialog).to_have_count(0, timeout=STEP_SECONDS * 1000)


def try_who_am_i(page: Page) -> Locator:
    """Expand ``GET /auth/me``, "Try it out", "Execute"; the live response's row."""
    operation = page.locator(
        ".opblock-get", has=page.locator('.opblock-summary-path[data-path="/auth/me"]')
    )
    operation.locator(".opblock-summary").click(timeout=STEP_SECONDS * 1000)
    operation.locator("button.try-out__btn").click(timeout=STEP_SECONDS * 1000)
    operation.locator("button.execute").click(timeout=STEP_SECONDS * 1000)
    return operation.locator(".live-responses-table .response")


def test_try_it_out_without_authorizing_is_401(docs):
    response = try_who_am_i(docs.page)

    expect(response.locator(".response-col_status")).to_have_text(
        "401", timeout=STEP_SECONDS * 1000
    )
    assert f"{docs.origin}/auth/me" in docs.requested
    assert docs.requests_elsewhere() == []
    assert docs.policy_violations() == []


def test_try_it_out_with_an_authorized_bearer_token_is_the_caller(app, server, docs):
    token = login_token(app, server, "docs-reader")

    authorize(docs.page, token)
    response = try_who_am_i(docs.page)

    expect(response.locator(".response-col_status")).to_have_text(
        "200", timeout=STEP_SECONDS * 1000
    )
    # The live response shows its body first, then its headers.
    body = response.locator(".response-col_description .microlight").first
    assert json.loads(body.inner_text())["username"] == "docs-reader"
    assert f"{docs.origin}/auth/me" in docs.requested
    assert docs.requests_elsewhere() == []
    assert docs.policy_violations() == []
