"""The functional collection's case-work folder: custom fields, incident templates (with
export and import), an incident opened from a template, its tasks and the work queue, the
mandatory-task check on resolving, and evidence upload, download and deletion."""

from __future__ import annotations

from collection_builder import expect, folder, header, json_body, request, save, status

BOUNDARY = "soc-evidence-boundary"
EVIDENCE_TEXT = "suspicious attachment"
# A multipart body written out, so the collection needs no file beside it.
UPLOAD = (
    f"--{BOUNDARY}\r\n"
    'Content-Disposition: form-data; name="file"; filename="mail.txt"\r\n'
    "Content-Type: text/plain\r\n\r\n"
    f"{EVIDENCE_TEXT}\r\n"
    f"--{BOUNDARY}--\r\n"
)
TEMPLATE = {
    "name": "phishing-{{runId}}",
    "title": "Phishing report",
    "severity": "high",
    "tlp": "amber",
    "tags": ["phishing"],
    "description": "## Reporter\n\n## Headers\n",
    "tasks": [
        {"title": "Collect the message", "mandatory": True, "due_in_minutes": 60},
        {"title": "Search other mailboxes", "mandatory": True},
        {"title": "Block the sender"},
        {"title": "Tell the reporter"},
    ],
    "custom_fields": {"unit_{{runId}}": "finance"},
}
TASKS = "/incidents/{{caseIncidentId}}/tasks"
EVIDENCE = "/incidents/{{caseIncidentId}}/evidence"


def _status_change(name: str, to: str, code: int, *tests: str) -> dict:
    return request(
        name,
        "PATCH",
        "/incidents/{{caseIncidentId}}/status",
        [status(code), *tests],
        auth="analystToken",
        body={"status": to},
    )


