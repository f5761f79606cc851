"""Schemas of the login blocks' admin view: its list query and its answers."""

from __future__ import annotations

from marshmallow import fields

from models.vocabulary import BLOCK_SCOPES
from schemas.common import (
    PageQuerySchema,
    QueryBoolean,
    ResponseSchema,
    identifier,
    one_of,
    page_of,
    text,
    timestamp,
)


class BlockListQuerySchema(PageQuerySchema):
    include_inactive = QueryBoolean(
        load_default=False,
        metadata={"description": "also list lifted and expired blocks"},
    )


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


AuthBlockPageSchema = page_of(AuthBlockSchema, "AuthBlockPageSchema")
