"""Web middleware plugged into any Flask app by :func:`create_security_middleware`.

Request ids: every request carries one (a sane ``X-Request-ID`` from the client, or a
generated one); it is echoed on the response and put in error bodies and log lines.
"""

from __future__ import annotations

import re
import uuid

from flask import Flask, Response, g, request

REQUEST_ID_HEADER = "X-Request-ID"
SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")


def _assign_request_id() -> None:
    given = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = given if SANE_REQUEST_ID.match(given) else uuid.uuid4().hex


def _echo_request_id(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
    return response


def create_security_middleware(app: Flask) -> Flask:
    """Install the middleware on ``app`` and return it."""
    app.before_request(_assign_request_id)
    app.after_request(_echo_request_id)
    return app
