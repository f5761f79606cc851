"""``/auth``: log in (bearer token), log out (revoke it), who am I, register users (admins)."""

from __future__ import annotations

from flask import request
from flask_restful import Resource
from sqlalchemy import func, select

import auth
import idempotency
from errors import ApiError
from models import User, db, utcnow
from resources.common import load_json
from resources.openapi import AUTHENTICATED, Operation
from schemas.auth import LoginSchema, RegisterSchema
from schemas.responses import LoginResponseSchema, MeSchema, UserSchema
from security.events import EventType, emit
from security.modules import audit
from security.modules.ratelimit import login_rate_limit, register_rate_limit

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
        audit.record("auth.login", actor_id=user.id, actor=user.username)
        db.session.commit()
        return {
            "access_token": raw_token,
            "token_type": "Bearer",
            "expires_at": token.expires_at,
            "user": user.to_dict(),
        }, 200


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
        auth.revoke_token(principal)
        audit.record("auth.logout", object_type="auth_token", object_id=principal.credential_id)
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
        principal = auth.authenticate()
        body = principal.user.to_dict()
        body["credential_type"] = principal.credential_type
        body["permissions"] = sorted(principal.permissions)
        return body, 200


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
        problems = auth.password_policy_violations(data["password"])
        if problems:
            raise ApiError(
                422, "The password does not meet the policy.", errors={"password": problems}
            )

        def create():
            user = create_user(data["username"], data["password"], data["role"])
            emit(EventType.USER_CREATED, user.id, {"username": user.username, "role": user.role})
            return user.to_dict(), 201, {"Location": f"/users/{user.id}"}

        return idempotency.answer_once(principal.user.id, USER_CREATION, create)


def username_taken_message(username: str) -> str | None:
    """Why ``username`` cannot be used (taken, case-insensitively), or None if it can."""
    taken = db.session.scalar(select(User.id).where(func.lower(User.username) == username.lower()))
    return None if taken is None else f"The username {username!r} is already taken."


def create_user(username: str, password: str, role: str) -> User:
    """Add a user (the caller commits); 409 if the name is taken, case-insensitively."""
    taken = username_taken_message(username)
    if taken is not None:
        raise ApiError(409, taken)
    user = User(username=username, password_hash=auth.hash_password(password), role=role)
    db.session.add(user)
    db.session.flush()
    return user


def register(api) -> None:
    api.add_resource(Login, "/auth/login")
    api.add_resource(Logout, "/auth/logout")
    api.add_resource(Me, "/auth/me")
    api.add_resource(Register, "/auth/register")
