"""Schemas for API keys: what a client may send, and the exact shape of each answer.

Whether scopes lie within the owner's permissions is decided by
``security.modules.credentials`` (a 422 naming the excess scopes), not here.
"""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from schemas.common import (
    ComputedList,
    ComputedString,
    JsonInteger,
    PageQuerySchema,
    ResponseSchema,
    StrictSchema,
    identifier,
    one_of,
    page_of,
    text,
    timestamp,
    trimmed_string,
    utc_datetime,
)
from security.modules.credentials import MAX_ROTATION_GRACE, MAX_SCOPES, IssuedKey

MAX_USAGE_ENTRIES = 500


class ApiKeyCreateSchema(StrictSchema):
    name = trimmed_string(max_length=100, required=True)
    scopes = fields.List(
        fields.String(validate=validate.Length(min=3, max=64)),
        required=True,
        validate=validate.Length(min=1, max=MAX_SCOPES),
        metadata={"description": "area:action permissions, within your own"},
    )
    expires_at = utc_datetime(metadata={"description": "omit for a key that does not expire"})


class ApiKeyRotateSchema(StrictSchema):
    grace_seconds = JsonInteger(
        validate=validate.Range(min=0, max=int(MAX_ROTATION_GRACE.total_seconds())),
        metadata={"description": "how long the old secret keeps working; default 24 h"},
    )


class UsageQuerySchema(StrictSchema):
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=MAX_USAGE_ENTRIES))
    since = utc_datetime()


class ApiKeyListQuerySchema(PageQuerySchema):
    """Your keys; an admin sees everyone's."""


# --- responses ----------------------------------------------------------------------------


class ApiKeySchema(ResponseSchema):
    id = identifier()
    name = text()
    prefix = text(metadata={"description": "the key's public part, sak_xxxxxxxx"})
    owner = ComputedString(lambda key: key.user.username)
    scopes = ComputedList(lambda key: sorted(key.scopes), fields.String())
    state = ComputedString(
        lambda key: key.state(), validate=validate.OneOf(["active", "revoked", "expired"])
    )
    created_at = timestamp()
    expires_at = timestamp(nullable=True)
    revoked_at = timestamp(nullable=True)
    rotated_at = timestamp(nullable=True)
    previous_valid_until = timestamp(nullable=True)
    last_used_at = timestamp(nullable=True)
    last_used_ip = text(nullable=True)


class IssuedApiKeySchema(ApiKeySchema):
    """An :class:`~security.modules.credentials.IssuedKey`: its key's fields, and the secret."""

    key = text(metadata={"description": "the full key; shown only in this answer"})

    def source_of(self, obj: IssuedKey) -> Any:
        return obj.key

    def get_attribute(self, obj: IssuedKey, attr: str, default: Any) -> Any:
        if attr == "key":
            return obj.secret
        return super().get_attribute(obj, attr, default)


ApiKeyPageSchema = page_of(ApiKeySchema, "ApiKeyPageSchema")


class CredentialUsageSchema(ResponseSchema):
    id = identifier()
    credential_kind = one_of(["env", "api_key", "other"])
    credential_name = text()
    api_key_id = fields.Integer(required=True, allow_none=True)
    component = text()
    operation = text()
    ip = text(nullable=True)
    outcome = one_of(["success", "failure", "denied"])
    reason = text(nullable=True)
    occurred_at = timestamp()


class CredentialUsageListSchema(ResponseSchema):
    items = fields.List(fields.Nested(CredentialUsageSchema), required=True)


class FindingCredentialSchema(ResponseSchema):
    kind = text()
    name = text()
    api_key_id = fields.Integer(required=True, allow_none=True)


class FindingSchema(ResponseSchema):
    credential = fields.Nested(FindingCredentialSchema, required=True)
    kind = text(metadata={"description": "many_ips, burst, use_after_rotation, off_hours, ..."})
    severity = one_of(["low", "medium", "high"])
    reason = text()
    evidence = fields.Dict(keys=fields.String(), required=True)


class FindingListSchema(ResponseSchema):
    items = fields.List(fields.Nested(FindingSchema), required=True)
