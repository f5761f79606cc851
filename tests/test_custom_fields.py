"""Custom fields: admins define them, incidents' values are checked against them, stored
as GIN-indexed JSONB and filterable on GET /incidents."""

from __future__ import annotations

from sqlalchemy import text

from models import db


def _define(admin, **body) -> dict:
    response = admin.client.post("/custom-fields", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _define_all(admin) -> None:
    _define(
        admin,
        name="business_unit",
        label="Business unit",
        field_type="choice",
        choices=["finance", "hr", "it"],
    )
    _define(admin, name="records", label="Records exposed", field_type="number")
    _define(admin, name="notified", label="Regulator notified", field_type="boolean")
    _define(admin, name="detected_on", label="Detected on", field_type="date")
    _define(admin, name="ticket", label="Ticket", field_type="text")


def test_an_incident_keeps_valid_values_of_each_type(admin, analyst):
    _define_all(admin)
    values = {
        "business_unit": "finance",
        "records": 1200,
        "notified": False,
        "detected_on": "2026-11-29",
        "ticket": "INC-42",
    }
    response = analyst.client.post(
        "/incidents", json={"title": "Leak", "severity": "high", "custom_fields": values}
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["custom_fields"] == values


def test_a_bad_value_or_unknown_field_is_422_naming_it(admin, analyst):
    _define_all(admin)
    response = analyst.client.post(
        "/incidents",
        json={
            "title": "Leak",
            "severity": "high",
            "custom_fields": {
                "business_unit": "sales",
                "records": "many",
                "notified": "yes",
                "detected_on": "yesterday",
                "colour": "red",
            },
        },
    )
    assert response.status_code == 422
    errors = response.get_json()["errors"]["custom_fields"]
    assert set(errors) == {"business_unit", "records", "notified", "detected_on", "colour"}


def test_an_edit_merges_values_and_null_removes_one(admin, analyst):
    _define_all(admin)
    incident = analyst.client.post(
        "/incidents",
        json={"title": "Leak", "severity": "high", "custom_fields": {"ticket": "A", "records": 1}},
    ).get_json()
    response = analyst.client.patch(
        f"/incidents/{incident['id']}", json={"custom_fields": {"ticket": "B", "records": None}}
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["custom_fields"] == {"ticket": "B"}


def test_incidents_filter_by_a_custom_field_value(admin, analyst):
    _define_all(admin)
    for unit, records in (("finance", 10), ("hr", 10), ("finance", 5)):
        analyst.client.post(
            "/incidents",
            json={
                "title": f"{unit} {records}",
                "severity": "low",
                "custom_fields": {"business_unit": unit, "records": records},
            },
        )
    finance = analyst.client.get("/incidents?custom_field=business_unit:finance").get_json()
    assert sorted(item["title"] for item in finance["items"]) == ["finance 10", "finance 5"]
    ten = analyst.client.get("/incidents?custom_field=records:10").get_json()
    assert sorted(item["title"] for item in ten["items"]) == ["finance 10", "hr 10"]
    assert analyst.client.get("/incidents?custom_field=colour:red").status_code == 422
    assert analyst.client.get("/incidents?custom_field=records:lots").status_code == 422


def test_the_filter_can_use_the_gin_index(app, admin, analyst):
    _define_all(admin)
    with app.app_context():
        db.session.execute(text("SET enable_seqscan = off"))
        plan = "\n".join(
            row[0]
            for row in db.session.execute(
                text(
                    "EXPLAIN SELECT id FROM incidents"
                    ' WHERE custom_fields @> \'{"business_unit": "finance"}\''
                )
            )
        )
        db.session.rollback()
    assert "ix_incidents_custom_fields" in plan, plan


def test_a_required_field_must_be_given(admin, analyst):
    _define(admin, name="ticket", label="Ticket", field_type="text", required=True)
    response = analyst.client.post("/incidents", json={"title": "x", "severity": "low"})
    assert response.status_code == 422
    assert response.get_json()["errors"]["custom_fields"] == {"ticket": ["required"]}


def test_only_an_admin_defines_fields_and_choices_need_a_choice_type(admin, analyst):
    body = {"name": "unit", "label": "Unit", "field_type": "text"}
    assert analyst.client.post("/custom-fields", json=body).status_code == 403
    choice = {"name": "unit", "label": "Unit", "field_type": "choice"}
    assert admin.client.post("/custom-fields", json=choice).status_code == 422
    assert admin.client.post("/custom-fields", json={**body, "choices": ["a"]}).status_code == 422
    created = _define(admin, **body)
    assert admin.client.post("/custom-fields", json=body).status_code == 409
    assert analyst.client.get(f"/custom-fields/{created['id']}").status_code == 200
    assert analyst.client.delete(f"/custom-fields/{created['id']}").status_code == 403
    assert admin.client.delete(f"/custom-fields/{created['id']}").status_code == 204


def test_a_template_applies_its_custom_field_values(admin, analyst):
    _define_all(admin)
    admin.client.post(
        "/incident-templates",
        json={
            "name": "leak",
            "title": "Leak",
            "severity": "high",
            "custom_fields": {"business_unit": "hr"},
        },
    )
    incident = analyst.client.post(
        "/incidents", json={"template": "leak", "custom_fields": {"records": 3}}
    ).get_json()
    assert incident["custom_fields"] == {"business_unit": "hr", "records": 3}
