"""Security headers on every response (errors included) and CORS for configured origins only.

The headers an API needs are a fixed table, so they are written here rather than taken
from flask-talisman, which is built for HTML pages: it adds CSP nonces, session-cookie
flags and an HTTP-to-HTTPS redirect that would drop a POST's body. CORS, which has real
protocol logic (preflight, ``Vary: Origin``), comes from flask-cors.

The one page the app serves (``/docs``, the interactive API reference) needs scripts and
styles, from the app itself and nowhere else: its view calls :func:`use_page_policy`, and
only that response gets the page's policy instead of the API's ``default-src 'none'``.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, g, request
from flask_cors import CORS

STATIC_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    # JSON is never rendered as a page: nothing may load, nothing may frame it.
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}
_PAGE_POLICY = "page_content_security_policy"
# The HTML pages the product renders itself (reports: security/modules/report_documents.py)
# are self-contained: their own inline styles (the page's and the SVG charts'), nothing
# loaded from anywhere, no script, no framing.
SELF_CONTAINED_PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
HSTS_VALUE = "max-age=31536000; includeSubDomains"
NO_STORE = "no-store"


def _carries_credentials() -> bool:
    return "Authorization" in request.headers or g.get("principal") is not None


def use_page_policy(policy: str) -> None:
    """Answer this request with ``policy`` as its Content-Security-Policy (an HTML page)."""
    g.setdefault(_PAGE_POLICY, policy)


def apply_security_headers(response: Response) -> Response:
    """Add the header table, HSTS when it applies, and ``no-store`` where it must hold."""
    for name, value in STATIC_HEADERS.items():
        response.headers[name] = value
    page_policy = g.get(_PAGE_POLICY)
    if page_policy is not None:
        response.headers["Content-Security-Policy"] = page_policy
    if request.is_secure or current_app.config["HSTS_ENABLED"]:
        response.headers["Strict-Transport-Security"] = HSTS_VALUE
    # Caches must never keep what a credential unlocked; other responses keep their own
    # Cache-Control if a view chose one, and are not stored otherwise (a login's token).
    if _carries_credentials() or "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = NO_STORE
    response.headers.pop("Server", None)
    return response


def init_cors(app: Flask) -> None:
    """CORS headers for the origins in ``CORS_ORIGINS`` only; none at all when it is empty."""
    origins = app.config["CORS_ORIGINS"]
    if not origins:
        return
    CORS(
        app,
        origins=list(origins),
        allow_headers=["Authorization", "Content-Type", "If-Match", "Idempotency-Key"],
        expose_headers=[
            "ETag",
            "Location",
            "Retry-After",
            "X-Request-ID",
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
        ],
        supports_credentials=False,
        max_age=600,
    )
