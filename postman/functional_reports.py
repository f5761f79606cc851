"""The functional collection's reports folder: SLA policy versions, metrics (JSON and
CSV), rule efficacy, the charts page and an incident's report in each of its forms."""

from __future__ import annotations

from collection_builder import expect, folder, header, json_body, request, save, status

# The targets shipped as version 1, written again as the next version: a run adds a
# version without changing any due time.
SHIPPED_TARGETS = {
    "critical": {"response_minutes": 15, "resolution_minutes": 60},
    "high": {"response_minutes": 60, "resolution_minutes": 240},
    "medium": {"response_minutes": 240, "resolution_minutes": 1440},
    "low": {"response_minutes": 1440, "resolution_minutes": 7200},
}


def _document(name: str, path: str, media_type: str, *checks: str, negotiated: bool = True) -> dict:
    """A non-JSON answer; one chosen by ``Accept`` among several says so in ``Vary``."""
    pattern = "^" + media_type.replace("/", "\\/")
    vary = [header("Vary", "Accept")] if negotiated else []
    return request(
        name,
        "GET",
        path,
        [status(200), header("Content-Type", pattern), *vary, *checks],
        auth="viewerToken",
        headers={"Accept": media_type},
    )


def _text_includes(title: str, text: str) -> str:
    return f'pm.test("{title}", () => pm.expect(pm.response.text()).to.include("{text}"));'


REPORTS = folder(
    "Reports",
    "SLA policy versions, incident metrics and rule efficacy, the charts page, reports.",
    [
        request(
            "Write the next SLA policy version",
            "POST",
            "/sla-policies",
            [
                status(201),
                json_body("id", "version", "targets", "note", "created_at"),
                header("Location", r"^/sla-policies/\d+$"),
                expect("a later version", "pm.expect(body.version).to.be.above(1);"),
                save("slaPolicyId", "body.id"),
            ],
            headers={"Idempotency-Key": "sla-policy-{{runId}}"},
            body={"targets": SHIPPED_TARGETS, "note": "the shipped targets again"},
        ),
        request(
            "List SLA policy versions",
            "GET",
            "/sla-policies",
            [status(200), json_body("items", "next_cursor")],
            auth="viewerToken",
        ),
        request(
            "Read one SLA policy version",
            "GET",
            "/sla-policies/{{slaPolicyId}}",
            [status(200), json_body("version", "targets"), header("ETag")],
            auth="viewerToken",
        ),
        request(
            "Incident metrics by severity",
            "GET",
            "/reports/metrics?group_by=severity",
            [
                status(200),
                json_body("group_by", "rows"),
                expect(
                    "the run's incidents are counted",
                    "const opened = body.rows.reduce((sum, row) => sum + row.opened, 0);",
                    "pm.expect(opened).to.be.at.least(1);",
                ),
            ],
            auth="viewerToken",
        ),
        _document(
            "Incident metrics by week as CSV",
            "/reports/metrics?group_by=week",
            "text/csv",
            _text_includes("a header row", "group_week,opened,resolved"),
        ),
        request(
            "Rule efficacy, noisiest first",
            "GET",
            "/reports/rules",
            [status(200), json_body("by", "rows")],
            auth="viewerToken",
        ),
        _document(
            "Charts page",
            "/reports/metrics.html",
            "text/html",
            _text_includes("inline SVG", "<svg"),
            negotiated=False,
        ),
        request(
            "Incident export (JSON)",
            "GET",
            "/incidents/{{incidentId}}/report",
            [status(200), json_body("incident", "timeline", "alerts", "iocs")],
            auth="viewerToken",
            headers={"Accept": "application/json"},
        ),
        _document(
            "Incident report (Markdown)",
            "/incidents/{{incidentId}}/report",
            "text/markdown",
            _text_includes("TLP banner", "**TLP:AMBER**"),
        ),
        _document(
            "Incident report (HTML)",
            "/incidents/{{incidentId}}/report",
            "text/html",
            _text_includes("TLP banner", "TLP:AMBER"),
        ),
    ],
)
