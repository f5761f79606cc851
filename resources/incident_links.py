"""``/incidents/<id>/alerts``, ``/incidents/<id>/merge``, ``/incidents/<id>/related`` and
``/iocs/<id>/incidents``: what links an incident to alerts and to other incidents. The
work is :mod:`security.modules.incident_merge` and :mod:`security.modules.related`; these
resources read, validate and answer. An incident or IOC the caller may not see is 404.
"""

from __future__ import annotations

from flask_restful import Resource
from sqlalchemy import select

from auth import authorize
from models import Alert, Incident, db
from resources.common import ensure_version_matches, load_json, load_query
from resources.openapi import Operation
from resources.responding import page_response, respond
from schemas.common import PageQuerySchema
from schemas.detection import AlertPageSchema
from schemas.incident_links import (
    AlertMergeResultSchema,
    AlertMergeSchema,
    AlertUnmergeResultSchema,
    IncidentMergeResultSchema,
    IncidentMergeSchema,
    RelatedIncidentsSchema,
)
from schemas.incidents import IncidentPageSchema
from security.errors import Invalid, NotFound
from security.modules import alerts, incident_merge, incidents, intel, related


def _visible_alerts_locked(principal, alert_ids: list[int]) -> list[Alert]:
    """The alerts, locked in id order; 422 naming any the caller cannot see or that do not
    exist (the same answer, so hidden alerts are not revealed)."""
    wanted = sorted(set(alert_ids))
    found = list(
        db.session.scalars(
            select(Alert)
            .where(Alert.id.in_(wanted), alerts.visibility(principal))
            .order_by(Alert.id)
            .with_for_update(of=Alert)
        )
    )
    missing = sorted(set(wanted) - {alert.id for alert in found})
    if missing:
        raise Invalid(f"Alerts {missing} do not exist.", extra={"missing_alert_ids": missing})
    return found


def _locked_in_id_order(principal, target_id: int, duplicate_id: int) -> dict[int, Incident]:
    """Both incidents, locked lower id first (two merges of the same pair cannot deadlock):
    404 for a target the caller cannot see, 422 for a duplicate (the body names it)."""
    locked = {}
    for wanted in sorted({target_id, duplicate_id}):
        try:
            locked[wanted] = incidents.get_visible_incident(principal, wanted, lock=True)
        except NotFound:
            if wanted == target_id:
                raise
            raise Invalid(
                f"Incident {duplicate_id} does not exist.",
                errors={"duplicate_id": ["no such incident"]},
            ) from None
    return locked


class IncidentAlerts(Resource):
    openapi = {
        "get": Operation(
            "List the alerts merged into (or escalated to) an incident, newest first",
            permission="alerts:read",
            query=PageQuerySchema,
            responses={200: AlertPageSchema},
            description="The same as GET /alerts?incident_id=; 404 for an incident the "
            "caller may not see.",
        ),
        "post": Operation(
            "Merge alerts into an incident, carrying their tags, techniques and known-bad IOCs",
            permission="incidents:write",
            body=AlertMergeSchema,
            responses={200: AlertMergeResultSchema},
            headers=("ETag",),
            if_match=True,
            errors=(409, 422),
            description="Needs alerts:write too. The alerts' observables become the "
            "incident's through them. 409 for an alert already in an incident or dismissed; "
            "422 naming alerts that do not exist. Each alert records what its merge carried.",
        ),
    }

    def get(self, incident_id: int):
        principal = authorize("alerts:read")
        query = load_query(PageQuerySchema())
        incident = incidents.get_visible_incident(principal, incident_id)
        statement = alerts.alerts_statement(principal, {"incident_id": incident.id})
        return page_response(statement, Alert.created_at, Alert.id, query)

    def post(self, incident_id: int):
        principal = authorize("incidents:write")
        authorize("alerts:write")
        data = load_json(AlertMergeSchema())
        incident = incidents.get_visible_incident(principal, incident_id, lock=True)
        ensure_version_matches(incident.version)
        merged = incident_merge.merge_alerts(
            incident, _visible_alerts_locked(principal, data["alert_ids"]), principal
        )
        db.session.commit()
        return respond({"incident": incident, "merged": merged}, etag=incident.version)


class IncidentAlertItem(Resource):
    openapi = {
        "delete": Operation(
            "Unmerge an alert: remove exactly what its merge carried, restore its status",
            permission="incidents:write",
            responses={200: AlertUnmergeResultSchema},
            description="Needs alerts:write too. What another alert still merged into the "
            "incident brings too stays. 404 if the alert is not in this incident.",
        )
    }

    def delete(self, incident_id: int, alert_id: int):
        principal = authorize("incidents:write")
        authorize("alerts:write")
        incident = incidents.get_visible_incident(principal, incident_id, lock=True)
        alert = alerts.get_alert(principal, alert_id, lock=True)
        removed = incident_merge.unmerge_alert(incident, alert, principal)
        db.session.commit()
        return respond({"alert": alert, "removed": removed})


class IncidentMerge(Resource):
    openapi = {
        "post": Operation(
            "Merge a duplicate incident into this one and close it with a link",
            permission="incidents:write",
            body=IncidentMergeSchema,
            responses={200: IncidentMergeResultSchema},
            errors=(409, 422),
            description="Moves the duplicate's alerts, IOC links and comments here, adds its "
            "tags and techniques, keeps the more restrictive TLP, and closes it "
            "(merged_into_id). 404 if this incident is not visible, 422 if the duplicate is "
            "not (the body names it); 409 if either was merged already.",
        )
    }

    def post(self, incident_id: int):
        principal = authorize("incidents:write")
        data = load_json(IncidentMergeSchema())
        locked = _locked_in_id_order(principal, incident_id, data["duplicate_id"])
        target, duplicate = locked[incident_id], locked[data["duplicate_id"]]
        moved = incident_merge.merge_incident(target, duplicate, principal)
        db.session.commit()
        return respond({"incident": target, "duplicate": duplicate, "moved": moved})


class IncidentRelated(Resource):
    openapi = {
        "get": Operation(
            "Other incidents sharing an IOC or observable with this one, most shared first",
            permission="incidents:read",
            responses={200: RelatedIncidentsSchema},
            description="An address inside a network counts as shared, either way round. "
            "Only incidents, alerts and IOCs the caller may see take part.",
        )
    }

    def get(self, incident_id: int):
        principal = authorize("incidents:read")
        incident: Incident = incidents.get_visible_incident(principal, incident_id)
        return respond({"items": related.related_incidents(incident, principal)})


class IocIncidents(Resource):
    openapi = {
        "get": Operation(
            "The incidents an IOC appears in (linked, or matched by a merged alert)",
            permission="incidents:read",
            query=PageQuerySchema,
            responses={200: IncidentPageSchema},
        )
    }

    def get(self, ioc_id: int):
        principal = authorize("incidents:read")
        authorize("iocs:read")
        query = load_query(PageQuerySchema())
        indicator = intel.get_visible_ioc(principal, ioc_id)
        statement = related.ioc_incidents(indicator, principal)
        return page_response(statement, Incident.created_at, Incident.id, query)


def register(api) -> None:
    api.add_resource(IncidentAlerts, "/incidents/<int:incident_id>/alerts")
    api.add_resource(IncidentAlertItem, "/incidents/<int:incident_id>/alerts/<int:alert_id>")
    api.add_resource(IncidentMerge, "/incidents/<int:incident_id>/merge")
    api.add_resource(IncidentRelated, "/incidents/<int:incident_id>/related")
    api.add_resource(IocIncidents, "/iocs/<int:ioc_id>/incidents")
