"""Request schemas for login and user registration."""

from __future__ import annotations

from marshmallow import fields, validate

from models.vocabulary import ROLES
from schemas.common import FullMatch, StrictSchema
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
