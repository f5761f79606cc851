"""Custom fields: admin-defined fields of incidents (``text``, ``number``, ``boolean``,
``date``, ``choice``).

A definition is a row here; an incident's values live in its ``custom_fields`` JSONB
column (``{name: value}``), indexed with GIN (``jsonb_path_ops``) so that the filter
``GET /incidents?custom_field=name:value`` is an index lookup (``@>``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Model, utcnow


class CustomField(Model):
    __tablename__ = "custom_fields"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200))
    field_type: Mapped[str] = mapped_column(String(16))
    choices: Mapped[list] = mapped_column(JSONB, default=list)
    required: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
