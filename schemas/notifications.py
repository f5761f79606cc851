"""Schemas for notification channels. The apprise URL is accepted, never answered: it
carries the channel's credentials."""

from __future__ import annotations

from marshmallow import fields, validate

from models.vocabulary import SEVERITIES
from schemas.common import (
    JsonBoolean,
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
from security.modules.notifications import KINDS
from security.modules.webhooks import SUBSCRIBABLE_NAMES


class ChannelCreateSchema(StrictSchema):
    name = trimmed_string(required=True, max_length=200)
    url = fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(min=1, max=2_000),
        metadata={
            "description": "an apprise URL: mailto://, mailtos://, slack://, workflows:// (Teams), "
            "mmost:// or mmosts://; stored encrypted, never shown again"
        },
    )
    event_types = fields.List(
        fields.String(validate=validate.OneOf(SUBSCRIBABLE_NAMES)),
        required=True,
        validate=validate.Length(min=1, max=len(SUBSCRIBABLE_NAMES)),
    )
    min_severity = fields.String(
        load_default=None, allow_none=True, validate=validate.OneOf(SEVERITIES)
    )
    only_assigned_to_me = JsonBoolean(
        load_default=False,
        metadata={
            "description": "only incidents assigned to you (with incident.sla_approaching: "
            "your SLA is about to breach)"
        },
    )
    enabled = JsonBoolean(load_default=True)


ChannelEditSchema = edit_of(ChannelCreateSchema, "ChannelEditSchema")


class ChannelSchema(ResponseSchema):
    id = identifier()
    name = text()
    kind = one_of(tuple(KINDS))
    event_types = fields.List(fields.String(), required=True)
    min_severity = one_of(SEVERITIES, nullable=True)
    only_assigned_to_me = fields.Boolean(required=True)
    enabled = fields.Boolean(required=True)
    version = fields.Integer(required=True)
    created_at = timestamp()


ChannelPageSchema = page_of(ChannelSchema, "ChannelPageSchema")


class ChannelTestSchema(ResponseSchema):
    channel = identifier()
    notification_id = fields.String(
        required=True,
        metadata={
            "description": "the queued notification's id: its X-SOC-Notification-Id header "
            "(e-mail) and its body's last line, for receivers to drop a repeat"
        },
    )
