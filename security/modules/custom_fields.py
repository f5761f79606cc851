"""Custom fields: the admin's definitions, and the check of an incident's values against
them.

An incident's values are ``{name: value}`` in its ``custom_fields`` JSONB column. Each
value is checked against its definition's type here, once, for every writer (a create,
an edit, a template): ``text`` a string, ``number`` a finite number, ``boolean`` true or
false, ``date`` an ISO 8601 date (stored as ``YYYY-MM-DD``), ``choice`` one of the
definition's choices. A name no definition has is refused, so nothing unvalidated is
stored. :func:`filter_condition` turns ``name:value`` into a containment test (``@>``)
the GIN index answers.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, select

from models import CustomField, Incident, db
from security.errors import Conflict, Invalid
from security.events import EventType, emit
from security.modules.lookup import first_or_404

TEXT_MAX = 2_000


def definitions() -> Select:
    """Every definition, for a keyset-paged list."""
    return select(CustomField)


def get_definition(field_id: int, *, lock: bool = False) -> CustomField:
    return first_or_404(
        select(CustomField).where(CustomField.id == field_id),
        f"Custom field {field_id} does not exist.",
        lock=lock,
    )


def create_definition(data: dict[str, Any]) -> CustomField:
    """A new field; its name is unique (409), a ``choice`` field needs its choices (422)."""
    if data["field_type"] == "choice" and not data.get("choices"):
        raise Invalid("A choice field lists its choices.", field="choices")
    if data["field_type"] != "choice" and data.get("choices"):
        raise Invalid("Only a choice field has choices.", field="choices")
    taken = db.session.scalar(select(CustomField.id).where(CustomField.name == data["name"]))
    if taken is not None:
        raise Conflict(f"A custom field named {data['name']!r} exists.")
    definition = CustomField(
        name=data["name"],
        label=data["label"],
        field_type=data["field_type"],
        choices=data.get("choices", []),
        required=data.get("required", False),
    )
    db.session.add(definition)
    db.session.flush()
    emit(EventType.CUSTOM_FIELD_CREATED, definition.id, {"name": definition.name})
    return definition


def delete_definition(definition: CustomField) -> None:
    """Remove the definition; values already stored on incidents stay as they were."""
    db.session.delete(definition)
    emit(EventType.CUSTOM_FIELD_DELETED, definition.id, {"name": definition.name})


def _by_name() -> dict[str, CustomField]:
    return {field.name: field for field in db.session.scalars(select(CustomField))}


def _checked(definition: CustomField, value: Any) -> Any:
    """The value as stored, or ValueError saying what the field takes."""
    kind = definition.field_type
    if kind == "text" and isinstance(value, str) and len(value) <= TEXT_MAX:
        return value
    if kind == "number" and _is_number(value):
        return value
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "date" and isinstance(value, str):
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    if kind == "choice" and value in definition.choices:
        return value
    expected = {
        "text": f"text of at most {TEXT_MAX} characters",
        "number": "a number",
        "boolean": "true or false",
        "date": "a date (YYYY-MM-DD)",
        "choice": f"one of {', '.join(map(str, definition.choices))}",
    }[kind]
    raise ValueError(f"must be {expected}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def checked_values(values: dict[str, Any], *, creating: bool = False) -> dict[str, Any]:
    """``values`` checked against the definitions (422 naming each bad one); when
    ``creating``, every required field must be there."""
    known = _by_name()
    stored: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for name, value in values.items():
        definition = known.get(name)
        if definition is None:
            errors[name] = ["no custom field has this name"]
            continue
        try:
            stored[name] = _checked(definition, value)
        except ValueError as error:
            errors[name] = [str(error)]
    if creating:
        for name, definition in known.items():
            if definition.required and name not in values:
                errors[name] = ["required"]
    if errors:
        raise Invalid("Custom field values are invalid.", errors={"custom_fields": errors})
    return stored


def merged_values(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """An edit: ``changes`` over ``current``, a null value removing the field."""
    removed = {name for name, value in changes.items() if value is None}
    kept = {name: value for name, value in current.items() if name not in removed}
    known = _by_name()
    for name in removed:
        if name in known and known[name].required:
            raise Invalid(
                "A required custom field cannot be removed.",
                errors={"custom_fields": {name: ["required"]}},
            )
    updated = checked_values({n: v for n, v in changes.items() if v is not None})
    return {**kept, **updated}


def filter_condition(expression: str) -> ColumnElement[bool]:
    """``name:value`` as ``incidents.custom_fields @> {name: value}``, the value read as
    the field's type (422 for an unknown field or a value it cannot hold)."""
    name, _, raw = expression.partition(":")
    definition = _by_name().get(name)
    if definition is None:
        raise Invalid("No custom field has this name.", field="custom_field")
    try:
        value = _checked(definition, _typed(definition.field_type, raw))
    except ValueError as error:
        raise Invalid(f"{name} {error}.", field="custom_field") from None
    return Incident.custom_fields.contains({name: value})


def _typed(kind: str, raw: str) -> Any:
    """A query's text as the JSON value a field of ``kind`` stores."""
    if kind == "number":
        try:
            number = float(raw)
        except ValueError:
            return raw
        return int(number) if number.is_integer() else number
    if kind == "boolean":
        return {"true": True, "false": False}.get(raw, raw)
    return raw
