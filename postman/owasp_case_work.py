"""OWASP folder for case work: who may write templates, custom fields and delete evidence
(API5), TLP red tasks and evidence hidden as 404 (API1), mass assignment refused (API3),
refused uploads (API4, API8).

It runs after the incident folders of ``owasp.py`` with its users (alice and bob are
analysts, vera a viewer).
"""

from __future__ import annotations

from collection_builder import expect, folder, problem, request, save, status

BOUNDARY = "owasp-boundary"


def _multipart(filename: str, content: str, content_type: str = "text/plain") -> str:
    return (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
        f"{content}\r\n"
        f"--{BOUNDARY}--\r\n"
    )


MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
RED_TASKS = "/incidents/{{caseRedIncidentId}}/tasks"
RED_EVIDENCE = "/incidents/{{caseRedIncidentId}}/evidence"

CASE_WORK = folder(
    "Case work: tasks, templates, custom fields, evidence",
    "alice opens a TLP-red incident with a task and a file; vera and bob see none of it "
    "(404); analysts cannot write templates or custom fields or delete evidence (403); "
    "unknown fields are refused (400); an empty file is 422, a traversal name is reduced, "
    "an HTML file downloads as an attachment.",
    [
        request(
            "Setup: alice opens a TLP-red incident for case work",
            "POST",
            "/incidents",
            [status(201), save("caseRedIncidentId", "body.id")],
            auth="aliceToken",
            body={"title": "Insider case", "severity": "high", "tlp": "red"},
        ),
        request(
            "Setup: alice adds a task",
            "POST",
            RED_TASKS,
            [status(201), save("caseRedTaskId", "body.id")],
            auth="aliceToken",
            body={"title": "Image the laptop", "assignee": "vera_{{runId}}"},
        ),
        request(
            "Setup: alice attaches an HTML file",
            "POST",
            RED_EVIDENCE,
            [status(201), save("caseRedEvidenceId", "body.id")],
            auth="aliceToken",
            raw_body=_multipart("page.html", "<script>alert(1)</script>", "text/html"),
            headers=MULTIPART,
        ),
        request(
            "API1: bob cannot list a TLP-red incident's tasks",
            "GET",
            RED_TASKS,
            [problem(404)],
            auth="bobToken",
        ),
        request(
            "API1: vera cannot read a TLP-red task assigned to her",
            "GET",
            RED_TASKS + "/{{caseRedTaskId}}",
            [problem(404)],
            auth="veraToken",
        ),
        request(
            "API1: vera's work queue leaves out a TLP-red incident's task",
            "GET",
            "/tasks?assignee=me",
            [
                status(200),
                expect(
                    "not listed",
                    "const id = Number(pm.collectionVariables.get('caseRedTaskId'));",
                    "pm.expect(body.items.map((t) => t.id)).to.not.include(id);",
                ),
            ],
            auth="veraToken",
        ),
        request(
            "API1: bob cannot list a TLP-red incident's evidence",
            "GET",
            RED_EVIDENCE,
            [problem(404)],
            auth="bobToken",
        ),
        request(
            "API1: bob cannot download a TLP-red incident's file",
            "GET",
            RED_EVIDENCE + "/{{caseRedEvidenceId}}/content",
            [problem(404)],
            auth="bobToken",
        ),
        request(
            "API1: bob cannot attach a file to a TLP-red incident",
            "POST",
            RED_EVIDENCE,
            [problem(404)],
            auth="bobToken",
            raw_body=_multipart("x.txt", "x"),
            headers=MULTIPART,
        ),
        request(
            "API5: an analyst cannot write an incident template",
            "POST",
            "/incident-templates",
            [problem(403)],
            auth="aliceToken",
            body={"name": "owasp-{{runId}}", "severity": "low"},
        ),
        request(
            "API5: an analyst cannot define a custom field",
            "POST",
            "/custom-fields",
            [problem(403)],
            auth="aliceToken",
            body={"name": "owasp", "label": "x", "field_type": "text"},
        ),
        request(
            "API5: an analyst cannot delete evidence",
            "DELETE",
            RED_EVIDENCE + "/{{caseRedEvidenceId}}",
            [problem(403)],
            auth="aliceToken",
        ),
        request(
            "API5: a viewer cannot add a task",
            "POST",
            RED_TASKS,
            [problem(403)],
            auth="veraToken",
            body={"title": "x"},
        ),
        request(
            "API3: a task's incident cannot be set",
            "PATCH",
            RED_TASKS + "/{{caseRedTaskId}}",
            [problem(400)],
            auth="aliceToken",
            body={"incident_id": 1, "version": 99},
        ),
        request(
            "API3: an upload with an extra part is refused",
            "POST",
            RED_EVIDENCE,
            [problem(400)],
            auth="aliceToken",
            raw_body=(
                f"--{BOUNDARY}\r\n"
                'Content-Disposition: form-data; name="uploader_id"\r\n\r\n1\r\n'
                + _multipart("x.txt", "x")
            ),
            headers=MULTIPART,
        ),
        request(
            "API4: an empty file is refused",
            "POST",
            RED_EVIDENCE,
            [problem(422)],
            auth="aliceToken",
            raw_body=_multipart("empty.txt", ""),
            headers=MULTIPART,
        ),
        request(
            "API8: a traversal file name is reduced to a base name",
            "POST",
            RED_EVIDENCE,
            [
                status(201),
                expect("base name", 'pm.expect(body.filename).to.eql("etc_passwd");'),
            ],
            auth="aliceToken",
            raw_body=_multipart("../../etc/passwd", "root"),
            headers=MULTIPART,
        ),
        request(
            "API8: an HTML file downloads as an attachment, never rendered",
            "GET",
            RED_EVIDENCE + "/{{caseRedEvidenceId}}/content",
            [
                status(200),
                'pm.test("attachment, octet-stream, nosniff", () => {',
                "    const headers = pm.response.headers;",
                '    pm.expect(headers.get("Content-Disposition")).to.match(/^attachment/);',
                '    const type = headers.get("Content-Type");',
                "    pm.expect(type).to.match(/^application\\/octet-stream/);",
                '    pm.expect(headers.get("X-Content-Type-Options")).to.eql("nosniff");',
                "});",
            ],
            auth="aliceToken",
        ),
    ],
)
