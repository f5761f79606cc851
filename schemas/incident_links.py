"""Schemas for what links incidents to alerts and to each other: alerts merged into an
incident (and out again), a duplicate merged into the incident that stays, and related
incidents (``resources/incident_links.py``)."""

from __future__ import annotations

from marshmallow import fields, validate

from schemas.common import ResponseSchema, StrictSchema, identifier, text
from schemas.detection import AlertSchema
from schemas.incidents import IncidentSchema
from security.modules.incident_merge import DUPLICATE_MOVES

MAX_MERGED_ALERTS = 500


class AlertMergeSchema(StrictSchema):
    alert_ids = fields.List(
        fields.Integer(validate=validate.Range(min=1)),
        required=True,
        validate=validate.Length(min=1, max=MAX_MERGED_ALERTS),
    )


class IncidentMergeSchema(StrictSchema):
    duplicate_id = fields.Integer(
        required=True,
        validate=validate.Range(min=1),
        metadata={"description": "the incident to close as a duplicate of this one"},
    )


class CarriedSchema(ResponseSchema):
    """What a merge added to the incident (or an unmerge removed from it)."""

    tags = fields.List(fields.String(), required=True)
    techniques = fields.List(fields.String(), required=True)
    ioc_ids = fields.List(fields.Integer(), required=True)


class MergedAlertSchema(ResponseSchema):
    alert = fields.Nested(AlertSchema, required=True)
    carried = fields.Nested(CarriedSchema, required=True)


class AlertMergeResultSchema(ResponseSchema):
    incident = fields.Nested(IncidentSchema, required=True)
    merged = fields.List(fields.Nested(MergedAlertSchema), required=True)


class AlertUnmergeResultSchema(ResponseSchema):
    alert = fields.Nested(AlertSchema, required=True)
    removed = fields.Nested(CarriedSchema, required=True)


# One count per kind of work a duplicate's merge moves: a kind added to DUPLICATE_MOVES
# appears here (and in the OpenAPI document) by itself.
MovedSchema = ResponseSchema.from_dict(
    {kind: fields.Integer(required=True) for kind in DUPLICATE_MOVES}, name="MovedSchema"
)


class IncidentMergeResultSchema(ResponseSchema):
    incident = fields.Nested(IncidentSchema, required=True)
    duplicate = fields.Nested(IncidentSchema, required=True)
    moved = fields.Nested(MovedSchema, required=True)


class SharedItemSchema(ResponseSchema):
    type = text()
    value = text(metadata={"description": "this incident's IOC or observable"})
    matched = text(metadata={"description": "the other's: the same value, or a network"})


class RelatedIncidentSchema(ResponseSchema):
    incident = fields.Nested(IncidentSchema, required=True)
    shared_count = identifier(metadata={"description": "how many of this incident's items"})
    shared = fields.List(fields.Nested(SharedItemSchema), required=True)


class RelatedIncidentsSchema(ResponseSchema):
    items = fields.List(fields.Nested(RelatedIncidentSchema), required=True)
