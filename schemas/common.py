"""Building blocks shared by every area's schemas: list queries and strict strings."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from marshmallow import Schema, ValidationError, fields, pre_load, validate, validates_schema

from security.modules.storable import text_problem

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50


def _find_unstorable_text(value: Any) -> str | None:
    """The first problem in any string of a parsed JSON value, keys included.

    Iterative, so a deeply nested body cannot exhaust the interpreter's stack.
    """
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return problem
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return None


class FullMatch(validate.Regexp):
    """``Regexp`` that must match the whole value.

    ``Regexp`` uses ``re.match``, where ``$`` also matches before a trailing newline, so
    ``"name\\n"`` passed a ``^...$`` pattern and reached the database. The pattern stays
    ECMA-compatible for the OpenAPI document.
    """

    regex: re.Pattern[str]  # built from a str pattern: these fields hold text

    # Narrower than Regexp's (str | bytes): the fields it validates are strings.
    def __call__(self, value: str) -> str:  # type: ignore[override]
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


class StrictSchema(Schema):
    """Unknown fields are an error, never silently stored or ignored.

    ``openapi_extra`` (JSON Schema keywords) is added to the schema's component in the
    OpenAPI document, for rules across fields that the fields cannot declare.

    Text PostgreSQL cannot store (NUL characters, unpaired surrogates from ``\\ud800``
    escapes) is a 400 here, not a database error later.
    """

    @pre_load
    def _reject_unstorable_text(self, data: Any, **kwargs) -> Any:
        if not isinstance(data, dict):
            return data
        errors = {}
        for key, value in data.items():
            problem = _find_unstorable_text([key, value])
            if problem:
                # A key that is itself unstorable cannot name the field in the answer.
                errors[key if text_problem(key) is None else "_schema"] = [problem]
        if errors:
            raise ValidationError(errors)
        return data


class ChangeSchema(StrictSchema):
    """A PATCH body: the fields to change, at least one (``{}`` is a mistake, not a no-op)."""

    openapi_extra: ClassVar[dict[str, Any]] = {"minProperties": 1}

    @validates_schema
    def _not_empty(self, data: dict, **kwargs) -> None:
        if not data:
            raise ValidationError("give at least one field to change", "_schema")


def not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("must not be blank")


def trimmed_string(min_length: int = 1, max_length: int = 255, **kwargs) -> fields.String:
    """A string with a length range; when it is required to be non-empty, whitespace alone
    does not count (it would be stored as an empty title or name)."""
    validators: list[Callable[[str], Any]] = [validate.Length(min=min_length, max=max_length)]
    if min_length > 0:
        validators.append(not_blank)
    return fields.String(validate=validators, **kwargs)


class JsonBoolean(fields.Boolean):
    """A body's boolean: JSON ``true`` or ``false`` only.

    marshmallow's ``Boolean`` also takes ``0``, ``1``, ``"yes"`` or ``"off"``; the document
    says ``type: boolean``, so a client that sent ``0`` hears it is wrong instead of having
    it read as false.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class JsonInteger(fields.Integer):
    """A body's integer: a JSON number without a fraction (``3``, or ``3.0``).

    marshmallow's ``Integer`` also takes the string ``"3"`` and truncates ``2.5`` to 2;
    the document says ``type: integer``, which refuses both.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid", input=value)
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid", input=value)
        return super()._deserialize(value, attr, data, **kwargs)


class QueryBoolean(fields.Boolean):
    """A query parameter's boolean: the words ``true`` or ``false``, as OpenAPI writes them."""

    truthy = {"true"}
    falsy = {"false"}


class UtcDateTime(fields.AwareDateTime):
    """An ISO 8601 timestamp converted to UTC on load.

    Python accepts offsets up to +-23:59 and PostgreSQL only up to +-15:59, so an offset is
    resolved here; a moment that falls outside the representable years is a 400.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs) -> datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise ValidationError("is outside the supported range of dates") from None


def utc_datetime(**kwargs) -> fields.AwareDateTime:
    """ISO 8601 timestamps; a missing offset is read as UTC; loaded values are in UTC."""
    return UtcDateTime(default_timezone=UTC, **kwargs)


class PageQuerySchema(StrictSchema):
    """``limit`` and the opaque ``cursor`` every list endpoint accepts.

    ``ranges`` names (start, end) parameter pairs: a start after its end is well formed
    but meaningless, a 422 from :func:`resources.common.load_query`.
    """

    ranges: ClassVar[tuple[tuple[str, str], ...]] = ()
    limit = fields.Integer(
        load_default=DEFAULT_PAGE_SIZE,
        validate=validate.Range(min=1, max=MAX_PAGE_SIZE),
        metadata={"description": f"page size, 1 to {MAX_PAGE_SIZE}"},
    )
    cursor = fields.String(
        validate=[validate.Length(max=512), FullMatch(r"^[A-Za-z0-9_-]*$")],
        metadata={"description": "next_cursor from the previous page"},
    )


class TimeRangeQuerySchema(PageQuerySchema):
    created_after = utc_datetime()
    created_before = utc_datetime()
    ranges = (("created_after", "created_before"),)
