"""TAXII: the TAXII 2.1 server under ``/taxii2/`` and its admin views under ``/taxii/``.

``/taxii2/``: discovery, the API root ``api``, collections, objects (get, add), one
object (get, delete), its versions, the manifest, status. These views authenticate
(bearer or Basic), negotiate the TAXII media type and hand over to
:mod:`security.modules.taxii.server`; their errors are TAXII error messages
(``resources/taxii_wire.py``, registered with the app's error handler here).

``/taxii/collections`` and ``/taxii/feeds`` are ordinary JSON API endpoints for admins
(``taxii:admin``): define the collections served, register and poll remote feeds.
"""

from __future__ import annotations

import uuid

from flask import request
from flask_restful import Resource
from sqlalchemy import select

import idempotency
from auth import Principal, authorize
from errors import ApiError, register_error_renderer
from models import TaxiiCollection, TaxiiFeed, db
from resources.common import ensure_version_matches, load_json, load_query
from resources.openapi import Content, Operation
from resources.responding import page_response, respond
from resources.taxii_wire import (
    TAXII_PATH_PREFIX,
    authorize_taxii,
    negotiate_accept,
    require_taxii_content_type,
    taxii_error_response,
    taxii_response,
)
from schemas.common import PageQuerySchema
from schemas.taxii import (
    CollectionCreateSchema,
    CollectionDefinitionPageSchema,
    CollectionDefinitionSchema,
    CollectionEditSchema,
    FeedCreateSchema,
    FeedEditSchema,
    FeedPageSchema,
    FeedPollSchema,
    FeedSchema,
    TaxiiDeleteQuerySchema,
    TaxiiEnvelopeSchema,
    TaxiiObjectQuerySchema,
    TaxiiObjectsQuerySchema,
    TaxiiPagingSchema,
)
from security.modules.taxii import client, collections, feeds
from security.modules.taxii.media import TAXII_MEDIA_TYPE
from security.modules.taxii.server import backend, status_resource

ADMIN_PERMISSION = "taxii:admin"
COLLECTION_CREATION = idempotency.Creation(
    "taxii.collections.create", TaxiiCollection, locate=lambda body: uuid.UUID(body["id"])
)
FEED_CREATION = idempotency.Creation("taxii.feeds.create", TaxiiFeed)
TAXII_BODY = Content(TAXII_MEDIA_TYPE, {"type": "object"})
PAGED_DESCRIPTION = (
    "Ascending date_added; X-TAXII-Date-Added-First/-Last give the page's range, `next` "
    "the following page."
)


def taxii_operation(summary: str, *, permission: str = "taxii:read", **kwargs) -> Operation:
    """A TAXII endpoint's declaration: TAXII bodies, TAXII errors, 406 for other media."""
    errors = (406, *kwargs.pop("errors", ()))
    responses = kwargs.pop("responses", {200: TAXII_BODY})
    return Operation(
        summary,
        permission=permission,
        responses=responses,
        errors=errors,
        error_media_type=TAXII_MEDIA_TYPE,
        **kwargs,
    )


def _taxii_request(permission: str) -> Principal:
    """Every TAXII view starts here: who is calling, may they, do they accept TAXII 2.1."""
    principal = authorize_taxii(permission)
    negotiate_accept()
    return principal


def _readable(collection_id: str) -> tuple[Principal, TaxiiCollection]:
    principal = _taxii_request("taxii:read")
    return principal, backend.collection(principal, collection_id, need="read")


def _paged(body: dict, page) -> object:
    return taxii_response(body, headers=page.headers())


class Discovery(Resource):
    openapi = {"get": taxii_operation("TAXII server discovery")}

    def get(self):
        _taxii_request("taxii:read")
        return taxii_response(backend.discovery(request.host_url))


class ApiRoot(Resource):
    openapi = {"get": taxii_operation("The TAXII API root")}

    def get(self):
        _taxii_request("taxii:read")
        return taxii_response(backend.api_root())


