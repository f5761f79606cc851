"""``/security/blocks`` (login blocks: list, lift) and ``/audit`` (read the audit log): admins only.

The guard itself lives in :mod:`security.modules.brute_force`; the log is written by
:mod:`security.modules.audit`. These views only read them and lift blocks.
"""

from __future__ import annotations

from flask_restful import Resource
from sqlalchemy import func, select

from auth import authorize
from errors import ApiError
from models import AuditEntry, AuthBlock, db
from resources.common import load_query
from resources.openapi import Operation
from resources.responding import page_response, respond
from schemas.security_admin import (
    AuditPageSchema,
    AuditQuerySchema,
    AuthBlockPageSchema,
    AuthBlockSchema,
    BlockListQuerySchema,
)
from security.modules import brute_force

# Query parameter -> the condition it adds; each one narrows the list.
AUDIT_FILTERS = {
    "action": lambda value: AuditEntry.action == value,
    "actor": lambda value: func.lower(AuditEntry.actor) == value.lower(),
    "outcome": lambda value: AuditEntry.outcome == value,
    "object_type": lambda value: AuditEntry.object_type == value,
    "object_id": lambda value: AuditEntry.object_id == value,
    "since": lambda value: AuditEntry.occurred_at >= value,
    "until": lambda value: AuditEntry.occurred_at < value,
}


class BlockList(Resource):
    openapi = {
        "get": Operation(
            "Login blocks of the brute-force guard, newest first",
            permission="security:admin",
            query=BlockListQuerySchema,
            responses={200: AuthBlockPageSchema},
        )
    }

    def get(self):
        authorize("security:admin")
        query = load_query(BlockListQuerySchema())
        return page_response(
            brute_force.blocks_query(query["include_inactive"]),
            AuthBlock.created_at,
            AuthBlock.id,
            query,
        )


class BlockItem(Resource):
    openapi = {
        "delete": Operation(
            "Lift a login block early",
            permission="security:admin",
            responses={200: AuthBlockSchema},
            errors=(409,),
        )
    }

    def delete(self, block_id: int):
        principal = authorize("security:admin")
        block = db.session.get(AuthBlock, block_id, with_for_update=True)
        if block is None:
            raise ApiError(404, f"Block {block_id} does not exist.")
        if block.lifted_at is not None:
            raise ApiError(409, f"Block {block_id} was already lifted.")
        brute_force.lift_block(block, principal.user.id)
        db.session.commit()
        return respond(block)


class AuditLog(Resource):
    openapi = {
        "get": Operation(
            "The audit log, newest first, with filters",
            permission="audit:admin",
            query=AuditQuerySchema,
            responses={200: AuditPageSchema},
        )
    }

    def get(self):
        authorize("audit:admin")
        query = load_query(AuditQuerySchema())
        statement = select(AuditEntry)
        for name, condition in AUDIT_FILTERS.items():
            if name in query:
                statement = statement.where(condition(query[name]))
        return page_response(statement, AuditEntry.occurred_at, AuditEntry.id, query)


def register(api) -> None:
    api.add_resource(BlockList, "/security/blocks")
    api.add_resource(BlockItem, "/security/blocks/<int:block_id>")
    api.add_resource(AuditLog, "/audit")
