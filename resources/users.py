"""``/users``: the accounts (admins): list, read, edit (role, activation, profile), reset a
password, end every session, and turn off a second factor; and ``/auth/mfa-policy``, the
roles that must use a second factor.

Every route here is ``users:admin``, which only the admin's ``*:*`` covers: a user reads
their own account at ``/auth/me`` and their sessions at ``/auth/sessions``.
"""

from __future__ import annotations

from flask_restful import Resource

import auth
from models import User, db
from resources.common import ensure_version_matches, load_json, load_query
from resources.openapi import Operation
from resources.responding import page_response, respond
from schemas.users import (
    MfaPolicySchema,
    MfaPolicyUpdateSchema,
    PasswordResetIssuedSchema,
    PasswordResetRequestSchema,
    SessionsRevokedSchema,
    UserDetailSchema,
    UserListQuerySchema,
    UserPageSchema,
    UserUpdateSchema,
)
from security.modules import mfa, mfa_policy, passwords, sessions, user_admin


class UserList(Resource):
    openapi = {
        "get": Operation(
            "Every account, newest first (filter by role, active)",
            permission="users:admin",
            query=UserListQuerySchema,
            responses={200: UserPageSchema},
        )
    }

    def get(self):
        auth.authorize("users:admin")
        query = load_query(UserListQuerySchema())
        statement = user_admin.users_query(query.get("role"), query.get("active"))
        return page_response(statement, User.created_at, User.id, query)


class UserItem(Resource):
    openapi = {
        "get": Operation(
            "One account",
            permission="users:admin",
            responses={200: UserDetailSchema},
            headers=("ETag",),
        ),
        "patch": Operation(
            "Change an account's role, activation, display name or e-mail",
            permission="users:admin",
            body=UserUpdateSchema,
            responses={200: UserDetailSchema},
            headers=("ETag",),
            if_match=True,
            errors=(409,),
            description=(
                "Deactivating ends the user's sessions and revokes their API keys at once; "
                "lowering the role ends their sessions and shrinks their keys to the new "
                "role. The last active admin can be neither deactivated nor demoted (409)."
            ),
        ),
    }

    def get(self, user_id: int):
        auth.authorize("users:admin")
        user = user_admin.get_user(user_id)
        return respond(user, etag=user.version)

    def patch(self, user_id: int):
        auth.authorize("users:admin")
        data = load_json(UserUpdateSchema())
        user = user_admin.get_user(user_id, lock=True)
        ensure_version_matches(user.version)
        user_admin.update_user(user, data)
        db.session.commit()
        auth.forget_verified_tokens()
        return respond(user, etag=user.version)


class UserPasswordReset(Resource):
    openapi = {
        "post": Operation(
            "Reset a user's password: a one-time reset token, or a change forced at next login",
            permission="users:admin",
            body=PasswordResetRequestSchema,
            responses={200: PasswordResetIssuedSchema},
            errors=(409,),
            description=(
                "Either way the user's sessions end. The reset token is shown once and "
                "expires after PASSWORD_RESET_TTL_SECONDS; POST /auth/password/reset "
                "spends it."
            ),
        )
    }

    def post(self, user_id: int):
        auth.authorize("users:admin")
        data = load_json(PasswordResetRequestSchema())
        user = user_admin.get_user(user_id, lock=True)
        issued = passwords.reset_password(user, data["mode"])
        db.session.commit()
        auth.forget_verified_tokens()
        return respond(issued)


class UserSessions(Resource):
    openapi = {
        "delete": Operation(
            "End every session of a user (sign them out everywhere)",
            permission="users:admin",
            responses={200: SessionsRevokedSchema},
        )
    }

    def delete(self, user_id: int):
        auth.authorize("users:admin")
        user = user_admin.get_user(user_id, lock=True)
        revoked = sessions.revoke_sessions(user, reason="admin")
        db.session.commit()
        auth.forget_verified_tokens()
        return respond({"revoked": revoked})


class UserMfa(Resource):
    openapi = {
        "delete": Operation(
            "Turn off a user's second factor (a lost authenticator; audited)",
            permission="users:admin",
            responses={204: None},
            errors=(409,),
            description="409 when the user has no second factor.",
        )
    }

    def delete(self, user_id: int):
        auth.authorize("users:admin")
        user = user_admin.get_user(user_id, lock=True)
        mfa.disable(user, by_admin=True)
        db.session.commit()
        return None, 204


class MfaPolicyItem(Resource):
    openapi = {
        "get": Operation(
            "The roles that must use a second factor",
            permission="users:admin",
            responses={200: MfaPolicySchema},
            headers=("ETag",),
        ),
        "patch": Operation(
            "Set the roles that must use a second factor",
            permission="users:admin",
            body=MfaPolicyUpdateSchema,
            responses={200: MfaPolicySchema},
            headers=("ETag",),
            if_match=True,
            errors=(409,),
            description=(
                "An admin cannot require a factor of their own role before enabling one "
                "(409). Takes effect on every worker within a second: a login session of a user of "
                "a named role without a second factor then grants nothing but their own "
                "account (GET /auth/me, POST /auth/mfa/enrol) until they enable one. API "
                "keys and provider-issued JWTs are not login sessions and are not affected."
            ),
        ),
    }

    def get(self):
        auth.authorize("users:admin")
        policy = mfa_policy.current_policy()
        return respond(policy, etag=policy.version)

    def patch(self):
        principal = auth.authorize("users:admin")
        data = load_json(MfaPolicyUpdateSchema())
        policy = mfa_policy.locked_policy()
        ensure_version_matches(policy.version)
        mfa_policy.set_required_roles(policy, data["required_roles"], principal.user)
        db.session.commit()
        auth.forget_verified_tokens()
        return respond(policy, etag=policy.version)


def register(api) -> None:
    api.add_resource(UserList, "/users")
    api.add_resource(UserItem, "/users/<int:user_id>")
    api.add_resource(UserPasswordReset, "/users/<int:user_id>/password-reset")
    api.add_resource(UserSessions, "/users/<int:user_id>/sessions")
    api.add_resource(UserMfa, "/users/<int:user_id>/mfa")
    api.add_resource(MfaPolicyItem, "/auth/mfa-policy")
