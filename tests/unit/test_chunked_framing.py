"""Finding the end of a chunked body as its bytes arrive (chunked_framing.py)."""

from __future__ import annotations

import pytest

from chunked_framing import MAX_CHUNKS, ChunkedScan, MalformedChunkedBody

HEAD = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
BODY = b"5\r\nhello\r\n6;name=value\r\n world\r\n0\r\n\r\n"


def scan_in_pieces(data: bytes, piece: int) -> list[bool]:
    """Feed ``HEAD + data`` to one scan ``piece`` bytes at a time; its answer after each."""
    scan = ChunkedScan(start=len(HEAD))
    buffer = bytearray(HEAD)
    answers = []
    for start in range(0, len(data), piece):
        buffer += data[start : start + piece]
        answers.append(scan.complete(buffer))
    return answers


@pytest.mark.parametrize("piece", [1, 2, 3, 7, len(BODY)])
def test_the_end_is_found_exactly_when_the_last_byte_arrives(piece):
    answers = scan_in_pieces(BODY, piece)
    assert answers[-1] is True
    assert not any(answers[:-1])


def test_trailer_fields_end_at_the_blank_line():
    body = b"3\r\nabc\r\n0\r\nX-Checksum: 1\r\n\r\n"
    answers = scan_in_pieces(body, 1)
    assert answers[-1] is True
    assert not any(answers[:-1])


def test_bytes_after_the_body_belong_to_the_next_request():
    scan = ChunkedScan(start=len(HEAD))
    assert scan.complete(HEAD + BODY + b"GET /next HTTP/1.1\r\n") is True


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"zz\r\n{}\r\n0\r\n\r\n", "invalid chunk size"),
        (b"\r\nab\r\n0\r\n\r\n", "invalid chunk size"),
        (b"2\r\nabc\r\n0\r\n\r\n", "not followed by CRLF"),
        (b"1" * 5000, "no end"),
    ],
)
def test_broken_framing_is_refused_with_the_reason(body, reason):
    with pytest.raises(MalformedChunkedBody, match=reason):
        ChunkedScan(start=len(HEAD)).complete(HEAD + body)


def test_a_body_in_more_chunks_than_allowed_is_refused_before_the_rest_is_read():
    scan = ChunkedScan(start=len(HEAD))
    buffer = bytearray(HEAD)
    for count in range(1, MAX_CHUNKS + 1):
        buffer += b"1\r\na\r\n"
        assert scan.complete(buffer) is False, count
    buffer += b"1\r\na\r\n"
    with pytest.raises(MalformedChunkedBody, match="Content-Length"):
        scan.complete(buffer)


def test_work_done_is_not_repeated():
    """Each call resumes after the last complete chunk (the scan is one pass)."""
    scan = ChunkedScan(start=len(HEAD))
    buffer = bytearray(HEAD + b"5\r\nhello\r\n")
    assert scan.complete(buffer) is False
    assert scan.next_chunk == len(buffer)
    buffer[: len(HEAD) + 5] = b"#" * (len(HEAD) + 5)  # bytes already read are not read again
    buffer += b"0\r\n\r\n"
    assert scan.complete(buffer) is True
