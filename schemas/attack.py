"""Schemas for the ATT&CK catalogue's answers (``resources/attack.py``)."""

from __future__ import annotations

from marshmallow import fields

from schemas.common import ResponseSchema, text, timestamp


class AttackTechniqueSchema(ResponseSchema):
    id = text(metadata={"example": "T1059.001"})
    name = text()
    tactics = fields.List(fields.String(), required=True)
    stix_id = text(metadata={"description": "the attack-pattern it was loaded from"})
    deprecated = fields.Boolean(required=True, metadata={"description": "deprecated or revoked"})
    updated_at = timestamp()
