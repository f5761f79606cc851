"""Evidence: files attached to an incident. The row holds what was learned at upload
(SHA-256, size, the declared and the sniffed media type, who and when); the bytes live
in the evidence store (``security/modules/evidence_store.py``) under their SHA-256, so the
same file attached twice is stored once and a file name never becomes a path.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Model, utcnow
from models.users import User


class Evidence(Model):
    __tablename__ = "evidence"
    __table_args__ = (
        Index("ix_evidence_incident_created", "incident_id", "created_at", "id"),
        Index("ix_evidence_sha256", "sha256"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    declared_type: Mapped[str] = mapped_column(String(255))
    sniffed_type: Mapped[str | None] = mapped_column(String(255))
    uploader_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    uploader: Mapped[User | None] = relationship(lazy="joined")
