"""``/incidents/<id>/tasks`` (an incident's checklist) and ``/tasks`` (an analyst's work
queue across incidents)."""

from __future__ import annotations

from flask_restful import Resource

import idempotency
from auth import authorize
from models import Task, db
from resources.common import ensure_version_matches, load_json, load_query
from resources.openapi import Operation
from resources.responding import page_response, respond
from schemas.tasks import (
    TaskCreateSchema,
    TaskListSchema,
    TaskPageSchema,
    TaskSchema,
    TaskUpdateSchema,
    WorkQueueQuerySchema,
)
from security.modules import incidents, tasks

TASK_CREATION = idempotency.Creation("tasks.create", Task)


class IncidentTaskList(Resource):
    openapi = {
        "get": Operation(
            "An incident's tasks, in their order",
            permission="incidents:read",
            responses={200: TaskListSchema},
        ),
        "post": Operation(
            "Add a task to an incident (on its timeline)",
            permission="incidents:write",
            body=TaskCreateSchema,
            responses={201: TaskSchema},
            headers=("ETag", "Location", "Idempotent-Replayed"),
            idempotent=True,
            errors=(422,),
        ),
    }

    def get(self, incident_id: int):
        principal = authorize("incidents:read")
        incident = incidents.get_visible_incident(principal, incident_id)
        return respond({"items": tasks.tasks_of(incident)})

    def post(self, incident_id: int):
        principal = authorize("incidents:write")
        data = load_json(TaskCreateSchema())
        incident = incidents.get_visible_incident(principal, incident_id)

        def create():
            task = tasks.create_task(incident, principal, data)
            location = {"Location": f"/incidents/{incident.id}/tasks/{task.id}"}
            return respond(task, 201, etag=task.version, headers=location)

        return idempotency.answer_once(principal.user_id, TASK_CREATION, create)


class IncidentTaskItem(Resource):
    openapi = {
        "get": Operation(
            "One task of an incident",
            permission="incidents:read",
            responses={200: TaskSchema},
            headers=("ETag",),
        ),
        "patch": Operation(
            "Edit a task: its status, assignee, due time, order, ... (on the timeline)",
            permission="incidents:write",
            body=TaskUpdateSchema,
            responses={200: TaskSchema},
            headers=("ETag",),
            if_match=True,
            errors=(422,),
        ),
    }

    def get(self, incident_id: int, task_id: int):
        principal = authorize("incidents:read")
        incident = incidents.get_visible_incident(principal, incident_id)
        task = tasks.get_task(incident, task_id)
        return respond(task, etag=task.version)

    def patch(self, incident_id: int, task_id: int):
        principal = authorize("incidents:write")
        data = load_json(TaskUpdateSchema())
        incident = incidents.get_visible_incident(principal, incident_id)
        task = tasks.get_task(incident, task_id, lock=True)
        ensure_version_matches(task.version)
        tasks.update_task(incident, task, principal, data)
        db.session.commit()
        return respond(task, etag=task.version)


class TaskQueue(Resource):
    openapi = {
        "get": Operation(
            "Tasks across the incidents you may see, newest first: ?assignee=me&status=open "
            "is your work queue",
            permission="incidents:read",
            query=WorkQueueQuerySchema,
            responses={200: TaskPageSchema},
            errors=(422,),
        )
    }

    def get(self):
        principal = authorize("incidents:read")
        query = load_query(WorkQueueQuerySchema())
        assignee = None
        if query.get("assignee") == "me":
            assignee = principal.user
        elif "assignee" in query:
            assignee = incidents.resolve_assignee(query["assignee"])
        statement = tasks.work_queue(principal, assignee, query.get("status"))
        return page_response(statement, Task.created_at, Task.id, query)


def register(api) -> None:
    api.add_resource(IncidentTaskList, "/incidents/<int:incident_id>/tasks")
    api.add_resource(IncidentTaskItem, "/incidents/<int:incident_id>/tasks/<int:task_id>")
    api.add_resource(TaskQueue, "/tasks")
