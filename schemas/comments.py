"""Schemas for comments: a new or edited text, and a comment with its earlier texts."""

from __future__ import annotations

from marshmallow import fields, validate

from schemas.common import (
    ResponseSchema,
    StrictSchema,
    identifier,
    page_of,
    text,
    timestamp,
    trimmed_string,
    username_of,
)
from schemas.incidents import DESCRIPTION_MAX


class CommentBodySchema(StrictSchema):
    body = trimmed_string(max_length=DESCRIPTION_MAX, required=True)


class CommentRevisionSchema(ResponseSchema):
    body = text()
    replaced_at = timestamp()


class CommentSchema(ResponseSchema):
    id = identifier()
    incident_id = fields.Integer(required=True, allow_none=True)
    alert_id = fields.Integer(required=True, allow_none=True)
    task_id = fields.Integer(required=True, allow_none=True)
    author = username_of("author")
    body = text()
    version = fields.Integer(required=True, validate=validate.Range(min=1))
    created_at = timestamp()
    updated_at = timestamp()
    revisions = fields.List(
        fields.Nested(CommentRevisionSchema),
        required=True,
        metadata={"description": "the texts an edit replaced, oldest first"},
    )


CommentPageSchema = page_of(CommentSchema, "CommentPageSchema")
