"""Schemas of the admin views of the security machinery: login blocks and the audit log,
their list queries and their answers."""

from __future__ import annotations

from marshmallow import fields, validate

from models.vocabulary import BLOCK_SCOPES, OUTCOMES
from schemas.common import (
    PageQuerySchema,
    QueryBoolean,
    ResponseSchema,
    identifier,
    one_of,
    page_of,
    text,
    timestamp,
    trimmed_string,
    utc_datetime,
)


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


# --- responses ----------------------------------------------------------------------------


class AuthBlockSchema(ResponseSchema):
    id = identifier()
    scope = one_of(BLOCK_SCOPES)
    subject = text()
    reason = text()
    failure_count = fields.Integer(required=True)
    created_at = timestamp()
    blocked_until = timestamp()
    lifted_at = timestamp(nullable=True)


class AuditEntrySchema(ResponseSchema):
    id = identifier()
    occurred_at = timestamp()
    actor_id = fields.Integer(required=True, allow_none=True)
    actor = text(nullable=True)
    action = text()
    object_type = text(nullable=True)
    object_id = text(nullable=True)
    outcome = one_of(OUTCOMES)
    ip = text(nullable=True)
    request_id = text(nullable=True)
    details = fields.Dict(keys=fields.String(), required=True)


AuthBlockPageSchema = page_of(AuthBlockSchema, "AuthBlockPageSchema")
AuditPageSchema = page_of(AuditEntrySchema, "AuditPageSchema")
