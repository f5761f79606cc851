"""gunicorn settings: ``gunicorn -c gunicorn.conf.py 'app:create_app()'``.

``gthread`` workers (2 workers x 4 threads measured best on 2 cores) that hand a thread only
a request that has fully arrived (``buffering_worker``: slow clients cannot hold the threads;
``GUNICORN_HEAD_TIMEOUT``, ``GUNICORN_BODY_TIMEOUT``, ``GUNICORN_MAX_UNFINISHED_REQUESTS``);
each knob can be changed from the environment without editing this file. The
``on_starting`` hook checks the settings and the database once, in the master, so a
misconfiguration ends the server with one clear line instead of every worker failing (and
being respawned) on its own.
Workers share their metrics through ``PROMETHEUS_MULTIPROC_DIR``, log JSON like the app,
and send no ``Server`` banner. With ``GUNICORN_CERTFILE`` (and ``GUNICORN_KEYFILE``) they
serve TLS 1.2 or 1.3 themselves; with ``GUNICORN_CLIENT_CA`` too, mutual TLS.
"""

from __future__ import annotations

import os
import shutil
import ssl
import sys
import tempfile
from pathlib import Path

from gunicorn.http import wsgi

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
worker_class = "buffering_worker.RequestBufferingWorker"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# gunicorn's runtime control socket lives at one path per user ($HOME/.gunicorn), so two
# servers on one machine would fight over it; nothing here needs it.
control_socket_disable = True
# TLS served by gunicorn itself (README, "TLS and mutual TLS"): a certificate and key turn
# it on; a CA bundle for client certificates makes one from that CA required (mutual TLS).
certfile = os.environ.get("GUNICORN_CERTFILE") or None
keyfile = os.environ.get("GUNICORN_KEYFILE") or None
ca_certs = os.environ.get("GUNICORN_CLIENT_CA") or None
cert_reqs = ssl.CERT_REQUIRED if ca_certs else ssl.CERT_NONE


def ssl_context(config, default_ssl_context_factory) -> ssl.SSLContext:
    """gunicorn's context (certificate, key, client CA, Python's secure defaults) with TLS 1.2
    as the oldest protocol (OpenSSL picks 1.3 whenever the client has it) and HTTP/1.1 as
    the only application protocol the worker reads."""
    context = default_ssl_context_factory()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    return context


# ProxyFix (TRUSTED_PROXIES) is the one place deciding which X-Forwarded-* headers to believe;
# gunicorn's own default would trust X-Forwarded-Proto from any local process.
forwarded_allow_ips = ""
# gunicorn's error log uses the app's JSON shape and masking.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "security.modules.logging_setup.json_formatter"}},
    "filters": {"mask": {"()": "security.modules.logging_setup.SensitiveDataFilter"}},
    "handlers": {
        "json_stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["mask"],
            "stream": "ext://sys.stderr",
        }
    },
    # The app adds its own JSON handler to the root logger when it starts.
    "root": {"level": "INFO", "handlers": []},
    "loggers": {
        "gunicorn.error": {"handlers": ["json_stderr"], "level": "INFO", "propagate": False},
        # Off: the app's own access line (soc.access) carries the request id and principal.
        "gunicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
    },
}

# Metrics from every worker are merged through files here (prometheus-client's multiprocess
# mode); the variable must be set before a worker imports prometheus_client.
_OWN_METRICS_DIRECTORY = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _OWN_METRICS_DIRECTORY:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="soc-metrics-")

# gunicorn always sends "Server: gunicorn" and has no setting to turn it off; the banner
# only helps someone matching servers to known vulnerabilities.
_gunicorn_default_headers = wsgi.Response.default_headers


def _default_headers_without_server_banner(self) -> list[str]:
    return [line for line in _gunicorn_default_headers(self) if not line.startswith("Server:")]


wsgi.Response.default_headers = _default_headers_without_server_banner


def on_starting(server) -> None:
    """Stop before forking workers on a bad setting or an unreachable database, in one line.

    Exit codes match ``create_app()``'s: 2 for a setting, 4 for the database.
    """
    from buffering_worker import ReadLimits
    from config import ConfigError, load_settings
    from database import DatabaseUnavailable, ensure_database_exists

    try:
        ReadLimits.from_environment(os.environ)
        ensure_database_exists(load_settings().database_url)
    except (ValueError, ConfigError, DatabaseUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        on_exit(server)  # gunicorn skips its exit hook when startup fails
        raise SystemExit(4 if isinstance(error, DatabaseUnavailable) else 2) from None


def when_ready(server) -> None:
    """Before the first worker: drop metrics files a previous server left behind, and warn
    when rate-limit counters would be per worker (each would allow the full limit)."""
    for stale in Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).glob("*.db"):
        stale.unlink()
    storage = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
    if server.cfg.workers > 1 and storage.startswith("memory://"):
        server.log.warning(
            "rate limits are counted per worker (RATELIMIT_STORAGE_URI=%s with %d workers): "
            "each worker allows the full limit; set RATELIMIT_STORAGE_URI=redis://...",
            storage,
            server.cfg.workers,
        )


def child_exit(server, worker) -> None:
    """A dead worker's live gauges must not linger in the merged metrics."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    if _OWN_METRICS_DIRECTORY:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
