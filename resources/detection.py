"""``/rules``, ``/events`` and ``/alerts``: threat rules, event ingestion, and the alerts
(and incidents) that matches raise. The work is done by :mod:`security.modules.detection` and
:mod:`security.modules.alerts`; these resources read, validate and answer.
"""

from __future__ import annotations

from typing import Any

from flask import request
from flask_restful import Resource
from sqlalchemy import select

import idempotency
from auth import authorize
from errors import ApiError
from models import Alert, DetectionRule, Incident, db
from resources.common import (
    ensure_version_matches,
    load_json,
    load_query,
    read_json_document,
)
from resources.openapi import Content, Operation
from resources.responding import page_response, respond
from schemas.detection import (
    EVENTS_DESCRIPTION,
    AlertBulkResultSchema,
    AlertBulkSchema,
    AlertEscalateSchema,
    AlertIntakeSchema,
    AlertListQuerySchema,
    AlertPageSchema,
    AlertSchema,
    AlertUpdateSchema,
    DryRunSchema,
    EscalationSchema,
    IngestResultSchema,
    RuleCreateSchema,
    RuleListQuerySchema,
    RulePageSchema,
    RuleSchema,
    RuleTestSchema,
    RuleUpdateSchema,
    SigmaRuleQuerySchema,
)
from security.modules import alert_intake, alerts, detection
from security.modules.gc_pause import garbage_collection_paused
from security.modules.hygiene import JSON_MEDIA_TYPES
from security.modules.lookup import first_or_404

YAML_MEDIA_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
EVENTS_MAX_BODY_BYTES = 16 * 1024 * 1024
RULE_CREATION = idempotency.Creation("rules.create", DetectionRule)
# A resend without a key counts into the alert (that is what source_ref is for); a retry
# with the same Idempotency-Key replays the first answer and counts nothing twice.
ALERT_RECEIPT = idempotency.Creation("alerts.receive", Alert)
ALERT_BULK_RECEIPT = idempotency.Creation(
    "alerts.receive_bulk", Alert, locate=lambda body: body["alerts"][0]["id"]
)
ESCALATION = idempotency.Creation(
    "alerts.escalate", Incident, locate=lambda body: body["incident"]["id"]
)


def _get_rule(rule_id: int, *, lock: bool = False) -> DetectionRule:
    statement = select(DetectionRule).where(DetectionRule.id == rule_id)
    return first_or_404(statement, f"Rule {rule_id} does not exist.", lock=lock)


def _read_yaml_text() -> str:
    raw = request.get_data(cache=True)
    if not raw:
        raise ApiError(400, "The request body is empty; send the Sigma rule's YAML.")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "The YAML body must be UTF-8.") from None


class RuleList(Resource):
    body_media_types = JSON_MEDIA_TYPES + YAML_MEDIA_TYPES
    openapi = {
        "get": Operation(
            "List threat rules, newest first",
            permission="rules:read",
            query=RuleListQuerySchema,
            responses={200: RulePageSchema},
        ),
        "post": Operation(
            "Create a threat rule: seed form as JSON, or a Sigma rule as YAML",
            permission="rules:write",
            body=(
                RuleCreateSchema,
                *(Content(media_type, {"type": "string"}) for media_type in YAML_MEDIA_TYPES),
            ),
            query=SigmaRuleQuerySchema,
            responses={201: RuleSchema},
            headers=("ETag", "Location", "Idempotent-Replayed"),
            idempotent=True,
            errors=(422,),
            description=(
                "A Sigma rule that uses anything the engine does not evaluate (a modifier, "
                "a correlation, a malformed condition) is refused with 422 naming it. The "
                "query parameters apply to YAML uploads only."
            ),
        ),
    }

    def get(self):
        authorize("rules:read")
        query = load_query(RuleListQuerySchema())
        statement = select(DetectionRule)
        for name in ("kind", "severity", "enabled"):
            if name in query:
                statement = statement.where(getattr(DetectionRule, name) == query[name])
        if "created_after" in query:
            statement = statement.where(DetectionRule.created_at >= query["created_after"])
        if "created_before" in query:
            statement = statement.where(DetectionRule.created_at < query["created_before"])
        return page_response(statement, DetectionRule.created_at, DetectionRule.id, query)

    def post(self):
        principal = authorize("rules:write")
        return idempotency.answer_once(
            principal.user_id, RULE_CREATION, lambda: self._create(principal)
        )

    @staticmethod
    def _create(principal):
        if request.mimetype in YAML_MEDIA_TYPES:
            options = load_query(SigmaRuleQuerySchema())
            definition = detection.sigma_definition(_read_yaml_text(), options.get("severity"))
            rule = detection.create_rule(definition, principal, enabled=options["enabled"])
        else:
            if request.args:
                # 422: the document cannot tie the query to the body's media type.
                raise ApiError(422, "Query parameters apply to YAML (Sigma) uploads only.")
            data = load_json(RuleCreateSchema())
            definition = detection.seed_definition(
                data["name"], data["description"], data["detection"], data["severity"]
            )
            rule = detection.create_rule(
                definition, principal, enabled=data["enabled"], group_by=data["group_by"]
            )
        location = {"Location": f"/rules/{rule.id}"}
        return respond(rule, 201, etag=rule.version, headers=location)


