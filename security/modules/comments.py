"""Comments on alerts and tasks, and editing or deleting any comment (an incident's too).

An incident's comments are written by :func:`security.modules.incidents.add_comment`
(they are timeline entries as well); alerts and tasks get theirs here. Only the author
edits or deletes a comment (:class:`Forbidden` otherwise, even for an admin: the words
are theirs); an edit keeps the replaced text as a revision, and for an incident's comment
the timeline entry shows the current text (a deleted one: none, marked ``deleted``). A
comment is as visible as its subject: a TLP-red incident's comments, its tasks' and its
alerts', are 404 to whoever may not see the incident (``alerts.visibility``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select

from models import Alert, Comment, CommentRevision, Incident, Task, TimelineEntry, db, utcnow
from security.errors import Forbidden, NotFound
from security.events import EventType, emit
from security.modules import alerts, incidents
from security.modules.principals import Principal


def comments_on(subject: Alert | Task) -> Select:
    """The subject's comments, for a keyset-paged list."""
    column = Comment.alert_id if isinstance(subject, Alert) else Comment.task_id
    return select(Comment).where(column == subject.id)


def add_comment(subject: Alert | Task, principal: Principal, body: str) -> Comment:
    """A comment on an alert or a task."""
    key = "alert_id" if isinstance(subject, Alert) else "task_id"
    now = utcnow()
    comment = Comment(
        author_id=principal.user_id,
        body=body.strip(),
        created_at=now,
        updated_at=now,
        **{key: subject.id},
    )
    db.session.add(comment)
    db.session.flush()
    emit(EventType.COMMENT_CREATED, comment.id, {key: subject.id})
    return comment


def get_comment(principal: Principal, comment_id: int, *, lock: bool = False) -> Comment:
    """The comment, or 404 when it is missing or its subject hidden from the principal."""
    statement = select(Comment).where(Comment.id == comment_id)
    if lock:
        statement = statement.with_for_update(of=Comment)
    comment = db.session.scalars(statement).first()
    if comment is None or not _subject_visible(principal, comment):
        raise NotFound(f"Comment {comment_id} does not exist.")
    return comment


def _subject_visible(principal: Principal, comment: Comment) -> bool:
    incident_id = comment.incident_id
    if comment.task_id is not None:
        incident_id = db.session.scalar(select(Task.incident_id).where(Task.id == comment.task_id))
    if incident_id is None:
        visible_alert = select(Alert.id).where(
            Alert.id == comment.alert_id, alerts.visibility(principal)
        )
        return db.session.scalar(visible_alert) is not None
    visible = select(Incident.id).where(Incident.id == incident_id, incidents.visibility(principal))
    return db.session.scalar(visible) is not None


def _ensure_author(comment: Comment, principal: Principal) -> None:
    if comment.author_id != principal.user_id:
        raise Forbidden("Only the author may change or delete a comment.")


def _timeline_entry(comment: Comment) -> TimelineEntry | None:
    if comment.incident_id is None:
        return None
    return db.session.scalars(
        select(TimelineEntry).where(
            TimelineEntry.incident_id == comment.incident_id,
            TimelineEntry.kind == "comment",
            TimelineEntry.changes["comment"].as_integer() == comment.id,
        )
    ).first()


def edit_comment(comment: Comment, principal: Principal, body: str) -> bool:
    """Replace the text, keeping the old one; returns whether it changed."""
    _ensure_author(comment, principal)
    body = body.strip()
    if body == comment.body:
        return False
    now = utcnow()
    comment.revisions.append(CommentRevision(body=comment.body, replaced_at=now))
    comment.body = body
    comment.version += 1
    comment.updated_at = now
    entry = _timeline_entry(comment)
    if entry is not None:
        entry.comment = body
        entry.changes = {"comment": comment.id, "edited": True}
    emit(EventType.COMMENT_EDITED, comment.id, _subject(comment))
    return True


def delete_comment(comment: Comment, principal: Principal) -> None:
    """Delete the comment and its revisions; an incident's timeline keeps that a comment
    was there, not its words."""
    _ensure_author(comment, principal)
    entry = _timeline_entry(comment)
    if entry is not None:
        entry.comment = None
        entry.changes = {"comment": comment.id, "deleted": True}
    db.session.delete(comment)
    emit(EventType.COMMENT_DELETED, comment.id, _subject(comment))


def _subject(comment: Comment) -> dict[str, Any]:
    for key in ("incident_id", "alert_id", "task_id"):
        value = getattr(comment, key)
        if value is not None:
            return {key: value}
    return {}
