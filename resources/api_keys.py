"""``/api-keys``: issue, list, read, revoke and rotate API keys; their usage and findings.

A user manages their own keys (``apikeys:write``); an admin manages everyone's. Someone
else's key is a 404, never a 403. Answers carrying a secret are marked ``no-store``.
Thin edge over :mod:`security.modules.credentials`.
"""

from __future__ import annotations

from datetime import timedelta

from flask import request
from flask_restful import Resource

import idempotency
from auth import authorize
from models import ApiKey, db
from resources.common import load_json, load_query
from resources.openapi import Operation
from resources.responding import page_response, respond
from schemas.api_keys import (
    ApiKeyCreateSchema,
    ApiKeyListQuerySchema,
    ApiKeyPageSchema,
    ApiKeyRotateSchema,
    ApiKeySchema,
    CredentialUsageListSchema,
    FindingListSchema,
    IssuedApiKeySchema,
    UsageQuerySchema,
)
from security.modules import credentials

SECRET_HEADERS = {"Cache-Control": "no-store"}
API_KEY_CREATION = idempotency.Creation("apikeys.create", ApiKey, shown_once="key")


class ApiKeyList(Resource):
    openapi = {
        "get": Operation(
            "List API keys (yours; an admin sees all), newest first",
            permission="apikeys:read",
            query=ApiKeyListQuerySchema,
            responses={200: ApiKeyPageSchema},
        ),
        "post": Operation(
            "Issue an API key for yourself; the key is shown only in this answer",
            permission="apikeys:write",
            body=ApiKeyCreateSchema,
            responses={201: IssuedApiKeySchema},
            headers=("Location",),
            idempotent=True,
            errors=(422,),
            description=(
                "The key's value is never stored, so a retry with the same Idempotency-Key "
                "is 409 naming the key issued first: rotate it for a new value."
            ),
        ),
    }

    def get(self):
        principal = authorize("apikeys:read")
        query = load_query(ApiKeyListQuerySchema())
        return page_response(
            credentials.visible_api_keys(principal), ApiKey.created_at, ApiKey.id, query
        )

    def post(self):
        principal = authorize("apikeys:write")
        data = load_json(ApiKeyCreateSchema())

        def issue():
            issued = credentials.create_api_key(
                principal.user,
                data["name"],
                data["scopes"],
                expires_at=data.get("expires_at"),
                principal=principal,
            )
            headers = {**SECRET_HEADERS, "Location": f"/api-keys/{issued.key.id}"}
            return respond(issued, 201, headers=headers)

        return idempotency.answer_once(principal.user_id, API_KEY_CREATION, issue)


class ApiKeyItem(Resource):
    openapi = {
        "get": Operation(
            "Read an API key (never its secret)",
            permission="apikeys:read",
            responses={200: ApiKeySchema},
        ),
        "delete": Operation(
            "Revoke an API key: both its secrets stop working at once",
            permission="apikeys:write",
            responses={204: None},
        ),
    }

    def get(self, key_id: int):
        principal = authorize("apikeys:read")
        return respond(credentials.get_visible_api_key(principal, key_id))

    def delete(self, key_id: int):
        principal = authorize("apikeys:write")
        key = credentials.get_visible_api_key(principal, key_id, lock=True)
        credentials.revoke_api_key(key)
        db.session.commit()
        return None, 204


class ApiKeyRotation(Resource):
    openapi = {
        "post": Operation(
            "Rotate an API key: a new secret now, the old one valid for a grace period",
            permission="apikeys:write",
            body=ApiKeyRotateSchema,
            responses={200: IssuedApiKeySchema},
            errors=(422,),
            description="The body is optional; the default grace period is 24 hours.",
        ),
    }

    def post(self, key_id: int):
        principal = authorize("apikeys:write")
        data = load_json(ApiKeyRotateSchema()) if request.content_length else {}
        key = credentials.get_visible_api_key(principal, key_id, lock=True)
        grace = data.get("grace_seconds")
        issued = credentials.rotate_credential(
            key, grace=None if grace is None else timedelta(seconds=grace)
        )
        db.session.commit()
        return respond(issued, headers=SECRET_HEADERS)


class ApiKeyUsage(Resource):
    openapi = {
        "get": Operation(
            "The key's recent uses and failed attempts, newest first",
            permission="apikeys:read",
            query=UsageQuerySchema,
            responses={200: CredentialUsageListSchema},
        ),
    }

    def get(self, key_id: int):
        principal = authorize("apikeys:read")
        query = load_query(UsageQuerySchema())
        key = credentials.get_visible_api_key(principal, key_id)
        entries = credentials.get_recent_usage(key, since=query.get("since"), limit=query["limit"])
        return respond({"items": entries})


class ApiKeyFindings(Resource):
    openapi = {
        "get": Operation(
            "Suspicious activity of the key in the last 24 hours, each finding with its reason",
            permission="apikeys:read",
            responses={200: FindingListSchema},
        ),
    }

    def get(self, key_id: int):
        principal = authorize("apikeys:read")
        key = credentials.get_visible_api_key(principal, key_id)
        return respond({"items": credentials.analyze_for_suspicious_activity(key)})


def register(api) -> None:
    api.add_resource(ApiKeyList, "/api-keys")
    api.add_resource(ApiKeyItem, "/api-keys/<int:key_id>")
    api.add_resource(ApiKeyRotation, "/api-keys/<int:key_id>/rotate")
    api.add_resource(ApiKeyUsage, "/api-keys/<int:key_id>/usage")
    api.add_resource(ApiKeyFindings, "/api-keys/<int:key_id>/findings")
