"""``/auth``: log in (bearer token), log out (revoke it), who am I, register users (admins)."""

from __future__ import annotations

from flask import request
from flask_restful import Resource

import auth
import idempotency
from errors import ApiError
from models import User, db, utcnow
from resources.common import load_json
from resources.openapi import AUTHENTICATED, Operation
from resources.responding import respond
from schemas.auth import LoginResponseSchema, LoginSchema, MeSchema, RegisterSchema, UserSchema
from security.events import EventType, emit
from security.modules import audit
from security.modules.ratelimit import login_rate_limit, register_rate_limit
from security.modules.users import create_user, password_policy_violations

USER_CREATION = idempotency.Creation("users.create", User)


class Login(Resource):
    decorators = [login_rate_limit]
    openapi = {
        "post": Operation(
            "Log in: exchange a username and password for a bearer token",
            body=LoginSchema,
            responses={200: LoginResponseSchema},
            errors=(401,),
            description="Repeated failures per account or IP block logins for a while (429).",
        )
    }

    def post(self):
        data = load_json(LoginSchema())
        ip = request.remote_addr or "unknown"
        user = auth.verify_login(data["username"], data["password"], ip)
        raw_token, token = auth.issue_token(user, ip)
        user.last_login_at = utcnow()
        db.session.commit()
        return respond(
            {
                "access_token": raw_token,
                "token_type": "Bearer",
                "expires_at": token.expires_at,
                "user": user,
            }
        )


class Logout(Resource):
    openapi = {
        "post": Operation(
            "Log out: revoke the token this request carries",
            permission=AUTHENTICATED,
            responses={204: None},
        )
    }

    def post(self):
        principal = auth.authenticate()
        if not auth.revoke_token(principal):
            # An API key stays valid: nothing changed, but the call is still audited.
            audit.record("auth.logout", object_type="api_key", object_id=principal.credential_id)
        db.session.commit()
        return None, 204


class Me(Resource):
    openapi = {
        "get": Operation(
            "Who am I: the caller's account and permissions",
            permission=AUTHENTICATED,
            responses={200: MeSchema},
        )
    }

    def get(self):
        return respond(auth.authenticate())


class Register(Resource):
    decorators = [register_rate_limit]
    openapi = {
        "post": Operation(
            "Create a user (admins only)",
            permission="users:admin",
            body=RegisterSchema,
            responses={201: UserSchema},
            headers=("Location", "Idempotent-Replayed"),
            idempotent=True,
            errors=(409, 422),
        )
    }

    def post(self):
        principal = auth.authorize("users:admin")
        data = load_json(RegisterSchema())
        problems = password_policy_violations(data["password"])
        if problems:
            raise ApiError(
                422, "The password does not meet the policy.", errors={"password": problems}
            )

        def create():
            user = create_user(data["username"], data["password"], data["role"])
            emit(EventType.USER_CREATED, user.id, {"username": user.username, "role": user.role})
            return respond(user, 201, headers={"Location": f"/users/{user.id}"})

        return idempotency.answer_once(principal.user_id, USER_CREATION, create)


def register(api) -> None:
    api.add_resource(Login, "/auth/login")
    api.add_resource(Logout, "/auth/logout")
    api.add_resource(Me, "/auth/me")
    api.add_resource(Register, "/auth/register")
