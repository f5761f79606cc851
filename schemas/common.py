"""Building blocks shared by every area's schemas: list queries and strict strings."""

from __future__ import annotations

from datetime import UTC

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50


class StrictSchema(Schema):
    """Unknown fields are an error, never silently stored or ignored."""


def trimmed_string(min_length: int = 1, max_length: int = 255, **kwargs) -> fields.String:
    return fields.String(validate=validate.Length(min=min_length, max=max_length), **kwargs)


def utc_datetime(**kwargs) -> fields.AwareDateTime:
    """ISO 8601 timestamps; a missing offset is read as UTC."""
    return fields.AwareDateTime(default_timezone=UTC, **kwargs)


class PageQuerySchema(StrictSchema):
    """``limit`` and the opaque ``cursor`` every list endpoint accepts."""

    limit = fields.Integer(
        load_default=DEFAULT_PAGE_SIZE,
        validate=validate.Range(min=1, max=MAX_PAGE_SIZE),
        metadata={"description": f"page size, 1 to {MAX_PAGE_SIZE}"},
    )
    cursor = fields.String(validate=validate.Length(max=512))


class TimeRangeQuerySchema(PageQuerySchema):
    created_after = utc_datetime()
    created_before = utc_datetime()

    @validates_schema
    def _check_range(self, data: dict, **kwargs) -> None:
        after, before = data.get("created_after"), data.get("created_before")
        if after and before and after > before:
            raise ValidationError("must not be after created_before", "created_after")
