"""``/custom-fields``: the admin-defined fields incidents carry."""

from __future__ import annotations

from flask_restful import Resource

import idempotency
from auth import authorize
from models import CustomField, db
from resources.common import load_json, load_query
from resources.openapi import Operation
from resources.responding import page_response, respond
from schemas.common import PageQuerySchema
from schemas.custom_fields import CustomFieldCreateSchema, CustomFieldPageSchema, CustomFieldSchema
from security.modules import custom_fields

FIELD_CREATION = idempotency.Creation("custom_fields.create", CustomField)


class CustomFieldList(Resource):
    openapi = {
        "get": Operation(
            "Every custom field of incidents",
            permission="custom_fields:read",
            query=PageQuerySchema,
            responses={200: CustomFieldPageSchema},
        ),
        "post": Operation(
            "Define a custom field (text, number, boolean, date or choice)",
            permission="custom_fields:admin",
            body=CustomFieldCreateSchema,
            responses={201: CustomFieldSchema},
            headers=("Location", "Idempotent-Replayed"),
            idempotent=True,
            errors=(409, 422),
        ),
    }

    def get(self):
        authorize("custom_fields:read")
        query = load_query(PageQuerySchema())
        statement = custom_fields.definitions()
        return page_response(statement, CustomField.created_at, CustomField.id, query)

    def post(self):
        principal = authorize("custom_fields:admin")
        data = load_json(CustomFieldCreateSchema())

        def create():
            definition = custom_fields.create_definition(data)
            location = {"Location": f"/custom-fields/{definition.id}"}
            return respond(definition, 201, headers=location)

        return idempotency.answer_once(principal.user_id, FIELD_CREATION, create)


class CustomFieldItem(Resource):
    openapi = {
        "get": Operation(
            "One custom field",
            permission="custom_fields:read",
            responses={200: CustomFieldSchema},
        ),
        "delete": Operation(
            "Delete a custom field (values already on incidents stay)",
            permission="custom_fields:admin",
            responses={204: None},
        ),
    }

    def get(self, field_id: int):
        authorize("custom_fields:read")
        return respond(custom_fields.get_definition(field_id))

    def delete(self, field_id: int):
        authorize("custom_fields:admin")
        custom_fields.delete_definition(custom_fields.get_definition(field_id, lock=True))
        db.session.commit()
        return None, 204


def register(api) -> None:
    api.add_resource(CustomFieldList, "/custom-fields")
    api.add_resource(CustomFieldItem, "/custom-fields/<int:field_id>")
