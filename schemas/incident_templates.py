"""Schemas for incident templates: the document that creates (and imports) one, an edit,
and a template as answered; the export is the create document itself."""

from __future__ import annotations

from marshmallow import fields, validate

from models.vocabulary import SEVERITIES, TLP_LEVELS
from schemas.common import (
    FullMatch,
    JsonBoolean,
    JsonInteger,
    ResponseSchema,
    StrictSchema,
    edit_of,
    identifier,
    one_of,
    page_of,
    text,
    timestamp,
    trimmed_string,
)
from schemas.incidents import DESCRIPTION_MAX, tags_field

TEMPLATE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
TASKS_MAX = 100
# A task due more than a year after the incident opens is a typo.
DUE_IN_MAX_MINUTES = 366 * 24 * 60


class TemplateTaskSchema(StrictSchema):
    title = trimmed_string(max_length=200, required=True)
    description = fields.String(load_default="", validate=validate.Length(max=DESCRIPTION_MAX))
    mandatory = JsonBoolean(load_default=False)
    due_in_minutes = JsonInteger(
        allow_none=True,
        load_default=None,
        validate=validate.Range(min=1, max=DUE_IN_MAX_MINUTES),
        metadata={"description": "the task is due this long after the incident opens"},
    )


class IncidentTemplateCreateSchema(StrictSchema):
    name = fields.String(
        required=True,
        validate=FullMatch(TEMPLATE_NAME_PATTERN, error="letters, digits, _ . -"),
        metadata={"description": "what POST /incidents names in template"},
    )
    title = fields.String(load_default="", validate=validate.Length(max=200))
    severity = fields.String(required=True, validate=validate.OneOf(SEVERITIES))
    tlp = fields.String(load_default="amber", validate=validate.OneOf(TLP_LEVELS))
    tags = tags_field(load_default=list)
    description = fields.String(load_default="", validate=validate.Length(max=DESCRIPTION_MAX))
    tasks = fields.List(
        fields.Nested(TemplateTaskSchema),
        load_default=list,
        validate=validate.Length(max=TASKS_MAX),
    )
    custom_fields = fields.Dict(
        keys=fields.String(), values=fields.Raw(allow_none=True), load_default=dict
    )


IncidentTemplateUpdateSchema = edit_of(IncidentTemplateCreateSchema, "IncidentTemplateUpdateSchema")


class TemplateTaskAnswerSchema(ResponseSchema):
    title = text()
    description = text()
    mandatory = fields.Boolean(required=True)
    due_in_minutes = fields.Integer(required=True, allow_none=True)


class IncidentTemplateExportSchema(ResponseSchema):
    """The document ``POST /incident-templates/import`` takes back."""

    name = text()
    title = text()
    severity = one_of(SEVERITIES)
    tlp = one_of(TLP_LEVELS)
    tags = fields.List(fields.String(), required=True)
    description = text()
    tasks = fields.List(fields.Nested(TemplateTaskAnswerSchema), required=True)
    custom_fields = fields.Dict(keys=fields.String(), required=True)


class IncidentTemplateSchema(IncidentTemplateExportSchema):
    id = identifier()
    version = fields.Integer(required=True, validate=validate.Range(min=1))
    created_at = timestamp()
    updated_at = timestamp()


IncidentTemplatePageSchema = page_of(IncidentTemplateSchema, "IncidentTemplatePageSchema")