CASE_WORK = folder(
    "Case work",
    "Custom fields, templates, tasks and the work queue, the mandatory-task check, evidence.",
    [
        request(
            "Define a custom field",
            "POST",
            "/custom-fields",
            [status(201), json_body("id", "name", "field_type"), save("fieldId", "body.id")],
            body={
                "name": "unit_{{runId}}",
                "label": "Business unit",
                "field_type": "choice",
                "choices": ["finance", "hr"],
            },
        ),
        request(
            "List custom fields",
            "GET",
            "/custom-fields",
            [status(200), json_body("items", "next_cursor")],
            auth="viewerToken",
        ),
        request(
            "Read a custom field",
            "GET",
            "/custom-fields/{{fieldId}}",
            [status(200), json_body("choices")],
            auth="viewerToken",
        ),
        request(
            "Write an incident template",
            "POST",
            "/incident-templates",
            [
                status(201),
                json_body("id", "name", "tasks"),
                header("Location", r"^/incident-templates/\d+$"),
                save("templateId", "body.id"),
            ],
            body=TEMPLATE,
        ),
        request(
            "List incident templates",
            "GET",
            "/incident-templates",
            [status(200), json_body("items", "next_cursor")],
            auth="viewerToken",
        ),
        request(
            "Edit an incident template",
            "PATCH",
            "/incident-templates/{{templateId}}",
            [status(200), expect("edited", 'pm.expect(body.tlp).to.eql("amber+strict");')],
            body={"tlp": "amber+strict"},
        ),
        request(
            "Read an incident template",
            "GET",
            "/incident-templates/{{templateId}}",
            [status(200), header("ETag")],
            auth="viewerToken",
        ),
        request(
            "Export an incident template",
            "GET",
            "/incident-templates/{{templateId}}/export",
            [
                status(200),
                expect("no id in the document", "pm.expect(body).to.not.have.property('id');"),
                expect("4 tasks", "pm.expect(body.tasks).to.have.lengthOf(4);"),
                "pm.collectionVariables.set('templateExport', pm.response.text());",
            ],
            auth="viewerToken",
        ),
        request(
            "Import the exported template (replaces the one of its name)",
            "POST",
            "/incident-templates/import",
            [
                status(200),
                expect(
                    "same id",
                    "const id = Number(pm.collectionVariables.get('templateId'));",
                    "pm.expect(body.id).to.eql(id);",
                ),
            ],
            raw_body="{{templateExport}}",
            headers={"Content-Type": "application/json"},
        ),
        request(
            "Open an incident from the template",
            "POST",
            "/incidents",
            [
                status(201),
                expect("the template's severity", 'pm.expect(body.severity).to.eql("high");'),
                save("caseIncidentId", "body.id"),
            ],
            auth="analystToken",
            body={"template": "phishing-{{runId}}", "title": "Phishing at finance"},
        ),
        request(
            "Filter incidents by a custom field",
            "GET",
            "/incidents?custom_field=unit_{{runId}}:finance",
            [
                status(200),
                expect(
                    "the template's incident is found",
                    "const ids = body.items.map((item) => item.id);",
                    "const id = Number(pm.collectionVariables.get('caseIncidentId'));",
                    "pm.expect(ids).to.include(id);",
                ),
            ],
            auth="viewerToken",
        ),
        request(
            "The incident's 4 tasks",
            "GET",
            TASKS,
            [
                status(200),
                expect("4 tasks", "pm.expect(body.items).to.have.lengthOf(4);"),
                save("mandatoryTask1", "body.items[0].id"),
                save("mandatoryTask2", "body.items[1].id"),
            ],
            auth="viewerToken",
        ),
        request(
            "Add a task assigned to the analyst",
            "POST",
            TASKS,
            [status(201), json_body("id", "status", "assignee"), save("taskId", "body.id")],
            auth="analystToken",
            body={"title": "Pull proxy logs", "assignee": "analyst_{{runId}}"},
        ),
        request(
            "Read a task",
            "GET",
            TASKS + "/{{taskId}}",
            [status(200), header("ETag", '^"1"$')],
            auth="viewerToken",
        ),
        request(
            "The analyst's work queue",
            "GET",
            "/tasks?assignee=me&status=open",
            [
                status(200),
                expect(
                    "holds the task",
                    "const id = Number(pm.collectionVariables.get('taskId'));",
                    "pm.expect(body.items.map((t) => t.id)).to.include(id);",
                ),
            ],
            auth="analystToken",
        ),
        _status_change("Triage", "triaged", 200),
        _status_change("Investigate", "investigating", 200),
        _status_change("Contain", "contained", 200),
        _status_change(
            "Resolve with mandatory tasks open is 409 naming them",
            "resolved",
            409,
            expect("names them", "pm.expect(body.open_mandatory_tasks).to.have.lengthOf(2);"),
        ),
        request(
            "Finish the first mandatory task",
            "PATCH",
            TASKS + "/{{mandatoryTask1}}",
            [status(200), expect("done", 'pm.expect(body.status).to.eql("done");')],
            auth="analystToken",
            body={"status": "done"},
        ),
        request(
            "Cancel the second mandatory task",
            "PATCH",
            TASKS + "/{{mandatoryTask2}}",
            [status(200)],
            auth="analystToken",
            body={"status": "cancelled"},
        ),
        request(
            "Attach a file",
            "POST",
            EVIDENCE,
            [
                status(201),
                json_body("id", "sha256", "size", "declared_type", "sniffed_type"),
                save("evidenceId", "body.id"),
            ],
            auth="analystToken",
            raw_body=UPLOAD,
            headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        ),
        request(
            "List the incident's evidence",
            "GET",
            EVIDENCE,
            [status(200), expect("one file", "pm.expect(body.items).to.have.lengthOf(1);")],
            auth="viewerToken",
        ),
        request(
            "Read an evidence record",
            "GET",
            EVIDENCE + "/{{evidenceId}}",
            [status(200), json_body("sha256")],
            auth="viewerToken",
        ),
        request(
            "Download the file as an attachment",
            "GET",
            EVIDENCE + "/{{evidenceId}}/content",
            [
                status(200),
                header("Content-Type", "^application/octet-stream"),
                header("Content-Disposition", "^attachment"),
                header("X-Content-Type-Options", "^nosniff$"),
                'pm.test("the bytes", () =>',
                f'    pm.expect(pm.response.text()).to.eql("{EVIDENCE_TEXT}"));',
            ],
            auth="viewerToken",
        ),
        _status_change("Resolve once the tasks are done", "resolved", 200),
        request(
            "Comment on a task",
            "POST",
            TASKS + "/{{taskId}}/comments",
            [status(201), json_body("id", "body", "task_id"), save("commentId", "body.id")],
            auth="analystToken",
            body={"body": "proxy logs pulled"},
        ),
        request(
            "A task's comments",
            "GET",
            TASKS + "/{{taskId}}/comments",
            [status(200), expect("one", "pm.expect(body.items).to.have.lengthOf(1);")],
            auth="viewerToken",
        ),
        request(
            "The author edits the comment (the old text kept)",
            "PATCH",
            "/comments/{{commentId}}",
            [
                status(200),
                expect(
                    "revision", 'pm.expect(body.revisions[0].body).to.eql("proxy logs pulled");'
                ),
            ],
            auth="analystToken",
            body={"body": "proxy logs pulled, 3 hosts"},
        ),
        request(
            "Read a comment",
            "GET",
            "/comments/{{commentId}}",
            [status(200), header("ETag", '^"2"$')],
            auth="viewerToken",
        ),
        request(
            "Someone else cannot delete the comment",
            "DELETE",
            "/comments/{{commentId}}",
            [status(403)],
        ),
        request(
            "The author deletes the comment",
            "DELETE",
            "/comments/{{commentId}}",
            [status(204)],
            auth="analystToken",
        ),
        request(
            "Find an alert to comment on",
            "GET",
            "/alerts?limit=1",
            [status(200), save("caseAlertId", "body.items[0].id")],
            auth="viewerToken",
        ),
        request(
            "Comment on an alert",
            "POST",
            "/alerts/{{caseAlertId}}/comments",
            [status(201), json_body("alert_id")],
            auth="analystToken",
            body={"body": "benign scanner"},
        ),
        request(
            "An alert's comments",
            "GET",
            "/alerts/{{caseAlertId}}/comments",
            [status(200), json_body("items")],
            auth="viewerToken",
        ),
        request(
            "Delete the evidence (admin)",
            "DELETE",
            EVIDENCE + "/{{evidenceId}}",
            [status(204)],
        ),
        request(
            "Delete the incident template",
            "DELETE",
            "/incident-templates/{{templateId}}",
            [status(204)],
        ),
        request(
            "Delete the custom field",
            "DELETE",
            "/custom-fields/{{fieldId}}",
            [status(204)],
        ),
    ],
)