class Collections(Resource):
    openapi = {"get": taxii_operation("The collections the caller may read or write")}

    def get(self):
        principal = _taxii_request("taxii:read")
        listed = backend.collections(principal)
        return taxii_response({"collections": listed} if listed else {})


class CollectionInfo(Resource):
    openapi = {"get": taxii_operation("One collection")}

    def get(self, collection_id: str):
        principal = _taxii_request("taxii:read")
        collection = backend.collection(principal, collection_id)
        return taxii_response(backend.describe(principal, collection))


class Objects(Resource):
    openapi = {
        "get": taxii_operation(
            "A page of a collection's objects (STIX 2.1)",
            query=TaxiiObjectsQuerySchema,
            errors=(403,),
            description=PAGED_DESCRIPTION,
        ),
        "post": taxii_operation(
            "Add any STIX 2.1 objects (kept as posted, versioned by modified; indicators "
            "and vulnerabilities also become IOCs); answers a status",
            permission="taxii:write",
            body=Content(TAXII_MEDIA_TYPE, TaxiiEnvelopeSchema),
            responses={202: TAXII_BODY},
        ),
    }

    def get(self, collection_id: str):
        _, collection = _readable(collection_id)
        query = load_query(TaxiiObjectsQuerySchema())
        return _paged(*backend.objects(collection, query))

    def post(self, collection_id: str):
        principal = _taxii_request("taxii:write")
        require_taxii_content_type()
        collection = backend.collection(principal, collection_id, need="write")
        envelope = load_json(TaxiiEnvelopeSchema())
        status = backend.add_objects(principal, collection, envelope["objects"])
        db.session.commit()
        return taxii_response(status_resource(status), 202)


class ObjectItem(Resource):
    openapi = {
        "get": taxii_operation(
            "One object of a collection", query=TaxiiObjectQuerySchema, errors=(403,)
        ),
        "delete": taxii_operation(
            "Delete versions of a posted object (match[version], default the last)",
            permission="taxii:write",
            query=TaxiiDeleteQuerySchema,
            errors=(403,),
            description=(
                "Needs read and write access to the collection. Removes the versions "
                "`match[version]` names (`all`, `first`, `last` or timestamps) from the "
                "collection's object store; the TLP marking definitions and the IOC "
                "store's indicators (edited through /iocs) are refused with 403."
            ),
            responses={200: None},
        ),
    }

    def get(self, collection_id: str, object_id: str):
        _, collection = _readable(collection_id)
        query = load_query(TaxiiObjectQuerySchema())
        return _paged(*backend.object(collection, object_id, query))

    def delete(self, collection_id: str, object_id: str):
        principal = _taxii_request("taxii:write")
        collection = backend.collection(principal, collection_id, need="delete")
        query = load_query(TaxiiDeleteQuerySchema())
        backend.delete_object(collection, object_id, query)
        db.session.commit()
        return taxii_response(None, 200)


class ObjectVersions(Resource):
    openapi = {
        "get": taxii_operation("The versions of one object", query=TaxiiPagingSchema, errors=(403,))
    }

    def get(self, collection_id: str, object_id: str):
        _, collection = _readable(collection_id)
        query = load_query(TaxiiPagingSchema())
        return _paged(*backend.versions(collection, object_id, query))


class Manifest(Resource):
    openapi = {
        "get": taxii_operation(
            "A page of a collection's manifest",
            query=TaxiiObjectsQuerySchema,
            errors=(403,),
            description=PAGED_DESCRIPTION,
        )
    }

    def get(self, collection_id: str):
        _, collection = _readable(collection_id)
        query = load_query(TaxiiObjectsQuerySchema())
        return _paged(*backend.manifest(collection, query))


class Status(Resource):
    openapi = {"get": taxii_operation("The status of an Add Objects request")}

    def get(self, status_id: str):
        principal = _taxii_request("taxii:read")
        return taxii_response(status_resource(backend.status(principal, status_id)))


