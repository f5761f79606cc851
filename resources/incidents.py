"""``/incidents``: list, create, read, edit, move through the workflow, comment."""

from __future__ import annotations

from flask_restful import Resource
from sqlalchemy import func

import idempotency
from auth import authorize
from database import reads_only
from models import Incident, TimelineEntry, User, db
from resources.common import ensure_version_matches, load_json, load_query
from resources.openapi import Operation
from resources.responding import page_response, respond
from schemas.comments import CommentBodySchema
from schemas.incidents import (
    IncidentListQuerySchema,
    IncidentOpenSchema,
    IncidentPageSchema,
    IncidentSchema,
    IncidentUpdateSchema,
    StatusChangeSchema,
    TimelineEntrySchema,
    TimelineSchema,
)
from security.modules import custom_fields, incident_templates, incidents

INCIDENT_CREATION = idempotency.Creation("incidents.create", Incident)
COMMENT_CREATION = idempotency.Creation("incidents.comment", TimelineEntry)


class IncidentList(Resource):
    openapi = {
        "get": Operation(
            "List incidents, newest first, with filters",
            permission="incidents:read",
            query=IncidentListQuerySchema,
            responses={200: IncidentPageSchema},
            errors=(422,),
        ),
        "post": Operation(
            "Open an incident",
            permission="incidents:write",
            body=IncidentOpenSchema,
            responses={201: IncidentSchema},
            headers=("ETag", "Location", "Idempotent-Replayed"),
            idempotent=True,
            errors=(422,),
            description=(
                "With template, the template's severity, TLP, tags, description and custom "
                "fields are the defaults and its tasks are added."
            ),
        ),
    }

    @reads_only
    def get(self):
        principal = authorize("incidents:read")
        query = load_query(IncidentListQuerySchema())
        statement = incidents.visible_incidents(principal)
        for field in ("status", "severity", "tlp"):
            if field in query:
                statement = statement.where(getattr(Incident, field) == query[field])
        if "assignee" in query:
            statement = statement.join(User, Incident.assignee_id == User.id).where(
                func.lower(User.username) == query["assignee"].lower()
            )
        if "tag" in query:
            tags = incidents.canonical_tags([query["tag"]])
            statement = statement.where(Incident.tags.contains(tags))
        if "technique" in query:
            statement = statement.where(Incident.techniques.contains([query["technique"]]))
        if "q" in query:
            statement = statement.where(
                Incident.search_vector.op("@@")(func.websearch_to_tsquery("english", query["q"]))
            )
        if "created_after" in query:
            statement = statement.where(Incident.created_at >= query["created_after"])
        if "created_before" in query:
            statement = statement.where(Incident.created_at < query["created_before"])
        if "custom_field" in query:
            statement = statement.where(custom_fields.filter_condition(query["custom_field"]))
        return page_response(statement, Incident.created_at, Incident.id, query)

    def post(self):
        principal = authorize("incidents:write")
        data = load_json(IncidentOpenSchema())

        opening = (
            incident_templates.open_incident if "template" in data else incidents.create_incident
        )

        def create():
            incident = opening(principal, data)
            location = {"Location": f"/incidents/{incident.id}"}
            return respond(incident, 201, etag=incident.version, headers=location)

        return idempotency.answer_once(principal.user_id, INCIDENT_CREATION, create)


class IncidentItem(Resource):
    openapi = {
        "get": Operation(
            "Read one incident",
            permission="incidents:read",
            responses={200: IncidentSchema},
            headers=("ETag",),
        ),
        "patch": Operation(
            "Edit an incident's fields",
            permission="incidents:write",
            body=IncidentUpdateSchema,
            responses={200: IncidentSchema},
            headers=("ETag",),
            if_match=True,
            errors=(422,),
        ),
    }

    @reads_only
    def get(self, incident_id: int):
        principal = authorize("incidents:read")
        incident = incidents.get_visible_incident(principal, incident_id)
        return respond(incident, etag=incident.version)

    def patch(self, incident_id: int):
        principal = authorize("incidents:write")
        data = load_json(IncidentUpdateSchema())
        incident = incidents.get_visible_incident(principal, incident_id, lock=True)
        ensure_version_matches(incident.version)
        incidents.update_incident(incident, principal, data)
        db.session.commit()
        return respond(incident, etag=incident.version)


class IncidentStatus(Resource):
    openapi = {
        "patch": Operation(
            "Move an incident along the workflow",
            permission="incidents:write",
            body=StatusChangeSchema,
            responses={200: IncidentSchema},
            headers=("ETag",),
            if_match=True,
            errors=(409,),
            description=(
                "An illegal transition is 409 and lists the allowed ones; resolving or "
                "closing while mandatory tasks are open is 409 naming them "
                "(open_mandatory_tasks)."
            ),
        )
    }

    def patch(self, incident_id: int):
        principal = authorize("incidents:write")
        data = load_json(StatusChangeSchema())
        incident = incidents.get_visible_incident(principal, incident_id, lock=True)
        ensure_version_matches(incident.version)
        incidents.change_status(incident, principal, data["status"], data.get("comment"))
        db.session.commit()
        return respond(incident, etag=incident.version)


class IncidentTimeline(Resource):
    openapi = {
        "get": Operation(
            "An incident's timeline, oldest first",
            permission="incidents:read",
            responses={200: TimelineSchema},
        )
    }

    @reads_only
    def get(self, incident_id: int):
        principal = authorize("incidents:read")
        incident = incidents.get_visible_incident(principal, incident_id)
        entries = incidents.timeline(incident)
        return respond({"items": entries})


class IncidentComments(Resource):
    openapi = {
        "post": Operation(
            "Comment on an incident",
            permission="comments:write",
            body=CommentBodySchema,
            responses={201: TimelineEntrySchema},
            headers=("Idempotent-Replayed",),
            idempotent=True,
        )
    }

    def post(self, incident_id: int):
        principal = authorize("comments:write")
        data = load_json(CommentBodySchema())
        incident = incidents.get_visible_incident(principal, incident_id)

        def comment():
            entry = incidents.add_comment(incident, principal, data["body"])
            return respond(entry, 201)

        return idempotency.answer_once(principal.user_id, COMMENT_CREATION, comment)


def register(api) -> None:
    api.add_resource(IncidentList, "/incidents")
    api.add_resource(IncidentItem, "/incidents/<int:incident_id>")
    api.add_resource(IncidentStatus, "/incidents/<int:incident_id>/status")
    api.add_resource(IncidentTimeline, "/incidents/<int:incident_id>/timeline")
    api.add_resource(IncidentComments, "/incidents/<int:incident_id>/comments")
