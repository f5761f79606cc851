"""Schemas of the audit log's admin view: its list query and its entries."""

from __future__ import annotations

from marshmallow import fields, validate

from models.vocabulary import OUTCOMES
from schemas.common import (
    PageQuerySchema,
    ResponseSchema,
    identifier,
    one_of,
    page_of,
    text,
    timestamp,
    trimmed_string,
    utc_datetime,
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


AuditPageSchema = page_of(AuditEntrySchema, "AuditPageSchema")
