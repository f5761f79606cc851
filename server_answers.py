"""The answers the HTTP server writes itself, before or instead of the app: problem+json.

gunicorn answers a request it cannot parse (400), a request line or head over its limits
(414, 431) and a few protocol errors with an HTML page of its own; the request-buffering
worker adds 408 (a request not received in time) and 503 (too many unfinished requests).
Clients must see the app's one error format and its security headers there too, so every
such answer is built here from the same pieces the app uses (``errors.problem_document``,
``security.modules.headers``). A request id is generated for each, as the app does, so the
answer can be found in the server's log.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from socket import socket

from gunicorn import util

from errors import PROBLEM_MEDIA_TYPE, problem_document
from security.modules.headers import HSTS_VALUE, NO_STORE, STATIC_HEADERS
from security.modules.hygiene import REQUEST_ID_HEADER

logger = logging.getLogger("soc.server")
# gunicorn's messages quote what the client sent (a header name, a request line); enough to
# recognise it, never a whole oversized head.
MAX_DETAIL_LENGTH = 200


def problem_answer(status: int, reason: str, detail: str, *, hsts: bool) -> bytes:
    """A complete ``Connection: close`` HTTP/1.1 response carrying a problem document."""
    request_id = uuid.uuid4().hex
    if len(detail) > MAX_DETAIL_LENGTH:
        detail = detail[:MAX_DETAIL_LENGTH] + "..."
    body = json.dumps(problem_document(status, detail or reason, request_id)).encode()
    headers = {
        "Content-Type": PROBLEM_MEDIA_TYPE,
        "Content-Length": str(len(body)),
        "Connection": "close",
        REQUEST_ID_HEADER: request_id,
        "Cache-Control": NO_STORE,
        **STATIC_HEADERS,
    }
    if hsts:
        headers["Strict-Transport-Security"] = HSTS_VALUE
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    logger.info("server answered %d itself: %s", status, detail, extra={"request_id": request_id})
    return f"HTTP/1.1 {status} {reason}\r\n{head}\r\n".encode("latin-1") + body


def problem_writer(*, hsts: bool) -> Callable[[socket, int, str, str], None]:
    """A replacement for ``gunicorn.util.write_error`` (same signature) writing problems."""

    def write_problem(sock: socket, status: int, reason: str, detail: str) -> None:
        util.write_nonblock(sock, problem_answer(status, reason, detail, hsts=hsts))

    return write_problem
