"""The MITRE ATT&CK catalogue: techniques and sub-techniques loaded from MITRE's STIX
bundle (``flask attack-load FILE``), or from attack-patterns arriving by STIX import or a
TAXII feed. Nothing is downloaded at run time. Reading and loading it lives in
:mod:`security.modules.attack`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, String, Text, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Model, utcnow


class AttackTechnique(Model):
    """One technique (``T1566``) or sub-technique (``T1059.001``) of the catalogue, keyed
    by its ATT&CK id; ``tactics`` are its kill-chain phase names (``initial-access``)."""

    __tablename__ = "attack_techniques"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    tactics: Mapped[list[str]] = mapped_column(
        ARRAY(Text), default=list, server_default=text("'{}'")
    )
    stix_id: Mapped[str] = mapped_column(String(100))
    deprecated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
