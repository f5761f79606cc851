"""The server itself: slow clients cannot stop it, and its own answers are problem+json.

Every test runs a real gunicorn started as ``./run.sh`` starts it (``gunicorn.conf.py``) and
talks raw HTTP/1.1 to it over loopback sockets, since the point is what happens before the
app sees a request. The attack is bounded: a fixed number of connections, for a fixed time.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from security.modules.headers import STATIC_HEADERS
from tests.helpers import STRONG_PASSWORD, create_user_row
from tests.processes import (
    STRONG_SECRET_KEY,
    error_lines,
    free_port,
    process_env,
    run_in_project,
)
from tests.servers import GunicornServer, running_gunicorn
from tests.suite_guards import GUARDS_KEY

BUFFERED_BODY_BYTES = 1024
SLOW_CONNECTIONS = 50
ATTACK_SECONDS = 60
PROBE_INTERVAL = 0.5
TRICKLE_INTERVAL = 2.0
ANSWER_BUDGET = 1.0
UNFINISHED_HEAD = b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: "
UNFINISHED_BODY = (
    b"POST /auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
    b'Content-Length: 4096\r\n\r\n{"username": "'
)

pytestmark = pytest.mark.slow


@dataclass
class RawAnswer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def problem(self) -> dict:
        assert self.headers["Content-Type"] == "application/problem+json"
        return json.loads(self.body)


def exchange(server: GunicornServer, data: bytes, timeout: float = 10) -> RawAnswer:
    """Send ``data`` as it is on a fresh connection and read the first answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_answer(sock)


class AnswerReader:
    """Reads the answers of one connection in turn, through one buffered file: answers
    arriving together (pipelining) would be lost between separate ``makefile()`` buffers."""

    def __init__(self, sock: socket.socket) -> None:
        self.file = sock.makefile("rb")

    def makefile(self, mode: str) -> object:
        return self  # http.client closes its file after each answer; this one stays open

    def __getattr__(self, name: str) -> object:
        return getattr(self.file, name)

    def close(self) -> None:
        pass

    def next(self) -> RawAnswer:
        response = http.client.HTTPResponse(self)  # type: ignore[arg-type]
        response.begin()
        return RawAnswer(response.status, response.headers, response.read())


def read_answer(sock: socket.socket) -> RawAnswer:
    return AnswerReader(sock).next()


def assert_security_headers(answer: RawAnswer) -> None:
    for name, value in STATIC_HEADERS.items():
        assert answer.headers[name] == value, name
    assert answer.headers["Cache-Control"] == "no-store"
    assert "Server" not in answer.headers


@pytest.fixture(scope="module")
def server(database_url: str, pytestconfig: pytest.Config) -> Iterator[GunicornServer]:
    """One server for the short tests: deadlines of 1 s so that 408 shows quickly, and the
    smallest ``MAX_CONTENT_LENGTH`` so that a body can exceed what the worker buffers."""
    log_directory = pytestconfig.stash[GUARDS_KEY].log_directory
    with running_gunicorn(
        database_url,
        log_directory,
        GUNICORN_HEAD_TIMEOUT="1",
        GUNICORN_BODY_TIMEOUT="1",
        MAX_CONTENT_LENGTH=str(BUFFERED_BODY_BYTES),
    ) as started:
        yield started


# --- the server's own answers: problem+json with the app's security headers ------------


