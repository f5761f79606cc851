"""``Idempotency-Key`` for creating requests: a retry returns the first answer, not a duplicate.

Every create endpoint offers it, so a client that lost the answer (a timeout, a 500 while
the database restarted after the commit) retries with the same key and body and learns
what happened, without creating a second object. The semantics follow the IETF httpapi
Idempotency-Key draft:

- the key row is inserted in the same transaction as the object it creates; a concurrent
  retry blocks on the unique index until the first commits, then finds the stored answer
  (status, body and headers such as ``ETag`` and ``Location``, plus
  ``Idempotent-Replayed: true``); if the first rolled back, the retry goes ahead as if it
  were first;
- the same key with another body (or path, or query) is 422: the key is bound to its
  request;
- a replay never hands out a stale object: when the object the key created has been
  deleted since, the replay is 409 (the key is spent and the object is not recreated;
  a new key creates it again). A secret shown only once (an API key's value) is not
  stored, so replaying its creation is 409 too, naming the key to rotate.

Keys live for 24 hours, per user and per endpoint. The stored fingerprint of the request
is keyed with ``SECRET_KEY``: request bodies carry passwords and feed credentials, and
a bare hash would let anyone reading the table test guesses against them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app, request
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert

from errors import ApiError
from models import IdempotencyRecord, db, utcnow
from models.base import Model
from security.modules.utils import json_default

HEADER = "Idempotency-Key"
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")
RETENTION = timedelta(hours=24)

Answer = tuple[dict, int, dict[str, str]]


@dataclass(frozen=True)
class Creation:
    """What one create endpoint makes: its key scope, and how to find the object again.

    ``locate`` turns the answer's body into the created object's primary key;
    ``shown_once`` names a body field that is a secret shown only in the first answer.
    """

    scope: str
    model: type[Model]
    locate: Callable[[dict], Any] = operator.itemgetter("id")
    shown_once: str | None = None


def _fingerprint() -> str:
    key = current_app.config["SECRET_KEY"].encode()
    target = request.full_path.encode()
    message = target + b"\0" + request.get_data(cache=True)
    return hmac.new(key, message, hashlib.sha256).hexdigest()


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
        raise ApiError(422, f"This {HEADER} was already used with a different request.")
    return record


def _remember(record: IdempotencyRecord | None, creation: Creation, answer: Answer) -> None:
    """Store the answer with the key, in the transaction that created the object."""
    if record is None:
        return
    body, status_code, headers = answer
    stored = {name: value for name, value in body.items() if name != creation.shown_once}
    record.status_code = status_code
    record.response_body = json.loads(json.dumps(stored, default=json_default))
    record.response_headers = dict(headers)


def _replay(record: IdempotencyRecord, creation: Creation) -> Answer:
    """The stored answer again, marked so the client can tell it was not created anew."""
    body = record.response_body or {}
    object_id = creation.locate(body)
    if db.session.get(creation.model, object_id) is None:
        raise ApiError(
            409,
            f"The object this {HEADER} created has been deleted since; it is not recreated. "
            "Send a new key to create it again.",
        )
    if creation.shown_once is not None:
        raise ApiError(
            409,
            f"This {HEADER} already created {creation.model.__tablename__} {object_id}; its "
            f"{creation.shown_once} is shown only in the first answer. Rotate it for a new one.",
            extra={"id": object_id},
        )
    headers = {**(record.response_headers or {}), "Idempotent-Replayed": "true"}
    assert record.status_code is not None  # only a record with a stored answer is replayed
    return body, record.status_code, headers


def answer_once(user_id: int, creation: Creation, create: Callable[[], Answer]) -> Answer:
    """Run ``create`` and commit, or replay its first answer when the key was seen before.

    ``create`` adds the object without committing and returns a Flask-RESTful
    ``(body, status, headers)`` tuple; without an ``Idempotency-Key`` it simply runs.
    """
    record = _claim(user_id, creation.scope)
    if record is not None and record.status_code is not None:
        answer = _replay(record, creation)
        db.session.rollback()
        return answer
    answer = create()
    _remember(record, creation, answer)
    db.session.commit()
    return answer
