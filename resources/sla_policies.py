"""``/sla-policies``: the versions of the SLA policy; an admin writes the next one."""

from __future__ import annotations

from flask_restful import Resource

import idempotency
from auth import authorize
from models import SlaPolicy
from resources.common import load_json, load_query
from resources.openapi import Operation
from resources.responding import page_response, respond
from schemas.common import PageQuerySchema
from schemas.sla_policies import SlaPolicyCreateSchema, SlaPolicyPageSchema, SlaPolicySchema
from security.modules import sla_policies

POLICY_CREATION = idempotency.Creation("sla_policies.create", SlaPolicy)


class SlaPolicyList(Resource):
    openapi = {
        "get": Operation(
            "Every SLA policy version, newest first",
            permission="sla_policies:read",
            query=PageQuerySchema,
            responses={200: SlaPolicyPageSchema},
        ),
        "post": Operation(
            "Write the next SLA policy version (incidents opened from now on take it)",
            permission="sla_policies:admin",
            body=SlaPolicyCreateSchema,
            responses={201: SlaPolicySchema},
            headers=("ETag", "Location", "Idempotent-Replayed"),
            idempotent=True,
            description=(
                "A version never changes: incidents keep the version they were opened under."
            ),
        ),
    }

    def get(self):
        authorize("sla_policies:read")
        query = load_query(PageQuerySchema())
        return page_response(sla_policies.policies(), SlaPolicy.created_at, SlaPolicy.id, query)

    def post(self):
        principal = authorize("sla_policies:admin")
        data = load_json(SlaPolicyCreateSchema())

        def create():
            policy = sla_policies.create_policy(data)
            location = {"Location": f"/sla-policies/{policy.id}"}
            return respond(policy, 201, etag=policy.version, headers=location)

        return idempotency.answer_once(principal.user.id, POLICY_CREATION, create)


class SlaPolicyItem(Resource):
    openapi = {
        "get": Operation(
            "One SLA policy version",
            permission="sla_policies:read",
            responses={200: SlaPolicySchema},
            headers=("ETag",),
        )
    }

    def get(self, policy_id: int):
        authorize("sla_policies:read")
        policy = sla_policies.get_policy(policy_id)
        return respond(policy, etag=policy.version)


def register(api) -> None:
    api.add_resource(SlaPolicyList, "/sla-policies")
    api.add_resource(SlaPolicyItem, "/sla-policies/<int:policy_id>")