class RuleItem(Resource):
    openapi = {
        "get": Operation(
            "Read one threat rule",
            permission="rules:read",
            responses={200: RuleSchema},
            headers=("ETag",),
        ),
        "patch": Operation(
            "Enable, disable or edit a rule (name, description, severity, grouping)",
            permission="rules:write",
            body=RuleUpdateSchema,
            responses={200: RuleSchema},
            headers=("ETag",),
            if_match=True,
        ),
        "delete": Operation(
            "Delete a rule (its alerts stay)",
            permission="rules:write",
            responses={204: None},
            if_match=True,
        ),
    }

    def get(self, rule_id: int):
        authorize("rules:read")
        rule = _get_rule(rule_id)
        return respond(rule, etag=rule.version)

    def patch(self, rule_id: int):
        principal = authorize("rules:write")
        data = load_json(RuleUpdateSchema())
        rule = _get_rule(rule_id, lock=True)
        ensure_version_matches(rule.version)
        detection.update_rule(rule, principal, data)
        db.session.commit()
        return respond(rule, etag=rule.version)

    def delete(self, rule_id: int):
        principal = authorize("rules:write")
        rule = _get_rule(rule_id, lock=True)
        ensure_version_matches(rule.version)
        detection.delete_rule(rule, principal)
        db.session.commit()
        return None, 204


class RuleTest(Resource):
    openapi = {
        "post": Operation(
            "Dry-run a rule (enabled or not) on sample events; nothing is stored",
            permission="rules:write",
            body=RuleTestSchema,
            responses={200: DryRunSchema},
        )
    }

    def post(self, rule_id: int):
        authorize("rules:write")
        data = load_json(RuleTestSchema())
        return respond(alerts.dry_run(_get_rule(rule_id), data["events"]))


def _read_events() -> list[dict[str, Any]]:
    document = read_json_document()
    events = document if isinstance(document, list) else [document]
    if not events or len(events) > alerts.MAX_EVENTS:
        raise ApiError(400, f"Send {EVENTS_DESCRIPTION} (got {len(events)}).")
    not_objects = [index for index, event in enumerate(events) if not isinstance(event, dict)]
    if not_objects:
        raise ApiError(
            400,
            "Every event must be a JSON object.",
            errors={"events": [f"not an object at index {index}" for index in not_objects[:20]]},
        )
    return events


class Events(Resource):
    max_content_length = EVENTS_MAX_BODY_BYTES
    openapi = {
        "post": Operation(
            "Ingest events: evaluate every enabled rule, record matches as alerts",
            permission="events:write",
            body=Content(
                "application/json",
                {
                    "description": EVENTS_DESCRIPTION,
                    "oneOf": [
                        {"type": "object"},
                        {"type": "array", "items": {"type": "object"}, "minItems": 1},
                    ],
                },
            ),
            responses={200: IngestResultSchema},
            description=(
                "Repeated matches of a rule on the same host/user/source IP (or the rule's "
                "group_by fields) within ALERT_GROUP_WINDOW_SECONDS are counted into one "
                "alert; alerts at or above ALERT_AUTO_INCIDENT_SEVERITY open an incident."
            ),
        )
    }

    def post(self):
        principal = authorize("events:write")
        with garbage_collection_paused():
            body = alerts.ingest_events(_read_events(), principal)
        db.session.commit()
        return respond(body)


INTAKE_DESCRIPTION = (
    "The same source and source_ref again counts into the alert already received (count, "
    "last_seen, new observables, tags and techniques), also when retries arrive at once. "
    "Each observable is checked against the IOC store (an address also against stored "
    "networks): known_bad and the matching IOC ids. 422 for an invalid IOC value, a raw "
    "original over 64 KiB, or a technique a loaded ATT&CK catalogue lacks."
)


