"""Rate limits (Flask-Limiter): a global limit per principal and per IP, stricter ones on auth.

Counters live in ``RATELIMIT_STORAGE_URI`` (Redis in production, so every worker and
instance shares one count); all the limits of a request are counted in one Redis round trip
(:mod:`security.modules.one_trip_limiter`). If Redis stops answering, Flask-Limiter falls back to
per-process memory counters and says so once ("Rate limit storage unreachable"), then
probes Redis with a growing back-off and says when it has recovered: requests never fail
because the counter store did. Short socket timeouts keep a hung Redis from stalling
requests.

Principals are keyed by a hash of their credential, never by the raw token or key. The
brute-force guard for logins is separate (:mod:`security.modules.blocks`).

:data:`limiter` is process-wide (resource classes name its decorators at import time),
as in Flask-Limiter's application-factory pattern: the limits themselves are read from the
current app's config on every request, while the counter store is the one of the app
initialised last, which matters only to a process holding several apps (tests).
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, Response, current_app, request
from flask_limiter import ApplicationLimit, RequestLimit, RouteLimit

from security.modules import metrics
from security.modules.one_trip_limiter import OneTripLimiter
from security.modules.principals import bearer_credential, hash_secret

# Liveness and readiness probes must answer even when a client floods the API.
EXEMPT_PATHS = frozenset({"/health", "/ready"})
TOO_MANY_REQUESTS = "Too many requests; retry after the number of seconds in Retry-After."


def client_ip_key() -> str:
    """The client's address (the proxy-corrected one when TRUSTED_PROXIES is set)."""
    return f"ip:{request.remote_addr or 'unknown'}"


def principal_key() -> str:
    """The credential's hash when the request carries one, the client's address otherwise.

    Unknown or forged credentials get their own bucket each; the per-IP limit is what stops
    a client that rotates them.
    """
    credential = bearer_credential()
    if credential is None:
        return client_ip_key()
    return f"credential:{hash_secret(credential)[:32]}"


def _configured(name: str) -> Callable[[], str]:
    """Limits are read per request, so each app instance uses its own settings."""
    return lambda: current_app.config[name]


def _count_rejection(_breached: RequestLimit) -> None:
    metrics.RATE_LIMIT_REJECTIONS.labels(endpoint=metrics.route_label()).inc()


limiter = OneTripLimiter(
    key_func=principal_key,
    application_limits=[
        ApplicationLimit(
            _configured("RATELIMIT_DEFAULT"),
            key_function=principal_key,
            scope="principal",
            error_message=TOO_MANY_REQUESTS,
        ),
        ApplicationLimit(
            _configured("RATELIMIT_PER_IP"),
            key_function=client_ip_key,
            scope="ip",
            error_message=TOO_MANY_REQUESTS,
        ),
    ],
    on_breach=_count_rejection,
)


def _limit_auth_endpoint(setting: str) -> RouteLimit:
    """Per client address: these endpoints check passwords or mint credentials."""
    return limiter.limit(
        _configured(setting),
        key_func=client_ip_key,
        methods=["POST"],
        override_defaults=False,
        error_message=TOO_MANY_REQUESTS,
    )


# For Flask-RESTful resources, as class-level ``decorators = [...]``: Flask-RESTful wraps
# the view it registers with those, so the limit holds for every method of the resource
# (ARCHITECTURE.md, "Conventions").
login_rate_limit = _limit_auth_endpoint("RATELIMIT_LOGIN")
register_rate_limit = _limit_auth_endpoint("RATELIMIT_REGISTER")


@limiter.request_filter
def _is_exempt() -> bool:
    return request.path in EXEMPT_PATHS


def storage_options(app: Flask) -> dict[str, float]:
    """Short Redis timeouts: a hung Redis must cost milliseconds, not a stalled worker."""
    if not app.config["RATELIMIT_STORAGE_URI"].startswith(("redis://", "rediss://")):
        return {}
    seconds = app.config["RATELIMIT_STORAGE_TIMEOUT_MS"] / 1000
    return {"socket_timeout": seconds, "socket_connect_timeout": seconds}


def init_rate_limits(app: Flask) -> None:
    """Bind the limiter to ``app`` with the settings Flask-Limiter reads from its config."""
    app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", storage_options(app))
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    app.config.setdefault("RATELIMIT_STRATEGY", "fixed-window")
    limiter.init_app(app)


def strip_stray_retry_after(response: Response) -> Response:
    """Flask-Limiter puts ``Retry-After`` on every limited response; it means something only
    on 429 and 503, so it is dropped elsewhere."""
    if response.status_code not in (429, 503):
        response.headers.pop("Retry-After", None)
    return response
