"""Evidence of an incident: attaching a file (hash, size, declared and sniffed type, on
the timeline), listing and reading it, deleting it (admins, audited), and moving it to
another incident (an incident merge).

The bytes go to the evidence store (:mod:`security.modules.evidence_store`); the row
here is what a client sees. A file name is kept for display and the download's
``Content-Disposition`` only, reduced to a safe base name (``werkzeug``'s
``secure_filename``): a name such as ``../../etc/passwd`` is stored as ``etc_passwd``
and never touches a path. The sniffed type (``puremagic``, from the first bytes) is a
fact for the analyst, never a reason to serve the file inline: downloads are always
attachments (``resources/evidence.py``).

One blob may back several rows (the same file attached twice), so deleting a row removes
the blob only when no row names it (:func:`forget_unreferenced`), and that check races an
upload of the same bytes: the upload's row is not visible until it commits. Both sides
therefore take a transaction-scoped advisory lock on the SHA-256 (:func:`_lock_blob`): the
deletion checks and removes under it; the upload takes it once its bytes are in place and
then makes sure they still are, so its row is written only beside its blob. When a
deletion removed them in between (the bytes are gone with the request's stream), the
upload is refused as :class:`~security.errors.Unavailable` and writes nothing; sending it
again succeeds.

An upload whose transaction fails after its bytes were stored leaves a blob no row names;
:func:`forget_orphans` (the worker's daily pruning) removes such blobs once they are older
than any upload still in flight could be, under the same lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from itertools import islice
from typing import BinaryIO

import puremagic
from sqlalchemy import Select, func, select, text
from werkzeug.utils import secure_filename

from models import Evidence, Incident, db
from security.errors import Invalid, Unavailable
from security.events import EventType, emit
from security.modules import incidents
from security.modules.evidence_store import evidence_store
from security.modules.lookup import first_or_404
from security.modules.principals import Principal

DECLARED_TYPE_MAX = 255
UNKNOWN_TYPE = "application/octet-stream"


def evidence_of(incident: Incident) -> Select:
    """The incident's evidence, for a keyset-paged list."""
    return select(Evidence).where(Evidence.incident_id == incident.id)


def get_evidence(incident: Incident, evidence_id: int) -> Evidence:
    statement = select(Evidence).where(
        Evidence.id == evidence_id, Evidence.incident_id == incident.id
    )
    return first_or_404(statement, f"Evidence {evidence_id} does not exist.")


def safe_filename(given: str | None) -> str:
    """The base name to keep, or 422 when nothing usable is left of it."""
    name = secure_filename(given or "")[:255]
    if not name:
        raise Invalid(
            "The file needs a name made of letters, digits, dots or dashes.", field="file"
        )
    return name


def sniffed_type(head: bytes) -> str | None:
    """The media type the first bytes say, or None when they say nothing known."""
    try:
        found = puremagic.from_string(head, mime=True)
    except (puremagic.PureError, ValueError):
        return None
    return found or None


def attach(
    incident: Incident,
    principal: Principal,
    stream: BinaryIO,
    filename: str | None,
    declared_type: str | None,
    max_bytes: int,
) -> Evidence:
    """Store the upload and record it; the name is checked before a byte is written."""
    name = safe_filename(filename)
    declared = (declared_type or UNKNOWN_TYPE)[:DECLARED_TYPE_MAX]
    store = evidence_store()
    blob = store.put(stream, max_bytes)
    _lock_blob(blob.sha256)
    if not store.exists(blob.sha256):
        raise Unavailable("The file was removed while it was stored; send it again.")
    evidence = Evidence(
        incident_id=incident.id,
        filename=name,
        sha256=blob.sha256,
        size=blob.size,
        declared_type=declared,
        sniffed_type=sniffed_type(blob.head),
        uploader_id=principal.user_id,
    )
    db.session.add(evidence)
    db.session.flush()
    incidents.note_on_timeline(
        incident,
        principal,
        "evidence",
        changes={"evidence": evidence.id, "added": name, "sha256": blob.sha256},
    )
    emit(
        EventType.EVIDENCE_ADDED,
        evidence.id,
        {"incident_id": incident.id, "sha256": blob.sha256, "size": blob.size},
    )
    return evidence


def open_blob(evidence: Evidence) -> BinaryIO:
    return evidence_store().open(evidence.sha256)


def delete(incident: Incident, evidence: Evidence, principal: Principal) -> str:
    """Delete the record (audited as ``evidence.delete``); returns its SHA-256 for
    :func:`forget_unreferenced` once the deletion has committed."""
    db.session.delete(evidence)
    incidents.note_on_timeline(
        incident,
        principal,
        "evidence",
        changes={"evidence": evidence.id, "deleted": evidence.filename, "sha256": evidence.sha256},
    )
    emit(
        EventType.EVIDENCE_DELETED,
        evidence.id,
        {"incident_id": incident.id, "sha256": evidence.sha256, "filename": evidence.filename},
    )
    return evidence.sha256


def _lock_blob(sha256: str) -> None:
    """Hold the blob's advisory lock until the transaction ends (see the module docstring)."""
    db.session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"evidence:{sha256}"}
    )


def forget_unreferenced(sha256: str) -> bool:
    """Remove the blob when no evidence row names it any more (after the commit: a
    deletion rolled back must still find its bytes), under the blob's lock. Returns
    whether it was removed; the caller ends the transaction, which releases the lock."""
    _lock_blob(sha256)
    still_used = db.session.scalar(select(func.count()).where(Evidence.sha256 == sha256))
    if still_used:
        return False
    evidence_store().delete(sha256)
    return True


# Blobs checked against the evidence rows per statement.
ORPHAN_BATCH = 1_000


def forget_orphans(cutoff: datetime) -> int:
    """Remove the blobs last written before ``cutoff`` that no evidence row names; returns
    how many. One short transaction per removal, so a large sweep does not hold a lock per
    blob until its end."""
    removed = 0
    for candidates in _unreferenced(evidence_store().written_before(cutoff)):
        for sha256 in candidates:
            removed += forget_unreferenced(sha256)
            db.session.commit()
    return removed


def _unreferenced(sha256s: Iterator[str]) -> Iterator[list[str]]:
    """``sha256s`` in batches, each without the digests an evidence row names."""
    while batch := list(islice(sha256s, ORPHAN_BATCH)):
        named = set(db.session.scalars(select(Evidence.sha256).where(Evidence.sha256.in_(batch))))
        yield [sha256 for sha256 in batch if sha256 not in named]


def move_evidence(source: Incident, target: Incident) -> int:
    """Move every piece of evidence of ``source`` to ``target`` for an incident merge; the
    bytes stay where they are (content-addressed). Returns how many moved. Quiet like
    :func:`security.modules.tasks.move_tasks`: the merge's one event announces it."""
    moving = list(db.session.scalars(evidence_of(source).order_by(Evidence.id)))
    for piece in moving:
        piece.incident_id = target.id
    db.session.flush()
    return len(moving)
