"""Structured logs: one JSON object per line, request context on every line, secrets masked.

:func:`json_log_handler` builds the one handler shape used everywhere (the app's stderr,
gunicorn's error log, the test suite's capture file); :func:`configure_logging` installs
it for the app; :func:`log_request` writes the access line of each request. Request
bodies are never logged.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import IO, Any

from flask import Flask, Response, g, has_request_context, request
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from security.modules.utils import mask_sensitive_data

HANDLER_NAME = "soc-json"
APP_LOGGER = "soc"
access_logger = logging.getLogger("soc.access")
_traceback_formatter = logging.Formatter()


class SensitiveDataFilter(logging.Filter):
    """Masks tokens, keys, passwords, card numbers and SSNs in a record before it is written.

    The record is changed in place (message, arguments, extra fields, traceback text), so
    handlers running after this one see the masked version too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            # Arguments that do not fit the format: mask the raw pieces rather than fail the
            # logging call (a filter's exception would reach the code that logged).
            message = f"{record.msg} {record.args!r}"
        record.msg = mask_sensitive_data(message)
        record.args = None
        if record.exc_info:
            record.exc_text = _traceback_formatter.formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = mask_sensitive_data(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_sensitive_data(record.stack_info)
        for name, value in list(vars(record).items()):
            if name not in RESERVED_ATTRS and isinstance(value, str | dict | list | tuple):
                setattr(record, name, mask_sensitive_data(value))
        return True


class RequestContextFilter(logging.Filter):
    """Adds the request id, method, path and principal to every line logged during a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not has_request_context():
            return True
        principal = g.get("principal")
        context: dict[str, Any] = {
            "request_id": g.get("request_id"),
            "method": request.method,
            "path": request.path,
            "principal_id": principal.user_id if principal is not None else None,
        }
        for name, value in context.items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


def json_formatter() -> JsonFormatter:
    return JsonFormatter(
        ["levelname", "name", "process", "message"],
        rename_fields={"levelname": "level", "name": "logger", "process": "pid"},
        timestamp="time",
    )


def json_log_handler(stream: IO[str] | None = None) -> logging.Handler:
    """A handler writing masked JSON lines with request context to ``stream`` (stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RequestContextFilter())
    handler.addFilter(SensitiveDataFilter())
    handler.setFormatter(json_formatter())
    return handler


def configure_logging(app: Flask) -> None:
    """Send the root logger's records to stderr as JSON; idempotent across app instances.

    Only our own handler is replaced: handlers others installed (gunicorn's, a test
    runner's) stay in place.
    """
    root = logging.getLogger()
    for existing in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(existing)
    handler = json_log_handler()
    handler.set_name(HANDLER_NAME)
    root.addHandler(handler)
    logging.getLogger(APP_LOGGER).setLevel(app.config["LOG_LEVEL"])
    # Werkzeug's development-server access lines duplicate ours, without the context.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def start_request_timer() -> None:
    g.request_started = time.perf_counter()


def request_duration_seconds() -> float:
    return time.perf_counter() - g.get("request_started", time.perf_counter())


def log_request(response: Response) -> Response:
    """The access line: who asked what, the status and how long it took (never the body)."""
    access_logger.info(
        "%s %s %s",
        request.method,
        request.path,
        response.status_code,
        extra={
            "status": response.status_code,
            "duration_ms": round(request_duration_seconds() * 1000, 2),
            "remote_addr": request.remote_addr,
        },
    )
    return response
