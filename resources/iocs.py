"""``/iocs``: the IOC store over HTTP, and ``/incidents/<id>/iocs`` links.

Thin edge over :mod:`security.modules.intel`: validate, call one operation, commit, answer.
An indicator the engine refuses (``InvalidIoc``, a ``security.errors.Invalid``) is a
422 naming the reason, by the table in ``errors.py``.
"""

from __future__ import annotations

from typing import Any

from flask_restful import Resource

import idempotency
from auth import authorize
from models import Ioc, db
from resources.common import ensure_version_matches, load_json, load_query
from resources.openapi import Operation
from resources.responding import page_response, respond
from schemas.iocs import (
    BulkItemLoader,
    IncidentIocLinkResultSchema,
    IncidentIocLinkSchema,
    IocBatchCheckResultSchema,
    IocBatchCheckSchema,
    IocBulkResultSchema,
    IocBulkSchema,
    IocCheckQuerySchema,
    IocCheckSchema,
    IocCreateSchema,
    IocExtractResultSchema,
    IocExtractSchema,
    IocListQuerySchema,
    IocListSchema,
    IocPageSchema,
    IocSchema,
    IocUpdateSchema,
)
from security.modules import incidents, intel
from security.modules.gc_pause import garbage_collection_paused

# Bulk imports carry up to 10,000 IOCs; at a few hundred bytes each that needs more than
# the default 1 MiB body cap, so this endpoint (only) allows 16 MiB.
BULK_MAX_CONTENT_LENGTH = 16 * 1024 * 1024
ITEM_DEFAULT_FIELDS = ("source", "confidence", "tlp", "tags")
IOC_CREATION = idempotency.Creation("iocs.create", Ioc)


class IocList(Resource):
    openapi = {
        "get": Operation(
            "List IOCs, newest first, with filters",
            permission="iocs:read",
            query=IocListQuerySchema,
            responses={200: IocPageSchema},
        ),
        "post": Operation(
            "Add an IOC (merged into the stored one if the value is known)",
            permission="iocs:write",
            body=IocCreateSchema,
            responses={201: IocSchema, 200: IocSchema},
            headers=("ETag", "Location", "Idempotent-Replayed"),
            idempotent=True,
            errors=(422,),
        ),
    }

    def get(self):
        principal = authorize("iocs:read")
        query = load_query(IocListQuerySchema())
        statement = intel.search_statement(principal, query)
        return page_response(statement, Ioc.created_at, Ioc.id, query)

    def post(self):
        principal = authorize("iocs:write")
        data = load_json(IocCreateSchema())

        def upsert():
            indicator, created = intel.upsert_ioc(data, principal)
            status = 201 if created else 200
            location = {"Location": f"/iocs/{indicator.id}"}
            return respond(indicator, status, etag=indicator.version, headers=location)

        return idempotency.answer_once(principal.user_id, IOC_CREATION, upsert)


class IocBulk(Resource):
    max_content_length = BULK_MAX_CONTENT_LENGTH
    openapi = {
        "post": Operation(
            "Add or merge up to 10,000 IOCs in one transaction",
            permission="iocs:write",
            body=IocBulkSchema,
            responses={200: IocBulkResultSchema},
            description="Invalid items are reported by index and skipped; the rest are stored.",
        ),
    }

    def post(self):
        principal = authorize("iocs:write")
        # 10,000 items make some 200,000 short-lived containers (see gc_pause).
        with garbage_collection_paused():
            data = load_json(IocBulkSchema())
            defaults = {name: data[name] for name in ITEM_DEFAULT_FIELDS if name in data}
            result = intel.bulk_add_iocs(
                data["items"], principal, defaults=defaults, load_item=BulkItemLoader()
            )
        db.session.commit()
        return respond(result)


class IocItem(Resource):
    openapi = {
        "get": Operation(
            "Read an IOC", permission="iocs:read", responses={200: IocSchema}, headers=("ETag",)
        ),
        "patch": Operation(
            "Edit an IOC's confidence, source, description, tags, TLP, seen times or expiry",
            permission="iocs:write",
            body=IocUpdateSchema,
            responses={200: IocSchema},
            headers=("ETag",),
            if_match=True,
            errors=(422,),
        ),
        "delete": Operation("Delete an IOC", permission="iocs:write", responses={204: None}),
    }

    def get(self, ioc_id: int):
        principal = authorize("iocs:read")
        indicator = intel.get_visible_ioc(principal, ioc_id)
        return respond(indicator, etag=indicator.version)

    def patch(self, ioc_id: int):
        principal = authorize("iocs:write")
        data = load_json(IocUpdateSchema())
        indicator = intel.get_visible_ioc(principal, ioc_id, lock=True)
        ensure_version_matches(indicator.version)
        intel.update_ioc(indicator, principal, data)
        db.session.commit()
        return respond(indicator, etag=indicator.version)

    def delete(self, ioc_id: int):
        principal = authorize("iocs:write")
        indicator = intel.get_visible_ioc(principal, ioc_id, lock=True)
        intel.delete_ioc(indicator, principal)
        db.session.commit()
        return None, 204


