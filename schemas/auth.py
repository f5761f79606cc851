"""Schemas for login and user registration, and the accounts they answer with."""

from __future__ import annotations

from marshmallow import fields, validate

from models.users import User
from models.vocabulary import ROLES
from schemas.common import (
    ComputedList,
    ComputedString,
    FullMatch,
    ResponseSchema,
    StrictSchema,
    identifier,
    one_of,
    text,
    timestamp,
)
from security.modules.principals import Principal, permissions_for_role
from security.modules.users import PASSWORD_MAX_LENGTH

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{2,63}$"


class LoginSchema(StrictSchema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=255))
    password = fields.String(
        required=True, validate=validate.Length(min=1, max=PASSWORD_MAX_LENGTH)
    )


class RegisterSchema(StrictSchema):
    username = fields.String(
        required=True,
        validate=FullMatch(
            USERNAME_PATTERN,
            error="3-64 characters: letters, digits and _ . @ -, starting with a letter or digit",
        ),
    )
    # Length and strength are checked against the policy, which reports every rule broken.
    password = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))


# --- responses ----------------------------------------------------------------------------


def _permissions(user: User) -> list[str]:
    return sorted(permissions_for_role(user.role))


class UserSchema(ResponseSchema):
    id = identifier()
    username = text()
    role = one_of(ROLES)
    permissions = ComputedList(_permissions, fields.String())
    is_active = fields.Boolean(required=True)
    created_at = timestamp()
    last_login_at = timestamp(nullable=True)


class MeSchema(UserSchema):
    """The caller's account, with the permissions of this credential (an API key's scopes
    may be fewer than its owner's role grants)."""

    permissions = ComputedList(lambda principal: sorted(principal.permissions), fields.String())
    credential_type = ComputedString(
        lambda principal: principal.credential_type,
        metadata={"description": "token (login), api_key, or jwt (an identity provider's)"},
    )

    def get_attribute(self, obj: Principal, attr: str, default: object) -> object:
        return super().get_attribute(obj.user, attr, default)


class LoginResponseSchema(ResponseSchema):
    access_token = text()
    token_type = one_of(["Bearer"])
    expires_at = timestamp()
    user = fields.Nested(UserSchema, required=True)
