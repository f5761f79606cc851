"""Schemas for tasks: a new task, an edit, the work-queue filters, and a task as answered."""

from __future__ import annotations

from marshmallow import fields, validate

from models.vocabulary import TASK_STATUS_FILTERS, TASK_STATUSES
from schemas.auth import USERNAME_PATTERN
from schemas.common import (
    FullMatch,
    JsonBoolean,
    JsonInteger,
    PageQuerySchema,
    ResponseSchema,
    StrictSchema,
    edit_of,
    identifier,
    one_of,
    page_of,
    text,
    timestamp,
    trimmed_string,
    username_of,
    utc_datetime,
)
from schemas.incidents import DESCRIPTION_MAX

POSITION_MAX = 10_000
# ``me`` is the caller; any other value names a user.
ASSIGNEE_FILTER = f"^(?:me|{USERNAME_PATTERN.strip('^$')})$"


class TaskCreateSchema(StrictSchema):
    title = trimmed_string(max_length=200, required=True)
    description = fields.String(validate=validate.Length(max=DESCRIPTION_MAX))
    status = fields.String(validate=validate.OneOf(TASK_STATUSES))
    assignee = fields.String(
        allow_none=True, validate=FullMatch(USERNAME_PATTERN, error="not a valid username")
    )
    due_at = utc_datetime(allow_none=True)
    mandatory = JsonBoolean()
    position = JsonInteger(
        validate=validate.Range(min=0, max=POSITION_MAX),
        metadata={"description": "order among the incident's tasks; last when left out"},
    )


TaskUpdateSchema = edit_of(TaskCreateSchema, "TaskUpdateSchema")


class WorkQueueQuerySchema(PageQuerySchema):
    assignee = fields.String(
        validate=FullMatch(ASSIGNEE_FILTER),
        metadata={"description": "me, or a username"},
    )
    status = fields.String(
        validate=validate.OneOf(TASK_STATUS_FILTERS),
        metadata={"description": "a task status, or open (todo and in_progress)"},
    )


class TaskSchema(ResponseSchema):
    id = identifier()
    incident_id = identifier()
    title = text()
    description = text()
    status = one_of(TASK_STATUSES)
    assignee = username_of("assignee")
    due_at = timestamp(nullable=True)
    mandatory = fields.Boolean(required=True)
    position = fields.Integer(required=True, validate=validate.Range(min=0))
    version = fields.Integer(required=True, validate=validate.Range(min=1))
    created_at = timestamp()
    updated_at = timestamp()


class TaskListSchema(ResponseSchema):
    items = fields.List(fields.Nested(TaskSchema), required=True)


TaskPageSchema = page_of(TaskSchema, "TaskPageSchema")