def test_a_request_line_over_the_limit_is_answered_414_problem(server):
    answer = exchange(server, b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.status == 414
    problem = answer.problem()
    assert problem["status"] == 414
    assert problem["type"] == "about:blank"
    assert "4094" in problem["detail"]
    assert problem["request_id"] == answer.headers["X-Request-ID"]
    assert_security_headers(answer)


def test_too_many_headers_are_answered_431_problem(server):
    headers = b"".join(b"X-Field-%d: v\r\n" % number for number in range(150))
    answer = exchange(server, b"GET /health HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert answer.status == 431
    assert answer.problem()["title"] == "Request Header Fields Too Large"
    assert_security_headers(answer)


def test_a_malformed_request_is_answered_400_problem(server):
    answer = exchange(server, b"GET /health HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n")
    assert answer.status == 400
    assert answer.problem()["status"] == 400
    assert_security_headers(answer)


def test_a_malformed_chunked_body_is_answered_400_problem(server):
    answer = exchange(
        server,
        b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    )
    assert answer.status == 400
    assert_security_headers(answer)


def test_a_body_cut_into_thousands_of_chunks_is_refused_while_the_server_keeps_answering(
    database_url, pytestconfig
):
    """Finding the end of a finely chunked body once cost the event loop time that grew with
    the square of what had arrived; now the scan refuses it after ``MAX_CHUNKS`` chunks, and
    other clients are served meanwhile (one worker, the default body limit of 1 MiB)."""
    whole_chunks = b"1\r\na\r\n" * 3_000  # each piece ends on a chunk boundary
    log_directory = pytestconfig.stash[GUARDS_KEY].log_directory
    with (
        running_gunicorn(database_url, log_directory, workers=1) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock,
    ):
        sock.sendall(
            b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        with contextlib.suppress(OSError):  # the server closes once it has answered
            for _ in range(40):
                sock.sendall(whole_chunks)
                time.sleep(0.05)
        status, seconds = timed(server, "/health", {})
        answer = read_answer(sock)
    assert (status, seconds < ANSWER_BUDGET) == (200, True), seconds
    assert answer.status == 400
    assert "more than" in answer.problem()["detail"]
    assert_security_headers(answer)


def test_a_chunk_whose_end_arrives_in_another_read_is_served(server):
    body = json.dumps({"username": "nobody-here", "password": "wrong-password"}).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r" % (len(body), body)
        )
        time.sleep(0.3)
        sock.sendall(b"\n0\r\n\r\n")
        answer = read_answer(sock)
    assert answer.status == 401, answer.body


def test_content_length_with_chunked_is_still_refused(server):
    """gunicorn's smuggling guard still sees the bytes as they came."""
    answer = exchange(
        server,
        b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    )
    assert answer.status == 400
    assert_security_headers(answer)


# --- deadlines ---------------------------------------------------------------------------


@pytest.mark.parametrize("unfinished", [UNFINISHED_HEAD, UNFINISHED_BODY], ids=["head", "body"])
def test_an_unfinished_request_is_answered_408_and_closed(server, unfinished):
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(unfinished)
        answer = read_answer(sock)
        closed = sock.recv(1) == b""
    assert answer.status == 408
    assert answer.problem()["status"] == 408
    assert_security_headers(answer)
    assert closed
    assert time.monotonic() - started < 5


def test_a_body_larger_than_the_worker_buffers_must_still_arrive_in_time(app, server):
    """/events allows more than MAX_CONTENT_LENGTH: the thread reads the rest, under the
    same deadline, and the app answers 408 when it passes."""
    create_user_row(app, "slow-uploader", "analyst")
    login = server.request(
        "POST", "/auth/login", body={"username": "slow-uploader", "password": STRONG_PASSWORD}
    )
    token = login.json()["access_token"]
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n[{"message": "'
            % (token.encode(), BUFFERED_BODY_BYTES * 4)
        )
        sock.sendall(b"x" * (BUFFERED_BODY_BYTES * 2))
        answer = read_answer(sock)
    assert answer.status == 408, answer.body
    assert answer.problem()["status"] == 408
    assert time.monotonic() - started < 5


# --- requests that arrive in pieces are still served ------------------------------------


def test_a_request_sent_in_pieces_within_the_deadline_is_served(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        for piece in (b"GET /hea", b"lth HTTP/1.1\r\nHo", b"st: x\r\n", b"\r\n"):
            sock.sendall(piece)
            time.sleep(0.1)
        assert read_answer(sock).status == 200


def test_keep_alive_and_pipelined_requests_are_served(server):
    request = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        answers = AnswerReader(sock)
        sock.sendall(request)
        assert answers.next().status == 200
        sock.sendall(request * 3)
        statuses = [answers.next().status for _ in range(3)]
    assert statuses == [200, 200, 200]


def test_a_chunked_body_sent_in_pieces_reaches_the_app(server):
    body = json.dumps({"username": "nobody-here", "password": "wrong-password"}).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        for start in range(0, len(body), 10):
            piece = body[start : start + 10]
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            time.sleep(0.05)
        sock.sendall(b"0\r\n\r\n")
        answer = read_answer(sock)
    assert answer.status == 401, answer.body
    assert answer.problem()["detail"] == "Invalid username or password."


def test_a_client_waiting_for_100_continue_gets_it_and_is_served(server):
    body = json.dumps({"username": "nobody-here", "password": "wrong-password"}).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        assert sock.recv(64).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body)
        answer = read_answer(sock)
    assert answer.status == 401


# --- the attack: 50 slow connections held for 60 s ---------------------------------------


class SlowClients:
    """``count`` connections that each send part of a request, then one byte every
    ``TRICKLE_INTERVAL`` seconds; one the server closes is opened again at once."""

    def __init__(self, port: int, count: int) -> None:
        self.port = port
        self.count = count
        self.stopping = threading.Event()
        self.open_now = 0
        self.reopened = 0
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._hold, args=(index,), daemon=True)
            for index in range(count)
        ]

    def __enter__(self) -> SlowClients:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=TRICKLE_INTERVAL + 5)

    def _hold(self, index: int) -> None:
        start = UNFINISHED_HEAD if index % 2 else UNFINISHED_BODY
        while not self.stopping.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                    sock.sendall(start)
                    self._count(+1)
                    try:
                        while not self.stopping.wait(TRICKLE_INTERVAL):
                            sock.sendall(b"a")
                    finally:
                        self._count(-1)
            except OSError:
                with self.lock:
                    self.reopened += 1

    def _count(self, change: int) -> None:
        with self.lock:
            self.open_now += change


