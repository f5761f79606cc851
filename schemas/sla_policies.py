"""Schemas for SLA policies: a new version's targets, and a version as answered."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from models.vocabulary import SEVERITIES
from schemas.common import ResponseSchema, StrictSchema, identifier, page_of, text, timestamp

# A year: a target longer than that is a typo, not a policy.
MAX_TARGET_MINUTES = 366 * 24 * 60
NOTE_MAX = 2_000


def _minutes(**kwargs) -> fields.Integer:
    return fields.Integer(
        required=True, validate=validate.Range(min=1, max=MAX_TARGET_MINUTES), **kwargs
    )


class SlaTargetSchema(StrictSchema):
    response_minutes = _minutes(metadata={"description": "opened -> first move out of new"})
    resolution_minutes = _minutes(metadata={"description": "opened -> resolved"})


class SlaTargetAnswerSchema(ResponseSchema):
    response_minutes = _minutes()
    resolution_minutes = _minutes()


def _per_severity(target: type[Schema], base: type[Schema], name: str) -> type[Schema]:
    """One required target per severity: a policy that skips one cannot measure it."""
    return base.from_dict(
        {severity: fields.Nested(target, required=True) for severity in SEVERITIES}, name=name
    )


SlaTargetsSchema = _per_severity(SlaTargetSchema, StrictSchema, "SlaTargetsSchema")
SlaTargetsAnswerSchema = _per_severity(
    SlaTargetAnswerSchema, ResponseSchema, "SlaTargetsAnswerSchema"
)


class SlaPolicyCreateSchema(StrictSchema):
    targets = fields.Nested(SlaTargetsSchema, required=True)
    note = fields.String(load_default="", validate=validate.Length(max=NOTE_MAX))


class SlaPolicySchema(ResponseSchema):
    id = identifier()
    version = fields.Integer(required=True, validate=validate.Range(min=1))
    targets = fields.Nested(SlaTargetsAnswerSchema, required=True)
    note = text()
    created_at = timestamp()


SlaPolicyPageSchema = page_of(SlaPolicySchema, "SlaPolicyPageSchema")
