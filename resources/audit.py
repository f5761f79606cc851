"""``/audit``: read the audit log, newest first, with filters; admins only.

The log is written by :mod:`security.modules.audit` and :mod:`security.events` (each state
change's event is its audit entry); this view only reads it.
"""

from __future__ import annotations

from flask_restful import Resource
from sqlalchemy import func, select

from auth import authorize
from models import AuditEntry
from resources.common import load_query
from resources.openapi import Operation
from resources.responding import page_response
from schemas.audit import AuditPageSchema, AuditQuerySchema

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
    api.add_resource(AuditLog, "/audit")
