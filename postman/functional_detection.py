"""Functional folder for detection: Sigma and seed-form rules, events, alerts, escalation."""

from __future__ import annotations

from collection_builder import expect, folder, header, json_body, problem, request, save, status

SIGMA_RULE = """title: Encoded PowerShell
status: test
description: PowerShell started with an encoded command
logsource:
  product: windows
  category: process_creation
detection:
  selection:
    Image|endswith: '\\powershell.exe'
    CommandLine|contains: ' /enc '
  condition: selection
level: medium
"""
EVIL_EVENT = {
    "Image": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
    "CommandLine": "powershell.exe /enc SQBFAFgA",
    "User": "CORP\\alice",
    "Computer": "ws-17.corp.example",
}
BENIGN_EVENT = {"Image": "C:\\Windows\\explorer.exe", "CommandLine": "explorer.exe"}
RULE_FIELDS = ("id", "name", "kind", "severity", "enabled", "version")

DETECTION = folder(
    "Detection",
    "Upload a Sigma rule and a seed-form rule, dry-run, ingest events, work the alert.",
    [
        request(
            "Upload a Sigma rule as YAML",
            "POST",
            "/rules",
            [
                status(201),
                json_body(*RULE_FIELDS),
                expect(
                    "a medium Sigma rule",
                    'pm.expect(body.kind).to.eql("sigma");',
                    'pm.expect(body.severity).to.eql("medium");',
                ),
                save("sigmaRuleId", "body.id"),
            ],
            auth="analystToken",
            raw_body=SIGMA_RULE,
            headers={"Content-Type": "application/yaml"},
        ),
        request(
            "Create a seed-form IOC rule",
            "POST",
            "/rules",
            [status(201), json_body(*RULE_FIELDS), save("seedRuleId", "body.id")],
            auth="analystToken",
            body={
                "name": "Traffic to the lab network",
                "description": "Seed form: any event field holding an address in the range",
                "severity": "low",
                "detection": {"ioc": {"type": "ip", "value": "192.168.0.0/16"}},
            },
        ),
        request(
            "Unsupported Sigma modifier is 422",
            "POST",
            "/rules",
            [problem(422)],
            auth="analystToken",
            raw_body=SIGMA_RULE.replace("CommandLine|contains", "CommandLine|nosuchmodifier"),
            headers={"Content-Type": "application/yaml"},
        ),
        request(
            "List Sigma rules",
            "GET",
            "/rules?kind=sigma",
            [
                status(200),
                json_body("items", "next_cursor"),
                expect(
                    "all Sigma", 'body.items.forEach((r) => pm.expect(r.kind).to.eql("sigma"));'
                ),
            ],
            auth="viewerToken",
        ),
        request(
            "Read a rule",
            "GET",
            "/rules/{{sigmaRuleId}}",
            [status(200), json_body(*RULE_FIELDS), header("ETag", '^"1"$')],
            auth="viewerToken",
        ),
        request(
            "Edit a rule's description",
            "PATCH",
            "/rules/{{sigmaRuleId}}",
            [status(200), header("ETag", '^"2"$')],
            auth="analystToken",
            headers={"If-Match": '"1"'},
            body={"description": "Encoded commands are a common loader technique"},
        ),
        request(
            "Dry-run a rule on sample events",
            "POST",
            "/rules/{{sigmaRuleId}}/test",
            [
                status(200),
                json_body("events", "match_count", "matches"),
                expect(
                    "the encoded command matches, explorer does not",
                    "pm.expect(body.match_count).to.eql(1);",
                    "pm.expect(body.matches[0].event_index).to.eql(0);",
                ),
            ],
            auth="analystToken",
            body={"events": [EVIL_EVENT, BENIGN_EVENT]},
        ),
        request(
            "Ingest events",
            "POST",
            "/events",
            [
                status(200),
                json_body("events", "match_count", "alerts", "incidents_created"),
                expect(
                    "one alert for the repeated event",
                    "pm.expect(body.events).to.eql(3);",
                    "pm.expect(body.alerts.length).to.eql(1);",
                    "pm.expect(body.alerts[0].count).to.eql(2);",
                ),
                save("alertId", "body.alerts[0].id"),
            ],
            auth="analystToken",
            body=[EVIL_EVENT, EVIL_EVENT, BENIGN_EVENT],
        ),
        request(
            "List open alerts",
            "GET",
            "/alerts?status=open",
            [
                status(200),
                json_body("items", "next_cursor"),
                expect(
                    "the new alert is open",
                    'const alertId = Number(pm.collectionVariables.get("alertId"));',
                    "pm.expect(body.items.map((a) => a.id)).to.include(alertId);",
                ),
            ],
            auth="viewerToken",
        ),
        request(
            "Read an alert",
            "GET",
            "/alerts/{{alertId}}",
            [status(200), json_body("id", "status", "count", "allowed_transitions")],
            auth="viewerToken",
        ),
        request(
            "Acknowledge an alert",
            "PATCH",
            "/alerts/{{alertId}}",
            [status(200), expect("acknowledged", 'pm.expect(body.status).to.eql("acknowledged");')],
            auth="analystToken",
            body={"status": "acknowledged", "comment": "looking into ws-17"},
        ),
        request(
            "Escalate an alert to an incident",
            "POST",
            "/alerts/{{alertId}}/escalate",
            [
                status(201),
                json_body("alert", "incident"),
                expect(
                    "linked both ways",
                    'pm.expect(body.alert.status).to.eql("escalated");',
                    "pm.expect(body.alert.incident_id).to.eql(body.incident.id);",
                ),
            ],
            auth="analystToken",
            body={"title": "Encoded PowerShell on ws-17"},
        ),
        request(
            "Escalating twice is 409",
            "POST",
            "/alerts/{{alertId}}/escalate",
            [problem(409)],
            auth="analystToken",
            body={"title": "again"},
        ),
        request(
            "Delete a rule",
            "DELETE",
            "/rules/{{seedRuleId}}",
            [status(204)],
            auth="analystToken",
            headers={"If-Match": '"1"'},
        ),
    ],
)
