"""The shared SQLAlchemy handle and time helper every model module uses."""

from __future__ import annotations

from datetime import UTC, datetime

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import DateTime
from sqlalchemy.orm import DeclarativeBase, registry


class Base(DeclarativeBase):
    # Every timestamp is timestamptz: naive datetimes are how UTC offsets get lost.
    registry = registry(type_annotation_map={datetime: DateTime(timezone=True)})


db = SQLAlchemy(model_class=Base)


def utcnow() -> datetime:
    """Timezone-aware now; every timestamp column is ``timestamptz`` in UTC."""
    return datetime.now(UTC)
