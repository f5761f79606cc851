"""Incident templates: what a kind of incident starts with (severity, TLP, tags, a
description skeleton, its tasks and custom-field values), applied by ``POST /incidents``
with ``template``.

``tasks`` and ``custom_fields`` are JSONB documents, not rows: a template is copied as a
whole into each incident opened from it, exported and imported as one JSON document, and
never queried by a task's field.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Model, utcnow


class IncidentTemplate(Model):
    __tablename__ = "incident_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    severity: Mapped[str] = mapped_column(String(16))
    tlp: Mapped[str] = mapped_column(String(16), default="amber")
    tags: Mapped[list] = mapped_column(JSONB, default=list)
    description: Mapped[str] = mapped_column(Text, default="")
    # [{"title", "description", "mandatory", "due_in_minutes"}], in their order.
    tasks: Mapped[list] = mapped_column(JSONB, default=list)
    custom_fields: Mapped[dict] = mapped_column(JSONB, default=dict)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
