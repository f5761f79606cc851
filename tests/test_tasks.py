"""Tasks of incidents: the checklist, its timeline, the work queue, and the rule that open
mandatory tasks keep an incident from being resolved or closed."""

from __future__ import annotations

from sqlalchemy import select, text

from models import AuditEntry, Task, TimelineEntry, db
from tests.helpers import make_user


def _incident(user, **fields) -> dict:
    body = {"title": "Phishing wave", "severity": "high", **fields}
    response = user.client.post("/incidents", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _task(user, incident_id: int, **fields) -> dict:
    response = user.client.post(f"/incidents/{incident_id}/tasks", json={"title": "Do", **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _walk_to_contained(user, incident_id: int) -> None:
    for status in ("triaged", "investigating", "contained"):
        response = user.client.patch(f"/incidents/{incident_id}/status", json={"status": status})
        assert response.status_code == 200, response.get_json()


def test_a_task_is_added_in_order_and_written_on_the_timeline(app, analyst):
    incident = _incident(analyst)
    first = _task(analyst, incident["id"], title="Collect mail headers", mandatory=True)
    second = _task(analyst, incident["id"], title="Block sender", assignee=analyst.username)
    assert (first["position"], second["position"]) == (0, 1)
    assert first["status"] == "todo" and first["mandatory"] is True
    assert second["assignee"] == analyst.username

    listed = analyst.client.get(f"/incidents/{incident['id']}/tasks").get_json()["items"]
    assert [task["title"] for task in listed] == ["Collect mail headers", "Block sender"]
    timeline = analyst.client.get(f"/incidents/{incident['id']}/timeline").get_json()["items"]
    task_entries = [entry for entry in timeline if entry["kind"] == "task"]
    assert [entry["changes"]["task"] for entry in task_entries] == [first["id"], second["id"]]
    with app.app_context():
        actions = db.session.scalars(
            select(AuditEntry.action).where(AuditEntry.object_type == "task")
        ).all()
    assert actions == ["task.create", "task.create"]


def test_a_task_edit_is_on_the_timeline_with_what_changed(app, analyst):
    incident = _incident(analyst)
    task = _task(analyst, incident["id"])
    response = analyst.client.patch(
        f"/incidents/{incident['id']}/tasks/{task['id']}",
        json={"status": "in_progress"},
        headers={"If-Match": '"1"'},
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "in_progress"
    assert response.headers["ETag"] == '"2"'
    stale = analyst.client.patch(
        f"/incidents/{incident['id']}/tasks/{task['id']}",
        json={"status": "done"},
        headers={"If-Match": '"1"'},
    )
    assert stale.status_code == 412
    with app.app_context():
        entry = db.session.scalars(
            select(TimelineEntry)
            .where(TimelineEntry.kind == "task")
            .order_by(TimelineEntry.id.desc())
        ).first()
        assert entry.changes == {"task": task["id"], "status": ["todo", "in_progress"]}


def test_an_unknown_status_or_field_is_refused(analyst):
    incident = _incident(analyst)
    task = _task(analyst, incident["id"])
    path = f"/incidents/{incident['id']}/tasks/{task['id']}"
    assert analyst.client.patch(path, json={"status": "finished"}).status_code == 400
    assert analyst.client.patch(path, json={"incident_id": 99}).status_code == 400
    assert analyst.client.patch(path, json={"assignee": "nobody-here"}).status_code == 422


def test_resolving_with_an_open_mandatory_task_is_409_naming_it(analyst):
    incident = _incident(analyst)
    mandatory = _task(analyst, incident["id"], title="Reset passwords", mandatory=True)
    optional = _task(analyst, incident["id"], title="Write lessons learned")
    _walk_to_contained(analyst, incident["id"])

    refused = analyst.client.patch(
        f"/incidents/{incident['id']}/status", json={"status": "resolved"}
    )
    assert refused.status_code == 409
    body = refused.get_json()
    assert body["open_mandatory_tasks"] == [{"id": mandatory["id"], "title": "Reset passwords"}]
    assert "Reset passwords" in body["detail"]
    assert analyst.client.get(f"/incidents/{incident['id']}").get_json()["status"] == "contained"

    done = analyst.client.patch(
        f"/incidents/{incident['id']}/tasks/{mandatory['id']}", json={"status": "done"}
    )
    assert done.status_code == 200
    resolved = analyst.client.patch(
        f"/incidents/{incident['id']}/status", json={"status": "resolved"}
    )
    assert resolved.status_code == 200, resolved.get_json()
    assert optional["status"] == "todo"  # an optional task open does not hold it back


def test_closing_a_reopened_incident_waits_for_a_new_mandatory_task(analyst):
    incident = _incident(analyst)
    _walk_to_contained(analyst, incident["id"])
    path = f"/incidents/{incident['id']}/status"
    assert analyst.client.patch(path, json={"status": "resolved"}).status_code == 200
    _task(analyst, incident["id"], title="Confirm eradication", mandatory=True)
    closed = analyst.client.patch(path, json={"status": "closed"})
    assert closed.status_code == 409
    assert [task["title"] for task in closed.get_json()["open_mandatory_tasks"]] == [
        "Confirm eradication"
    ]


def test_a_cancelled_mandatory_task_does_not_hold_the_incident(analyst):
    incident = _incident(analyst)
    task = _task(analyst, incident["id"], mandatory=True)
    analyst.client.patch(
        f"/incidents/{incident['id']}/tasks/{task['id']}", json={"status": "cancelled"}
    )
    _walk_to_contained(analyst, incident["id"])
    response = analyst.client.patch(
        f"/incidents/{incident['id']}/status", json={"status": "resolved"}
    )
    assert response.status_code == 200


def test_the_work_queue_holds_my_open_tasks_across_incidents(app, client, analyst):
    other = make_user(app, client, "analyst2", "analyst")
    first = _incident(analyst)
    second = _incident(other)
    mine_open = _task(analyst, first["id"], title="Mine 1", assignee=analyst.username)
    mine_elsewhere = _task(other, second["id"], title="Mine 2", assignee=analyst.username)
    mine_done = _task(analyst, first["id"], title="Mine done", assignee=analyst.username)
    analyst.client.patch(
        f"/incidents/{first['id']}/tasks/{mine_done['id']}", json={"status": "done"}
    )
    _task(other, second["id"], title="Theirs", assignee=other.username)

    queue = analyst.client.get("/tasks?assignee=me&status=open").get_json()
    assert [task["id"] for task in queue["items"]] == [mine_elsewhere["id"], mine_open["id"]]
    by_name = other.client.get(f"/tasks?assignee={analyst.username}&status=done").get_json()
    assert [task["id"] for task in by_name["items"]] == [mine_done["id"]]


def test_a_viewer_sees_none_of_a_tlp_red_incidents_tasks(analyst, viewer):
    red = _incident(analyst, tlp="red")
    task = _task(analyst, red["id"], title="Secret work", assignee=viewer.username)
    assert viewer.client.get(f"/incidents/{red['id']}/tasks").status_code == 404
    assert viewer.client.get(f"/incidents/{red['id']}/tasks/{task['id']}").status_code == 404
    # Even assigned to the viewer, the task of an incident they may not see stays hidden.
    assert viewer.client.get("/tasks?assignee=me&status=open").get_json()["items"] == []
    assert analyst.client.get(f"/incidents/{red['id']}/tasks").status_code == 200


def test_a_viewer_cannot_add_a_task(analyst, viewer):
    incident = _incident(analyst)
    response = viewer.client.post(f"/incidents/{incident['id']}/tasks", json={"title": "x"})
    assert response.status_code == 403


def _seed_tasks(app, assignee_id: int, other_id: int, incident_id: int, count: int) -> None:
    """``count`` tasks, every tenth one the assignee's and open, in one statement."""
    with app.app_context():
        db.session.execute(
            text(
                "INSERT INTO tasks (incident_id, title, description, status, assignee_id,"
                " mandatory, position, version, created_at, updated_at)"
                " SELECT :incident, 'task ' || n, '',"
                " CASE WHEN n % 3 = 0 THEN 'done' ELSE 'todo' END,"
                " CASE WHEN n % 10 = 0 THEN :me ELSE :other END,"
                " false, n, 1, now() - n * interval '1 second', now()"
                " FROM generate_series(1, :count) AS n"
            ),
            {"incident": incident_id, "me": assignee_id, "other": other_id, "count": count},
        )
        db.session.execute(text("ANALYZE tasks"))
        db.session.commit()


def test_the_work_queue_over_10000_tasks_is_one_index_range_without_a_sort(app, client, analyst):
    other = make_user(app, client, "analyst2", "analyst")
    incident = _incident(analyst)
    _seed_tasks(app, analyst.id, other.id, incident["id"], 10_000)
    statements: list[str] = []

    from sqlalchemy import event

    with app.app_context():
        engine = db.engine

    def keep(conn, cursor, statement, parameters, context, executemany):
        if "FROM tasks" in statement:
            statements.append(cursor.mogrify(statement, parameters).decode())

    event.listen(engine, "before_cursor_execute", keep)
    try:
        page = analyst.client.get("/tasks?assignee=me&status=open&limit=50").get_json()
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    assert len(page["items"]) == 50 and page["next_cursor"]
    expected_open_mine = sum(1 for n in range(1, 10_001) if n % 10 == 0 and n % 3 != 0)
    assert expected_open_mine > 50
    assert len(statements) == 1, statements  # one page, one query
    with app.app_context():
        plan = "\n".join(
            row[0] for row in db.session.execute(text("EXPLAIN " + statements[0])).all()
        )
    assert "ix_tasks_open_queue" in plan, plan
    assert "Sort" not in plan, plan
    assert "Seq Scan on tasks" not in plan, plan

    second = analyst.client.get(
        f"/tasks?assignee=me&status=open&limit=50&cursor={page['next_cursor']}"
    ).get_json()
    first_ids = {task["id"] for task in page["items"]}
    assert first_ids.isdisjoint(task["id"] for task in second["items"])


def test_move_tasks_carries_every_task_after_the_targets_own(app, analyst):
    from models import Incident
    from security.modules import tasks as task_engine

    source = _incident(analyst, title="Duplicate")
    target = _incident(analyst, title="Original")
    _task(analyst, target["id"], title="Target's")
    moved = [_task(analyst, source["id"], title=f"Source {n}")["id"] for n in range(2)]
    with app.test_request_context():
        duplicate = db.session.get(Incident, source["id"])
        kept = db.session.get(Incident, target["id"])
        assert task_engine.move_tasks(duplicate, kept) == 2
        assert task_engine.move_tasks(duplicate, kept) == 0
        db.session.commit()
    with app.app_context():
        rows = db.session.execute(
            select(Task.id, Task.incident_id, Task.position).order_by(Task.position)
        ).all()
    assert [(row.incident_id, row.position) for row in rows] == [
        (target["id"], 0),
        (target["id"], 1),
        (target["id"], 2),
    ]
    assert [row.id for row in rows][1:] == moved
