"""``/auth``: log in (bearer token, or a challenge when a second factor is due), log out,
who am I, register users (admins); and the caller's own identity: changing the password,
spending a reset token, their sessions, their second factor.

Administering other users is ``resources/users.py``; single sign-on ``resources/sso.py``.
"""

from __future__ import annotations

from flask import request
from flask_restful import Resource

import auth
import idempotency
from errors import ApiError
from models import AuthToken, User, db, utcnow
from resources.common import load_json, load_query
from resources.openapi import AUTHENTICATED, Operation
from resources.responding import page_response, respond
from schemas.auth import LoginResponseSchema, LoginSchema, MeSchema, RegisterSchema, UserSchema
from schemas.common import PageQuerySchema
from schemas.users import (
    MfaChallengeSchema,
    MfaDisableSchema,
    MfaEnabledSchema,
    MfaEnrolmentSchema,
    MfaLoginSchema,
    PasswordChangeSchema,
    PasswordResetCompleteSchema,
    SecondFactorSchema,
    SessionPageSchema,
)
from security.events import EventType, emit
from security.modules import audit, mfa, passwords, sessions, user_admin
from security.modules.ratelimit import login_rate_limit, register_rate_limit
from security.modules.users import create_user, password_policy_violations

USER_CREATION = idempotency.Creation("users.create", User)


class Login(Resource):
    decorators = [login_rate_limit]
    openapi = {
        "post": Operation(
            "Log in: exchange a username and password for a bearer token",
            body=LoginSchema,
            responses={200: LoginResponseSchema, 202: MfaChallengeSchema},
            errors=(401,),
            description=(
                "Repeated failures per account or IP block logins for a while (429). With a "
                "second factor enabled the answer is 202 with a challenge for POST /auth/mfa; "
                "after an admin's password reset it is 403 until the password is changed."
            ),
        )
    }

    def post(self):
        data = load_json(LoginSchema())
        ip = request.remote_addr or "unknown"
        user = auth.verify_login(data["username"], data["password"], ip)
        if user.must_change_password:
            audit.record_now(
                "auth.login",
                outcome="denied",
                actor_id=user.id,
                actor=user.username,
                details={"reason": "password_change_required"},
            )
            raise ApiError(
                403,
                "An admin reset this password: choose a new one with POST /auth/password "
                "(username, current_password, new_password) or the reset token.",
            )
        if user.mfa_enabled:
            challenge, row = mfa.start_challenge(user, ip)
            db.session.commit()
            body = {"mfa_required": True, "challenge": challenge, "expires_at": row.expires_at}
            return respond(body, 202)
        return token_answer(user, ip)


def token_answer(user: User, ip: str):
    """The end of every successful login (password, second factor, single sign-on): a new
    session's bearer token, committed with the login's audit entry."""
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
        problems = password_policy_violations(data["password"], data["username"])
        if problems:
            raise ApiError(
                422, "The password does not meet the policy.", errors={"password": problems}
            )

        def create():
            user = create_user(data["username"], data["password"], data["role"])
            emit(EventType.USER_CREATED, user.id, {"username": user.username, "role": user.role})
            return respond(user, 201, headers={"Location": f"/users/{user.id}"})

        return idempotency.answer_once(principal.user_id, USER_CREATION, create)


class MfaLogin(Resource):
    decorators = [login_rate_limit]
    openapi = {
        "post": Operation(
            "Log in, second step: the challenge and a TOTP or recovery code for a bearer token",
            body=MfaLoginSchema,
            responses={200: LoginResponseSchema},
            errors=(401,),
            description=(
                "A code is accepted once; wrong codes count toward the login lockout (429)."
            ),
        )
    }

    def post(self):
        data = load_json(MfaLoginSchema())
        ip = request.remote_addr or "unknown"
        user = mfa.complete_challenge(data["challenge"], data["code"], ip)
        return token_answer(user, ip)


class PasswordChange(Resource):
    decorators = [login_rate_limit]
    openapi = {
        "post": Operation(
            "Change a password: your own (bearer token), or one an admin reset or that expired "
            "(username, no token)",
            body=PasswordChangeSchema,
            responses={204: None},
            errors=(401, 409, 422),
            description=(
                "The current password is checked like a login (wrong ones count toward the "
                "lockout); every other session of the user ends. A single-sign-on account "
                "is 409 while SSO_LOCAL_PASSWORDS is disabled (the default)."
            ),
        )
    }

    def post(self):
        data = load_json(PasswordChangeSchema())
        ip = request.remote_addr or "unknown"
        keep = None
        if auth.bearer_credential() is not None:
            principal = auth.authenticate()
            user = principal.user
            if principal.credential_type == "token":
                keep = principal.credential_id
        elif "username" in data:
            user = passwords.user_named(data["username"], ip)
        else:
            raise ApiError(401, "Send a bearer token, or the username whose password changes.")
        passwords.change_password(
            user, data["current_password"], data["new_password"], ip, keep_session=keep
        )
        db.session.commit()
        auth.forget_verified_tokens()
        return None, 204