def timed(server: GunicornServer, path: str, headers: dict[str, str]) -> tuple[int, float]:
    started = time.monotonic()
    try:
        status = server.request("GET", path, headers).status
    except OSError:
        status = 0
    return status, time.monotonic() - started


def test_fifty_slow_clients_do_not_stop_the_api(app, database_url, pytestconfig):
    """Unfinished heads and unfinished bodies, 50 connections for 60 s: /health and an
    authenticated read keep answering within a second."""
    create_user_row(app, "slow-client-probe", "viewer")
    log_directory = pytestconfig.stash[GUARDS_KEY].log_directory
    with running_gunicorn(database_url, log_directory) as server:
        login = server.request(
            "POST",
            "/auth/login",
            body={"username": "slow-client-probe", "password": STRONG_PASSWORD},
        )
        bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
        probes: list[tuple[str, int, float, int]] = []
        with SlowClients(server.port, SLOW_CONNECTIONS) as attack:
            time.sleep(TRICKLE_INTERVAL)
            deadline = time.monotonic() + ATTACK_SECONDS
            while time.monotonic() < deadline:
                for path, headers in (("/health", {}), ("/incidents", bearer)):
                    status, seconds = timed(server, path, headers)
                    probes.append((path, status, seconds, attack.open_now))
                time.sleep(PROBE_INTERVAL)
    slow = [probe for probe in probes if probe[1] != 200 or probe[2] >= ANSWER_BUDGET]
    assert not slow, f"{len(slow)} of {len(probes)} probes failed or were slow: {slow[:5]}"
    # The attack must really have held its connections while the probes ran.
    held = sorted(probe[3] for probe in probes)
    assert held[len(held) // 2] >= SLOW_CONNECTIONS * 0.9
    assert len(probes) >= ATTACK_SECONDS / (PROBE_INTERVAL + ANSWER_BUDGET)


def test_a_bad_deadline_setting_stops_the_server_with_one_line(database_url):
    env = process_env(
        DATABASE_URL=database_url,
        SECRET_KEY=STRONG_SECRET_KEY,
        GUNICORN_BIND=f"127.0.0.1:{free_port()}",
        GUNICORN_HEAD_TIMEOUT="0",
    )
    result = run_in_project(["-m", "gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"], env)
    assert result.returncode == 2
    assert error_lines(result.stderr) == [
        "error: GUNICORN_HEAD_TIMEOUT must be a positive number, got '0'"
    ]
    assert "Traceback" not in result.stderr
