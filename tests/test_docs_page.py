"""``/docs`` in a real browser: headless Chromium (Debian's ``chromium``, driven by
Playwright) loads the page from a real gunicorn server, waits for Swagger UI to list the
operations, and checks that every path of the OpenAPI document is listed, that the page
asked nothing of any other origin, and that its content security policy refused nothing.
The screenshot is written to ``test-output/docs-page.png`` (``TEST_OUTPUT_DIR`` to change
it), where it outlives the run.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import PROJECT_ROOT
from tests.servers import GunicornServer, running_gunicorn
from tests.suite_guards import GUARDS_KEY

pytestmark = pytest.mark.slow

RENDER_SECONDS = 60
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


def test_the_docs_page_lists_every_path_and_loads_nothing_from_elsewhere(server):
    from playwright.sync_api import sync_playwright

    origin = f"http://127.0.0.1:{server.port}"
    with urllib.request.urlopen(f"{origin}/openapi.json", timeout=10) as answer:  # noqa: S310
        paths = set(json.load(answer)["paths"])
    OUTPUT_DIRECTORY.mkdir(parents=True, exist_ok=True)
    screenshot = OUTPUT_DIRECTORY / "docs-page.png"
    requested: list[str] = []
    console: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path())
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("request", lambda sent: requested.append(sent.url))
            page.on("console", lambda message: console.append(message.text))
            page.goto(f"{origin}/docs")
            page.wait_for_selector(".opblock-summary-path", timeout=RENDER_SECONDS * 1000)
            listed = set(
                page.eval_on_selector_all(
                    ".opblock-summary-path", "nodes => nodes.map(n => n.dataset.path)"
                )
            )
            page.screenshot(path=str(screenshot), full_page=False)
        finally:
            browser.close()

    assert paths - listed == set()
    assert [url for url in requested if not url.startswith(f"{origin}/")] == []
    assert f"{origin}/openapi.json" in requested
    assert [line for line in console if "Content Security Policy" in line] == []
    assert screenshot.stat().st_size > 0
