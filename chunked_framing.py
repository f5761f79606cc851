"""Where a chunked request body ends, found in one pass as its bytes arrive.

The request-buffering worker (``buffering_worker.py``) must know when a chunked body has
fully arrived before a thread gets the request. Running gunicorn's chunked reader over what
has arrived after every read would cost time proportional to the body on every read, and
that reader copies the rest of its buffer once per chunk: a 1 MiB body in 10-byte chunks
took it two minutes, all of it in the worker's event loop, where every connection waits.
This scanner resumes where it stopped, reads each byte once, and refuses bodies cut into
more than ``MAX_CHUNKS`` chunks, which bounds what gunicorn's reader costs the thread that
parses the body afterwards (that parse, not this scan, decides what the body is).

It accepts no more than gunicorn's reader: chunk sizes in hexadecimal, optionally followed
by ``;`` extensions, each chunk followed by CRLF, the last chunk ``0`` followed by a bare
CRLF or by trailer fields up to a blank line.
"""

from __future__ import annotations

from dataclasses import dataclass

CRLF = b"\r\n"
HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
# A 1 MiB body in 128 chunks costs gunicorn's reader about 0.16 s on this project's
# 2-core machine; any client that cuts a JSON body into more pieces can send its length.
MAX_CHUNKS = 128
MAX_SIZE_LINE = 4096
MAX_TRAILER_SECTION = 8192


class MalformedChunkedBody(ValueError):
    """The chunked framing is broken or too finely cut; the message says how."""


@dataclass
class ChunkedScan:
    """How far the body (the bytes after the head, from ``start``) has been read."""

    start: int
    next_chunk: int = -1
    chunks: int = 0
    in_trailers: bool = False

    def __post_init__(self) -> None:
        if self.next_chunk < 0:
            self.next_chunk = self.start

    def complete(self, data: bytes | bytearray) -> bool:
        """Whether ``data`` (the whole connection buffer) holds the body's end.

        Raises :class:`MalformedChunkedBody`. Call again with more data appended; work
        already done is not repeated.
        """
        while not self.in_trailers:
            if not self._advance_one_chunk(data):
                return False
        return self._trailers_end(data)

    def _advance_one_chunk(self, data: bytes | bytearray) -> bool:
        line_end = data.find(CRLF, self.next_chunk, self.next_chunk + MAX_SIZE_LINE + 2)
        if line_end < 0:
            if len(data) - self.next_chunk > MAX_SIZE_LINE:
                raise MalformedChunkedBody("a chunk size line has no end")
            return False
        size = _chunk_size(bytes(data[self.next_chunk : line_end]))
        if size == 0:
            self.in_trailers = True
            self.next_chunk = line_end + len(CRLF)
            return True
        data_end = line_end + len(CRLF) + size
        if len(data) < data_end + len(CRLF):
            return False
        if data[data_end : data_end + len(CRLF)] != CRLF:
            raise MalformedChunkedBody("chunk data is not followed by CRLF")
        self.chunks += 1
        if self.chunks > MAX_CHUNKS:
            raise MalformedChunkedBody(
                f"the body comes in more than {MAX_CHUNKS} chunks; send it with Content-Length"
            )
        self.next_chunk = data_end + len(CRLF)
        return True

    def _trailers_end(self, data: bytes | bytearray) -> bool:
        start = self.next_chunk
        if len(data) < start + len(CRLF):
            return False
        if data[start : start + len(CRLF)] == CRLF:
            return True
        if data.find(CRLF + CRLF, start, start + MAX_TRAILER_SECTION) >= 0:
            return True
        if len(data) - start > MAX_TRAILER_SECTION:
            raise MalformedChunkedBody("the trailer section has no end")
        return False


def _chunk_size(line: bytes) -> int:
    size, *extension = line.split(b";", 1)
    if extension:
        size = size.rstrip(b" \t")
    if not size or any(byte not in HEX_DIGITS for byte in size):
        raise MalformedChunkedBody(f"invalid chunk size {size[:32]!r}")
    return int(size, 16)
