"""Request schemas for incidents, their status, comments and list filters."""

from __future__ import annotations

from marshmallow import fields, validate

from models.vocabulary import INCIDENT_STATUSES, SEVERITIES, TLP_LEVELS
from schemas.auth import USERNAME_PATTERN
from schemas.common import (
    ChangeSchema,
    FullMatch,
    StrictSchema,
    TimeRangeQuerySchema,
    trimmed_string,
)

DESCRIPTION_MAX = 20_000


def _assignee_field(**kwargs) -> fields.String:
    return fields.String(
        allow_none=True,
        validate=FullMatch(USERNAME_PATTERN, error="not a valid username"),
        **kwargs,
    )


class IncidentCreateSchema(StrictSchema):
    title = trimmed_string(max_length=200, required=True)
    description = fields.String(load_default="", validate=validate.Length(max=DESCRIPTION_MAX))
    severity = fields.String(required=True, validate=validate.OneOf(SEVERITIES))
    tlp = fields.String(load_default="amber", validate=validate.OneOf(TLP_LEVELS))
    assignee = _assignee_field()


class IncidentUpdateSchema(ChangeSchema):
    title = trimmed_string(max_length=200)
    description = fields.String(validate=validate.Length(max=DESCRIPTION_MAX))
    severity = fields.String(validate=validate.OneOf(SEVERITIES))
    tlp = fields.String(validate=validate.OneOf(TLP_LEVELS))
    assignee = _assignee_field()


class StatusChangeSchema(StrictSchema):
    status = fields.String(required=True, validate=validate.OneOf(INCIDENT_STATUSES))
    comment = fields.String(validate=validate.Length(max=DESCRIPTION_MAX))


class CommentSchema(StrictSchema):
    body = trimmed_string(max_length=DESCRIPTION_MAX, required=True)


class IncidentListQuerySchema(TimeRangeQuerySchema):
    status = fields.String(validate=validate.OneOf(INCIDENT_STATUSES))
    severity = fields.String(validate=validate.OneOf(SEVERITIES))
    tlp = fields.String(validate=validate.OneOf(TLP_LEVELS))
    assignee = fields.String(validate=FullMatch(USERNAME_PATTERN))
    q = fields.String(validate=validate.Length(min=1, max=200))
