"""Incident templates: admins write them, POST /incidents with template applies them
(defaults and tasks), and a template survives export and import as JSON."""

from __future__ import annotations

from sqlalchemy import func, select

from models import IncidentTemplate, Task, db

PHISHING = {
    "name": "phishing",
    "title": "Phishing report",
    "severity": "high",
    "tlp": "amber+strict",
    "tags": ["phishing", "email"],
    "description": "## Reporter\n\n## Headers\n",
    "tasks": [
        {"title": "Collect the message", "mandatory": True, "due_in_minutes": 60},
        {"title": "Search other mailboxes", "mandatory": True},
        {"title": "Block the sender", "description": "at the gateway"},
        {"title": "Tell the reporter"},
    ],
    "custom_fields": {},
}


def _template(admin, body=PHISHING) -> dict:
    response = admin.client.post("/incident-templates", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_an_incident_from_a_template_gets_its_defaults_and_its_4_tasks(admin, analyst):
    _template(admin)
    response = analyst.client.post("/incidents", json={"template": "phishing"})
    assert response.status_code == 201, response.get_json()
    incident = response.get_json()
    assert (incident["title"], incident["severity"], incident["tlp"]) == (
        "Phishing report",
        "high",
        "amber+strict",
    )
    assert incident["description"] == PHISHING["description"]
    tasks = analyst.client.get(f"/incidents/{incident['id']}/tasks").get_json()["items"]
    assert [task["title"] for task in tasks] == [task["title"] for task in PHISHING["tasks"]]
    assert [task["mandatory"] for task in tasks] == [True, True, False, False]
    assert tasks[0]["due_at"] is not None and tasks[1]["due_at"] is None
    assert tasks[2]["description"] == "at the gateway"


def test_what_the_request_gives_wins_over_the_template(admin, analyst):
    _template(admin)
    response = analyst.client.post(
        "/incidents", json={"template": "phishing", "title": "CEO fraud", "severity": "critical"}
    )
    assert response.status_code == 201
    assert (response.get_json()["title"], response.get_json()["severity"]) == (
        "CEO fraud",
        "critical",
    )


def test_an_unknown_template_is_422_and_opens_nothing(app, analyst):
    response = analyst.client.post("/incidents", json={"template": "nope"})
    assert response.status_code == 422
    assert "template" in response.get_json()["errors"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Task)) == 0


def test_without_a_template_title_and_severity_are_required(analyst):
    response = analyst.client.post("/incidents", json={"title": "x"})
    assert response.status_code == 400
    assert "severity" in response.get_json()["errors"]


def test_only_an_admin_writes_a_template(analyst, viewer, admin):
    assert analyst.client.post("/incident-templates", json=PHISHING).status_code == 403
    created = _template(admin)
    assert viewer.client.get(f"/incident-templates/{created['id']}").status_code == 200
    edit = analyst.client.patch(f"/incident-templates/{created['id']}", json={"title": "x"})
    assert edit.status_code == 403
    assert analyst.client.delete(f"/incident-templates/{created['id']}").status_code == 403


def test_a_name_is_unique(admin):
    _template(admin)
    assert admin.client.post("/incident-templates", json=PHISHING).status_code == 409


def test_an_export_imports_as_the_same_template(app, admin):
    created = _template(admin)
    exported = admin.client.get(f"/incident-templates/{created['id']}/export").get_json()
    assert "id" not in exported and exported["tasks"][0]["title"] == "Collect the message"
    admin.client.delete(f"/incident-templates/{created['id']}")

    imported = admin.client.post("/incident-templates/import", json=exported)
    assert imported.status_code == 201, imported.get_json()
    again = admin.client.get(f"/incident-templates/{imported.get_json()['id']}/export")
    assert again.get_json() == exported

    changed = {**exported, "severity": "critical", "tasks": exported["tasks"][:1]}
    replaced = admin.client.post("/incident-templates/import", json=changed)
    assert replaced.status_code == 200
    assert replaced.get_json()["version"] == 2
    with app.app_context():
        templates = db.session.scalars(select(IncidentTemplate)).all()
    assert len(templates) == 1 and len(templates[0].tasks) == 1


def test_an_edit_changes_later_incidents_only(admin, analyst):
    created = _template(admin)
    before = analyst.client.post("/incidents", json={"template": "phishing"}).get_json()
    edit = admin.client.patch(
        f"/incident-templates/{created['id']}",
        json={"tasks": [{"title": "Only one"}]},
        headers={"If-Match": '"1"'},
    )
    assert edit.status_code == 200, edit.get_json()
    after = analyst.client.post("/incidents", json={"template": "phishing"}).get_json()
    count = lambda incident: len(  # noqa: E731
        analyst.client.get(f"/incidents/{incident['id']}/tasks").get_json()["items"]
    )
    assert (count(before), count(after)) == (4, 1)


def test_a_template_task_must_have_a_title(admin):
    body = {**PHISHING, "tasks": [{"mandatory": True}]}
    response = admin.client.post("/incident-templates", json=body)
    assert response.status_code == 400