# --- admin: collections ---------------------------------------------------------------


class CollectionAdminList(Resource):
    openapi = {
        "get": Operation(
            "Every TAXII collection definition",
            permission=ADMIN_PERMISSION,
            responses={200: CollectionDefinitionPageSchema},
        ),
        "post": Operation(
            "Define a TAXII collection (a filter over the IOC store, and a STIX object store; "
            "never TLP red)",
            permission=ADMIN_PERMISSION,
            body=CollectionCreateSchema,
            responses={201: CollectionDefinitionSchema},
            headers=("ETag", "Location", "Idempotent-Replayed"),
            idempotent=True,
        ),
    }

    def get(self):
        authorize(ADMIN_PERMISSION)
        statement = select(TaxiiCollection).order_by(TaxiiCollection.created_at, TaxiiCollection.id)
        return respond({"items": list(db.session.scalars(statement)), "next_cursor": None})

    def post(self):
        principal = authorize(ADMIN_PERMISSION)
        data = load_json(CollectionCreateSchema())

        def create():
            collection = collections.create_collection(principal, data)
            location = f"/taxii/collections/{collection.id}"
            return respond(collection, 201, etag=collection.version, headers={"Location": location})

        return idempotency.answer_once(principal.user_id, COLLECTION_CREATION, create)


class CollectionAdminItem(Resource):
    openapi = {
        "get": Operation(
            "One collection definition",
            permission=ADMIN_PERMISSION,
            responses={200: CollectionDefinitionSchema},
            headers=("ETag",),
        ),
        "patch": Operation(
            "Edit a collection definition",
            permission=ADMIN_PERMISSION,
            body=CollectionEditSchema,
            responses={200: CollectionDefinitionSchema},
            headers=("ETag",),
            if_match=True,
        ),
        "delete": Operation(
            "Delete a collection and its stored objects (its IOCs stay)",
            permission=ADMIN_PERMISSION,
            responses={204: None},
            if_match=True,
        ),
    }

    def get(self, collection_id: uuid.UUID):
        authorize(ADMIN_PERMISSION)
        collection = collections.get_collection(collection_id)
        return respond(collection, etag=collection.version)

    def patch(self, collection_id: uuid.UUID):
        authorize(ADMIN_PERMISSION)
        data = load_json(CollectionEditSchema())
        collection = collections.get_collection(collection_id, lock=True)
        ensure_version_matches(collection.version)
        collections.update_collection(collection, data)
        db.session.commit()
        return respond(collection, etag=collection.version)

    def delete(self, collection_id: uuid.UUID):
        authorize(ADMIN_PERMISSION)
        collection = collections.get_collection(collection_id, lock=True)
        ensure_version_matches(collection.version)
        collections.delete_collection(collection)
        db.session.commit()
        return None, 204


# --- admin: feeds ---------------------------------------------------------------------


def _feed(feed_id: int, *, lock: bool = False) -> TaxiiFeed:
    feed = db.session.get(TaxiiFeed, feed_id, with_for_update=lock)
    if feed is None:
        raise ApiError(404, f"Feed {feed_id} does not exist.")
    return feed


class FeedList(Resource):
    openapi = {
        "get": Operation(
            "The registered TAXII feeds (credentials never shown)",
            permission=ADMIN_PERMISSION,
            query=PageQuerySchema,
            responses={200: FeedPageSchema},
        ),
        "post": Operation(
            "Register a remote TAXII 2.1 collection to poll",
            permission=ADMIN_PERMISSION,
            body=FeedCreateSchema,
            responses={201: FeedSchema},
            headers=("ETag", "Location", "Idempotent-Replayed"),
            idempotent=True,
            errors=(409, 422),
        ),
    }

    def get(self):
        authorize(ADMIN_PERMISSION)
        query = load_query(PageQuerySchema())
        return page_response(select(TaxiiFeed), TaxiiFeed.created_at, TaxiiFeed.id, query)

    def post(self):
        principal = authorize(ADMIN_PERMISSION)
        data = load_json(FeedCreateSchema())

        def create():
            feed = feeds.create_feed(principal, data)
            location = {"Location": f"/taxii/feeds/{feed.id}"}
            return respond(feed, 201, etag=feed.version, headers=location)

        return idempotency.answer_once(principal.user_id, FEED_CREATION, create)


