"""gunicorn's ``gthread`` worker, but a thread only gets a request that has fully arrived.

The stock worker hands a connection to one of its few threads as soon as a byte arrives,
and the thread then reads the head and the body blocking: a dozen clients that send half a
request and wait hold every thread, and the API stops answering. Here the worker's own
event loop (the poller that already accepts connections and watches kept-alive ones) reads
each request without blocking until it is complete, and only then queues it for a thread:

- the head must arrive within ``GUNICORN_HEAD_TIMEOUT`` seconds (default 10) of the
  connection being accepted or becoming readable again after a previous request;
- the body (``Content-Length`` or chunked) must follow within ``GUNICORN_BODY_TIMEOUT``
  seconds (default 30) of the end of the head; up to ``MAX_CONTENT_LENGTH`` bytes of it are
  buffered, the rest of a larger body (an endpoint that allows more) is read by the thread
  under the same deadline;
- a connection that misses its deadline is answered 408 and closed; at most
  ``GUNICORN_MAX_UNFINISHED_REQUESTS`` (default 128) requests per worker may be unfinished,
  the oldest is answered 503 and closed to make room for a new one.

Nothing here interprets HTTP beyond finding the blank line that ends a head: the bytes go
to gunicorn's own parser, unchanged, through the connection's unreader, so every check it
makes (request smuggling, limits, header policy) still applies. The body's framing is read
by running gunicorn's parser on a copy of the head; a chunked body's end is found by a
one-pass scan (``chunked_framing.py``), and gunicorn's chunked reader parses it in the
thread. Connections the server closes after an answer linger in the poller too (gunicorn
would drain them for up to 2 s in the event loop itself).

With TLS settings (``gunicorn.conf.py``: ``GUNICORN_CERTFILE`` and friends) the event loop
first completes each connection's TLS handshake without blocking, within the same
``GUNICORN_HEAD_TIMEOUT`` and counted among the unfinished requests, and only then reads
the request as above, decrypted. A handshake that fails (no client certificate where one is
required, one from another CA, an expired one, an old protocol) closes the connection
before any HTTP is read. The verified client certificate reaches the app as
``environ["soc.client_certificate"]`` (DER bytes), for
``security.modules.client_certificates``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial

from gunicorn import http, util
from gunicorn.http.body import ChunkedReader, LengthReader
from gunicorn.http.message import (
    DEFAULT_MAX_HEADERFIELD_SIZE,
    MAX_HEADERS,
    MAX_REQUEST_LINE,
    Request,
)
from gunicorn.http.unreader import IterUnreader, SocketUnreader
from gunicorn.sock import ssl_context
from gunicorn.workers.gthread import TConn, ThreadWorker
from werkzeug.exceptions import RequestTimeout

from chunked_framing import ChunkedScan, MalformedChunkedBody
from server_answers import problem_answer, problem_writer

HEAD_END = b"\r\n\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
BODY_TOO_LATE = "The request body was not received in time."
RECEIVE_SIZE = 64 * 1024
# A closed connection's last answer is given this long to reach the client.
LINGER_SECONDS = 2.0
CLIENT_CERTIFICATE_KEY = "soc.client_certificate"


@dataclass(frozen=True)
class ReadLimits:
    """How long a client may take to send a request, and how many may be unfinished."""

    head_timeout: float = 10.0
    body_timeout: float = 30.0
    max_unfinished: int = 128

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> ReadLimits:
        """Read the ``GUNICORN_*`` variables; ``ValueError`` names a bad one."""
        return cls(
            head_timeout=_positive(env, "GUNICORN_HEAD_TIMEOUT", cls.head_timeout),
            body_timeout=_positive(env, "GUNICORN_BODY_TIMEOUT", cls.body_timeout),
            max_unfinished=int(
                _positive(env, "GUNICORN_MAX_UNFINISHED_REQUESTS", cls.max_unfinished)
            ),
        )


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise ValueError(f"{name} must be a positive number, got {raw!r}")
    return value


class BodyReadTimeout(RequestTimeout):
    """A body not received by its deadline: Werkzeug's 408, so the app that was reading the
    body answers it like any other error (an ``OSError`` would be taken for a client that
    went away). The connection is then closed, not reused (``_keepalive_after``)."""


class DeadlineSocketUnreader(SocketUnreader):
    """gunicorn's socket reader, giving up at ``deadline`` (``time.monotonic()``).

    Only reached for bytes the worker did not buffer: a body larger than it buffers.
    """

    deadline = float("inf")

    def chunk(self, size_hint: int | None = None) -> bytes:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise BodyReadTimeout(BODY_TOO_LATE)
        self.sock.settimeout(remaining)
        try:
            return super().chunk(size_hint)
        except TimeoutError:
            raise BodyReadTimeout(BODY_TOO_LATE) from None
        finally:
            self.sock.settimeout(None)


class BufferedConnection(TConn):
    """A connection whose closing after an answer does not block the event loop."""

    def __init__(self, cfg, sock, client, server, linger) -> None:
        super().__init__(cfg, sock, client, server)
        self.linger = linger
        # False when the thread got only part of the body (the rest unread on the socket):
        # the connection is then closed after the answer instead of drained for reuse.
        self.body_buffered = True

    def close(self, graceful: bool = False) -> None:
        if graceful:
            self.linger(self.sock)
        else:
            super().close()


@dataclass
class UnfinishedRequest:
    """What has arrived of one request, and when the rest is due."""

    deadline: float
    handshaking: bool = False
    data: bytearray = field(default_factory=bytearray)
    searched: int = 0
    head_end: int | None = None
    body_end: int | None = None
    chunked: ChunkedScan | None = None


class RequestBufferingWorker(ThreadWorker):
    """``gthread`` whose threads only see requests that have fully arrived (module doc)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.limits = ReadLimits()
        self.max_buffered_body = 0
        self.hsts = False
        self.unfinished: dict[BufferedConnection, UnfinishedRequest] = {}
        self.lingering: dict[socket.socket, float] = {}
        self.tls_context: ssl.SSLContext | None = None

    def run(self) -> None:
        from config import load_settings

        settings = load_settings()
        self.limits = ReadLimits.from_environment(os.environ)
        self.max_buffered_body = settings.max_content_length
        self.hsts = settings.hsts_enabled
        # gunicorn's own error pages (400, 414, 431, ...) become problem+json answers.
        util.write_error = problem_writer(hsts=self.hsts)
        if self.cfg.is_ssl:
            # One context for every connection (gunicorn would build one per connection).
            self.tls_context = ssl_context(self.cfg)
            self.wsgi = _with_client_certificate(self.wsgi)  # type: ignore[has-type]
        super().run()

    def accept(self, listener: socket.socket) -> None:
        try:
            client_sock, client_addr = listener.accept()
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = BufferedConnection(
            self.cfg, client_sock, client_addr, listener.getsockname(), self.linger
        )
        if self.tls_context is None:
            self.enqueue_req(conn)
            return
        conn.sock = self.tls_context.wrap_socket(
            client_sock,
            server_side=True,
            do_handshake_on_connect=False,
            suppress_ragged_eofs=self.cfg.suppress_ragged_eofs,
        )
        pending = UnfinishedRequest(
            deadline=time.monotonic() + self.limits.head_timeout, handshaking=True
        )
        self._wait_for(conn, pending, selectors.EVENT_READ, self._shake_hands)

    def _wait_for(self, conn: BufferedConnection, pending: UnfinishedRequest, events: int, then):
        """Keep ``conn`` among the unfinished, and call ``then`` when it is ready again."""
        self.unfinished[conn] = pending
        conn.sock.setblocking(False)
        self._unregister(conn.sock)
        self.poller.register(conn.sock, events, partial(then, conn))
        if len(self.unfinished) > self.limits.max_unfinished:
            oldest = next(iter(self.unfinished))
            self._refuse(oldest, 503, "Service Unavailable", "Too many unfinished requests.")

    def _shake_hands(self, conn: BufferedConnection, tls_sock: ssl.SSLSocket) -> None:
        """One step of the TLS handshake; once done, the request is read as over plain TCP."""
        pending = self.unfinished.get(conn)
        if pending is None:  # refused earlier in this turn of the event loop
            return
        try:
            tls_sock.do_handshake()
        except ssl.SSLWantReadError:
            self._wait_for(conn, pending, selectors.EVENT_READ, self._shake_hands)
            return
        except ssl.SSLWantWriteError:
            self._wait_for(conn, pending, selectors.EVENT_WRITE, self._shake_hands)
            return
        except (ssl.SSLError, OSError) as error:
            self.log.info("TLS handshake with %s failed: %s", conn.client, error)
            self._forget(conn)
            self.nr_conns -= 1
            util.close(tls_sock)
            return
        self._forget(conn)
        self.enqueue_req(conn)

    def enqueue_req(self, conn: BufferedConnection) -> None:
        """Every way to a thread passes here: read the request first (new, kept-alive and
        pipelined requests alike)."""
        pending = UnfinishedRequest(deadline=time.monotonic() + self.limits.head_timeout)
        if conn.parser is not None:
            pending.data += conn.parser.unreader.take_buffered()
        if isinstance(conn.sock, ssl.SSLSocket):
            # Bytes TLS has decrypted already: the poller would not see them arrive.
            conn.sock.setblocking(False)
            pending.data += _receive_decrypted(conn.sock)
        if self._advance(conn, pending):
            return
        self._wait_for(conn, pending, selectors.EVENT_READ, self._receive)

    def _receive(self, conn: BufferedConnection, sock: socket.socket) -> None:
        try:
            received = sock.recv(RECEIVE_SIZE)
            if isinstance(sock, ssl.SSLSocket):
                received += _receive_decrypted(sock)
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except OSError:
            received = b""
        pending = self.unfinished.get(conn)
        if pending is None:  # refused earlier in this turn of the event loop
            return
        if not received:
            self._forget(conn)
            self.nr_conns -= 1
            conn.close()
            return
        pending.data += received
        if self._advance(conn, pending):
            self._forget(conn)

    def _advance(self, conn: BufferedConnection, pending: UnfinishedRequest) -> bool:
        """Hand the request to a thread if it is complete (or will never be); True if so."""
        if pending.head_end is None and not self._find_head_end(conn, pending):
            return False
        if pending.chunked is not None:
            try:
                complete = pending.chunked.complete(pending.data)
            except MalformedChunkedBody as error:
                self._refuse(conn, 400, "Bad Request", str(error))
                return True
        elif pending.body_end is not None:
            complete = len(pending.data) >= pending.body_end
        else:
            complete = True
        assert pending.head_end is not None  # _find_head_end sets it when it returns True
        buffered_body = len(pending.data) - pending.head_end
        if complete or buffered_body > self.max_buffered_body:
            self._dispatch(conn, pending, complete)
            return True
        return False

    def _find_head_end(self, conn: BufferedConnection, pending: UnfinishedRequest) -> bool:
        """Look for the end of the head; once found, learn the body's framing from it."""
        end = pending.data.find(HEAD_END, max(0, pending.searched - len(HEAD_END) + 1))
        pending.searched = len(pending.data)
        if end < 0:
            if len(pending.data) > _longest_head(self.cfg):
                # gunicorn's parser refuses it (414 or 431) from what has arrived.
                pending.head_end = len(pending.data)
                return True
            return False
        pending.head_end = end + len(HEAD_END)
        request = self._parse_head_copy(conn, bytes(pending.data[: pending.head_end]))
        if request is None:
            return True
        if _expects_continue(request) and len(pending.data) == pending.head_end:
            # The client waits for this before sending the body; gunicorn sends it again
            # when the app reads the body, which RFC 9110 (15.2) allows.
            _send_quietly(conn.sock, CONTINUE)
        if isinstance(request.body.reader, ChunkedReader):
            pending.chunked = ChunkedScan(start=pending.head_end)
        elif isinstance(request.body.reader, LengthReader):
            pending.body_end = pending.head_end + request.body.reader.length
        if pending.chunked or pending.body_end != pending.head_end:
            pending.deadline = time.monotonic() + self.limits.body_timeout
        return True

    def _parse_head_copy(self, conn: BufferedConnection, head: bytes) -> Request | None:
        """gunicorn's parse of ``head`` alone; None if it refuses it (the thread's parse
        will refuse it again and answer)."""
        number = conn.parser.req_count + 1 if conn.parser is not None else 1
        try:
            return Request(self.cfg, IterUnreader([head]), conn.client, number)
        except Exception:
            return None

    def _dispatch(self, conn: BufferedConnection, pending: UnfinishedRequest, complete: bool):
        if conn.parser is None:
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
            conn.parser.unreader = DeadlineSocketUnreader(conn.sock)
            conn.initialized = True
            conn.data_ready = True
        conn.parser.unreader.unread(bytes(pending.data))
        conn.parser.unreader.deadline = pending.deadline
        conn.body_buffered = complete
        super().enqueue_req(conn)

    def _keepalive_after(self, conn: BufferedConnection, keepalive: bool) -> bool:
        # Draining a body that was not buffered would wait on the client in a thread.
        return conn.body_buffered and super()._keepalive_after(conn, keepalive)

    def _forget(self, conn: BufferedConnection) -> UnfinishedRequest | None:
        self._unregister(conn.sock)
        return self.unfinished.pop(conn, None)

    def _refuse(self, conn: BufferedConnection, status: int, reason: str, detail: str) -> None:
        """Answer an unfinished request with a problem and close its connection (a
        connection still in its TLS handshake is closed: it cannot be answered yet)."""
        pending = self._forget(conn)
        self.nr_conns -= 1
        self.log.warning("closing an unfinished request from %s: %s", conn.client, detail)
        if pending is not None and pending.handshaking:
            util.close(conn.sock)
            return
        _send_quietly(conn.sock, problem_answer(status, reason, detail, hsts=self.hsts))
        self.linger(conn.sock)

    def linger(self, sock: socket.socket) -> None:
        """Close ``sock`` after the peer has read our answer, without blocking (RFC 9112
        section 9.6): send FIN, then discard what arrives until the peer closes or
        ``LINGER_SECONDS`` pass."""
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.setblocking(False)
            self.poller.register(sock, selectors.EVENT_READ, self._drain)
        except (OSError, ValueError, KeyError):
            util.close(sock)
            return
        self.lingering[sock] = time.monotonic() + LINGER_SECONDS

    def _drain(self, sock: socket.socket) -> None:
        try:
            if sock.recv(RECEIVE_SIZE):
                return
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            pass
        self._close_lingering(sock)

    def _close_lingering(self, sock: socket.socket) -> None:
        self.lingering.pop(sock, None)
        self._unregister(sock)
        util.close(sock)

    def _unregister(self, sock: socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(sock)

    def murder_pending(self) -> None:
        """Also run on every turn of the event loop: enforce the read deadlines."""
        super().murder_pending()
        now = time.monotonic()
        late = [conn for conn, pending in self.unfinished.items() if pending.deadline <= now]
        for conn in late:
            self._refuse(conn, 408, "Request Timeout", "The request was not received in time.")
        for sock in [sock for sock, until in self.lingering.items() if until <= now]:
            self._close_lingering(sock)


def _receive_decrypted(tls_sock: ssl.SSLSocket) -> bytes:
    """What TLS has already decrypted and buffered beyond the last read."""
    received = bytearray()
    while tls_sock.pending():
        received += tls_sock.recv(tls_sock.pending())
    return bytes(received)


def _with_client_certificate(application):
    """The WSGI app, given the connection's verified client certificate (DER) if any."""

    def application_with_certificate(environ, start_response):
        connection = environ.get("gunicorn.socket")
        if isinstance(connection, ssl.SSLSocket):
            environ[CLIENT_CERTIFICATE_KEY] = connection.getpeercert(binary_form=True)
        return application(environ, start_response)

    return application_with_certificate


def _expects_continue(request: Request) -> bool:
    """gunicorn's parser refuses every expectation but ``100-continue``."""
    return any(name == "EXPECT" for name, _ in request.headers)


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    """A short write on a non-blocking socket; a client gone or not reading misses it."""
    with contextlib.suppress(OSError):
        sock.send(data)


def _longest_head(cfg) -> int:
    """More bytes than gunicorn's parser accepts for a request line and header section."""
    line = cfg.limit_request_line
    if not 0 < line < MAX_REQUEST_LINE:
        line = MAX_REQUEST_LINE
    fields = cfg.limit_request_fields
    if not 0 < fields <= MAX_HEADERS:
        fields = MAX_HEADERS
    field_size = cfg.limit_request_field_size
    if field_size <= 0:
        field_size = DEFAULT_MAX_HEADERFIELD_SIZE
    return line + 4 + fields * (field_size + 2) + 8
