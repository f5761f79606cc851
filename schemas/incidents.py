"""Schemas for incidents: what a client may send (fields, status, comments, list
filters), and the incident and timeline answers."""

from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import ValidationError, fields, validate, validates_schema

from models.vocabulary import INCIDENT_STATUSES, SEVERITIES, TIMELINE_KINDS, TLP_LEVELS
from schemas.auth import USERNAME_PATTERN
from schemas.common import (
    ChangeSchema,
    ComputedList,
    ComputedNested,
    FullMatch,
    ResponseSchema,
    StrictSchema,
    TimeRangeQuerySchema,
    identifier,
    one_of,
    page_of,
    text,
    timestamp,
    trimmed_string,
    username_of,
)
from security.modules import attack

DESCRIPTION_MAX = 20_000
MAX_LABELS = 50
MAX_TAG_LENGTH = 64


# ATT&CK technique ids, either case: T1566, t1059.001.
TECHNIQUE_PATTERN = r"^[Tt][0-9]{4}(\.[0-9]{3})?$"


class TechniqueId(fields.String):
    """An ATT&CK technique id (``T1566``, ``T1059.001``), upper-cased; the catalogue check
    is the engine's (:mod:`security.modules.attack`), a 422."""

    def __init__(self, **kwargs: Any) -> None:
        error = "not an ATT&CK technique id (T1566, T1059.001)"
        super().__init__(validate=FullMatch(TECHNIQUE_PATTERN, error=error), **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs).upper()


def tag_field() -> fields.String:
    """A tag as sent; the engine stores it trimmed and lower-cased
    (``security.modules.incidents.canonical_tags``), a blank one not at all."""
    return fields.String(validate=validate.Length(min=1, max=MAX_TAG_LENGTH))


def tags_field(**kwargs: Any) -> fields.List:
    return fields.List(tag_field(), validate=validate.Length(max=MAX_LABELS), **kwargs)


def techniques_field(**kwargs: Any) -> fields.List:
    return fields.List(
        TechniqueId(metadata={"example": "T1059.001"}),
        validate=validate.Length(max=MAX_LABELS),
        metadata={"description": "ATT&CK technique ids; 422 for one a loaded catalogue lacks"},
        **kwargs,
    )


def _assignee_field(**kwargs) -> fields.String:
    return fields.String(
        allow_none=True,
        validate=FullMatch(USERNAME_PATTERN, error="not a valid username"),
        **kwargs,
    )


def _custom_fields_field() -> fields.Dict:
    return fields.Dict(
        keys=fields.String(),
        values=fields.Raw(allow_none=True),
        metadata={"description": "values of the admin-defined custom fields, by name"},
    )


class IncidentCreateSchema(StrictSchema):
    title = trimmed_string(max_length=200, required=True)
    description = fields.String(load_default="", validate=validate.Length(max=DESCRIPTION_MAX))
    severity = fields.String(required=True, validate=validate.OneOf(SEVERITIES))
    tlp = fields.String(load_default="amber", validate=validate.OneOf(TLP_LEVELS))
    assignee = _assignee_field()
    tags = tags_field()
    techniques = techniques_field()


class IncidentOpenSchema(IncidentCreateSchema):
    """``POST /incidents``: title and severity are required unless a ``template`` gives
    them; the description defaults to empty and the TLP to amber, or to the template's."""

    openapi_extra: ClassVar[dict[str, Any]] = {
        "anyOf": [{"required": ["template"]}, {"required": ["title", "severity"]}]
    }
    title = trimmed_string(max_length=200)
    description = fields.String(validate=validate.Length(max=DESCRIPTION_MAX))
    severity = fields.String(validate=validate.OneOf(SEVERITIES))
    tlp = fields.String(validate=validate.OneOf(TLP_LEVELS))
    template = fields.String(
        validate=validate.Length(min=1, max=100),
        metadata={"description": "the name of an incident template to open it from"},
    )
    custom_fields = _custom_fields_field()

    # Also when another field is invalid, so that one answer names every missing field;
    # what was sent (not what loaded) says whether a field is missing.
    @validates_schema(skip_on_field_errors=False, pass_original=True)
    def _title_and_severity_or_template(self, data: dict, original: Any, **kwargs) -> None:
        if not isinstance(original, dict) or "template" in original:
            return
        missing = {
            name: ["required without a template"]
            for name in ("title", "severity")
            if name not in original
        }
        if missing:
            raise ValidationError(missing)


