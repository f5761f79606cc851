"""``/security/blocks``: the brute-force guard's login blocks (list, lift early); admins only.

The guard itself lives in :mod:`security.modules.blocks`; these views only read its blocks
and lift them.
"""

from __future__ import annotations

from flask_restful import Resource

from auth import authorize
from errors import ApiError
from models import AuthBlock, db
from resources.common import load_query
from resources.openapi import Operation
from resources.responding import page_response, respond
from schemas.blocks import (
    AuthBlockPageSchema,
    AuthBlockSchema,
    BlockListQuerySchema,
)
from security.modules import blocks


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
            blocks.blocks_query(query["include_inactive"]),
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
        blocks.lift_block(block, principal.user_id)
        db.session.commit()
        return respond(block)


def register(api) -> None:
    api.add_resource(BlockList, "/security/blocks")
    api.add_resource(BlockItem, "/security/blocks/<int:block_id>")
