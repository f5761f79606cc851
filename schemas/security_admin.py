"""Query schemas for the admin views of the security machinery: login blocks, the audit log."""

from __future__ import annotations

from marshmallow import fields, validate

from models.vocabulary import OUTCOMES
from schemas.common import PageQuerySchema, QueryBoolean, trimmed_string, utc_datetime


class BlockListQuerySchema(PageQuerySchema):
    include_inactive = QueryBoolean(
        load_default=False,
        metadata={"description": "also list lifted and expired blocks"},
    )


class AuditQuerySchema(PageQuerySchema):
    action = trimmed_string(max_length=64, metadata={"description": "e.g. auth.login"})
    actor = trimmed_string(max_length=64, metadata={"description": "username, any case"})
    outcome = fields.String(validate=validate.OneOf(OUTCOMES))
    object_type = trimmed_string(max_length=32)
    object_id = trimmed_string(max_length=64)
    since = utc_datetime(metadata={"description": "entries at or after this time"})
    until = utc_datetime(metadata={"description": "entries before this time"})
    ranges = (("since", "until"),)
