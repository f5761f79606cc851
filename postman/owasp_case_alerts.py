"""OWASP folder for case work (part A): alerts from tools, merges and related incidents.

Runs with the users of ``owasp.py`` (alice and bob are analysts, vera a viewer): who may
post and merge alerts (API5), TLP red need-to-know answered 404 (API1), and bodies that
try to set what the server decides (API3, mass assignment).
"""

from __future__ import annotations

from collection_builder import expect, folder, number, problem, request, save, status

TOOL_ALERT = {
    "source": "owasp-siem",
    "source_ref": "owasp-{{runId}}",
    "title": "Suspicious login",
    "severity": "medium",
    "observables": [{"type": "user", "value": "alice"}],
}

CASE_ALERTS = folder(
    "Case work: alerts, merges, related (API1, API3, API5)",
    "alice keeps a TLP-red incident with a merged alert; bob and vera may not see any of "
    "it, vera may not post or merge alerts, and no body sets what the server decides.",
    [
        request(
            "Case setup: alice opens a TLP-red incident",
            "POST",
            "/incidents",
            [status(201), save("caseRedIncidentId", "body.id")],
            auth="aliceToken",
            body={"title": "Insider case", "severity": "high", "tlp": "red"},
        ),
        request(
            "Case setup: alice receives an alert",
            "POST",
            "/alerts",
            [status(201), save("caseRedAlertId", "body.id")],
            auth="aliceToken",
            body=TOOL_ALERT,
        ),
        request(
            "Case setup: alice merges it into the red incident",
            "POST",
            "/incidents/{{caseRedIncidentId}}/alerts",
            [status(200)],
            auth="aliceToken",
            body={"alert_ids": [number("caseRedAlertId")]},
        ),
        request(
            "API1: bob cannot read the red incident's alerts",
            "GET",
            "/incidents/{{caseRedIncidentId}}/alerts",
            [problem(404)],
            auth="bobToken",
        ),
        request(
            "API1: bob cannot read an alert merged into it",
            "GET",
            "/alerts/{{caseRedAlertId}}",
            [problem(404)],
            auth="bobToken",
        ),
        request(
            "API1: the alert list hides it from vera",
            "GET",
            "/alerts?incident_id={{caseRedIncidentId}}",
            [status(200), expect("none", "pm.expect(body.items).to.eql([]);")],
            auth="veraToken",
        ),
        request(
            "API1: vera cannot see the red incident's relations",
            "GET",
            "/incidents/{{caseRedIncidentId}}/related",
            [problem(404)],
            auth="veraToken",
        ),
        request(
            "API1: bob cannot unmerge from the red incident",
            "DELETE",
            "/incidents/{{caseRedIncidentId}}/alerts/{{caseRedAlertId}}",
            [problem(404)],
            auth="bobToken",
        ),
        request(
            "API1: bob cannot merge the red incident away as a duplicate",
            "POST",
            "/incidents/{{caseRedIncidentId}}/merge",
            [problem(404)],
            auth="bobToken",
            body={"duplicate_id": number("caseRedIncidentId")},
        ),
        request(
            "API5: vera cannot post alerts",
            "POST",
            "/alerts",
            [problem(403)],
            auth="veraToken",
            body=TOOL_ALERT,
        ),
        request(
            "API5: vera cannot post a batch of alerts",
            "POST",
            "/alerts/bulk",
            [problem(403)],
            auth="veraToken",
            body={"alerts": [TOOL_ALERT]},
        ),
        request(
            "API5: vera cannot merge alerts",
            "POST",
            "/incidents/{{caseRedIncidentId}}/alerts",
            [problem(403)],
            auth="veraToken",
            body={"alert_ids": [number("caseRedAlertId")]},
        ),
        request(
            "API3: an alert body cannot set its status, count or incident",
            "POST",
            "/alerts",
            [problem(400)],
            auth="bobToken",
            body={**TOOL_ALERT, "status": "escalated", "count": 1000, "incident_id": 1},
        ),
        request(
            "API3: a merge body cannot name the incident",
            "POST",
            "/incidents/{{caseRedIncidentId}}/alerts",
            [problem(400)],
            auth="aliceToken",
            body={"alert_ids": [number("caseRedAlertId")], "incident_id": 1},
        ),
        request(
            "API3: an incident edit cannot set merged_into_id",
            "PATCH",
            "/incidents/{{caseRedIncidentId}}",
            [problem(400)],
            auth="aliceToken",
            body={"merged_into_id": 1},
        ),
    ],
)
