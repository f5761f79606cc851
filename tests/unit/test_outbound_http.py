"""The checked outbound session: every request and every redirect target passes the SSRF
guard, the environment's proxies are not used, and a silent server is cut off."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from security.outbound.http import Deadlines, TooSlow, checked_session
from security.outbound.ssrf import OutboundPolicy, OutboundUrlRefused

ALLOWED = OutboundPolicy(("127.0.0.1",))


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        port = self.server.server_address[1]
        if self.path == "/to-private":
            self._redirect(f"http://127.0.0.2:{port}/ok")
        elif self.path == "/to-allowed":
            self._redirect("/ok")
        elif self.path == "/silent":
            time.sleep(3)
            self._answer(b"too late")
        else:
            self._answer(b"ok")

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _session(request_seconds: float = 10) -> requests.Session:
    deadlines = Deadlines(
        total_seconds=30,
        request_seconds=request_seconds,
        total_exceeded="the job took too long",
        request_exceeded="the request took too long",
    )
    return checked_session(ALLOWED, deadlines)


def test_an_allowed_url_and_an_allowed_redirect_are_fetched(server_url):
    response = _session().get(f"{server_url}/to-allowed")

    assert (response.status_code, response.text) == (200, "ok")


def test_a_url_the_guard_refuses_is_never_requested():
    with pytest.raises(OutboundUrlRefused, match="OUTBOUND_ALLOWED_HOSTS"):
        _session().get("http://10.0.0.5/")


def test_a_redirect_to_a_refused_address_is_not_followed(server_url):
    with pytest.raises(OutboundUrlRefused, match=r"127\.0\.0\.2"):
        _session().get(f"{server_url}/to-private")


def test_proxies_from_the_environment_are_ignored(server_url, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "")

    assert _session().get(f"{server_url}/ok").text == "ok"


def test_a_silent_server_is_cut_off_at_the_request_deadline(server_url):
    started = time.monotonic()
    with pytest.raises(TooSlow, match="the request took too long"):
        _session(request_seconds=1).get(f"{server_url}/silent")
    assert time.monotonic() - started < 2.5
