"""Schemas for webhooks and their deliveries, and for ``/jobs``.

The secret is in one answer only, the create's (:class:`CreatedWebhookSchema`); no other
schema declares it, so no other answer can carry it.
"""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from models.vocabulary import DELIVERY_STATUSES, SEVERITIES
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
from security.modules.webhooks import SUBSCRIBABLE_NAMES, CreatedWebhook

URL_MAX = 2_000


class WebhookCreateSchema(StrictSchema):
    name = trimmed_string(required=True, max_length=200)
    url = fields.String(
        required=True,
        validate=validate.Length(min=1, max=URL_MAX),
        metadata={"description": "https, or http to a host in OUTBOUND_ALLOWED_HOSTS"},
    )
    event_types = fields.List(
        fields.String(validate=validate.OneOf(SUBSCRIBABLE_NAMES)),
        required=True,
        validate=validate.Length(min=1, max=len(SUBSCRIBABLE_NAMES)),
    )
    min_severity = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.OneOf(SEVERITIES),
        metadata={"description": "only events about a subject this severe or more"},
    )
    enabled = JsonBoolean(load_default=True)


WebhookEditSchema = edit_of(WebhookCreateSchema, "WebhookEditSchema")


class WebhookSchema(ResponseSchema):
    id = identifier()
    name = text()
    url = text()
    event_types = fields.List(fields.String(), required=True)
    min_severity = one_of(SEVERITIES, nullable=True)
    enabled = fields.Boolean(required=True)
    version = fields.Integer(required=True)
    created_at = timestamp()
    updated_at = timestamp()


WebhookPageSchema = page_of(WebhookSchema, "WebhookPageSchema")


class CreatedWebhookSchema(WebhookSchema):
    """A :class:`~security.modules.webhooks.CreatedWebhook`: the webhook and its secret."""

    secret = text(metadata={"description": "the Standard Webhooks signing secret; shown only here"})

    def source_of(self, obj: CreatedWebhook) -> Any:
        return obj.webhook

    def get_attribute(self, obj: CreatedWebhook, attr: str, default: Any) -> Any:
        if attr == "secret":
            return obj.secret
        return super().get_attribute(obj, attr, default)


class DeliverySchema(ResponseSchema):
    id = identifier()
    webhook_id = identifier()
    message_id = text(metadata={"description": "the webhook-id header, the same on each attempt"})
    event_type = text()
    status = one_of(DELIVERY_STATUSES)
    attempts = fields.Integer(required=True)
    next_attempt_at = timestamp()
    response_code = fields.Integer(required=True, allow_none=True)
    latency_ms = fields.Integer(required=True, allow_none=True)
    last_error = text(nullable=True)
    created_at = timestamp()
    delivered_at = timestamp(nullable=True)


DeliveryPageSchema = page_of(DeliverySchema, "DeliveryPageSchema")


class JobsSchema(ResponseSchema):
    queued = fields.Integer(required=True, metadata={"description": "jobs waiting"})
    running = fields.Integer(required=True, metadata={"description": "jobs on live workers"})
    stalled = fields.Integer(
        required=True,
        metadata={"description": "jobs of workers that stopped beating (queued again soon)"},
    )
    failed = fields.Integer(required=True, metadata={"description": "jobs that raised"})
    deliveries = fields.Dict(
        keys=fields.String(validate=validate.OneOf(DELIVERY_STATUSES)),
        values=fields.Integer(),
        required=True,
        metadata={"description": "webhook deliveries by status (failed: the dead letters)"},
    )
