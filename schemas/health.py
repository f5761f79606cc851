"""The answers of ``/health`` (the process runs) and ``/ready`` (it can serve)."""

from __future__ import annotations

from schemas.common import ResponseSchema, one_of


class HealthSchema(ResponseSchema):
    status = one_of(["ok"])


class ReadySchema(ResponseSchema):
    status = one_of(["ready"])
    database = one_of(["ok"])
    migrations = one_of(["current"])
