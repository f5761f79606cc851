"""Evidence files: uploaded as multipart, hashed, sniffed, on the timeline, stored by
content in the configured directory, downloaded only as attachments; refused uploads
leave nothing behind; deleting is for admins and audited."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from models import AuditEntry, Evidence, db
from security.modules import evidence, timers
from security.modules.evidence_store import DirectoryEvidenceStore, evidence_store
from tests.helpers import ApiClient

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def evidence_dir(app, tmp_path, monkeypatch) -> Path:
    directory = tmp_path / "evidence"
    monkeypatch.setitem(app.config, "EVIDENCE_DIR", str(directory))
    return directory


def _incident(user, **fields) -> dict:
    body = {"title": "Malware", "severity": "high", **fields}
    return user.client.post("/incidents", json=body).get_json()


def _upload(user, incident_id: int, content: bytes, name: str = "sample.png", kind="image/png"):
    return _upload_with(user.client, incident_id, content, name, kind)


def _upload_with(client, incident_id: int, content: bytes, name="sample.png", kind="image/png"):
    return client.post(
        f"/incidents/{incident_id}/evidence",
        data={"file": (io.BytesIO(content), name, kind)},
        content_type="multipart/form-data",
    )


def _stored_files(directory: Path) -> list[Path]:
    return [path for path in directory.rglob("*") if path.is_file()] if directory.exists() else []


def test_an_upload_answers_its_sha256_and_is_on_the_timeline(analyst, evidence_dir):
    incident = _incident(analyst)
    response = _upload(analyst, incident["id"], PNG, kind="text/plain")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert body["size"] == len(PNG)
    assert (body["declared_type"], body["sniffed_type"]) == ("text/plain", "image/png")
    assert body["uploader"] == analyst.username and body["filename"] == "sample.png"

    timeline = analyst.client.get(f"/incidents/{incident['id']}/timeline").get_json()["items"]
    [entry] = [entry for entry in timeline if entry["kind"] == "evidence"]
    assert entry["changes"] == {
        "evidence": body["id"],
        "added": "sample.png",
        "sha256": body["sha256"],
    }
    sha = body["sha256"]
    assert _stored_files(evidence_dir) == [evidence_dir / sha[:2] / sha[2:4] / sha]


def test_a_download_is_an_attachment_that_is_never_sniffed(analyst, evidence_dir):
    incident = _incident(analyst)
    html = b"<html><script>alert(1)</script></html>"
    created = _upload(analyst, incident["id"], html, name="page.html", kind="text/html")
    assert created.status_code == 201
    assert created.get_json()["sniffed_type"] == "text/html"
    response = analyst.client.get(
        f"/incidents/{incident['id']}/evidence/{created.get_json()['id']}/content"
    )
    assert response.status_code == 200
    assert response.data == html
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert "page.html" in response.headers["Content-Disposition"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_an_empty_file_is_422_and_nothing_is_written(app, analyst, evidence_dir):
    incident = _incident(analyst)
    response = _upload(analyst, incident["id"], b"")
    assert response.status_code == 422
    assert "file" in response.get_json()["errors"]
    assert _stored_files(evidence_dir) == []
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Evidence)) == 0


def test_a_file_over_the_limit_is_413_and_nothing_is_written(
    app, analyst, evidence_dir, monkeypatch
):
    monkeypatch.setitem(app.config, "EVIDENCE_MAX_BYTES", 4096)
    incident = _incident(analyst)
    # Within the body's allowance for multipart framing, over the file limit: read, refused.
    just_over = _upload(analyst, incident["id"], b"a" * 5000)
    assert just_over.status_code == 413
    # Far over: refused from Content-Length before a byte is read.
    far_over = _upload(analyst, incident["id"], b"a" * (200 * 1024))
    assert far_over.status_code == 413
    assert _stored_files(evidence_dir) == []
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Evidence)) == 0
    assert _upload(analyst, incident["id"], b"a" * 4096).status_code == 201


def test_a_path_traversal_name_is_kept_as_a_safe_base_name(analyst, evidence_dir):
    incident = _incident(analyst)
    response = _upload(analyst, incident["id"], b"root:x:0:0", name="../../../etc/passwd")
    assert response.status_code == 201
    assert response.get_json()["filename"] == "etc_passwd"
    assert all(evidence_dir in path.parents for path in _stored_files(evidence_dir))
    assert not (evidence_dir.parent / "etc").exists()


def test_a_name_with_nothing_usable_is_422_and_nothing_is_written(analyst, evidence_dir):
    incident = _incident(analyst)
    response = _upload(analyst, incident["id"], b"data", name="../..")
    assert response.status_code == 422
    assert _stored_files(evidence_dir) == []


def test_an_upload_must_be_multipart_with_one_file_part(analyst, evidence_dir):
    incident = _incident(analyst)
    path = f"/incidents/{incident['id']}/evidence"
    assert analyst.client.post(path, json={"file": "x"}).status_code == 415
    extra = analyst.client.post(
        path,
        data={"file": (io.BytesIO(b"x"), "a.txt"), "uploader_id": "1"},
        content_type="multipart/form-data",
    )
    assert extra.status_code == 400
    missing = analyst.client.post(
        path, data={"other": (io.BytesIO(b"x"), "a.txt")}, content_type="multipart/form-data"
    )
    assert missing.status_code == 400
    assert _stored_files(evidence_dir) == []


def test_a_viewer_sees_none_of_a_tlp_red_incidents_evidence(analyst, viewer, evidence_dir):
    red = _incident(analyst, tlp="red")
    piece = _upload(analyst, red["id"], PNG).get_json()
    base = f"/incidents/{red['id']}/evidence"
    assert viewer.client.get(base).status_code == 404
    assert viewer.client.get(f"{base}/{piece['id']}").status_code == 404
    assert viewer.client.get(f"{base}/{piece['id']}/content").status_code == 404
    assert analyst.client.get(base).get_json()["items"][0]["id"] == piece["id"]


def test_deleting_is_for_admins_audited_and_keeps_bytes_still_used(
    app, admin, analyst, evidence_dir
):
    incident = _incident(analyst)
    first = _upload(analyst, incident["id"], PNG).get_json()
    second = _upload(analyst, incident["id"], PNG, name="copy.png").get_json()
    path = f"/incidents/{incident['id']}/evidence"
    assert analyst.client.delete(f"{path}/{first['id']}").status_code == 403
    assert admin.client.delete(f"{path}/{first['id']}").status_code == 204
    assert len(_stored_files(evidence_dir)) == 1  # the copy still names the same bytes
    assert admin.client.delete(f"{path}/{second['id']}").status_code == 204
    assert _stored_files(evidence_dir) == []
    with app.app_context():
        deletions = db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "evidence.delete")
        ).all()
    assert [entry.actor for entry in deletions] == [admin.username, admin.username]
    assert analyst.client.get(f"{path}/{first['id']}").status_code == 404


def test_move_evidence_carries_every_piece_to_the_target(app, analyst, evidence_dir):
    from models import Incident
    from security.modules import evidence

    source, target = _incident(analyst), _incident(analyst)
    piece = _upload(analyst, source["id"], PNG).get_json()
    with app.test_request_context():
        moved = evidence.move_evidence(
            db.session.get(Incident, source["id"]), db.session.get(Incident, target["id"])
        )
        db.session.commit()
    assert moved == 1
    listed = analyst.client.get(f"/incidents/{target['id']}/evidence").get_json()["items"]
    assert [item["id"] for item in listed] == [piece["id"]]
    content = analyst.client.get(f"/incidents/{target['id']}/evidence/{piece['id']}/content")
    assert content.data == PNG


def test_merging_a_duplicate_incident_moves_its_tasks_evidence_and_comments(analyst, evidence_dir):
    target, duplicate = _incident(analyst, title="Original"), _incident(analyst, title="Copy")
    analyst.client.post(f"/incidents/{target['id']}/tasks", json={"title": "Own task"})
    task = analyst.client.post(
        f"/incidents/{duplicate['id']}/tasks", json={"title": "Moved task", "mandatory": True}
    ).get_json()
    piece = _upload(analyst, duplicate["id"], PNG).get_json()
    entry = analyst.client.post(
        f"/incidents/{duplicate['id']}/comments", json={"body": "seen twice"}
    ).get_json()

    response = analyst.client.post(
        f"/incidents/{target['id']}/merge", json={"duplicate_id": duplicate["id"]}
    )

    assert response.status_code == 200, response.get_json()
    tasks = analyst.client.get(f"/incidents/{target['id']}/tasks").get_json()["items"]
    assert [(item["title"], item["position"]) for item in tasks] == [
        ("Own task", 0),
        ("Moved task", 1),
    ]
    evidence = analyst.client.get(f"/incidents/{target['id']}/evidence").get_json()["items"]
    assert [item["id"] for item in evidence] == [piece["id"]]
    assert analyst.client.get(f"/incidents/{duplicate['id']}/tasks").get_json()["items"] == []
    moved = analyst.client.get(f"/incidents/{target['id']}/tasks/{task['id']}")
    assert moved.status_code == 200
    comment = analyst.client.get(f"/comments/{entry['changes']['comment']}").get_json()
    assert comment["incident_id"] == target["id"]
    # The moved mandatory task now holds the target back.
    for status in ("triaged", "investigating", "contained"):
        analyst.client.patch(f"/incidents/{target['id']}/status", json={"status": status})
    refused = analyst.client.patch(f"/incidents/{target['id']}/status", json={"status": "resolved"})
    assert refused.status_code == 409
    assert refused.get_json()["open_mandatory_tasks"] == [{"id": task["id"], "title": "Moved task"}]


def test_a_retried_upload_with_its_key_is_stored_once(app, analyst, evidence_dir):
    """A retry resends the same bytes (boundary included: the key's fingerprint is the raw
    body); another file under the same key is 422."""
    incident = _incident(analyst)

    def send(content: bytes):
        body = (
            b"--retry\r\n"
            b'Content-Disposition: form-data; name="file"; filename="a.txt"\r\n'
            b"Content-Type: text/plain\r\n\r\n" + content + b"\r\n--retry--\r\n"
        )
        return analyst.client.post(
            f"/incidents/{incident['id']}/evidence",
            data=body,
            headers={
                "Idempotency-Key": "upload-1",
                "Content-Type": "multipart/form-data; boundary=retry",
            },
        )

    first, again = send(b"same bytes"), send(b"same bytes")
    assert (first.status_code, again.status_code) == (201, 201), again.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == first.get_json()["id"]
    assert send(b"other bytes").status_code == 422
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Evidence)) == 1


class Pause:
    """Holds ``thread`` just after a step it takes (:meth:`after`) until ``resume`` is set;
    ``reached`` tells the test it is there."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.resume = threading.Event()
        self.thread: threading.Thread | None = None

    def after(self, step):
        def held(*args, **kwargs):
            result = step(*args, **kwargs)
            if threading.current_thread() is self.thread:
                self.reached.set()
                assert self.resume.wait(10)
            return result

        return held

    def upload(self, app, user, incident_id: int) -> list:
        """``user`` uploads :data:`PNG` to the incident in the held thread (a test client
        of its own) until it is held; its answer lands in the returned list."""
        client = ApiClient(app.test_client(), user.token)
        answers: list = []
        self.thread = threading.Thread(
            target=lambda: answers.append(_upload_with(client, incident_id, PNG)), daemon=True
        )
        self.thread.start()
        assert self.reached.wait(10)
        return answers


