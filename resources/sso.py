"""``/auth/oidc``: single sign-on with the organisation's OpenID Connect provider.

``GET /auth/oidc/login`` sends the browser to the provider (authorization code + PKCE);
the provider sends it back to ``GET /auth/oidc/callback``, which answers like
``POST /auth/login``: a bearer token. What the callback must find again (state, nonce,
code verifier) travels in a short-lived cookie signed with ``SECRET_KEY``, scoped to
``/auth/oidc``; nothing is stored server-side for an unfinished sign-in. The engine is
:mod:`security.modules.sso`.
"""

from __future__ import annotations

from flask import current_app, request
from flask_restful import Resource
from itsdangerous import BadSignature, URLSafeTimedSerializer
from marshmallow import fields, validate
from werkzeug.http import dump_cookie

from errors import ApiError
from resources.auth import token_answer
from resources.common import load_query
from resources.openapi import Operation
from schemas.auth import LoginResponseSchema
from schemas.common import StrictSchema
from security.modules import sso

COOKIE = "soc_oidc"
COOKIE_PATH = "/auth/oidc"
# How long a sign-in may take at the provider before it must start again.
SIGN_IN_SECONDS = 600


class OidcCallbackQuerySchema(StrictSchema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=2048))
    state = fields.String(required=True, validate=validate.Length(min=1, max=256))


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="oidc-sign-in")


def _ensure_enabled() -> None:
    if not sso.enabled():
        raise ApiError(404, "Single sign-on is not configured (OIDC_ISSUER).")


class OidcLogin(Resource):
    openapi = {
        "get": Operation(
            "Sign in with the identity provider: a redirect to its login page (PKCE)",
            responses={302: None},
            headers=("Location",),
            errors=(404, 503),
        )
    }

    def get(self):
        _ensure_enabled()
        start = sso.start_login()
        kept = {"state": start.state, "nonce": start.nonce, "code_verifier": start.code_verifier}
        cookie = dump_cookie(
            COOKIE,
            _serializer().dumps(kept),
            max_age=SIGN_IN_SECONDS,
            path=COOKIE_PATH,
            secure=request.is_secure,
            httponly=True,
            samesite="Lax",
        )
        return None, 302, {"Location": start.authorization_url, "Set-Cookie": cookie}


class OidcCallback(Resource):
    openapi = {
        "get": Operation(
            "Where the identity provider returns: exchanges the code for a bearer token",
            query=OidcCallbackQuerySchema,
            responses={200: LoginResponseSchema},
            errors=(401, 403, 404, 503),
            description=(
                "The role comes from OIDC_ROLE_CLAIM through OIDC_ROLE_MAP; an unknown "
                "identity gets an account when OIDC_JIT_USERS is on, else 403."
            ),
        )
    }

    def get(self):
        _ensure_enabled()
        query = load_query(OidcCallbackQuerySchema())
        try:
            expected = _serializer().loads(request.cookies.get(COOKIE, ""), max_age=SIGN_IN_SECONDS)
        except BadSignature:
            raise ApiError(401, "The sign-in expired or did not start here: start again.") from None
        user = sso.finish_login(query["code"], query["state"], expected)
        return token_answer(user, request.remote_addr or "unknown")


def register(api) -> None:
    api.add_resource(OidcLogin, "/auth/oidc/login")
    api.add_resource(OidcCallback, "/auth/oidc/callback")
