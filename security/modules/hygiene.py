"""Request hygiene, checked before any view runs: request ids, body size, body media type,
and which proxies' ``X-Forwarded-*`` headers are believed.

A resource may widen two of these for itself with class attributes: ``max_content_length``
(bytes, for bulk endpoints) or ``max_content_length_setting`` (the config key holding it,
plus ``body_overhead`` bytes: evidence uploads take ``EVIDENCE_MAX_BYTES`` and their
multipart framing), and ``body_media_types`` (e.g. ``("text/plain",)`` for an endpoint
that reads plain text, ``("multipart/form-data",)`` for an upload).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence

from flask import Flask, Response, current_app, g, request
from werkzeug.middleware.proxy_fix import ProxyFix

from security.errors import TooLarge, UnsupportedMediaType

JSON_MEDIA_TYPES = ("application/json",)
REQUEST_ID_HEADER = "X-Request-ID"
SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")


def assign_request_id() -> None:
    """Keep a sane client-supplied id (so a trace spans services), generate one otherwise."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = given if SANE_REQUEST_ID.match(given) else uuid.uuid4().hex


def echo_request_id(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
    return response


def _view_class() -> type | None:
    view = current_app.view_functions.get(request.endpoint or "")
    return getattr(view, "view_class", None)


def _has_body() -> bool:
    return (
        bool(request.content_length)
        or "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    )


def require_json_content_type(accepted: Sequence[str] = JSON_MEDIA_TYPES) -> None:
    """415 unless the body is declared as one of ``accepted`` (``+json`` suffixes allowed)."""
    mimetype = request.mimetype or ""
    if mimetype in accepted or (mimetype.endswith("+json") and "application/json" in accepted):
        return
    raise UnsupportedMediaType(
        f"Send the body as {' or '.join(accepted)} (got {mimetype or 'no Content-Type'})."
    )


def check_body() -> None:
    """413 from ``Content-Length`` alone, before a byte is read; 415 for non-JSON bodies.

    The media type is checked here for every endpoint, not only those that read a body,
    so a body sent where none is read is refused the same way instead of silently ignored.
    Bodies without ``Content-Length`` (chunked) are cut at the same cap while being read.
    """
    if not _has_body():
        return
    view_class = _view_class()
    limit = _body_limit(view_class)
    request.max_content_length = limit
    if limit is not None and (request.content_length or 0) > limit:
        raise TooLarge(f"The request body is larger than {limit} bytes.")
    if request.method == "OPTIONS" or request.endpoint is None:
        return
    accepted: Sequence[str] = getattr(view_class, "body_media_types", JSON_MEDIA_TYPES)
    require_json_content_type(accepted)


def _body_limit(view_class: type | None) -> int | None:
    """The largest body the endpoint reads: its own limit, or the app's."""
    setting = getattr(view_class, "max_content_length_setting", None)
    if setting is not None:
        return current_app.config[setting] + getattr(view_class, "body_overhead", 0)
    return getattr(view_class, "max_content_length", None) or request.max_content_length


def install_proxy_fix(app: Flask) -> None:
    """Believe ``X-Forwarded-For/Proto/Host`` from exactly ``TRUSTED_PROXIES`` hops, if any.

    With 0 (the default) the headers are ignored: anyone can send them, and believing them
    would let a client choose its own IP for rate limits, the brute-force guard and audit.
    """
    hops = app.config["TRUSTED_PROXIES"]
    if hops > 0:
        # Flask's documented way to wrap its WSGI app; mypy sees a method replaced.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops
        )
