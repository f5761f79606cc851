"""A TAXII 2.1 server on 127.0.0.1 that serves whatever a test scripts: one collection, one
page of objects given as they are (patterns no store of ours would write), sent at once or
dripped a byte at a time. The feeds poll it over TCP like any remote server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"
COLLECTION_ID = "9c4a0f6e-2d3b-4e5f-8a7b-1c2d3e4f5a6b"
DATE_ADDED = "2026-01-01T00:00:00.000000Z"
# A dripping answer stops after this many bytes whatever happens, so a test stays bounded
# in time even when the poller under test never hangs up.
MAX_DRIPPED_BYTES = 20


@dataclass
class Script:
    """What the server answers: the objects of its one page, the pause between the bytes
    of that page's answer (None: sent at once), and whether the dripping starts with the
    headers (else only the body drips)."""

    objects: list[dict]
    drip_seconds: float | None = None
    drip_headers: bool = False


class _Handler(BaseHTTPRequestHandler):
    server: _ScriptedServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test's output is the poll's result."""

    def do_GET(self) -> None:
        script = self.server.script
        if self.path.split("?")[0].endswith("/objects/"):
            body = {"objects": script.objects, "more": False}
            self._answer(json.dumps(body).encode(), script)
        else:
            info = {"id": COLLECTION_ID, "title": "Scripted", "can_read": True, "can_write": False}
            self._answer(json.dumps(info).encode(), Script([]))

    def _answer(self, body: bytes, script: Script) -> None:
        head = (
            "HTTP/1.1 200 OK\r\n"
            f"Content-Type: {TAXII_MEDIA_TYPE}\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"X-TAXII-Date-Added-First: {DATE_ADDED}\r\n"
            f"X-TAXII-Date-Added-Last: {DATE_ADDED}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        if script.drip_seconds is None:
            self.wfile.write(head + body)
            return
        if not script.drip_headers:
            self.wfile.write(head)
            self.wfile.flush()
        dripped = head + body if script.drip_headers else body
        for index in range(min(len(dripped), MAX_DRIPPED_BYTES)):
            if self.server.stopping.wait(script.drip_seconds):
                return
            try:
                self.wfile.write(dripped[index : index + 1])
                self.wfile.flush()
            except OSError:  # the poller hung up
                return


class _ScriptedServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, script: Script) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = script
        self.stopping = threading.Event()


@contextmanager
def scripted_taxii_server(script: Script) -> Iterator[str]:
    """Serve ``script`` on a free local port; yields the API root URL."""
    server = _ScriptedServer(script)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/api/"
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
