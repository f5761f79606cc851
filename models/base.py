"""What every model module shares: the SQLAlchemy handle and the models' base class, the
time helper, and the error a status workflow (incidents, alerts) raises for a step it lacks."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import DateTime
from sqlalchemy.orm import DeclarativeBase, registry


class Base(DeclarativeBase):
    # Every timestamp is timestamptz: naive datetimes are how UTC offsets get lost.
    registry = registry(type_annotation_map={datetime: DateTime(timezone=True)})


db = SQLAlchemy(model_class=Base)

# The base class of every table. Flask-SQLAlchemy builds ``db.Model`` from :class:`Base` at
# run time, which a type checker cannot follow; to it, the models derive from ``Base``.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model


def utcnow() -> datetime:
    """Timezone-aware now; every timestamp column is ``timestamptz`` in UTC."""
    return datetime.now(UTC)


class IllegalTransition(Exception):
    """The requested status may not follow the current one; carries the allowed ones.

    The message and :attr:`details` are what a client needs to correct the request, so
    every workflow's 409 reads the same.
    """

    def __init__(self, subject: str, current: str, requested: str, allowed: Iterable[str]) -> None:
        self.current = current
        self.allowed = tuple(allowed)
        super().__init__(f"Cannot move {subject} from {current!r} to {requested!r}.")

    @property
    def details(self) -> dict[str, Any]:
        return {"current_status": self.current, "allowed_transitions": list(self.allowed)}
