"""The functional collection: every endpoint doing its job, top to bottom, on a fresh database.

Only the admin exists at the start (``flask create-admin``); the run registers its own
analyst and viewer (names carry ``{{runId}}``, so a second run on the same database works)
and chains ids through collection variables.
"""

from __future__ import annotations

from collection_builder import (
    BEFORE_EVERY_REQUEST,
    USER_PASSWORD,
    collection,
    expect,
    folder,
    header,
    json_body,
    login,
    problem,
    request,
    save,
    status,
)
from functional_case_alerts import CASE_ALERTS  # case work, part A
from functional_case_work import CASE_WORK
from functional_detection import DETECTION
from functional_identity import IDENTITY
from functional_iocs import API_KEYS, CLEANUP, INTEL
from functional_reports import REPORTS
from functional_taxii import STIX, TAXII_FEEDS, TAXII_SERVER
from functional_webhooks import WEBHOOKS  # automation (issue 16)

EVERY_RESPONSE = [
    'pm.test("security headers", () => {',
    '    pm.expect(pm.response.headers.get("X-Content-Type-Options")).to.eql("nosniff");',
    '    pm.expect(pm.response.headers.get("X-Frame-Options")).to.eql("DENY");',
    '    pm.response.to.have.header("X-Request-ID");',
    "});",
]


def register(name: str, username: str, role: str, variable: str) -> dict:
    return request(
        name,
        "POST",
        "/auth/register",
        [
            status(201),
            json_body("id", "username", "role", "permissions", "created_at"),
            header("Location", r"^/users/\d+$"),
            expect("role as asked", f'pm.expect(body.role).to.eql("{role}");'),
            save(variable, "body.id"),
        ],
        body={"username": username, "password": "{{userPassword}}", "role": role},
    )


SERVICE = folder(
    "Service",
    "Liveness, readiness and the API's own description.",
    [
        request(
            "Health",
            "GET",
            "/health",
            [status(200), expect("ok", 'pm.expect(body).to.eql({status: "ok"});')],
            auth=None,
        ),
        request(
            "Ready",
            "GET",
            "/ready",
            [
                status(200),
                expect("database and migrations", 'pm.expect(body.status).to.eql("ready");'),
            ],
            auth=None,
        ),
        request(
            "OpenAPI document",
            "GET",
            "/openapi.json",
            [
                status(200),
                json_body("openapi", "paths", "components"),
                expect(
                    "documents incidents",
                    'pm.expect(body.openapi).to.eql("3.1.0");',
                    'pm.expect(body.paths).to.have.property("/incidents/{incident_id}");',
                ),
            ],
            auth=None,
        ),
        request(
            "API reference page",
            "GET",
            "/docs",
            [
                status(200),
                header("Content-Type", "^text/html"),
                header("Content-Security-Policy", "script-src 'self'"),
            ],
            auth=None,
        ),
        *(
            request(
                f"API reference page: {asset}",
                "GET",
                f"/docs/{asset}",
                [status(200), header("Content-Type", media_type)],
                auth=None,
            )
            for asset, media_type in (
                ("swagger-ui.css", "^text/css"),
                ("swagger-ui-bundle.js", "^text/javascript"),
                ("swagger-initializer.js", "^text/javascript"),
            )
        ),
    ],
)

AUTH = folder(
    "Auth",
    "Log in as the admin, register an analyst and a viewer, log them in.",
    [
        login("Login admin", "{{adminUsername}}", "{{adminPassword}}", "adminToken"),
        request(
            "Who am I (admin)",
            "GET",
            "/auth/me",
            [
                status(200),
                json_body("id", "username", "role", "permissions", "credential_type"),
                header("Cache-Control", "no-store"),
                expect(
                    "admin with every permission",
                    'pm.expect(body.role).to.eql("admin");',
                    'pm.expect(body.permissions).to.include("*:*");',
                    'pm.expect(body.credential_type).to.eql("token");',
                ),
            ],
        ),
        register("Register analyst", "analyst_{{runId}}", "analyst", "analystId"),
        register("Register viewer", "viewer_{{runId}}", "viewer", "viewerId"),
        request(
            "Register duplicate username is 409",
            "POST",
            "/auth/register",
            [problem(409)],
            body={
                "username": "ANALYST_{{runId}}",
                "password": "{{userPassword}}",
                "role": "viewer",
            },
        ),
        request(
            "Register weak password is 422",
            "POST",
            "/auth/register",
            [
                problem(422),
                expect(
                    "names the password", 'pm.expect(body.errors).to.have.property("password");'
                ),
            ],
            body={"username": "weak_{{runId}}", "password": "short", "role": "viewer"},
        ),
        login("Login analyst", "analyst_{{runId}}", "{{userPassword}}", "analystToken"),
        login("Login viewer", "viewer_{{runId}}", "{{userPassword}}", "viewerToken"),
    ],
)