class IncidentUpdateSchema(ChangeSchema):
    title = trimmed_string(max_length=200)
    description = fields.String(validate=validate.Length(max=DESCRIPTION_MAX))
    severity = fields.String(validate=validate.OneOf(SEVERITIES))
    tlp = fields.String(validate=validate.OneOf(TLP_LEVELS))
    assignee = _assignee_field()
    tags = tags_field()
    techniques = techniques_field()
    custom_fields = _custom_fields_field()


class StatusChangeSchema(StrictSchema):
    status = fields.String(required=True, validate=validate.OneOf(INCIDENT_STATUSES))
    comment = fields.String(validate=validate.Length(max=DESCRIPTION_MAX))


class IncidentListQuerySchema(TimeRangeQuerySchema):
    status = fields.String(validate=validate.OneOf(INCIDENT_STATUSES))
    severity = fields.String(validate=validate.OneOf(SEVERITIES))
    tlp = fields.String(validate=validate.OneOf(TLP_LEVELS))
    assignee = fields.String(validate=FullMatch(USERNAME_PATTERN))
    q = fields.String(validate=validate.Length(min=1, max=200))
    tag = tag_field()
    technique = TechniqueId()
    custom_field = fields.String(
        validate=FullMatch(r"^[a-z][a-z0-9_]{0,63}:.{0,200}$"),
        metadata={"description": "name:value, incidents whose custom field holds the value"},
    )


# --- responses ----------------------------------------------------------------------------


class SlaSchema(ResponseSchema):
    response_due = timestamp()
    resolution_due = timestamp()
    responded_at = timestamp(nullable=True)
    resolved_at = timestamp(nullable=True)
    response_breached = fields.Boolean(required=True)
    resolution_breached = fields.Boolean(required=True)
    policy_version = fields.Integer(
        required=True,
        validate=validate.Range(min=1),
        metadata={"description": "the SLA policy version the incident was opened under"},
    )


class TechniqueSchema(ResponseSchema):
    """A technique id with what the loaded ATT&CK catalogue says of it (null and [] when
    no catalogue names it)."""

    id = text()
    name = text(nullable=True)
    tactics = fields.List(fields.String(), required=True)


def technique_details() -> ComputedList:
    return ComputedList(
        lambda labelled: attack.technique_details(labelled.techniques),
        fields.Nested(TechniqueSchema),
    )


class IncidentSchema(ResponseSchema):
    id = identifier()
    title = text()
    description = text()
    severity = one_of(SEVERITIES)
    status = one_of(INCIDENT_STATUSES)
    tlp = one_of(TLP_LEVELS)
    reporter = username_of("reporter", nullable=False)
    assignee = username_of("assignee")
    version = fields.Integer(required=True, validate=validate.Range(min=1))
    created_at = timestamp()
    updated_at = timestamp()
    allowed_transitions = ComputedList(
        lambda incident: list(incident.allowed_transitions()),
        fields.String(validate=validate.OneOf(INCIDENT_STATUSES)),
    )
    sla = ComputedNested(lambda incident: incident.sla(), SlaSchema)
    tags = fields.List(fields.String(), required=True)
    techniques = fields.List(fields.String(), required=True)
    technique_details = technique_details()
    merged_into_id = fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "the incident this one was merged into as a duplicate"},
    )
    custom_fields = fields.Dict(keys=fields.String(), required=True)


class TimelineEntrySchema(ResponseSchema):
    id = identifier()
    incident_id = identifier()
    kind = one_of(TIMELINE_KINDS)
    actor = username_of("actor")
    from_status = one_of(INCIDENT_STATUSES, nullable=True)
    to_status = one_of(INCIDENT_STATUSES, nullable=True)
    changes = fields.Dict(
        keys=fields.String(),
        required=True,
        metadata={"description": "edited fields as {field: [old, new]}"},
    )
    comment = text(nullable=True)
    created_at = timestamp()


class TimelineSchema(ResponseSchema):
    items = fields.List(fields.Nested(TimelineEntrySchema), required=True)


IncidentPageSchema = page_of(IncidentSchema, "IncidentPageSchema")
