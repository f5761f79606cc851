"""``/incidents/<id>/evidence``: files attached to an incident, uploaded as
``multipart/form-data`` (one ``file`` part, at most ``EVIDENCE_MAX_BYTES``), always
downloaded as an attachment of type ``application/octet-stream`` (with the API's
``nosniff`` and ``default-src 'none'``), so an HTML file is never rendered by a browser."""

from __future__ import annotations

from flask import Response, current_app, request, send_file
from flask_restful import Resource

import idempotency
from auth import authorize
from errors import ApiError
from models import Evidence, db
from resources.common import load_query
from resources.openapi import Content, Operation
from resources.responding import page_response, respond
from schemas.common import PageQuerySchema
from schemas.evidence import EvidencePageSchema, EvidenceSchema
from security.modules import evidence, incidents

MULTIPART = "multipart/form-data"
# Room for the multipart framing around the file within the body limit.
MULTIPART_OVERHEAD = 64 * 1024
UPLOAD_BODY = Content(
    MULTIPART,
    {
        "type": "object",
        "required": ["file"],
        "additionalProperties": False,
        "properties": {"file": {"type": "string", "format": "binary"}},
    },
)
EVIDENCE_CREATION = idempotency.Creation("evidence.create", Evidence)
DOWNLOAD = Content("application/octet-stream", {"type": "string", "format": "binary"})


def _uploaded_file():
    """The one ``file`` part; any other part is refused (nothing else may be set)."""
    others = sorted((set(request.form) | set(request.files)) - {"file"})
    if others:
        raise ApiError(
            400,
            "Send exactly one part, named file.",
            errors={name: ["unknown field"] for name in others},
        )
    upload = request.files.get("file")
    if upload is None:
        raise ApiError(
            400, "Send the file as the multipart part named file.", errors={"file": ["required"]}
        )
    return upload


class IncidentEvidenceList(Resource):
    body_media_types = (MULTIPART,)
    max_content_length_setting = "EVIDENCE_MAX_BYTES"
    body_overhead = MULTIPART_OVERHEAD
    openapi = {
        "get": Operation(
            "An incident's evidence files, newest first",
            permission="incidents:read",
            query=PageQuerySchema,
            responses={200: EvidencePageSchema},
        ),
        "post": Operation(
            "Attach a file to an incident (SHA-256, size, declared and sniffed type; on "
            "its timeline)",
            permission="incidents:write",
            body=UPLOAD_BODY,
            responses={201: EvidenceSchema},
            headers=("Location", "Idempotent-Replayed"),
            idempotent=True,
            errors=(422, 503),
            description=(
                "An empty file, or a name with nothing usable left once reduced to a safe "
                "base name, is 422; a file over EVIDENCE_MAX_BYTES is 413. Nothing is "
                "stored for a refused upload. 503 when an admin deleted the last other "
                "copy of the same file while it was stored: send it again."
            ),
        ),
    }

    def get(self, incident_id: int):
        principal = authorize("incidents:read")
        query = load_query(PageQuerySchema())
        incident = incidents.get_visible_incident(principal, incident_id)
        statement = evidence.evidence_of(incident)
        return page_response(statement, Evidence.created_at, Evidence.id, query)

    def post(self, incident_id: int):
        principal = authorize("incidents:write")
        incident = incidents.get_visible_incident(principal, incident_id)

        def attach():
            # Parsed here, after answer_once has fingerprinted the raw body (a retry with
            # the same key must carry the same file).
            upload = _uploaded_file()
            attached = evidence.attach(
                incident,
                principal,
                upload.stream,
                upload.filename,
                upload.mimetype,
                current_app.config["EVIDENCE_MAX_BYTES"],
            )
            location = {"Location": f"/incidents/{incident.id}/evidence/{attached.id}"}
            return respond(attached, 201, headers=location)

        return idempotency.answer_once(principal.user_id, EVIDENCE_CREATION, attach)


class IncidentEvidenceItem(Resource):
    openapi = {
        "get": Operation(
            "One evidence file's record",
            permission="incidents:read",
            responses={200: EvidenceSchema},
        ),
        "delete": Operation(
            "Delete an evidence file (admins; audited as evidence.delete, on the timeline)",
            permission="evidence:admin",
            responses={204: None},
        ),
    }

    def get(self, incident_id: int, evidence_id: int):
        principal = authorize("incidents:read")
        incident = incidents.get_visible_incident(principal, incident_id)
        return respond(evidence.get_evidence(incident, evidence_id))

    def delete(self, incident_id: int, evidence_id: int):
        principal = authorize("evidence:admin")
        incident = incidents.get_visible_incident(principal, incident_id)
        sha256 = evidence.delete(incident, evidence.get_evidence(incident, evidence_id), principal)
        db.session.commit()
        evidence.forget_unreferenced(sha256)
        return None, 204


class IncidentEvidenceContent(Resource):
    openapi = {
        "get": Operation(
            "Download an evidence file (always an attachment, never rendered)",
            permission="incidents:read",
            responses={200: DOWNLOAD},
        )
    }

    def get(self, incident_id: int, evidence_id: int) -> Response:
        principal = authorize("incidents:read")
        incident = incidents.get_visible_incident(principal, incident_id)
        piece = evidence.get_evidence(incident, evidence_id)
        response = send_file(
            evidence.open_blob(piece),
            mimetype=DOWNLOAD.media_type,
            as_attachment=True,
            download_name=piece.filename,
            etag=piece.sha256,
            max_age=0,
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def register(api) -> None:
    api.add_resource(IncidentEvidenceList, "/incidents/<int:incident_id>/evidence")
    api.add_resource(
        IncidentEvidenceItem, "/incidents/<int:incident_id>/evidence/<int:evidence_id>"
    )
    api.add_resource(
        IncidentEvidenceContent, "/incidents/<int:incident_id>/evidence/<int:evidence_id>/content"
    )
