"""Comments on incidents, alerts and tasks: the author edits (the old text kept) or
deletes their own; nobody else may; a TLP-red incident's comments stay hidden."""

from __future__ import annotations

from sqlalchemy import select

from models import AuditEntry, db
from tests.detection_support import create_seed_rule, post_events
from tests.helpers import make_user


def _incident(user, **fields) -> dict:
    body = {"title": "Case", "severity": "low", **fields}
    return user.client.post("/incidents", json=body).get_json()


def _incident_comment_id(user, incident_id: int, body: str = "first words") -> int:
    entry = user.client.post(f"/incidents/{incident_id}/comments", json={"body": body})
    assert entry.status_code == 201, entry.get_json()
    return entry.get_json()["changes"]["comment"]


def test_the_author_edits_an_incident_comment_and_its_old_text_is_kept(app, analyst):
    incident = _incident(analyst)
    comment_id = _incident_comment_id(analyst, incident["id"])
    response = analyst.client.patch(
        f"/comments/{comment_id}", json={"body": "better words"}, headers={"If-Match": '"1"'}
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["body"] == "better words" and body["version"] == 2
    assert [revision["body"] for revision in body["revisions"]] == ["first words"]
    timeline = analyst.client.get(f"/incidents/{incident['id']}/timeline").get_json()["items"]
    [entry] = [entry for entry in timeline if entry["kind"] == "comment"]
    assert entry["comment"] == "better words"
    with app.app_context():
        actions = db.session.scalars(
            select(AuditEntry.action).where(AuditEntry.object_type == "comment")
        ).all()
    assert actions == ["comment.update"]


def test_nobody_but_the_author_edits_or_deletes_a_comment(app, client, analyst, admin):
    other = make_user(app, client, "analyst2", "analyst")
    incident = _incident(analyst)
    comment_id = _incident_comment_id(analyst, incident["id"])
    assert other.client.patch(f"/comments/{comment_id}", json={"body": "x"}).status_code == 403
    assert other.client.delete(f"/comments/{comment_id}").status_code == 403
    assert admin.client.delete(f"/comments/{comment_id}").status_code == 403
    assert analyst.client.get(f"/comments/{comment_id}").get_json()["body"] == "first words"


def test_the_author_deletes_a_comment_and_the_timeline_keeps_only_that_it_was(analyst):
    incident = _incident(analyst)
    comment_id = _incident_comment_id(analyst, incident["id"], "oops, a password")
    assert analyst.client.delete(f"/comments/{comment_id}").status_code == 204
    assert analyst.client.get(f"/comments/{comment_id}").status_code == 404
    timeline = analyst.client.get(f"/incidents/{incident['id']}/timeline").get_json()["items"]
    [entry] = [entry for entry in timeline if entry["kind"] == "comment"]
    assert entry["comment"] is None
    assert entry["changes"] == {"comment": comment_id, "deleted": True}


def test_a_task_and_an_alert_take_comments(analyst):
    incident = _incident(analyst)
    task = analyst.client.post(f"/incidents/{incident['id']}/tasks", json={"title": "T"}).get_json()
    path = f"/incidents/{incident['id']}/tasks/{task['id']}/comments"
    created = analyst.client.post(path, json={"body": "started"})
    assert created.status_code == 201
    assert created.get_json()["task_id"] == task["id"]
    assert [c["body"] for c in analyst.client.get(path).get_json()["items"]] == ["started"]

    create_seed_rule(analyst, {"ioc": {"type": "domain", "value": "evil.example.net"}})
    post_events(analyst, {"query": "evil.example.net"})
    [alert] = analyst.client.get("/alerts").get_json()["items"]
    on_alert = analyst.client.post(f"/alerts/{alert['id']}/comments", json={"body": "noisy"})
    assert on_alert.status_code == 201
    assert on_alert.get_json()["alert_id"] == alert["id"]
    listed = analyst.client.get(f"/alerts/{alert['id']}/comments").get_json()["items"]
    assert [c["body"] for c in listed] == ["noisy"]


def test_a_tlp_red_incidents_comments_and_task_comments_are_hidden(analyst, viewer):
    red = _incident(analyst, tlp="red")
    comment_id = _incident_comment_id(analyst, red["id"])
    task = analyst.client.post(f"/incidents/{red['id']}/tasks", json={"title": "T"}).get_json()
    path = f"/incidents/{red['id']}/tasks/{task['id']}/comments"
    task_comment = analyst.client.post(path, json={"body": "secret"}).get_json()
    assert viewer.client.get(f"/comments/{comment_id}").status_code == 404
    assert viewer.client.get(f"/comments/{task_comment['id']}").status_code == 404
    assert viewer.client.get(path).status_code == 404


def test_a_viewer_cannot_comment(analyst, viewer):
    incident = _incident(analyst)
    task = analyst.client.post(f"/incidents/{incident['id']}/tasks", json={"title": "T"}).get_json()
    path = f"/incidents/{incident['id']}/tasks/{task['id']}/comments"
    assert viewer.client.post(path, json={"body": "x"}).status_code == 403
