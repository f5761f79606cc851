"""STIX 2.1 over the JSON API: export IOCs as a bundle, an incident's IOCs, import a bundle.

TLP red never leaves (the exporter leaves it out); imported objects that do not become
IOCs are reported with the reason, never dropped silently. The mapping and the store
are :mod:`security.modules.taxii.stix_exchange`'s business.
"""

from __future__ import annotations

from flask import Response
from flask_restful import Resource

from auth import authorize
from errors import ApiError
from models import Ioc, db
from resources.common import load_json, load_query
from resources.openapi import Content, Operation
from resources.responding import respond
from schemas.taxii import (
    StixBundleQuerySchema,
    StixBundleSchema,
    StixImportQuerySchema,
    StixImportResultSchema,
)
from security.modules import incidents, intel
from security.modules.ioc_values import InvalidIoc
from security.modules.stix_mapping import EXPORTABLE_IOC_TYPES, parse_bundle
from security.modules.taxii.media import STIX_MEDIA_TYPE
from security.modules.taxii.stix_exchange import export_bundle, store_imported

# An empty bundle has no "objects" member at all (STIX 2.1 makes it optional).
BUNDLE = Content(STIX_MEDIA_TYPE, {"type": "object", "required": ["type", "id"]})


def _bundle_response(indicators, techniques=()) -> Response:
    bundle = export_bundle(indicators, techniques)
    return Response(bundle.serialize(), mimetype=STIX_MEDIA_TYPE)


class StixBundle(Resource):
    openapi = {
        "get": Operation(
            "IOCs as a STIX 2.1 bundle (never TLP red), with their TLP 2.0 markings",
            permission="iocs:read",
            query=StixBundleQuerySchema,
            responses={200: BUNDLE},
        )
    }

    def get(self):
        principal = authorize("iocs:read")
        query = load_query(StixBundleQuerySchema())
        limit = query.pop("limit")
        statement = (
            intel.search_statement(principal, query)
            .where(Ioc.tlp != "red", Ioc.type.in_(EXPORTABLE_IOC_TYPES))
            .order_by(Ioc.created_at, Ioc.id)
            .limit(limit)
        )
        return _bundle_response(db.session.scalars(statement).unique())


class IncidentStix(Resource):
    openapi = {
        "get": Operation(
            "The incident's linked IOCs and ATT&CK attack-patterns as a STIX 2.1 bundle "
            "(never TLP red)",
            permission="incidents:read",
            responses={200: BUNDLE},
        )
    }

    def get(self, incident_id: int):
        principal = authorize("incidents:read")
        authorize("iocs:read")
        incident = incidents.get_visible_incident(principal, incident_id)
        indicators = intel.incident_indicators(incident, principal)
        # A TLP red incident's techniques stay home like its red IOCs.
        techniques = incident.techniques if incident.tlp != "red" else ()
        return _bundle_response(indicators, techniques)


class StixImport(Resource):
    openapi = {
        "post": Operation(
            "Import a STIX 2.1 bundle: indicators and CVEs become IOCs, the rest is reported",
            permission="iocs:write",
            query=StixImportQuerySchema,
            body=StixBundleSchema,
            responses={200: StixImportResultSchema},
        )
    }

    def post(self):
        principal = authorize("iocs:write")
        options = load_query(StixImportQuerySchema())
        bundle = load_json(StixBundleSchema())
        try:
            stored = store_imported(
                parse_bundle(bundle),
                principal,
                source=options["source"],
                default_confidence=options["default_confidence"],
                default_tlp=options["default_tlp"],
            )
        except InvalidIoc as error:
            raise ApiError(413, f"The bundle is too large: {error}") from None
        db.session.commit()
        return respond(stored)


def register(api) -> None:
    api.add_resource(StixBundle, "/stix/bundle")
    api.add_resource(IncidentStix, "/incidents/<int:incident_id>/stix")
    api.add_resource(StixImport, "/stix/import")
