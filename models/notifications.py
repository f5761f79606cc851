"""Notification channels: where a person is told about events (e-mail, Slack, Microsoft
Teams, Mattermost), as an apprise URL stored only encrypted, with the same filters as a
webhook plus "only incidents assigned to me"."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import Text

from models.base import Model, utcnow


class NotificationChannel(Model):
    """One person's channel; ``kind`` is the URL's scheme (``mailto``, ``slack``, ...),
    kept in clear so a list can say what it is without decrypting the URL."""

    __tablename__ = "notification_channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    url_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    event_types: Mapped[list[str]] = mapped_column(ARRAY(Text))
    min_severity: Mapped[str | None] = mapped_column(String(16))
    only_assigned_to_me: Mapped[bool] = mapped_column(default=False)
    enabled: Mapped[bool] = mapped_column(default=True)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