def _upload_held_after(app, user, monkeypatch, owner, step: str):
    """An incident with :data:`PNG` attached (``first``, its evidence ``kept``), and an
    upload of the same bytes to a second incident held just after ``owner.step``: returns
    ``first``, ``kept``, the second incident, the :class:`Pause` and the upload's answers."""
    first, second = _incident(user), _incident(user)
    kept = _upload(user, first["id"], PNG).get_json()
    pause = Pause()
    monkeypatch.setattr(owner, step, pause.after(getattr(owner, step)))
    return first, kept, second, pause, pause.upload(app, user, second["id"])


def test_deleting_the_last_copy_waits_for_an_upload_of_the_same_bytes(
    app, admin, analyst, evidence_dir, monkeypatch
):
    # Held once its bytes are stored, while it builds its row: not committed yet.
    held = _upload_held_after(app, analyst, monkeypatch, evidence, "sniffed_type")
    first, kept, second, pause, uploaded = held
    deleter = ApiClient(app.test_client(), admin.token)
    path = f"/incidents/{first['id']}/evidence/{kept['id']}"
    deleted: list = []
    deletion = threading.Thread(target=lambda: deleted.append(deleter.delete(path)))
    deletion.start()
    deletion.join(0.5)
    assert deletion.is_alive()  # it cannot decide on the blob while the upload is open
    pause.resume.set()
    pause.thread.join(10)
    deletion.join(10)
    assert uploaded[0].status_code == 201 and deleted[0].status_code == 204
    content = analyst.client.get(
        f"/incidents/{second['id']}/evidence/{uploaded[0].get_json()['id']}/content"
    )
    assert content.status_code == 200 and content.data == PNG


