"""Roles and TLP: who may read, write and see what."""

from __future__ import annotations

from sqlalchemy import func, select

from models import Incident, db
from tests.helpers import make_user


def create(user, **fields) -> int:
    body = {"title": "Case", "severity": "low", **fields}
    response = user.client.post("/incidents", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def test_viewer_can_read(analyst, viewer):
    incident_id = create(analyst)
    assert viewer.client.get(f"/incidents/{incident_id}").status_code == 200
    assert viewer.client.get("/incidents").status_code == 200
    assert viewer.client.get(f"/incidents/{incident_id}/timeline").status_code == 200


def test_viewer_cannot_create(app, viewer):
    response = viewer.client.post("/incidents", json={"title": "x", "severity": "low"})
    assert response.status_code == 403
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Incident)) == 0


def test_viewer_cannot_edit_change_status_or_comment(analyst, viewer):
    incident_id = create(analyst)
    url = f"/incidents/{incident_id}"
    assert viewer.client.patch(url, json={"title": "mine"}).status_code == 403
    assert viewer.client.patch(f"{url}/status", json={"status": "triaged"}).status_code == 403
    assert viewer.client.post(f"{url}/comments", json={"body": "hi"}).status_code == 403
    assert analyst.client.get(url).get_json()["version"] == 1


def test_tlp_red_is_hidden_from_other_analysts_as_404(app, client, analyst):
    other = make_user(app, client, "analyst2", "analyst")
    incident_id = create(analyst, tlp="red")
    assert other.client.get(f"/incidents/{incident_id}").status_code == 404
    assert other.client.get(f"/incidents/{incident_id}/timeline").status_code == 404
    assert other.client.patch(f"/incidents/{incident_id}", json={"title": "x"}).status_code == 404
    assert other.client.get("/incidents").get_json()["items"] == []


def test_tlp_red_is_visible_to_reporter_assignee_and_admin(app, client, analyst, admin):
    assignee = make_user(app, client, "analyst2", "analyst")
    incident_id = create(analyst, tlp="red", assignee="analyst2")
    for user in (analyst, assignee, admin):
        assert user.client.get(f"/incidents/{incident_id}").status_code == 200, user.username


def test_missing_incident_is_404_like_a_hidden_one(analyst):
    response = analyst.client.get("/incidents/999999")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
