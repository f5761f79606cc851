"""Incident templates: writing them (admins), exporting and importing one as a JSON
document, and opening an incident from one.

:func:`open_incident` is ``POST /incidents`` with ``template``: the template's severity,
TLP, tags, description skeleton and custom-field values are the defaults (what the
request gives wins, custom fields merged), then its tasks are added in order, all in the
request's transaction. An export is exactly the body that creates the template, so
importing it on another instance (:func:`import_template`) writes the same template,
replacing one of the same name.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select

from models import Incident, IncidentTemplate, db, utcnow
from security.errors import Conflict, Invalid
from security.events import EventType, emit
from security.modules import custom_fields, incidents, tasks
from security.modules.lookup import first_or_404
from security.modules.principals import Principal

TEMPLATE_FIELDS = (
    "name",
    "title",
    "severity",
    "tlp",
    "tags",
    "description",
    "tasks",
    "custom_fields",
)


def templates() -> Select:
    """Every template, for a keyset-paged list."""
    return select(IncidentTemplate)


def get_template(template_id: int, *, lock: bool = False) -> IncidentTemplate:
    return first_or_404(
        select(IncidentTemplate).where(IncidentTemplate.id == template_id),
        f"Incident template {template_id} does not exist.",
        lock=lock,
    )


def _named(name: str, *, lock: bool = False) -> IncidentTemplate | None:
    statement = select(IncidentTemplate).where(IncidentTemplate.name == name)
    if lock:
        statement = statement.with_for_update()
    return db.session.scalars(statement).first()


def create_template(data: dict[str, Any]) -> IncidentTemplate:
    """A new template; the name is unique (409), its custom-field values valid (422)."""
    if _named(data["name"]) is not None:
        raise Conflict(f"An incident template named {data['name']!r} exists.")
    template = IncidentTemplate(version=1, **_checked(data))
    db.session.add(template)
    db.session.flush()
    emit(EventType.INCIDENT_TEMPLATE_CREATED, template.id, {"name": template.name})
    return template


def update_template(template: IncidentTemplate, data: dict[str, Any]) -> list[str]:
    """Apply an edit; returns the names of the fields that changed."""
    if "name" in data and data["name"] != template.name and _named(data["name"]) is not None:
        raise Conflict(f"An incident template named {data['name']!r} exists.")
    checked = _checked(data)
    changed = [field for field, value in checked.items() if getattr(template, field) != value]
    if not changed:
        return changed
    for field in changed:
        setattr(template, field, checked[field])
    template.version += 1
    template.updated_at = utcnow()
    emit(EventType.INCIDENT_TEMPLATE_EDITED, template.id, {"fields": sorted(changed)})
    return changed


def import_template(data: dict[str, Any]) -> tuple[IncidentTemplate, bool]:
    """Write an exported template: a new one, or the one of the same name replaced.
    ``data`` is a whole template (the create schema fills what it leaves out), so what the
    document omits is reset, not kept. Returns the template and whether it was created."""
    existing = _named(data["name"], lock=True)
    if existing is None:
        return create_template(data), True
    update_template(existing, data)
    return existing, False


def delete_template(template: IncidentTemplate) -> None:
    db.session.delete(template)
    emit(EventType.INCIDENT_TEMPLATE_DELETED, template.id, {"name": template.name})


def _checked(data: dict[str, Any]) -> dict[str, Any]:
    """The template's fields from ``data``: tags as incidents store them, custom-field
    values checked."""
    fields = {field: data[field] for field in TEMPLATE_FIELDS if field in data}
    if "tags" in fields:
        fields["tags"] = incidents.canonical_tags(fields["tags"])
    if "custom_fields" in fields:
        fields["custom_fields"] = custom_fields.checked_values(fields["custom_fields"])
    return fields


def open_incident(principal: Principal, data: dict[str, Any]) -> Incident:
    """Open an incident from the template ``data["template"]`` names (422 when none
    does): its defaults under what the request gives, then its tasks."""
    template = _named(data["template"])
    if template is None:
        raise Invalid("No incident template has this name.", field="template")
    merged = {
        "title": template.title,
        "description": template.description,
        "severity": template.severity,
        "tlp": template.tlp,
        "tags": list(template.tags),
        **{key: value for key, value in data.items() if key != "template"},
        "custom_fields": {**template.custom_fields, **data.get("custom_fields", {})},
    }
    if not merged["title"].strip():
        raise Invalid("The template has no title; give one.", field="title")
    incident = incidents.create_incident(principal, merged)
    tasks.create_tasks_from_template(incident, principal, template.tasks)
    return incident
