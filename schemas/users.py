"""Schemas for user administration (``/users``), passwords, sessions and the second factor.

The PATCH body names exactly what an admin may change; anything else (``username``,
``password_hash``, ``mfa_secret``, ``id``) is an unknown field and a 400, so mass
assignment has nothing to reach.
"""

from __future__ import annotations

from flask import g
from marshmallow import fields, validate

from models.vocabulary import ROLES
from schemas.auth import UserSchema
from schemas.common import (
    ChangeSchema,
    ComputedBoolean,
    JsonBoolean,
    PageQuerySchema,
    QueryBoolean,
    ResponseSchema,
    StrictSchema,
    identifier,
    one_of,
    page_of,
    text,
    timestamp,
    trimmed_string,
)
from security.modules.users import PASSWORD_MAX_LENGTH

TOTP_CODE_PATTERN = r"^[0-9]{6}$"
# A code is six digits, a recovery code longer; either fits in 64 characters.
SECOND_FACTOR_MAX_LENGTH = 64


class UserListQuerySchema(PageQuerySchema):
    role = fields.String(validate=validate.OneOf(ROLES))
    active = QueryBoolean(metadata={"description": "true: active accounts; false: deactivated"})


class UserUpdateSchema(ChangeSchema):
    role = fields.String(validate=validate.OneOf(ROLES))
    is_active = JsonBoolean()
    display_name = trimmed_string(max_length=128, allow_none=True)
    email = fields.Email(validate=validate.Length(max=254), allow_none=True)


class PasswordChangeSchema(StrictSchema):
    """The caller's own change (with a bearer token), or a forced or expired one (with
    ``username``, no token)."""

    username = fields.String(validate=validate.Length(min=1, max=255))
    current_password = fields.String(
        required=True, validate=validate.Length(min=1, max=PASSWORD_MAX_LENGTH)
    )
    new_password = fields.String(required=True)


class PasswordResetRequestSchema(StrictSchema):
    """An admin's reset: a one-time token to hand over, or a change forced at next login."""

    mode = fields.String(required=True, validate=validate.OneOf(("token", "force_change")))


class PasswordResetCompleteSchema(StrictSchema):
    reset_token = fields.String(required=True, validate=validate.Length(min=1, max=128))
    new_password = fields.String(required=True)


class SecondFactorSchema(StrictSchema):
    """A TOTP code (six digits) or one of the recovery codes."""

    code = fields.String(
        required=True, validate=validate.Length(min=1, max=SECOND_FACTOR_MAX_LENGTH)
    )


class MfaLoginSchema(SecondFactorSchema):
    challenge = fields.String(required=True, validate=validate.Length(min=1, max=128))


class MfaDisableSchema(StrictSchema):
    """Your own second factor ends with a current code (or a recovery code)."""

    code = fields.String(
        required=True, validate=validate.Length(min=1, max=SECOND_FACTOR_MAX_LENGTH)
    )


class MfaPolicyUpdateSchema(StrictSchema):
    """The whole policy: every role that must use a second factor (``[]``: none)."""

    required_roles = fields.List(
        fields.String(validate=validate.OneOf(ROLES)),
        required=True,
        validate=validate.Length(max=len(ROLES)),
        metadata={"description": "roles whose sessions grant nothing until a factor is on"},
    )


# --- responses ----------------------------------------------------------------------------


class UserDetailSchema(UserSchema):
    display_name = text(nullable=True)
    email = text(nullable=True)
    version = fields.Integer(required=True)
    must_change_password = fields.Boolean(required=True)
    mfa_enabled = ComputedBoolean(lambda user: user.mfa_enabled)
    sso = ComputedBoolean(lambda user: user.is_sso, metadata={"description": "signs in via SSO"})


UserPageSchema = page_of(UserDetailSchema, "UserPageSchema")


class SessionSchema(ResponseSchema):
    id = identifier()
    created_at = timestamp()
    expires_at = timestamp()
    last_used_at = timestamp(nullable=True)
    client_address = text(nullable=True, attribute="created_ip")
    user_agent = text(nullable=True)
    current = ComputedBoolean(
        lambda token: _is_current_session(token.id),
        metadata={"description": "whether this request came with this session's token"},
    )


def _is_current_session(session_id: int) -> bool:
    principal = g.get("principal")
    return (
        principal is not None
        and principal.credential_type == "token"
        and principal.credential_id == session_id
    )


SessionPageSchema = page_of(SessionSchema, "SessionPageSchema")


class SessionsRevokedSchema(ResponseSchema):
    revoked = fields.List(fields.Integer(), required=True)


class PasswordResetIssuedSchema(ResponseSchema):
    user_id = identifier()
    mode = one_of(["token", "force_change"])
    reset_token = text(nullable=True, metadata={"description": "shown once; null for force_change"})
    expires_at = timestamp(nullable=True)


class MfaEnrolmentSchema(ResponseSchema):
    otpauth_uri = text(metadata={"description": "otpauth:// URI for an authenticator; shown once"})
    secret = text(metadata={"description": "the same secret in base32; shown once"})


class MfaEnabledSchema(ResponseSchema):
    recovery_codes = fields.List(
        fields.String(), required=True, metadata={"description": "ten one-time codes; shown once"}
    )


class MfaChallengeSchema(ResponseSchema):
    mfa_required = fields.Boolean(required=True)
    challenge = text(metadata={"description": "send it to POST /auth/mfa with a code"})
    expires_at = timestamp()


class MfaPolicySchema(ResponseSchema):
    required_roles = fields.List(
        fields.String(validate=validate.OneOf(ROLES)),
        required=True,
        metadata={"description": "roles whose sessions grant nothing until a factor is on"},
    )
    version = fields.Integer(required=True)
    updated_at = timestamp(nullable=True)
    updated_by = text(nullable=True)
