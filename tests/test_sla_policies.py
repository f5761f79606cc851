"""/sla-policies: versions are immutable, an incident keeps the version it was opened under."""

from __future__ import annotations

from sqlalchemy import select

from models import AuditEntry, Incident, SlaPolicy, db

TIGHTER = {
    "critical": {"response_minutes": 5, "resolution_minutes": 30},
    "high": {"response_minutes": 30, "resolution_minutes": 120},
    "medium": {"response_minutes": 120, "resolution_minutes": 720},
    "low": {"response_minutes": 720, "resolution_minutes": 2880},
}


def _due_times(incident: dict) -> tuple[str, str, int]:
    sla = incident["sla"]
    return sla["response_due"], sla["resolution_due"], sla["policy_version"]


def test_the_first_version_holds_the_targets_shipped_before_policies(analyst):
    [policy] = analyst.client.get("/sla-policies").get_json()["items"]
    assert policy["version"] == 1
    assert policy["targets"]["critical"] == {"response_minutes": 15, "resolution_minutes": 60}
    assert policy["targets"]["low"] == {"response_minutes": 1440, "resolution_minutes": 7200}


def test_a_new_version_does_not_change_the_targets_of_incidents_opened_before(app, admin):
    before = admin.client.post("/incidents", json={"title": "Before", "severity": "high"})
    created = admin.client.post("/sla-policies", json={"targets": TIGHTER, "note": "tighter"})
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["version"] == 2
    after = admin.client.post("/incidents", json={"title": "After", "severity": "high"})

    old = admin.client.get(f"/incidents/{before.get_json()['id']}").get_json()
    assert _due_times(old) == _due_times(before.get_json())
    assert old["sla"]["policy_version"] == 1
    assert after.get_json()["sla"]["policy_version"] == 2
    with app.app_context():
        versions = dict(
            db.session.execute(
                select(Incident.title, SlaPolicy.version).join(Incident.sla_policy)
            ).all()
        )
        actions = db.session.scalars(select(AuditEntry.action)).all()
    assert versions == {"Before": 1, "After": 2}
    assert actions.count("sla_policy.create") == 1


def test_metrics_name_the_policy_versions_they_measure_against(admin):
    admin.client.post("/incidents", json={"title": "Before", "severity": "high"})
    admin.client.post("/sla-policies", json={"targets": TIGHTER})
    admin.client.post("/incidents", json={"title": "After", "severity": "high"})
    [row] = admin.client.get("/reports/metrics").get_json()["rows"]
    assert row["sla_policy_versions"] == [1, 2]


def test_only_an_admin_writes_a_policy(analyst):
    response = analyst.client.post("/sla-policies", json={"targets": TIGHTER})
    assert response.status_code == 403


def test_a_policy_must_name_every_severity(admin):
    partial = {key: value for key, value in TIGHTER.items() if key != "low"}
    response = admin.client.post("/sla-policies", json={"targets": partial})
    assert response.status_code == 400
    assert "targets" in response.get_json()["errors"]


def test_one_version_is_readable_by_id(viewer):
    [policy] = viewer.client.get("/sla-policies").get_json()["items"]
    response = viewer.client.get(f"/sla-policies/{policy['id']}")
    assert response.status_code == 200
    assert response.get_json() == policy
