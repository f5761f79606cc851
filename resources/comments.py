"""``/alerts/<id>/comments``, ``/incidents/<id>/tasks/<id>/comments`` and ``/comments/<id>``:
comments on alerts and tasks, and the author's edit (history kept) or deletion of any
comment, an incident's included (those are written by ``POST /incidents/<id>/comments``).
"""

from __future__ import annotations

from flask_restful import Resource

import idempotency
from auth import authorize
from models import Comment, db
from resources.common import ensure_version_matches, load_json, load_query
from resources.openapi import Operation
from resources.responding import page_response, respond
from schemas.comments import CommentBodySchema, CommentPageSchema, CommentSchema
from schemas.common import PageQuerySchema
from security.modules import alerts, comments, incidents, tasks

COMMENT_CREATION = idempotency.Creation("comments.create", Comment)


def _list_operation(subject: str) -> Operation:
    return Operation(
        f"Comments on {subject}, newest first",
        permission="comments:read",
        query=PageQuerySchema,
        responses={200: CommentPageSchema},
    )


def _create_operation(subject: str) -> Operation:
    return Operation(
        f"Comment on {subject}",
        permission="comments:write",
        body=CommentBodySchema,
        responses={201: CommentSchema},
        headers=("ETag", "Location", "Idempotent-Replayed"),
        idempotent=True,
    )


def _create(principal, subject) -> tuple:
    data = load_json(CommentBodySchema())

    def create():
        comment = comments.add_comment(subject, principal, data["body"])
        location = {"Location": f"/comments/{comment.id}"}
        return respond(comment, 201, etag=comment.version, headers=location)

    return idempotency.answer_once(principal.user_id, COMMENT_CREATION, create)


def _page(subject) -> tuple:
    query = load_query(PageQuerySchema())
    return page_response(comments.comments_on(subject), Comment.created_at, Comment.id, query)


class AlertComments(Resource):
    openapi = {"get": _list_operation("an alert"), "post": _create_operation("an alert")}

    def get(self, alert_id: int):
        principal = authorize("comments:read")
        return _page(alerts.get_alert(principal, alert_id))

    def post(self, alert_id: int):
        principal = authorize("comments:write")
        return _create(principal, alerts.get_alert(principal, alert_id))


class TaskComments(Resource):
    openapi = {"get": _list_operation("a task"), "post": _create_operation("a task")}

    def get(self, incident_id: int, task_id: int):
        principal = authorize("comments:read")
        incident = incidents.get_visible_incident(principal, incident_id)
        return _page(tasks.get_task(incident, task_id))

    def post(self, incident_id: int, task_id: int):
        principal = authorize("comments:write")
        incident = incidents.get_visible_incident(principal, incident_id)
        return _create(principal, tasks.get_task(incident, task_id))


class CommentItem(Resource):
    openapi = {
        "get": Operation(
            "One comment with its earlier texts",
            permission="comments:read",
            responses={200: CommentSchema},
            headers=("ETag",),
        ),
        "patch": Operation(
            "Edit your comment (the replaced text is kept in revisions)",
            permission="comments:write",
            body=CommentBodySchema,
            responses={200: CommentSchema},
            headers=("ETag",),
            if_match=True,
        ),
        "delete": Operation(
            "Delete your comment",
            permission="comments:write",
            responses={204: None},
        ),
    }

    def get(self, comment_id: int):
        principal = authorize("comments:read")
        comment = comments.get_comment(principal, comment_id)
        return respond(comment, etag=comment.version)

    def patch(self, comment_id: int):
        principal = authorize("comments:write")
        data = load_json(CommentBodySchema())
        comment = comments.get_comment(principal, comment_id, lock=True)
        ensure_version_matches(comment.version)
        comments.edit_comment(comment, principal, data["body"])
        db.session.commit()
        return respond(comment, etag=comment.version)

    def delete(self, comment_id: int):
        principal = authorize("comments:write")
        comments.delete_comment(comments.get_comment(principal, comment_id, lock=True), principal)
        db.session.commit()
        return None, 204


def register(api) -> None:
    api.add_resource(AlertComments, "/alerts/<int:alert_id>/comments")
    api.add_resource(TaskComments, "/incidents/<int:incident_id>/tasks/<int:task_id>/comments")
    api.add_resource(CommentItem, "/comments/<int:comment_id>")
