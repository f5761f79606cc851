"""Web middleware plugged into any Flask app by :func:`create_security_middleware`.

This module only composes; each concern lives in its own module:
:mod:`~security.modules.hygiene` (request ids, body size and type, proxies),
:mod:`~security.modules.ratelimit`, :mod:`~security.modules.headers` (security headers,
CORS), :mod:`~security.modules.logging_setup` (JSON logs, masking) and
:mod:`~security.modules.metrics`, :mod:`~security.modules.credentials` (a 403 after an API
key opened logs that use as denied). The brute-force guard is called by the login resource.
"""

from __future__ import annotations

from flask import Flask, Response

from security.modules import credentials, headers, hygiene, logging_setup, metrics, ratelimit


def _observe(response: Response) -> Response:
    metrics.observe_request(response, logging_setup.request_duration_seconds())
    return logging_setup.log_request(response)


def create_security_middleware(app: Flask) -> Flask:
    """Install the middleware on ``app`` and return it.

    Order matters. Before a request: the request id first (every later line and error
    carries it), the timer, the cheap body checks, then the rate limits. After it (Flask
    runs these in reverse order of registration): Flask-Limiter's headers, then ours,
    then metrics and the access line, so the measured time covers all the others.
    """
    logging_setup.configure_logging(app)
    hygiene.install_proxy_fix(app)
    app.before_request(hygiene.assign_request_id)
    app.before_request(logging_setup.start_request_timer)
    app.before_request(hygiene.check_body)
    app.after_request(_observe)
    app.after_request(hygiene.echo_request_id)
    app.after_request(headers.apply_security_headers)
    app.after_request(ratelimit.strip_stray_retry_after)
    app.after_request(credentials.record_refused_api_key_use)
    ratelimit.init_rate_limits(app)
    headers.init_cors(app)
    return app
