"""Schemas for evidence: a stored file as answered (the upload itself is a multipart
body, declared in ``resources/evidence.py``)."""

from __future__ import annotations

from marshmallow import fields, validate

from schemas.common import ResponseSchema, identifier, page_of, text, timestamp, username_of


class EvidenceSchema(ResponseSchema):
    id = identifier()
    incident_id = identifier()
    filename = text(metadata={"description": "the uploaded name reduced to a safe base name"})
    sha256 = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{64}$"))
    size = fields.Integer(required=True, validate=validate.Range(min=1))
    declared_type = text(metadata={"description": "the Content-Type the upload declared"})
    sniffed_type = text(
        nullable=True, metadata={"description": "the type its first bytes show, if known"}
    )
    uploader = username_of("uploader")
    created_at = timestamp()


EvidencePageSchema = page_of(EvidenceSchema, "EvidencePageSchema")
