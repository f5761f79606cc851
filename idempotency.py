"""``Idempotency-Key`` for creating requests: a retry returns the first answer, not a duplicate.

The key row is inserted in the same transaction as the object it creates. A concurrent
retry blocks on the unique index until the first commits, then finds the stored answer
(status, body and headers such as ``ETag`` and ``Location``); if the first rolled back,
the retry goes ahead as if it were first. Resources call :func:`answer_once`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import timedelta

from flask import request
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert

from errors import ApiError
from models import IdempotencyRecord, db, utcnow
from security.modules.utils import json_default

HEADER = "Idempotency-Key"
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")
RETENTION = timedelta(hours=24)

Answer = tuple[dict, int, dict[str, str]]


def _fingerprint() -> str:
    return hashlib.sha256(request.get_data(cache=True)).hexdigest()


def _claim(user_id: int, scope: str) -> IdempotencyRecord | None:
    """Reserve the request's key (None when the client sent none); 400 if the key is unusable.

    A returned record whose ``status_code`` is set is a replay: answer with it.
    """
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not KEY_PATTERN.match(key):
        raise ApiError(400, f"{HEADER} must be 1-255 visible ASCII characters.")
    db.session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.user_id == user_id,
            IdempotencyRecord.created_at < utcnow() - RETENTION,
        )
    )
    fingerprint = _fingerprint()
    db.session.execute(
        insert(IdempotencyRecord)
        .values(
            user_id=user_id,
            scope=scope,
            key=key,
            request_fingerprint=fingerprint,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["user_id", "scope", "key"])
    )
    record = db.session.scalars(
        select(IdempotencyRecord)
        .where(
            IdempotencyRecord.user_id == user_id,
            IdempotencyRecord.scope == scope,
            IdempotencyRecord.key == key,
        )
        .with_for_update()
    ).one()
    if record.request_fingerprint != fingerprint:
        raise ApiError(422, f"This {HEADER} was already used with a different request body.")
    return record


def _remember(record: IdempotencyRecord | None, answer: Answer) -> None:
    """Store the answer with the key, in the transaction that created the object."""
    if record is None:
        return
    body, status_code, headers = answer
    record.status_code = status_code
    record.response_body = json.loads(json.dumps(body, default=json_default))
    record.response_headers = dict(headers)


def _replay(record: IdempotencyRecord) -> Answer:
    """The stored answer again, marked so the client can tell it was not created anew."""
    headers = {**(record.response_headers or {}), "Idempotent-Replayed": "true"}
    return record.response_body, record.status_code, headers


def answer_once(user_id: int, scope: str, create: Callable[[], Answer]) -> Answer:
    """Run ``create`` and commit, or replay its first answer when the key was seen before.

    ``create`` returns a Flask-RESTful ``(body, status, headers)`` tuple; without an
    ``Idempotency-Key`` it simply runs.
    """
    record = _claim(user_id, scope)
    if record is not None and record.status_code is not None:
        db.session.rollback()
        return _replay(record)
    answer = create()
    _remember(record, answer)
    db.session.commit()
    return answer