class FeedItem(Resource):
    openapi = {
        "get": Operation(
            "One feed", permission=ADMIN_PERMISSION, responses={200: FeedSchema}, headers=("ETag",)
        ),
        "patch": Operation(
            "Edit a feed (credentials change only when given)",
            permission=ADMIN_PERMISSION,
            body=FeedEditSchema,
            responses={200: FeedSchema},
            headers=("ETag",),
            if_match=True,
            errors=(409, 422),
        ),
        "delete": Operation(
            "Forget a feed (its IOCs stay)",
            permission=ADMIN_PERMISSION,
            responses={204: None},
            if_match=True,
        ),
    }

    def get(self, feed_id: int):
        authorize(ADMIN_PERMISSION)
        feed = _feed(feed_id)
        return respond(feed, etag=feed.version)

    def patch(self, feed_id: int):
        authorize(ADMIN_PERMISSION)
        data = load_json(FeedEditSchema())
        feed = _feed(feed_id, lock=True)
        ensure_version_matches(feed.version)
        feeds.update_feed(feed, data)
        db.session.commit()
        return respond(feed, etag=feed.version)

    def delete(self, feed_id: int):
        authorize(ADMIN_PERMISSION)
        feed = _feed(feed_id, lock=True)
        ensure_version_matches(feed.version)
        feeds.delete_feed(feed)
        db.session.commit()
        return None, 204


class FeedPoll(Resource):
    openapi = {
        "post": Operation(
            "Poll the feed now: new objects since the last poll become IOCs",
            permission=ADMIN_PERMISSION,
            responses={200: FeedPollSchema},
            errors=(409, 502),
        )
    }

    def post(self, feed_id: int):
        authorize(ADMIN_PERMISSION)
        _feed(feed_id)
        try:
            result = client.poll_feed(feed_id)
        except client.FeedBusy as error:
            raise ApiError(409, f"Not polled: {error}.") from None
        except client.FeedPollError as error:
            raise ApiError(
                502, f"The poll failed: {error}", extra={"feed": FeedSchema().dump(_feed(feed_id))}
            ) from None
        return respond({"result": result, "feed": _feed(feed_id)})


def register(api) -> None:
    register_error_renderer(TAXII_PATH_PREFIX, taxii_error_response)
    taxii_routes = {
        Discovery: "/taxii2/",
        ApiRoot: "/taxii2/api/",
        Collections: "/taxii2/api/collections/",
        CollectionInfo: "/taxii2/api/collections/<collection_id>/",
        Objects: "/taxii2/api/collections/<collection_id>/objects/",
        ObjectItem: "/taxii2/api/collections/<collection_id>/objects/<object_id>/",
        ObjectVersions: "/taxii2/api/collections/<collection_id>/objects/<object_id>/versions/",
        Manifest: "/taxii2/api/collections/<collection_id>/manifest/",
        Status: "/taxii2/api/status/<status_id>/",
    }
    for resource, route in taxii_routes.items():
        # TAXII URLs end in a slash, but clients build some without it (status links).
        api.add_resource(resource, route, strict_slashes=False)
    api.add_resource(CollectionAdminList, "/taxii/collections")
    api.add_resource(CollectionAdminItem, "/taxii/collections/<uuid:collection_id>")
    api.add_resource(FeedList, "/taxii/feeds")
    api.add_resource(FeedItem, "/taxii/feeds/<int:feed_id>")
    api.add_resource(FeedPoll, "/taxii/feeds/<int:feed_id>/poll")
