"""Comments on incidents, alerts and tasks, and the earlier texts of an edited comment.

A comment belongs to exactly one subject (one of ``incident_id``, ``alert_id``,
``task_id``, checked by the database). Its author may edit it (the text it replaces is
kept as a :class:`CommentRevision`) or delete it. An incident's comment is also its
timeline entry (``kind = 'comment'``, ``changes = {"comment": id}``), whose text follows
the comment's.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Model, utcnow
from models.users import User

ONE_SUBJECT = "num_nonnulls(incident_id, alert_id, task_id) = 1"


class Comment(Model):
    __tablename__ = "comments"
    __table_args__ = (
        CheckConstraint(ONE_SUBJECT, name="ck_comments_one_subject"),
        Index("ix_comments_incident", "incident_id", "created_at", "id"),
        Index("ix_comments_alert", "alert_id", "created_at", "id"),
        Index("ix_comments_task", "task_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    alert_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("alerts.id", ondelete="CASCADE")
    )
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    author: Mapped[User | None] = relationship(lazy="joined")
    revisions: Mapped[list[CommentRevision]] = relationship(
        order_by="CommentRevision.id", cascade="all, delete-orphan", passive_deletes=True
    )


class CommentRevision(Model):
    """A text a comment had before an edit, and until when."""

    __tablename__ = "comment_revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    comment_id: Mapped[int] = mapped_column(
        ForeignKey("comments.id", ondelete="CASCADE"), index=True
    )
    body: Mapped[str] = mapped_column(Text)
    replaced_at: Mapped[datetime] = mapped_column(default=utcnow)