def test_an_upload_whose_bytes_a_deletion_removed_is_503_and_writes_nothing(
    app, admin, analyst, evidence_dir, monkeypatch
):
    # Held once its bytes are in place, before it takes the blob's lock.
    held = _upload_held_after(app, analyst, monkeypatch, DirectoryEvidenceStore, "put")
    first, kept, second, pause, uploaded = held
    path = f"/incidents/{first['id']}/evidence/{kept['id']}"
    assert admin.client.delete(path).status_code == 204  # the last row: the blob goes
    pause.resume.set()
    pause.thread.join(10)
    assert uploaded[0].status_code == 503
    assert analyst.client.get(f"/incidents/{second['id']}/evidence").get_json()["items"] == []
    assert _stored_files(evidence_dir) == []
    assert _upload(analyst, second["id"], PNG).status_code == 201  # sending it again works


def test_daily_pruning_removes_old_blobs_no_row_names_and_nothing_else(app, analyst, evidence_dir):
    incident = _incident(analyst)
    attached = _upload(analyst, incident["id"], PNG).get_json()["sha256"]
    with app.app_context():
        store = evidence_store()
        orphan = store.put(io.BytesIO(b"bytes of an upload whose transaction failed"), 1024)
        fresh = store.put(io.BytesIO(b"bytes of an upload still in flight"), 1024)
        hours_ago = time.time() - 2 * 3600
        for sha256 in (attached, orphan.sha256):
            path = evidence_dir / sha256[:2] / sha256[2:4] / sha256
            os.utime(path, (hours_ago, hours_ago))
        assert timers.prune_records()["evidence_blobs"] == 1
        assert not store.exists(orphan.sha256)
        assert store.exists(attached) and store.exists(fresh.sha256)
