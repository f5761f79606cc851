"""``/webhooks``, ``/deliveries`` and ``/jobs`` (admin): the subscriptions, their
deliveries, and the job queue's state. The work itself is ``security/modules/webhooks.py``
and the worker (``flask worker``)."""

from __future__ import annotations

from flask_restful import Resource

import idempotency
from auth import authorize
from models import Webhook, WebhookDelivery, db
from resources.common import ensure_version_matches, load_json, load_query
from resources.openapi import Operation
from resources.responding import page_response, respond
from schemas.common import PageQuerySchema
from schemas.webhooks import (
    CreatedWebhookSchema,
    DeliveryPageSchema,
    DeliverySchema,
    JobsSchema,
    WebhookCreateSchema,
    WebhookEditSchema,
    WebhookPageSchema,
    WebhookSchema,
)
from security.modules import jobs, webhooks

PERMISSION = "webhooks:admin"
SECRET_HEADERS = {"Cache-Control": "no-store"}
WEBHOOK_CREATION = idempotency.Creation("webhooks.create", Webhook, shown_once="secret")


class WebhookList(Resource):
    openapi = {
        "get": Operation(
            "Every webhook, newest first (never its secret)",
            permission=PERMISSION,
            query=PageQuerySchema,
            responses={200: WebhookPageSchema},
        ),
        "post": Operation(
            "Subscribe a URL to events; the signing secret is shown only in this answer",
            permission=PERMISSION,
            body=WebhookCreateSchema,
            responses={201: CreatedWebhookSchema},
            headers=("ETag", "Location"),
            idempotent=True,
            errors=(422,),
            description=(
                "Deliveries are signed per Standard Webhooks (webhook-id, webhook-timestamp, "
                "webhook-signature) with the secret. The URL must be https, or a host in "
                "OUTBOUND_ALLOWED_HOSTS; private, loopback and metadata addresses are refused."
            ),
        ),
    }

    def get(self):
        authorize(PERMISSION)
        query = load_query(PageQuerySchema())
        return page_response(webhooks.webhooks(), Webhook.created_at, Webhook.id, query)

    def post(self):
        principal = authorize(PERMISSION)
        data = load_json(WebhookCreateSchema())

        def create():
            created = webhooks.create_webhook(data)
            headers = {**SECRET_HEADERS, "Location": f"/webhooks/{created.webhook.id}"}
            return respond(created, 201, etag=created.webhook.version, headers=headers)

        return idempotency.answer_once(principal.user_id, WEBHOOK_CREATION, create)


class WebhookItem(Resource):
    openapi = {
        "get": Operation(
            "One webhook", permission=PERMISSION, responses={200: WebhookSchema}, headers=("ETag",)
        ),
        "patch": Operation(
            "Edit a webhook (its secret stays)",
            permission=PERMISSION,
            body=WebhookEditSchema,
            responses={200: WebhookSchema},
            headers=("ETag",),
            if_match=True,
            errors=(422,),
        ),
        "delete": Operation(
            "Remove a webhook and its deliveries",
            permission=PERMISSION,
            responses={204: None},
            if_match=True,
        ),
    }

    def get(self, webhook_id: int):
        authorize(PERMISSION)
        webhook = webhooks.get_webhook(webhook_id)
        return respond(webhook, etag=webhook.version)

    def patch(self, webhook_id: int):
        authorize(PERMISSION)
        data = load_json(WebhookEditSchema())
        webhook = webhooks.get_webhook(webhook_id, lock=True)
        ensure_version_matches(webhook.version)
        webhooks.update_webhook(webhook, data)
        db.session.commit()
        return respond(webhook, etag=webhook.version)

    def delete(self, webhook_id: int):
        authorize(PERMISSION)
        webhook = webhooks.get_webhook(webhook_id, lock=True)
        ensure_version_matches(webhook.version)
        webhooks.delete_webhook(webhook)
        db.session.commit()
        return None, 204


class WebhookTest(Resource):
    openapi = {
        "post": Operation(
            "Queue a webhook.test delivery to the webhook now",
            permission=PERMISSION,
            responses={202: DeliverySchema},
        )
    }

    def post(self, webhook_id: int):
        authorize(PERMISSION)
        delivery = webhooks.send_test(webhooks.get_webhook(webhook_id))
        db.session.commit()
        return respond(delivery, 202)


class WebhookDeliveries(Resource):
    openapi = {
        "get": Operation(
            "The webhook's deliveries, newest first: status, attempts, last answer, latency",
            permission=PERMISSION,
            query=PageQuerySchema,
            responses={200: DeliveryPageSchema},
        )
    }

    def get(self, webhook_id: int):
        authorize(PERMISSION)
        query = load_query(PageQuerySchema())
        statement = webhooks.deliveries_of(webhooks.get_webhook(webhook_id))
        return page_response(statement, WebhookDelivery.created_at, WebhookDelivery.id, query)


class DeliveryRedeliver(Resource):
    openapi = {
        "post": Operation(
            "Send a delivery again (e.g. a failed one): new attempts, the same webhook-id",
            permission=PERMISSION,
            responses={202: DeliverySchema},
            errors=(409,),
        )
    }

    def post(self, delivery_id: int):
        authorize(PERMISSION)
        delivery = webhooks.get_delivery(delivery_id, lock=True)
        webhooks.redeliver(delivery)
        db.session.commit()
        return respond(delivery, 202)


class Jobs(Resource):
    openapi = {
        "get": Operation(
            "The job queue: jobs queued, running and failed; deliveries by status",
            permission="jobs:admin",
            responses={200: JobsSchema},
        )
    }

    def get(self):
        authorize("jobs:admin")
        return respond({**jobs.queue_counts(), "deliveries": webhooks.delivery_counts()})


def register(api) -> None:
    api.add_resource(WebhookList, "/webhooks")
    api.add_resource(WebhookItem, "/webhooks/<int:webhook_id>")
    api.add_resource(WebhookTest, "/webhooks/<int:webhook_id>/test")
    api.add_resource(WebhookDeliveries, "/webhooks/<int:webhook_id>/deliveries")
    api.add_resource(DeliveryRedeliver, "/deliveries/<int:delivery_id>/redeliver")
    api.add_resource(Jobs, "/jobs")
