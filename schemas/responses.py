"""Response schemas: the exact shape of what the foundation's resources answer (auth, health,
incidents, and the security admin views).

They exist for the OpenAPI document (``resources/openapi.py``), which schemathesis checks
every live response against, so each mirrors a ``to_dict()`` field for field: every field is
always present (``required``), ``null`` only where the model allows it, and nothing else
appears (unknown fields are an error, which becomes ``additionalProperties: false``).
Request schemas (what a client may send) live in the area modules, not here.
"""

from __future__ import annotations

from collections.abc import Sequence

from marshmallow import INCLUDE, Schema, fields, validate

from models.vocabulary import (
    BLOCK_SCOPES,
    INCIDENT_STATUSES,
    OUTCOMES,
    ROLES,
    SEVERITIES,
    TIMELINE_KINDS,
    TLP_LEVELS,
)


def text(nullable: bool = False, **kwargs) -> fields.String:
    return fields.String(required=True, allow_none=nullable, **kwargs)


def one_of(choices: Sequence[str], nullable: bool = False) -> fields.String:
    return fields.String(required=True, allow_none=nullable, validate=validate.OneOf(choices))


def timestamp(nullable: bool = False) -> fields.DateTime:
    """ISO 8601 UTC with ``Z`` (``format: date-time``)."""
    return fields.DateTime(required=True, allow_none=nullable)


def identifier() -> fields.Integer:
    return fields.Integer(required=True, validate=validate.Range(min=1))


def page_of(item_schema: type[Schema], name: str) -> type[Schema]:
    """The ``{"items": [...], "next_cursor": ...}`` shape of every keyset-paged list."""
    return Schema.from_dict(
        {
            "items": fields.List(fields.Nested(item_schema), required=True),
            "next_cursor": text(
                nullable=True,
                metadata={"description": "pass as ?cursor= for the next page; null at the end"},
            ),
        },
        name=name,
    )


class ProblemSchema(Schema):
    """RFC 9457 problem details; extension members (``current_version``,
    ``allowed_transitions``, ...) may follow, so unknown fields are allowed here."""

    class Meta:
        unknown = INCLUDE

    type = text()
    title = text()
    status = fields.Integer(required=True, validate=validate.Range(min=400, max=599))
    detail = text()
    request_id = text(nullable=True)
    errors = fields.Dict(
        keys=fields.String(),
        metadata={"description": "per-field messages, on validation errors"},
    )


class UserSchema(Schema):
    id = identifier()
    username = text()
    role = one_of(ROLES)
    permissions = fields.List(fields.String(), required=True)
    is_active = fields.Boolean(required=True)
    created_at = timestamp()
    last_login_at = timestamp(nullable=True)


class MeSchema(UserSchema):
    credential_type = text(metadata={"description": "token (login) or api_key"})


class LoginResponseSchema(Schema):
    access_token = text()
    token_type = one_of(["Bearer"])
    expires_at = timestamp()
    user = fields.Nested(UserSchema, required=True)


class HealthSchema(Schema):
    status = one_of(["ok"])


class ReadySchema(Schema):
    status = one_of(["ready"])
    database = one_of(["ok"])
    migrations = one_of(["current"])


class SlaSchema(Schema):
    response_due = timestamp()
    resolution_due = timestamp()
    responded_at = timestamp(nullable=True)
    resolved_at = timestamp(nullable=True)
    response_breached = fields.Boolean(required=True)
    resolution_breached = fields.Boolean(required=True)


class IncidentSchema(Schema):
    id = identifier()
    title = text()
    description = text()
    severity = one_of(SEVERITIES)
    status = one_of(INCIDENT_STATUSES)
    tlp = one_of(TLP_LEVELS)
    reporter = text()
    assignee = text(nullable=True)
    version = fields.Integer(required=True, validate=validate.Range(min=1))
    created_at = timestamp()
    updated_at = timestamp()
    allowed_transitions = fields.List(
        fields.String(validate=validate.OneOf(INCIDENT_STATUSES)), required=True
    )
    sla = fields.Nested(SlaSchema, required=True)


class TimelineEntrySchema(Schema):
    id = identifier()
    incident_id = identifier()
    kind = one_of(TIMELINE_KINDS)
    actor = text(nullable=True)
    from_status = one_of(INCIDENT_STATUSES, nullable=True)
    to_status = one_of(INCIDENT_STATUSES, nullable=True)
    changes = fields.Dict(
        keys=fields.String(),
        required=True,
        metadata={"description": "edited fields as {field: [old, new]}"},
    )
    comment = text(nullable=True)
    created_at = timestamp()


class TimelineSchema(Schema):
    items = fields.List(fields.Nested(TimelineEntrySchema), required=True)


IncidentPageSchema = page_of(IncidentSchema, "IncidentPageSchema")


class AuthBlockSchema(Schema):
    id = identifier()
    scope = one_of(BLOCK_SCOPES)
    subject = text()
    reason = text()
    failure_count = fields.Integer(required=True)
    created_at = timestamp()
    blocked_until = timestamp()
    lifted_at = timestamp(nullable=True)


class AuditEntrySchema(Schema):
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
