"""The one error format: RFC 9457 problem details (``application/problem+json``).

Every error, whether raised by the HTTP layer (:class:`ApiError`), by the engine (a
:class:`security.errors.DomainError`, given its status by :data:`DOMAIN_ERROR_STATUS`), by
Werkzeug (404, 405, 413), by Flask-RESTful, or unexpected (500), leaves through
:func:`problem_response`, so clients parse one shape and no stack trace ever reaches them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, g, has_request_context, request
from flask_restful import Api
from werkzeug.exceptions import HTTPException, InternalServerError

from database import lost_connection, unique_violation
from models.base import IllegalTransition
from security import errors as domain
from security.modules.utils import dump_json

PROBLEM_MEDIA_TYPE = "application/problem+json"
logger = logging.getLogger("soc.errors")


class ApiError(HTTPException):
    """An error with a status, a human detail, optional per-field errors and extra headers."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(description=detail)
        self.code = status
        self.errors = dict(errors) if errors else None
        self.extra_headers = dict(headers or {})
        self.extra = dict(extra or {})


def status_title(status: int) -> str:
    """The status's reason phrase (``Not Found``); ``Error`` for codes HTTP does not name."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_document(status: int, detail: str, request_id: str | None) -> dict[str, Any]:
    """The members every problem carries; the HTTP server's own answers use them too."""
    return {
        "type": "about:blank",
        "title": status_title(status),
        "status": status,
        "detail": detail,
        "request_id": request_id,
    }


def problem_response(
    status: int,
    detail: str,
    *,
    errors: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    """Build the problem+json response every error handler returns."""
    body = problem_document(status, detail, g.get("request_id"))
    if errors:
        body["errors"] = errors
    if extra:
        body.update(extra)
    response = Response(dump_json(body), status=status, mimetype=PROBLEM_MEDIA_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    if status == 401 and "WWW-Authenticate" not in response.headers:
        response.headers["WWW-Authenticate"] = 'Bearer realm="soc-api"'
    return response


CONCURRENT_DUPLICATE = (
    "Another request wrote the same unique value at the same moment; read the current "
    "state and retry if it still applies."
)

# The one place that knows which HTTP status each refusal of the engine (or of a model's
# workflow) becomes; a subclass answers as the nearest class listed here.
DOMAIN_ERROR_STATUS: dict[type[Exception], int] = {
    domain.Invalid: 422,
    domain.NotFound: 404,
    domain.Conflict: 409,
    IllegalTransition: 409,
    domain.Unauthenticated: 401,
    domain.Forbidden: 403,
    domain.NotAcceptable: 406,
    domain.TooLarge: 413,
    domain.UnsupportedMediaType: 415,
    domain.TooManyAttempts: 429,
    domain.Unavailable: 503,
    domain.DomainError: 400,
}
DomainRefusal = domain.DomainError | IllegalTransition
DATABASE_LOST = (
    "The database connection was lost before the request completed; retry it (a create with "
    "the same Idempotency-Key is applied once)."
)


def domain_error_status(error: DomainRefusal) -> int:
    """The status :data:`DOMAIN_ERROR_STATUS` gives ``error``'s nearest listed class."""
    return next(
        DOMAIN_ERROR_STATUS[kind] for kind in type(error).__mro__ if kind in DOMAIN_ERROR_STATUS
    )


def _render_domain_error(render: ErrorRenderer, error: DomainRefusal) -> Response:
    status = domain_error_status(error)
    if isinstance(error, IllegalTransition):
        return render(status, str(error), extra=error.details)
    headers = {} if error.retry_after is None else {"Retry-After": str(error.retry_after)}
    return render(status, error.detail, errors=error.errors, headers=headers, extra=error.extra)


def _http_exception_headers(error: HTTPException) -> dict[str, str]:
    """Keep the headers Werkzeug attaches (``Allow`` on 405, ``Retry-After`` on 429)."""
    wanted = {"allow", "retry-after", "www-authenticate"}
    headers = {name: value for name, value in error.get_headers() if name.lower() in wanted}
    headers.update(getattr(error, "extra_headers", {}))
    return headers


# Protocols with their own error format (TAXII under /taxii2/) register a renderer with
# problem_response's signature for their path prefix; everything else stays problem+json.
ErrorRenderer = Callable[..., Response]
_renderers_by_path_prefix: dict[str, ErrorRenderer] = {}


def register_error_renderer(path_prefix: str, renderer: ErrorRenderer) -> None:
    """Answer errors of requests under ``path_prefix`` with ``renderer``."""
    _renderers_by_path_prefix[path_prefix] = renderer


def _renderer() -> ErrorRenderer:
    path = request.path if has_request_context() else ""
    for prefix, renderer in _renderers_by_path_prefix.items():
        if path.startswith(prefix):
            return renderer
    return problem_response


def handle_exception(error: Exception) -> Response:
    """Turn any exception into a problem response; unexpected ones are logged, not shown."""
    render = _renderer()
    if isinstance(error, DomainRefusal):
        return _render_domain_error(render, error)
    if isinstance(error, ApiError):
        return render(
            error.code,
            error.description,
            errors=error.errors,
            headers=error.extra_headers,
            extra=error.extra,
        )
    if isinstance(error, HTTPException) and error.code and error.code < 500:
        return render(
            error.code,
            error.description or status_title(error.code),
            headers=_http_exception_headers(error),
        )
    if lost_connection(error):
        # Not acknowledged, so not promised: the client retries (503 + Retry-After).
        logger.warning("database connection lost: %s", type(error.__cause__ or error).__name__)
        return render(503, DATABASE_LOST, headers={"Retry-After": "1"})
    if unique_violation(error):
        # The engine checks uniqueness before it writes; a concurrent request that wrote
        # the same value in between is a conflict with the current state, as the check's.
        return render(409, CONCURRENT_DUPLICATE)
    if not isinstance(error, HTTPException):
        logger.exception("unhandled error", exc_info=error)
    return render(500, InternalServerError.description)


class ProblemApi(Api):
    """Flask-RESTful Api whose errors use the same problem handler as the rest of the app,
    and whose JSON answers orjson writes (:func:`security.modules.utils.dump_json`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.representations["application/json"] = _json_answer

    def handle_error(self, e: Exception) -> Response:
        return handle_exception(e)


def _json_answer(data: Any, code: int, headers: Mapping[str, str] | None = None) -> Response:
    response = Response(dump_json(data) + b"\n", code, mimetype="application/json")
    response.headers.extend(headers or {})
    return response


def register_error_handlers(app: Flask) -> None:
    """Route every error Flask sees (outside Flask-RESTful resources too) to the handler."""
    app.register_error_handler(Exception, handle_exception)
