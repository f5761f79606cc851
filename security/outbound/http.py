"""Outbound HTTP for every integration: a ``requests`` session whose requests are checked.

:func:`checked_session` prepares a session (one it makes, or one a client library made)
so that each of its requests:

- goes only where the SSRF guard allows (:func:`security.outbound.ssrf.check_outbound_url`),
  checked before the request is sent and again before each redirect is followed, with
  few redirects (:data:`MAX_REDIRECTS`);
- ignores proxies and other settings from the environment (``trust_env``);
- has a timeout on every read and a deadline on the request and on all the requests of
  one job together (:class:`Deadlines`).

A per-read timeout alone does not bound a request: a server sending one byte every few
seconds never trips it, in its headers or in its body. So each request gets a watchdog
that shuts its socket down at the deadline (a read blocked in it then ends at once), and
the body is read here, before the deadline, rather than later by ``requests``.

The watchdog needs the request's socket, which ``requests`` does not show; the connection
pools of the session's adapter therefore use connection classes that hand their socket to
the current request's watchdog when they wait for a response.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from security.outbound.ssrf import OutboundPolicy, check_outbound_url

CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 60
READ_CHUNK_BYTES = 64 * 1024
MAX_REDIRECTS = 3


class TooSlow(requests.exceptions.Timeout):
    """A request, or the job it belongs to, did not end within its deadline."""


@dataclass
class Deadlines:
    """The deadlines of one job (a feed poll, a delivery run) and of each of its requests,
    on the monotonic clock; the messages say which setting to raise."""

    total_seconds: float
    request_seconds: float
    total_exceeded: str
    request_exceeded: str
    started: float = field(default_factory=time.monotonic)

    def request_deadline(self) -> float:
        """When the next request must be done by; :class:`TooSlow` if the job is over."""
        now = time.monotonic()
        job_end = self.started + self.total_seconds
        if now >= job_end:
            raise TooSlow(self.total_exceeded)
        return min(now + self.request_seconds, job_end)

    def too_slow(self) -> TooSlow:
        return TooSlow(self.request_exceeded)


class _Watchdog:
    """Shuts down the sockets handed to it once ``deadline`` passes."""

    def __init__(self, deadline: float) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.expired = False
        self._timer = threading.Timer(max(deadline - time.monotonic(), 0), self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)

    def cancel(self) -> None:
        self._timer.cancel()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed: nothing left to stop
        sock.shutdown(socket.SHUT_RDWR)


_current = threading.local()


class _WatchedConnection(HTTPConnection):
    """Hands its socket to the current request's watchdog before waiting for the answer."""

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        watchdog: _Watchdog | None = getattr(_current, "watchdog", None)
        if watchdog is not None and self.sock is not None:
            watchdog.watch(self.sock)
        return super().getresponse(*args, **kwargs)


class _WatchedHTTPSConnection(_WatchedConnection, HTTPSConnection):
    pass


class _WatchedPool(HTTPConnectionPool):
    ConnectionCls = _WatchedConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


def _read_body(response: requests.Response, deadlines: Deadlines) -> bytes:
    """The whole body, read now (the watchdog ends a read blocked past the deadline)."""
    body = bytearray()
    try:
        while chunk := response.raw.read1(READ_CHUNK_BYTES, decode_content=True):
            body += chunk
    except urllib3.exceptions.ReadTimeoutError:
        raise deadlines.too_slow() from None
    except urllib3.exceptions.HTTPError as error:
        raise requests.exceptions.ConnectionError(error) from None
    return bytes(body)


class CheckedAdapter(HTTPAdapter):
    """An adapter that checks each request's URL, then holds it to its read timeouts and
    deadlines. Redirects are sent through it too, so each target is checked before it is
    connected to. Client libraries (taxii2-client) pass no timeout of their own; without
    these a silent or a dripping server would hold the caller as long as it likes."""

    def __init__(self, policy: OutboundPolicy, deadlines: Deadlines) -> None:
        super().__init__(max_retries=0)
        self.policy = policy
        self.deadlines = deadlines
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedPool, "https": _WatchedHTTPSPool}

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float | None, float | None] | None = None,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        proxies: dict[str, str] | None = None,
    ) -> requests.Response:
        check_outbound_url(request.url or "", self.policy)
        deadline = self.deadlines.request_deadline()
        remaining = deadline - time.monotonic()
        timeout = (min(CONNECT_TIMEOUT_SECONDS, remaining), min(READ_TIMEOUT_SECONDS, remaining))
        watchdog = _current.watchdog = _Watchdog(deadline)
        try:
            response = super().send(
                request, stream=True, timeout=timeout, verify=verify, cert=cert, proxies=proxies
            )
            if not stream:
                # What requests does itself when a body is not streamed, but before the
                # deadline rather than after this method returns.
                response._content = _read_body(response, self.deadlines)
                response._content_consumed = True
            if watchdog.expired:  # a body without a length just ends when its socket shuts
                raise self.deadlines.too_slow()
        except requests.RequestException:
            if watchdog.expired:
                raise self.deadlines.too_slow() from None
            raise
        finally:
            watchdog.cancel()
            _current.watchdog = None
        return response


def checked_session(
    policy: OutboundPolicy,
    deadlines: Deadlines,
    session: requests.Session | None = None,
) -> requests.Session:
    """``session`` (a new one if none is given) prepared as the module docstring says:
    every request and redirect checked against SSRF, no settings from the environment,
    timeouts and deadlines. ``policy`` is usually
    :func:`security.outbound.ssrf.configured_policy`."""
    session = session if session is not None else requests.Session()
    session.trust_env = False
    session.max_redirects = MAX_REDIRECTS
    adapter = CheckedAdapter(policy, deadlines)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
