"""What every resource does the same way: read a JSON body, read a query, page a list,
check ``If-Match``.

Keeping these here is what makes every endpoint reject bad input with the same status
and the same problem+json shape.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from flask import request
from marshmallow import Schema, ValidationError
from sqlalchemy import Select, tuple_

from errors import ApiError
from models import db
from security.modules.hygiene import require_json_content_type
from security.modules.storable import number_problem, unstorable_values
from security.modules.utils import isoformat_z

IF_MATCH_MAX_LENGTH = 1024
ENTITY_TAG = re.compile(r'(W/)?"([\x21\x23-\x7e]*)"')
IF_MATCH_LIST = re.compile(
    r'[ \t]*(W/)?"[\x21\x23-\x7e]*"(?:[ \t]*,[ \t]*(W/)?"[\x21\x23-\x7e]*")*[ \t]*'
)


def _parse_json(raw: bytes) -> tuple[Any, bool]:
    """The parsed document, and whether it holds a NaN or infinite number (noted while
    parsing, so well-formed bodies are not walked a second time)."""
    non_finite: list[float] = []

    def number(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            non_finite.append(value)
        return value

    document = json.loads(raw, parse_constant=number, parse_float=number)
    return document, bool(non_finite)


def read_json_document() -> Any:
    """The request body parsed as JSON; 415 for other media types, 400 if malformed.

    ``NaN``, ``Infinity`` and numbers too large for a float are malformed too, with the
    fields named: Python's reader accepts them, but they are not JSON (RFC 8259) and
    PostgreSQL's ``jsonb`` cannot store them (an event carrying one failed when its alert
    was written).
    """
    require_json_content_type()
    raw = request.get_data(cache=True)
    if not raw:
        raise ApiError(400, "The request body is empty; send a JSON document.")
    try:
        document, has_non_finite = _parse_json(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError(400, f"The body is not valid JSON: {error}") from None
    except RecursionError:
        # A small body of nested brackets exhausts the parser's stack before any size cap.
        raise ApiError(400, "The body is nested too deeply.") from None
    if has_non_finite:
        raise ApiError(
            400,
            "The body is not valid JSON: NaN, Infinity and numbers too large for a float "
            "are not JSON numbers.",
            errors=unstorable_values(document, number_problem),
        )
    return document


def validation_error(error: ValidationError, where: str = "body") -> ApiError:
    messages = error.messages if isinstance(error.messages, dict) else {"_schema": error.messages}
    return ApiError(400, f"The request {where} is invalid.", errors=messages)


def load_json(schema: Schema) -> dict:
    """Parse and validate a JSON object body against ``schema`` (unknown fields rejected)."""
    document = read_json_document()
    if not isinstance(document, dict):
        raise ApiError(400, "The body must be a JSON object.")
    try:
        return schema.load(document)
    except ValidationError as error:
        raise validation_error(error) from None


def load_query(schema: Schema) -> Any:
    """Validate query parameters; a parameter given twice is an error, not a silent pick."""
    repeated = sorted(key for key in request.args if len(request.args.getlist(key)) > 1)
    if repeated:
        raise ApiError(
            400,
            "Query parameters may be given once each.",
            errors={key: ["given more than once"] for key in repeated},
        )
    try:
        query = schema.load(request.args.to_dict())
    except ValidationError as error:
        raise validation_error(error, "query") from None
    inverted = {
        start: [f"must not be after {end}"]
        for start, end in getattr(schema, "ranges", ())
        if start in query and end in query and query[start] > query[end]
    }
    if inverted:
        raise ApiError(422, "The request query names an empty time range.", errors=inverted)
    return query


def encode_cursor(values: Sequence[Any]) -> str:
    plain = [isoformat_z(v) if isinstance(v, datetime) else v for v in values]
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode().rstrip("=")


def decode_cursor(raw: str, parsers: Sequence[Callable[[Any], Any]]) -> list[Any]:
    """Decode a cursor made by :func:`encode_cursor`; anything else is a clear 422.

    Not 400: the document can only say a cursor is a string, so any string is well formed
    there; one this server did not issue is refused for what it means, like an unknown
    assignee.
    """
    try:
        padded = raw + "=" * (-len(raw) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(values, list) or len(values) != len(parsers):
            raise ValueError("wrong shape")
        return [parse(value) for parse, value in zip(parsers, values, strict=True)]
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ApiError(
            422,
            "The cursor is invalid; use next_cursor from a previous page.",
            errors={"cursor": ["not a cursor this server issued"]},
        ) from None


def _parse_timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise TypeError("timestamp expected")
    moment = datetime.fromisoformat(value)
    # The API writes cursors in UTC; any other offset is a forged cursor, and one beyond
    # PostgreSQL's +/-15:59 would fail in the database instead of here.
    if moment.utcoffset() != timedelta(0):
        raise ValueError("cursor timestamp not in UTC")
    return moment


def _parse_id(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("integer expected")
    return value


def keyset_page(
    statement: Select,
    created_column: Any,
    id_column: Any,
    limit: int,
    cursor: str | None,
) -> tuple[list[Any], str | None]:
    """One page, newest first, by the keyset ``(created_at, id)``.

    Unlike OFFSET, a keyset never skips or repeats a row when others are inserted while a
    client pages through.
    """
    if cursor:
        created, last_id = decode_cursor(cursor, (_parse_timestamp, _parse_id))
        statement = statement.where(tuple_(created_column, id_column) < tuple_(created, last_id))
    statement = statement.order_by(created_column.desc(), id_column.desc()).limit(limit + 1)
    rows = list(db.session.scalars(statement).unique())
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, encode_cursor([getattr(last, created_column.key), getattr(last, id_column.key)])


def etag_for(version: int) -> str:
    return f'"{version}"'


def _if_match_tags() -> list[str] | None:
    """The opaque tags ``If-Match`` lists (None when absent or ``*``); 400 if malformed.

    RFC 9110 syntax: ``*`` or a comma-separated list of entity-tags, each quoted and
    optionally weak. A well-formed tag this server never issued is not a client error but
    a failed precondition (412), as for any tag of an older version.
    """
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    if len(header) > IF_MATCH_MAX_LENGTH or not IF_MATCH_LIST.fullmatch(header):
        raise ApiError(400, 'If-Match must be an ETag from a previous response, e.g. "3".')
    return [match.group(2) for match in ENTITY_TAG.finditer(header)]


def ensure_version_matches(current_version: int) -> None:
    """412 when the client's ``If-Match`` does not name the stored version."""
    tags = _if_match_tags()
    if tags is not None and str(current_version) not in tags:
        named = ", ".join(tags)
        raise ApiError(
            412,
            f"The object changed since you read it (your version {named}, "
            f"current {current_version}); reload and retry.",
            extra={"current_version": current_version},
        )