def _commit_counted_sightings() -> None:
    """Commit a check's sightings without expiring the counted rows: they already hold what
    the commit stores (``UPDATE ... RETURNING``), and reading each again after the commit
    was most of a check's cost. (Dumping them before the commit instead would hold the
    rows' locks while dumping: concurrent checks of one value then queue longer.)"""
    db.session().expire_on_commit = False
    db.session.commit()


class IocCheck(Resource):
    openapi = {
        "get": Operation(
            "Is this value known bad? Exact and CIDR matches; records a sighting",
            permission="iocs:read",
            query=IocCheckQuerySchema,
            responses={200: IocCheckSchema},
            errors=(422,),
        ),
        "post": Operation(
            "Check up to 1,000 values at once; records sightings",
            permission="iocs:read",
            body=IocBatchCheckSchema,
            responses={200: IocBatchCheckResultSchema},
        ),
    }

    def get(self):
        principal = authorize("iocs:read")
        query = load_query(IocCheckQuerySchema())
        result = intel.check_threat_intelligence(query["value"], principal=principal)
        _commit_counted_sightings()
        return respond(result)

    def post(self):
        principal = authorize("iocs:read")
        data = load_json(IocBatchCheckSchema())
        results = intel.check_values(data["values"], principal=principal)
        _commit_counted_sightings()
        return respond({"items": results})


class IocExtract(Resource):
    openapi = {
        "post": Operation(
            "Find IOCs in text (defanged forms too); say which are known; optionally store them",
            permission="iocs:read",
            body=IocExtractSchema,
            responses={200: IocExtractResultSchema},
            errors=(404,),
            description="save (and incident_id) need iocs:write; an unknown incident_id is 404.",
        ),
    }

    def post(self):
        principal = authorize("iocs:read")
        data = load_json(IocExtractSchema())
        incident = None
        if data["save"]:
            principal = authorize("iocs:write")
        if "incident_id" in data:
            incident = incidents.get_visible_incident(principal, data["incident_id"])
        defaults = {name: data[name] for name in ITEM_DEFAULT_FIELDS if name in data}
        defaults.setdefault("source", "extraction")
        body = intel.extract_and_check(
            data["text"],
            principal=principal,
            save=data["save"],
            defaults=defaults,
            incident=incident,
        )
        db.session.commit()
        return respond(body)


def _incident_iocs_body(incident, principal, **extra: Any) -> dict:
    return {**extra, "items": intel.incident_indicators(incident, principal)}


class IncidentIocs(Resource):
    openapi = {
        "get": Operation(
            "The IOCs linked to an incident",
            permission="iocs:read",
            responses={200: IocListSchema},
        ),
        "post": Operation(
            "Link IOCs to an incident",
            permission="iocs:write",
            body=IncidentIocLinkSchema,
            responses={200: IncidentIocLinkResultSchema},
            errors=(422,),
        ),
    }

    def get(self, incident_id: int):
        principal = authorize("iocs:read")
        incident = incidents.get_visible_incident(principal, incident_id)
        return respond(_incident_iocs_body(incident, principal))

    def post(self, incident_id: int):
        principal = authorize("iocs:write")
        data = load_json(IncidentIocLinkSchema())
        incident = incidents.get_visible_incident(principal, incident_id)
        linked = intel.link_iocs(incident, data["ioc_ids"], principal)
        db.session.commit()
        return respond(_incident_iocs_body(incident, principal, linked=linked))


def register(api) -> None:
    api.add_resource(IocList, "/iocs")
    api.add_resource(IocBulk, "/iocs/bulk")
    api.add_resource(IocCheck, "/iocs/check")
    api.add_resource(IocExtract, "/iocs/extract")
    api.add_resource(IocItem, "/iocs/<int:ioc_id>")
    api.add_resource(IncidentIocs, "/incidents/<int:incident_id>/iocs")