INCIDENT_FIELDS = (
    "id",
    "title",
    "severity",
    "status",
    "tlp",
    "reporter",
    "assignee",
    "version",
    "allowed_transitions",
    "sla",
)

AFTER_TRIAGE = '["investigating", "false_positive"]'

INCIDENTS = folder(
    "Incidents",
    "Open, retry safely, list, read, edit with If-Match, move through the workflow, comment.",
    [
        request(
            "Create incident",
            "POST",
            "/incidents",
            [
                status(201),
                json_body(*INCIDENT_FIELDS),
                header("ETag", '^"1"$'),
                header("Location", r"^/incidents/\d+$"),
                expect(
                    "new, reported by the analyst, with SLA due times",
                    'pm.expect(body.status).to.eql("new");',
                    'const reporter = "analyst_" + pm.collectionVariables.get("runId");',
                    "pm.expect(body.reporter).to.eql(reporter);",
                    'pm.expect(body.sla).to.include.all.keys("response_due", "resolution_due");',
                ),
                save("incidentId", "body.id"),
            ],
            auth="analystToken",
            headers={"Idempotency-Key": "create-{{runId}}"},
            body={
                "title": "Phishing wave against finance",
                "description": "Credential harvesting mails from evil.example.com",
                "severity": "high",
                "tlp": "amber",
                "assignee": "analyst_{{runId}}",
            },
        ),
        request(
            "Create incident again with the same Idempotency-Key",
            "POST",
            "/incidents",
            [
                status(201),
                header("Idempotent-Replayed", "^true$"),
                expect(
                    "the first incident, not a duplicate",
                    'pm.expect(body.id).to.eql(Number(pm.collectionVariables.get("incidentId")));',
                ),
            ],
            auth="analystToken",
            headers={"Idempotency-Key": "create-{{runId}}"},
            body={
                "title": "Phishing wave against finance",
                "description": "Credential harvesting mails from evil.example.com",
                "severity": "high",
                "tlp": "amber",
                "assignee": "analyst_{{runId}}",
            },
        ),
        request(
            "List incidents filtered by severity",
            "GET",
            "/incidents?severity=high&limit=10",
            [
                status(200),
                json_body("items", "next_cursor"),
                expect(
                    "the new incident is listed, all high",
                    "const ids = body.items.map((i) => i.id);",
                    'pm.expect(ids).to.include(Number(pm.collectionVariables.get("incidentId")));',
                    'body.items.forEach((i) => pm.expect(i.severity).to.eql("high"));',
                ),
            ],
            auth="viewerToken",
        ),
        request(
            "Search incidents by text",
            "GET",
            "/incidents?q=phishing",
            [
                status(200),
                expect(
                    "found by full-text search", "pm.expect(body.items.length).to.be.at.least(1);"
                ),
            ],
            auth="viewerToken",
        ),
        request(
            "Read incident",
            "GET",
            "/incidents/{{incidentId}}",
            [status(200), json_body(*INCIDENT_FIELDS), header("ETag", '^"1"$')],
            auth="viewerToken",
        ),
        request(
            "Edit incident with current If-Match",
            "PATCH",
            "/incidents/{{incidentId}}",
            [
                status(200),
                header("ETag", '^"2"$'),
                expect("edited", 'pm.expect(body.severity).to.eql("critical");'),
            ],
            auth="analystToken",
            headers={"If-Match": '"1"'},
            body={"severity": "critical"},
        ),
        request(
            "Edit incident with stale If-Match is 412",
            "PATCH",
            "/incidents/{{incidentId}}",
            [
                problem(412),
                expect("tells the current version", "pm.expect(body.current_version).to.eql(2);"),
            ],
            auth="analystToken",
            headers={"If-Match": '"1"'},
            body={"title": "lost update"},
        ),
        request(
            "Move incident to triaged",
            "PATCH",
            "/incidents/{{incidentId}}/status",
            [
                status(200),
                expect(
                    "triaged, next steps listed",
                    'pm.expect(body.status).to.eql("triaged");',
                    f"pm.expect(body.allowed_transitions).to.eql({AFTER_TRIAGE});",
                ),
            ],
            auth="analystToken",
            body={"status": "triaged", "comment": "confirmed phishing"},
        ),
        request(
            "Illegal transition is 409 with the allowed ones",
            "PATCH",
            "/incidents/{{incidentId}}/status",
            [
                problem(409),
                expect(
                    "lists allowed transitions",
                    f"pm.expect(body.allowed_transitions).to.eql({AFTER_TRIAGE});",
                ),
            ],
            auth="analystToken",
            body={"status": "closed"},
        ),
        request(
            "Comment on incident",
            "POST",
            "/incidents/{{incidentId}}/comments",
            [
                status(201),
                json_body("id", "incident_id", "kind", "actor", "comment", "created_at"),
                expect("a comment entry", 'pm.expect(body.kind).to.eql("comment");'),
            ],
            auth="analystToken",
            body={"body": "Blocked the sender domain at the gateway."},
        ),
        request(
            "Incident timeline",
            "GET",
            "/incidents/{{incidentId}}/timeline",
            [
                status(200),
                json_body("items"),
                expect(
                    "every change in order",
                    "const kinds = body.items.map((e) => e.kind);",
                    'pm.expect(kinds).to.eql(["created", "edit", "status_change", "comment"]);',
                ),
            ],
            auth="viewerToken",
        ),
    ],
)

