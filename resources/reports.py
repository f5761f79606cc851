"""``/reports``: incident metrics (JSON or CSV), the charts page, rule efficacy, and
``/incidents/<id>/report`` (JSON export, Markdown or HTML).

The media type follows ``Accept`` among those each operation declares
(``resources.responding.negotiate``); JSON answers go through the declared schema, and
the other forms are rendered from that same dump, so they show exactly what it shows.
"""

from __future__ import annotations

from typing import Any

from flask_restful import Resource

from auth import authorize
from resources.common import load_query
from resources.openapi import JSON, Content, Operation
from resources.responding import declared_schema, negotiate, respond, respond_document
from schemas.reports import (
    IncidentExportSchema,
    MetricsQuerySchema,
    MetricsRowSchema,
    MetricsSchema,
    ReportRangeQuerySchema,
    RuleEfficacyQuerySchema,
    RuleEfficacyRowSchema,
    RuleEfficacySchema,
)
from security.modules import incidents, report_documents, reports
from security.modules.principals import Principal

CSV = Content("text/csv", {"type": "string"})
HTML = Content("text/html", {"type": "string"})
MARKDOWN = Content("text/markdown", {"type": "string"})
NEGOTIATED = {"Vary": "Accept"}
NOISY_RULES_SHOWN = 10


def _period(query: dict[str, Any]) -> reports.TimeRange:
    return reports.TimeRange(query.get("created_after"), query.get("created_before"))


def _table(query: dict[str, Any], grouping: str, rows: list[dict], row_schema: type) -> Any:
    """The table (with the range and the ``grouping`` parameter it answers) as JSON, by
    the declared schema, or as CSV with the same columns."""
    table = {
        "created_after": query.get("created_after"),
        "created_before": query.get("created_before"),
        grouping: query[grouping],
        "rows": rows,
    }
    media_type = negotiate()
    if media_type == JSON:
        return respond(table, headers=NEGOTIATED)
    rows = declared_schema(200).dump(table)["rows"]
    document = report_documents.table_csv(rows, list(row_schema().fields))
    return respond_document(document, media_type, headers=NEGOTIATED)


class MetricsReport(Resource):
    openapi = {
        "get": Operation(
            "Incident metrics over the incidents opened in a range, grouped",
            permission="reports:read",
            query=MetricsQuerySchema,
            responses={200: (MetricsSchema, CSV)},
            errors=(406, 422),
            description=(
                "Counts, MTTA and MTTR (mean, p50, p90), SLA compliance against each "
                "incident's policy version, false-positive and reopen rates and the open "
                "backlog by age, over the TLP-visible incidents opened in "
                "[created_after, created_before). Accept: text/csv for the same table."
            ),
        )
    }

    def get(self):
        principal = authorize("reports:read")
        query = load_query(MetricsQuerySchema())
        rows = reports.metrics(principal, query["group_by"], _period(query))
        return _table(query, "group_by", rows, MetricsRowSchema)


class RuleEfficacyReport(Resource):
    openapi = {
        "get": Operation(
            "Detection rule efficacy over the alerts raised in a range, noisiest first",
            permission="reports:read",
            query=RuleEfficacyQuerySchema,
            responses={200: (RuleEfficacySchema, CSV)},
            errors=(406, 422),
            description="Accept: text/csv for the same table.",
        )
    }

    def get(self):
        principal = authorize("reports:read")
        query = load_query(RuleEfficacyQuerySchema())
        rows = reports.rule_efficacy(principal, query["by"], _period(query), query["limit"])
        return _table(query, "by", rows, RuleEfficacyRowSchema)


class MetricsReportPage(Resource):
    openapi = {
        "get": Operation(
            "The metrics as a self-contained HTML page with charts (inline SVG)",
            permission="reports:read",
            query=ReportRangeQuerySchema,
            responses={200: HTML},
            errors=(406, 422),
        )
    }

    def get(self):
        principal = authorize("reports:read")
        query = load_query(ReportRangeQuerySchema())
        negotiate()
        period = _period(query)
        page = report_documents.metrics_page(
            viewer=principal.username,
            period=query,
            by_week_and_severity=_dumped_rows(principal, ("week", "severity"), period),
            by_week=_dumped_rows(principal, ("week",), period),
            by_severity=_dumped_rows(principal, ("severity",), period),
            noisy_rules=reports.rule_efficacy(principal, "rule", period, NOISY_RULES_SHOWN),
        )
        return respond_document(page, HTML.media_type)


def _dumped_rows(
    principal: Principal, group_by: tuple[str, ...], period: reports.TimeRange
) -> list[dict[str, Any]]:
    rows = reports.metrics(principal, group_by, period)
    return MetricsRowSchema(many=True).dump(rows)


class IncidentReport(Resource):
    openapi = {
        "get": Operation(
            "An incident's report: JSON export, Markdown, or one self-contained HTML page",
            permission="reports:read",
            responses={200: (IncidentExportSchema, MARKDOWN, HTML)},
            errors=(406,),
            description=(
                "Everything the caller may see of the incident: summary, timeline, alerts, "
                "IOCs (TLP-filtered), file hashes among them, ATT&CK techniques, with a TLP "
                "banner. Accept picks the form; JSON is the archive export."
            ),
        )
    }

    def get(self, incident_id: int):
        principal = authorize("reports:read")
        media_type = negotiate()
        incident = incidents.get_visible_incident(principal, incident_id)
        export = reports.incident_export(principal, incident)
        if media_type == JSON:
            return respond(export, headers=NEGOTIATED)
        dumped = declared_schema(200).dump(export)
        document = report_documents.incident_report(dumped, media_type)
        return respond_document(document, media_type, headers=NEGOTIATED)


def register(api) -> None:
    api.add_resource(MetricsReport, "/reports/metrics")
    api.add_resource(MetricsReportPage, "/reports/metrics.html")
    api.add_resource(RuleEfficacyReport, "/reports/rules")
    api.add_resource(IncidentReport, "/incidents/<int:incident_id>/report")
