"""Where evidence bytes live: a small interface (:class:`EvidenceStore`) and its one
implementation today, a directory (:class:`DirectoryEvidenceStore`).

Content-addressed: a file is stored under its SHA-256 (``ab/cd/abcd...``), so the name a
client gave never becomes a path (no traversal), the same file attached twice is stored
once, and a blob can be checked against its name. An S3-compatible store implements the
same five methods with the SHA-256 as the object key (its listing with the objects'
last-modified times); register it as
``app.extensions["evidence_store"]`` and :func:`evidence_store` returns it instead.

:meth:`EvidenceStore.put` reads the upload in chunks, hashing as it goes, into a
temporary file beside the blobs; an upload refused (empty, over the limit) leaves nothing
behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Protocol

from flask import current_app

from security.errors import Invalid, TooLarge

CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    size: int
    head: bytes
    """The first bytes, for sniffing the media type."""


class EvidenceStore(Protocol):
    def put(self, source: BinaryIO, max_bytes: int) -> StoredBlob:
        """Store the stream's bytes; :class:`Invalid` if empty, :class:`TooLarge` past
        ``max_bytes`` (nothing kept either way)."""

    def open(self, sha256: str) -> BinaryIO:
        """The stored bytes, for reading."""

    def exists(self, sha256: str) -> bool: ...

    def delete(self, sha256: str) -> None:
        """Forget the blob (a missing one is not an error)."""

    def written_before(self, cutoff: datetime) -> Iterator[str]:
        """The SHA-256 of every blob last written before ``cutoff`` (an upload of the same
        bytes writes it again)."""


class DirectoryEvidenceStore:
    """Blobs as files under ``root``; a temporary file in ``root/.incoming`` becomes the
    blob with an atomic rename once its hash is known."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _path(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError("not a SHA-256 hex digest")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, source: BinaryIO, max_bytes: int) -> StoredBlob:
        incoming = self.root / ".incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        digest, size, head = hashlib.sha256(), 0, b""
        handle, temporary = tempfile.mkstemp(dir=incoming)
        try:
            with os.fdopen(handle, "wb") as target:
                while chunk := source.read(CHUNK_BYTES):
                    size += len(chunk)
                    if size > max_bytes:
                        raise TooLarge(f"The file is larger than {max_bytes} bytes.")
                    if len(head) < CHUNK_BYTES:
                        head += chunk[: CHUNK_BYTES - len(head)]
                    digest.update(chunk)
                    target.write(chunk)
            if size == 0:
                raise Invalid("The file is empty.", field="file")
            blob = self._path(digest.hexdigest())
            blob.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temporary, blob)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return StoredBlob(digest.hexdigest(), size, head)

    def open(self, sha256: str) -> BinaryIO:
        return self._path(sha256).open("rb")

    def exists(self, sha256: str) -> bool:
        return self._path(sha256).is_file()

    def delete(self, sha256: str) -> None:
        self._path(sha256).unlink(missing_ok=True)

    def written_before(self, cutoff: datetime) -> Iterator[str]:
        limit = cutoff.timestamp()
        for blob in self.root.glob("[0-9a-f][0-9a-f]/[0-9a-f][0-9a-f]/*"):
            with contextlib.suppress(FileNotFoundError):  # deleted while listed
                if blob.stat().st_mtime < limit:
                    yield blob.name


def evidence_store() -> EvidenceStore:
    """The app's store: one registered in ``app.extensions["evidence_store"]``, or the
    directory ``EVIDENCE_DIR``."""
    registered = current_app.extensions.get("evidence_store")
    if registered is not None:
        return registered
    return DirectoryEvidenceStore(current_app.config["EVIDENCE_DIR"])