class AlertList(Resource):
    openapi = {
        "get": Operation(
            "List alerts (from rules and from tools), newest first",
            permission="alerts:read",
            query=AlertListQuerySchema,
            responses={200: AlertPageSchema},
        ),
        "post": Operation(
            "Receive an alert from another tool (SIEM, EDR, SOAR)",
            permission="alerts:write",
            body=AlertIntakeSchema,
            responses={201: AlertSchema, 200: AlertSchema},
            headers=("ETag", "Location"),
            errors=(422,),
            idempotent=True,
            description="201 for a new alert, 200 for a resend counted into one. "
            + INTAKE_DESCRIPTION,
        ),
    }

    def get(self):
        principal = authorize("alerts:read")
        query = load_query(AlertListQuerySchema())
        statement = alerts.alerts_statement(principal, query)
        return page_response(statement, Alert.created_at, Alert.id, query)

    def post(self):
        principal = authorize("alerts:write")
        data = load_json(AlertIntakeSchema())

        def receive():
            (receipt,) = alert_intake.receive_alerts([data], principal)
            alert = alert_intake.received_alert(receipt["id"])
            location = {"Location": f"/alerts/{alert.id}"}
            status = 201 if receipt["created"] else 200
            return respond(alert, status, etag=alert.version, headers=location)

        return idempotency.answer_once(principal.user_id, ALERT_RECEIPT, receive)


class AlertBulk(Resource):
    max_content_length = EVENTS_MAX_BODY_BYTES
    openapi = {
        "post": Operation(
            f"Receive up to {alert_intake.MAX_BULK_ALERTS} alerts from another tool at once",
            permission="alerts:write",
            body=AlertBulkSchema,
            responses={200: AlertBulkResultSchema},
            errors=(422,),
            idempotent=True,
            description="All or nothing: one refused alert refuses the batch, naming it by "
            "index. " + INTAKE_DESCRIPTION,
        )
    }

    def post(self):
        principal = authorize("alerts:write")
        data = load_json(AlertBulkSchema())

        def receive():
            with garbage_collection_paused():
                receipts = alert_intake.receive_alerts(data["alerts"], principal)
            created = sum(1 for receipt in receipts if receipt["created"])
            body = {
                "received": len(receipts),
                "created": created,
                "updated": len(receipts) - created,
                "alerts": receipts,
            }
            return respond(body)

        return idempotency.answer_once(principal.user_id, ALERT_BULK_RECEIPT, receive)


class AlertItem(Resource):
    openapi = {
        "get": Operation(
            "Read one alert",
            permission="alerts:read",
            responses={200: AlertSchema},
            headers=("ETag",),
        ),
        "patch": Operation(
            "Acknowledge or dismiss an alert",
            permission="alerts:write",
            body=AlertUpdateSchema,
            responses={200: AlertSchema},
            headers=("ETag",),
            if_match=True,
            errors=(409,),
            description="A dismissed alert stops counting new matches; the next opens anew.",
        ),
    }

    def get(self, alert_id: int):
        principal = authorize("alerts:read")
        alert = alerts.get_alert(principal, alert_id)
        return respond(alert, etag=alert.version)

    def patch(self, alert_id: int):
        principal = authorize("alerts:write")
        data = load_json(AlertUpdateSchema())
        alert = alerts.get_alert(principal, alert_id, lock=True)
        ensure_version_matches(alert.version)
        alerts.change_alert_status(alert, principal, data["status"], data.get("comment"))
        db.session.commit()
        return respond(alert, etag=alert.version)


class AlertEscalation(Resource):
    openapi = {
        "post": Operation(
            "Escalate an alert: open an incident for it and link them",
            permission="alerts:write",
            body=AlertEscalateSchema,
            responses={201: EscalationSchema},
            headers=("ETag", "Location", "Idempotent-Replayed"),
            if_match=True,
            idempotent=True,
            errors=(409, 422),
            description="Needs incidents:write too. The body is optional.",
        )
    }

    def post(self, alert_id: int):
        principal = authorize("alerts:write")
        authorize("incidents:write")
        data = load_json(AlertEscalateSchema()) if request.get_data(cache=True) else {}

        def escalate():
            alert = alerts.get_alert(principal, alert_id, lock=True)
            ensure_version_matches(alert.version)
            incident = alerts.escalate_alert(alert, principal, data)
            body = {"alert": alert, "incident": incident}
            location = {"Location": f"/incidents/{incident.id}"}
            return respond(body, 201, etag=alert.version, headers=location)

        return idempotency.answer_once(principal.user_id, ESCALATION, escalate)


def register(api) -> None:
    api.add_resource(RuleList, "/rules")
    api.add_resource(RuleItem, "/rules/<int:rule_id>")
    api.add_resource(RuleTest, "/rules/<int:rule_id>/test")
    api.add_resource(Events, "/events")
    api.add_resource(AlertList, "/alerts")
    api.add_resource(AlertBulk, "/alerts/bulk")
    api.add_resource(AlertItem, "/alerts/<int:alert_id>")
    api.add_resource(AlertEscalation, "/alerts/<int:alert_id>/escalate")
