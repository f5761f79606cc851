"""``/incident-templates``: what a kind of incident starts with; admins write them, and a
template travels between instances as the JSON document ``/export`` answers and
``/import`` takes."""

from __future__ import annotations

from flask_restful import Resource

import idempotency
from auth import authorize
from models import IncidentTemplate, db
from resources.common import ensure_version_matches, load_json, load_query
from resources.openapi import Operation
from resources.responding import page_response, respond
from schemas.common import PageQuerySchema
from schemas.incident_templates import (
    IncidentTemplateCreateSchema,
    IncidentTemplateExportSchema,
    IncidentTemplatePageSchema,
    IncidentTemplateSchema,
    IncidentTemplateUpdateSchema,
)
from security.modules import incident_templates

TEMPLATE_CREATION = idempotency.Creation("incident_templates.create", IncidentTemplate)
TEMPLATE_IMPORT = idempotency.Creation("incident_templates.import", IncidentTemplate)


def _location(template: IncidentTemplate) -> dict[str, str]:
    return {"Location": f"/incident-templates/{template.id}"}


class IncidentTemplateList(Resource):
    openapi = {
        "get": Operation(
            "Every incident template",
            permission="incident_templates:read",
            query=PageQuerySchema,
            responses={200: IncidentTemplatePageSchema},
        ),
        "post": Operation(
            "Write an incident template (severity, TLP, tags, description, tasks, custom fields)",
            permission="incident_templates:admin",
            body=IncidentTemplateCreateSchema,
            responses={201: IncidentTemplateSchema},
            headers=("ETag", "Location", "Idempotent-Replayed"),
            idempotent=True,
            errors=(409, 422),
        ),
    }

    def get(self):
        authorize("incident_templates:read")
        query = load_query(PageQuerySchema())
        statement = incident_templates.templates()
        return page_response(statement, IncidentTemplate.created_at, IncidentTemplate.id, query)

    def post(self):
        principal = authorize("incident_templates:admin")
        data = load_json(IncidentTemplateCreateSchema())

        def create():
            template = incident_templates.create_template(data)
            return respond(template, 201, etag=template.version, headers=_location(template))

        return idempotency.answer_once(principal.user_id, TEMPLATE_CREATION, create)


class IncidentTemplateItem(Resource):
    openapi = {
        "get": Operation(
            "One incident template",
            permission="incident_templates:read",
            responses={200: IncidentTemplateSchema},
            headers=("ETag",),
        ),
        "patch": Operation(
            "Edit an incident template (incidents opened from it before keep what they got)",
            permission="incident_templates:admin",
            body=IncidentTemplateUpdateSchema,
            responses={200: IncidentTemplateSchema},
            headers=("ETag",),
            if_match=True,
            errors=(409, 422),
        ),
        "delete": Operation(
            "Delete an incident template",
            permission="incident_templates:admin",
            responses={204: None},
        ),
    }

    def get(self, template_id: int):
        authorize("incident_templates:read")
        template = incident_templates.get_template(template_id)
        return respond(template, etag=template.version)

    def patch(self, template_id: int):
        authorize("incident_templates:admin")
        data = load_json(IncidentTemplateUpdateSchema())
        template = incident_templates.get_template(template_id, lock=True)
        ensure_version_matches(template.version)
        incident_templates.update_template(template, data)
        db.session.commit()
        return respond(template, etag=template.version)

    def delete(self, template_id: int):
        authorize("incident_templates:admin")
        incident_templates.delete_template(incident_templates.get_template(template_id, lock=True))
        db.session.commit()
        return None, 204


class IncidentTemplateExport(Resource):
    openapi = {
        "get": Operation(
            "An incident template as a JSON document for /incident-templates/import",
            permission="incident_templates:read",
            responses={200: IncidentTemplateExportSchema},
        )
    }

    def get(self, template_id: int):
        authorize("incident_templates:read")
        return respond(incident_templates.get_template(template_id))


class IncidentTemplateImport(Resource):
    openapi = {
        "post": Operation(
            "Import an exported incident template: created (201), or the one of the same "
            "name replaced (200)",
            permission="incident_templates:admin",
            body=IncidentTemplateCreateSchema,
            responses={200: IncidentTemplateSchema, 201: IncidentTemplateSchema},
            headers=("ETag", "Location", "Idempotent-Replayed"),
            idempotent=True,
            errors=(422,),
        )
    }

    def post(self):
        principal = authorize("incident_templates:admin")
        data = load_json(IncidentTemplateCreateSchema())

        def write():
            template, created = incident_templates.import_template(data)
            status = 201 if created else 200
            return respond(template, status, etag=template.version, headers=_location(template))

        return idempotency.answer_once(principal.user_id, TEMPLATE_IMPORT, write)


def register(api) -> None:
    api.add_resource(IncidentTemplateList, "/incident-templates")
    api.add_resource(IncidentTemplateItem, "/incident-templates/<int:template_id>")
    api.add_resource(IncidentTemplateExport, "/incident-templates/<int:template_id>/export")
    api.add_resource(IncidentTemplateImport, "/incident-templates/import")