class PasswordResetUse(Resource):
    decorators = [login_rate_limit]
    openapi = {
        "post": Operation(
            "Set a new password with the one-time reset token an admin issued",
            body=PasswordResetCompleteSchema,
            responses={204: None},
            errors=(401, 409, 422),
            description="409: a single-sign-on account while SSO_LOCAL_PASSWORDS is disabled.",
        )
    }

    def post(self):
        data = load_json(PasswordResetCompleteSchema())
        passwords.complete_reset(data["reset_token"], data["new_password"])
        db.session.commit()
        return None, 204


class SessionList(Resource):
    openapi = {
        "get": Operation(
            "Your open sessions: created, last used, client address, user agent",
            permission=AUTHENTICATED,
            query=PageQuerySchema,
            responses={200: SessionPageSchema},
        )
    }

    def get(self):
        principal = auth.authenticate()
        query = load_query(PageQuerySchema())
        statement = sessions.open_sessions(principal.user_id)
        return page_response(statement, AuthToken.created_at, AuthToken.id, query)


class SessionItem(Resource):
    openapi = {
        "delete": Operation(
            "End one of your sessions (another device); someone else's is 404",
            permission=AUTHENTICATED,
            responses={204: None},
        )
    }

    def delete(self, session_id: int):
        principal = auth.authenticate()
        token = sessions.get_own_session(principal, session_id)
        sessions.revoke_session(token)
        db.session.commit()
        auth.forget_verified_tokens()
        return None, 204


class MfaEnrol(Resource):
    openapi = {
        "post": Operation(
            "Start enrolling a TOTP second factor: its otpauth:// URI, shown once",
            permission=AUTHENTICATED,
            responses={200: MfaEnrolmentSchema},
            errors=(409, 503),
            description="Confirm with POST /auth/mfa/confirm and a code from the app.",
        )
    }

    def post(self):
        user = own_account()
        uri, secret = mfa.begin_enrolment(user)
        db.session.commit()
        return respond({"otpauth_uri": uri, "secret": secret})


class MfaConfirm(Resource):
    decorators = [login_rate_limit]
    openapi = {
        "post": Operation(
            "Turn the enrolled second factor on with a code: ten recovery codes, shown once",
            permission=AUTHENTICATED,
            body=SecondFactorSchema,
            responses={200: MfaEnabledSchema},
            errors=(409, 422),
        )
    }

    def post(self):
        user = own_account()
        data = load_json(SecondFactorSchema())
        codes = mfa.confirm_enrolment(user, data["code"])
        db.session.commit()
        auth.forget_verified_tokens()
        return respond({"recovery_codes": codes})


class MfaDisable(Resource):
    decorators = [login_rate_limit]
    openapi = {
        "post": Operation(
            "Turn your second factor off, proving it with a code or a recovery code",
            permission=AUTHENTICATED,
            body=MfaDisableSchema,
            responses={204: None},
            errors=(409, 422),
        )
    }

    def post(self):
        user = own_account()
        data = load_json(MfaDisableSchema())
        mfa.disable_own(user, data["code"])
        db.session.commit()
        auth.forget_verified_tokens()
        return None, 204


def own_account() -> User:
    """The caller's own row, locked: only a login session (not an API key) manages it."""
    principal = auth.authenticate()
    if principal.credential_type != "token":
        raise ApiError(403, "Manage your second factor with a login session, not an API key.")
    return user_admin.get_user(principal.user_id, lock=True)


def register(api) -> None:
    api.add_resource(Login, "/auth/login")
    api.add_resource(MfaLogin, "/auth/mfa")
    api.add_resource(MfaEnrol, "/auth/mfa/enrol")
    api.add_resource(MfaConfirm, "/auth/mfa/confirm")
    api.add_resource(MfaDisable, "/auth/mfa/disable")
    api.add_resource(PasswordChange, "/auth/password")
    api.add_resource(PasswordResetUse, "/auth/password/reset")
    api.add_resource(SessionList, "/auth/sessions")
    api.add_resource(SessionItem, "/auth/sessions/<int:session_id>")
    api.add_resource(Logout, "/auth/logout")
    api.add_resource(Me, "/auth/me")
    api.add_resource(Register, "/auth/register")
