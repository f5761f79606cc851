"""Schemas for custom fields: a definition as an admin writes it, and as answered."""

from __future__ import annotations

from marshmallow import fields, validate

from models.vocabulary import CUSTOM_FIELD_TYPES
from schemas.common import (
    FullMatch,
    JsonBoolean,
    ResponseSchema,
    StrictSchema,
    identifier,
    one_of,
    page_of,
    text,
    timestamp,
    trimmed_string,
)

# A name is the key in an incident's custom_fields and in ?custom_field=name:value.
FIELD_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
CHOICES_MAX = 100


class CustomFieldCreateSchema(StrictSchema):
    name = fields.String(
        required=True,
        validate=FullMatch(FIELD_NAME_PATTERN, error="lower-case letters, digits and _"),
    )
    label = trimmed_string(max_length=200, required=True)
    field_type = fields.String(required=True, validate=validate.OneOf(CUSTOM_FIELD_TYPES))
    choices = fields.List(
        trimmed_string(max_length=200),
        validate=validate.Length(max=CHOICES_MAX),
        metadata={"description": "the values a choice field takes (choice fields only)"},
    )
    required = JsonBoolean(metadata={"description": "every new incident must give it"})


class CustomFieldSchema(ResponseSchema):
    id = identifier()
    name = text()
    label = text()
    field_type = one_of(CUSTOM_FIELD_TYPES)
    choices = fields.List(fields.String(), required=True)
    required = fields.Boolean(required=True)
    created_at = timestamp()


CustomFieldPageSchema = page_of(CustomFieldSchema, "CustomFieldPageSchema")