ADMINISTRATION = folder(
    "Administration",
    "Admin views: login blocks, the audit log, metrics.",
    [
        request(
            "List login blocks",
            "GET",
            "/security/blocks?include_inactive=true",
            [status(200), json_body("items", "next_cursor")],
        ),
        request(
            "Audit log of logins",
            "GET",
            "/audit?action=auth.login&limit=50",
            [
                status(200),
                json_body("items", "next_cursor"),
                expect(
                    "logins are audited",
                    "pm.expect(body.items.length).to.be.at.least(3);",
                    'body.items.forEach((e) => pm.expect(e.action).to.eql("auth.login"));',
                ),
            ],
        ),
        request(
            "Prometheus metrics",
            "GET",
            "/metrics",
            [
                status(200),
                header("Content-Type", "^text/plain"),
                'pm.test("exposes request durations", () => '
                'pm.expect(pm.response.text()).to.include("http_request_duration_seconds"));',
            ],
        ),
    ],
)

LOGOUT = folder(
    "Logout",
    "A second admin session is revoked and stops working; the first stays valid.",
    [
        login("Login admin again", "{{adminUsername}}", "{{adminPassword}}", "logoutToken"),
        request("Logout", "POST", "/auth/logout", [status(204)], auth="logoutToken"),
        request(
            "Revoked token is 401",
            "GET",
            "/auth/me",
            [problem(401), header("WWW-Authenticate", "^Bearer")],
            auth="logoutToken",
        ),
        request("First admin token still works", "GET", "/auth/me", [status(200)]),
    ],
)


def build() -> dict:
    return collection(
        "SOC Incident API - functional",
        "Every endpoint doing its job. Run on a fresh database with only the admin created "
        "(flask create-admin); set adminUsername/adminPassword in the environment.",
        [
            SERVICE,
            AUTH,
            INCIDENTS,
            INTEL,
            API_KEYS,
            STIX,
            TAXII_SERVER,
            TAXII_FEEDS,
            DETECTION,
            REPORTS,
            IDENTITY,
            WEBHOOKS,  # automation (issue 16)
            CASE_ALERTS,  # case work, part A
            CASE_WORK,
            CLEANUP,
            ADMINISTRATION,
            LOGOUT,
        ],
        variables={"userPassword": USER_PASSWORD},
        every_response=EVERY_RESPONSE,
        before_every_request=BEFORE_EVERY_REQUEST,
    )
