"""``/health`` (the process answers) and ``/ready`` (the database answers and is migrated)."""

from __future__ import annotations

from flask import current_app
from flask_restful import Resource
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from database import schema_is_current
from errors import ApiError
from models import db
from resources.openapi import Operation
from resources.responding import respond
from schemas.health import HealthSchema, ReadySchema


class Health(Resource):
    openapi = {"get": Operation("Liveness: the process answers", responses={200: HealthSchema})}

    def get(self):
        return respond({"status": "ok"})


class Ready(Resource):
    openapi = {
        "get": Operation(
            "Readiness: the database answers and is migrated",
            responses={200: ReadySchema},
            errors=(503,),
        )
    }

    def get(self):
        try:
            db.session.execute(text("SELECT 1"))
            current = schema_is_current(current_app)
        except SQLAlchemyError:
            db.session.rollback()
            raise ApiError(503, "The database is not reachable.") from None
        if not current:
            raise ApiError(503, "The database schema is not at the latest migration.")
        return respond({"status": "ready", "database": "ok", "migrations": "current"})


def register(api) -> None:
    api.add_resource(Health, "/health")
    api.add_resource(Ready, "/ready")
