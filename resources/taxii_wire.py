"""TAXII 2.1 over HTTP: media-type negotiation, responses, error bodies, HTTP Basic.

Everything under ``/taxii2/`` answers ``application/taxii+json;version=2.1``, errors
included (:func:`taxii_error_response` is registered with the app's one error handler for
that path prefix). What the endpoints do lives in :mod:`security.modules.taxii.server`;
the media types and the timestamp form it writes, in :mod:`security.modules.taxii.media`.

TAXII clients (the OASIS client included) often speak only Basic, so a username and
password are accepted too, checked by the login's own :func:`auth.verify_login`: the
brute-force guard first, argon2 verification, failures counted and audited. Every other
rule (permissions, which collections) is the same whichever way the caller authenticated.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import Response, g, request
from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header, parse_options_header

import auth
from errors import ApiError, status_title
from models import db
from security.modules.principals import Principal, permissions_for_role
from security.modules.taxii.media import TAXII_MEDIA_TYPE, TAXII_VERSION

# Without the slash, so that /taxii2 itself (the discovery URL as some type it) is covered.
TAXII_PATH_PREFIX = "/taxii2"
# Clients that support TAXII authenticate with one of these.
TAXII_CHALLENGES = 'Basic realm="taxii", Bearer realm="soc-api"'

_TAXII_TYPE = "application/taxii+json"
_WILDCARDS = frozenset({"*/*", "application/*"})


def _is_taxii_21(media_type: str, params: Mapping[str, str], *, wildcards: bool) -> bool:
    """A TAXII media type without a version means the newest, which is ours (2.1)."""
    if wildcards and media_type in _WILDCARDS:
        return True
    return media_type == _TAXII_TYPE and params.get("version", TAXII_VERSION) == TAXII_VERSION


def negotiate_accept() -> None:
    """406 unless the client accepts TAXII 2.1 (a missing ``Accept`` accepts anything)."""
    header = request.headers.get("Accept")
    if not header:
        return
    for value, quality in parse_accept_header(header, MIMEAccept):
        media_type, params = parse_options_header(value)
        if quality > 0 and _is_taxii_21(media_type.lower(), params, wildcards=True):
            return
    raise ApiError(406, f"This server answers only {TAXII_MEDIA_TYPE}; got Accept: {header}")


def require_taxii_content_type() -> None:
    """415 unless the body is declared as TAXII 2.1 (version omitted means 2.1)."""
    media_type, params = parse_options_header(request.headers.get("Content-Type", ""))
    if not _is_taxii_21(media_type.lower(), params, wildcards=False):
        raise ApiError(
            415,
            f"Send the envelope as {TAXII_MEDIA_TYPE} "
            f"(got {request.headers.get('Content-Type') or 'no Content-Type'}).",
        )


def taxii_response(
    body: Mapping[str, Any] | None, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A TAXII response; ``None`` for the endpoints that answer without a body (delete)."""
    content = "" if body is None else json.dumps(body)
    response = Response(content, status=status, content_type=TAXII_MEDIA_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def taxii_error_response(
    status: int,
    detail: str,
    *,
    errors: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    """A TAXII error message (``title``, ``description``, ``http_status`` as a string).

    Same signature as :func:`errors.problem_response`, so the app's one handler can use
    either by path. Field errors and extras go under ``details``.
    """
    details: dict[str, Any] = {"request_id": g.get("request_id")}
    if errors:
        details["errors"] = errors
    if extra:
        details.update(extra)
    body = {
        "title": status_title(status),
        "description": detail,
        "http_status": str(status),
        "details": details,
    }
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = TAXII_CHALLENGES
    return taxii_response(body, status, headers)


def _basic_principal(username: str, password: str) -> Principal:
    ip = request.remote_addr or "unknown"
    user = auth.verify_login(username, password, ip, action="auth.taxii_basic")
    db.session.commit()
    return Principal.of(user, permissions_for_role(user.role), "password", user.id)


def taxii_principal() -> Principal:
    """The authenticated caller, by HTTP Basic or bearer; 401 (audited) otherwise."""
    if g.get("principal") is not None:
        return g.principal
    credentials = request.authorization
    if credentials is None or credentials.type != "basic":
        return auth.authenticate()
    g.principal = _basic_principal(credentials.username or "", credentials.password or "")
    return g.principal


def authorize_taxii(permission: str) -> Principal:
    """Authenticate (Basic or bearer), then require ``permission``; 403 is audited."""
    taxii_principal()
    return auth.authorize(permission)
