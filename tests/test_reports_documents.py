"""The incident report (JSON export, Markdown, HTML) and the charts page: what the caller
may see, a TLP banner, and pages that load nothing from anywhere (checked by parsing, and
by rendering in headless Chromium when it is installed)."""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from models import db
from tests.reports_support import open_incident, raise_alert
from tests.test_reports_metrics import WEEK_2

CHROMIUM = Path("/usr/bin/chromium")
# Attributes through which a page can make the browser fetch something.
LOADING_ATTRIBUTES = {
    "src",
    "href",
    "xlink:href",
    "srcset",
    "data",
    "poster",
    "action",
    "background",
}
CSS_LOADS = re.compile(r"url\(|@import", re.IGNORECASE)


class ExternalReferences(HTMLParser):
    """Every reference in a page that is not to the page itself (``#id``) or inline."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_style = tag == "style"
        for name, value in attrs:
            if name in LOADING_ATTRIBUTES and value and not value.startswith("#"):
                self.found.append(f"<{tag} {name}={value}>")
            if name == "style" and value and CSS_LOADS.search(value):
                self.found.append(f"<{tag} style={value}>")
        if tag in {"script", "iframe", "object", "embed", "link", "img"}:
            self.found.append(f"<{tag}>")

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style and CSS_LOADS.search(data):
            self.found.append(f"<style> {data.strip()[:80]}")


def external_references(page: str) -> list[str]:
    parser = ExternalReferences()
    parser.feed(page)
    return parser.found


@pytest.fixture
def reported_incident(app, admin, analyst, viewer) -> int:
    """An incident with an alert, a visible IOC, a file hash and one TLP red IOC of the
    admin's (hidden from the analyst)."""
    with app.app_context():
        incident = open_incident(
            WEEK_2,
            severity="high",
            reporter="analyst1",
            assignee="analyst1",
            steps=[("triaged", 10)],
        )
        incident.title = "Phish <script>alert(1)</script> *urgent*"
        raise_alert(incident, "Brute force", count=3)
        db.session.commit()
        incident_id = incident.id
    iocs = [
        {"value": "evil.example.com"},
        {"value": "44d88612fea8a8f36de82e1278abb02f"},
    ]
    ioc_ids = [admin.client.post("/iocs", json=ioc).get_json()["id"] for ioc in iocs]
    secret = {"value": "secret.example.org", "tlp": "red"}
    ioc_ids.append(admin.client.post("/iocs", json=secret).get_json()["id"])
    linked = admin.client.post(f"/incidents/{incident_id}/iocs", json={"ioc_ids": ioc_ids})
    assert linked.status_code == 200, linked.get_json()
    return incident_id


def report(user, incident_id: int, accept: str):
    response = user.client.get(f"/incidents/{incident_id}/report", headers={"Accept": accept})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == accept
    return response


def test_the_json_export_holds_the_whole_incident_the_caller_may_see(reported_incident, analyst):
    export = report(analyst, reported_incident, "application/json").get_json()
    assert export["incident"]["id"] == reported_incident
    assert [entry["kind"] for entry in export["timeline"]] == ["created", "status_change"]
    assert [alert["rule_name"] for alert in export["alerts"]] == ["Brute force"]
    assert sorted(ioc["value"] for ioc in export["iocs"]) == [
        "44d88612fea8a8f36de82e1278abb02f",
        "evil.example.com",
    ]
    assert export["attack_techniques"] == ["T1110"]


def test_the_markdown_report_has_a_tlp_banner_and_escapes_what_users_wrote(
    reported_incident, analyst
):
    text = report(analyst, reported_incident, "text/markdown").get_data(as_text=True)
    assert text.startswith("**TLP:AMBER**")
    assert r"Phish \<script\>alert\(1\)\</script\> \*urgent\*" in text
    assert "evil.example.com" in text and "secret.example.org" not in text
    assert "- md5: `44d88612fea8a8f36de82e1278abb02f`" in text
    assert "T1110" in text


def test_the_html_report_is_self_contained_and_escapes_what_users_wrote(reported_incident, analyst):
    page = report(analyst, reported_incident, "text/html").get_data(as_text=True)
    assert 'class="tlp tlp-amber">TLP:AMBER<' in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "secret.example.org" not in page
    assert external_references(page) == []


def test_a_tlp_red_incident_s_report_is_hidden_like_the_incident(app, admin, viewer):
    with app.app_context():
        incident = open_incident(WEEK_2, severity="low", reporter="admin1", tlp="red")
        db.session.commit()
        incident_id = incident.id
    response = viewer.client.get(f"/incidents/{incident_id}/report")
    assert response.status_code == 404
    page = report(admin, incident_id, "text/html").get_data(as_text=True)
    assert "TLP:RED" in page


@pytest.fixture
def metrics_response(reported_incident, analyst):
    response = analyst.client.get("/reports/metrics.html")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/html"
    return response


@pytest.fixture
def metrics_page(metrics_response) -> str:
    return metrics_response.get_data(as_text=True)


def test_the_charts_page_draws_inline_svg_and_loads_nothing(metrics_page):
    assert metrics_page.count("<svg") == 4
    assert external_references(metrics_page) == []


def test_the_charts_page_says_so_when_the_range_is_empty(analyst):
    query = {"created_after": "2000-01-01T00:00:00Z", "created_before": "2000-01-02T00:00:00Z"}
    page = analyst.client.get("/reports/metrics.html", query_string=query).get_data(as_text=True)
    assert page.count("<svg") == 4
    assert external_references(page) == []


def test_a_page_may_style_itself_and_load_nothing(metrics_response):
    policy = metrics_response.headers["Content-Security-Policy"]
    assert policy == "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


@contextmanager
def serving(response) -> Iterator[str]:
    """The app's answer (body and headers, its CSP included) served at a local URL, as a
    browser would get it from the API."""
    body = response.get_data()
    headers = [(name, value) for name, value in response.headers if name != "Content-Length"]

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics.html"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_the_charts_page_renders_in_headless_chromium(metrics_response, tmp_path):
    """A screenshot of the page as the API serves it (its headers, CSP included), with
    every other host unresolvable: it renders from itself alone, and the browser reports
    no request refused and no style blocked by the policy."""
    screenshot = tmp_path / "metrics.png"
    with serving(metrics_response) as url:
        completed = subprocess.run(
            [
                str(CHROMIUM),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                f"--user-data-dir={tmp_path / 'profile'}",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--enable-logging=stderr",
                f"--screenshot={screenshot}",
                "--window-size=1280,2400",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "Content Security Policy" not in completed.stderr
    assert screenshot.read_bytes().startswith(b"\x89PNG")
    assert screenshot.stat().st_size > 10_000
