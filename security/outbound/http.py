"""Time limits on the requests of a feed poll: a timeout on every read, and a deadline on
every request (a page) and on the whole poll.

A per-read timeout alone does not bound a request: a server sending one byte every few
seconds never trips it, in its headers or in its body. So each request gets a watchdog
that shuts its socket down at the deadline (a read blocked in it then ends at once), and
the body is read here, before the deadline, rather than later by ``requests``.

The watchdog needs the request's socket, which ``requests`` does not show; the connection
pools of the poll's adapter therefore use connection classes that hand their socket to the
current request's watchdog when they wait for a response.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 60
READ_CHUNK_BYTES = 64 * 1024


class FeedTooSlow(requests.exceptions.Timeout):
    """The feed did not send a page, or the poll did not end, within its deadline."""


@dataclass
class PollClock:
    """The deadlines of one poll and of each of its requests, on the monotonic clock."""

    poll_seconds: float
    page_seconds: float
    started: float = field(default_factory=time.monotonic)

    def request_deadline(self) -> float:
        """When the next request must be done by; :class:`FeedTooSlow` if the poll is over."""
        now = time.monotonic()
        poll_end = self.started + self.poll_seconds
        if now >= poll_end:
            raise FeedTooSlow(
                f"the poll did not finish within {self.poll_seconds:g} s "
                "(TAXII_POLL_DEADLINE_SECONDS); the pages stored so far are kept"
            )
        return min(now + self.page_seconds, poll_end)

    def too_slow(self) -> FeedTooSlow:
        return FeedTooSlow(
            f"the feed did not send a page within its deadline ({self.page_seconds:g} s a "
            f"page, TAXII_PAGE_DEADLINE_SECONDS; {self.poll_seconds:g} s a poll)"
        )


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

    def getresponse(self, *args, **kwargs):
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


def _read_body(response: requests.Response, clock: PollClock) -> bytes:
    """The whole body, read now (the watchdog ends a read blocked past the deadline)."""
    body = bytearray()
    try:
        while chunk := response.raw.read1(READ_CHUNK_BYTES, decode_content=True):
            body += chunk
    except urllib3.exceptions.ReadTimeoutError:
        raise clock.too_slow() from None
    except urllib3.exceptions.HTTPError as error:
        raise requests.exceptions.ConnectionError(error) from None
    return bytes(body)


class DeadlineAdapter(HTTPAdapter):
    """An adapter holding every request of a poll to its read timeouts and deadlines.

    taxii2-client passes no timeout of its own; without these a silent or a dripping
    server would hold the poller (and its lease on the feed) for as long as it likes.
    """

    def __init__(self, clock: PollClock) -> None:
        super().__init__(max_retries=0)
        self.clock = clock
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedPool, "https": _WatchedHTTPSPool}

    def send(self, request, stream=False, timeout=None, **kwargs):
        deadline = self.clock.request_deadline()
        remaining = deadline - time.monotonic()
        timeout = (min(CONNECT_TIMEOUT_SECONDS, remaining), min(READ_TIMEOUT_SECONDS, remaining))
        watchdog = _current.watchdog = _Watchdog(deadline)
        try:
            response = super().send(request, stream=True, timeout=timeout, **kwargs)
            if not stream:
                # What requests does itself when a body is not streamed, but before the
                # deadline rather than after this method returns.
                response._content = _read_body(response, self.clock)
                response._content_consumed = True
            if watchdog.expired:  # a body without a length just ends when its socket shuts
                raise self.clock.too_slow()
        except requests.RequestException:
            if watchdog.expired:
                raise self.clock.too_slow() from None
            raise
        finally:
            watchdog.cancel()
            _current.watchdog = None
        return response
