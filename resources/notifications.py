"""``/notification-channels``: a person's own e-mail and chat channels for events
(``security/modules/notifications.py``); the sending is the worker's."""

from __future__ import annotations

from flask_restful import Resource

import idempotency
from auth import authorize
from models import NotificationChannel, db
from resources.common import ensure_version_matches, load_json, load_query
from resources.openapi import Operation
from resources.responding import page_response, respond
from schemas.common import PageQuerySchema
from schemas.notifications import (
    ChannelCreateSchema,
    ChannelEditSchema,
    ChannelPageSchema,
    ChannelSchema,
    ChannelTestSchema,
)
from security.modules import notifications

PERMISSION = "notifications:write"
CHANNEL_CREATION = idempotency.Creation("notification_channels.create", NotificationChannel)


class NotificationChannelList(Resource):
    openapi = {
        "get": Operation(
            "Your notification channels, newest first (never their URLs)",
            permission=PERMISSION,
            query=PageQuerySchema,
            responses={200: ChannelPageSchema},
        ),
        "post": Operation(
            "Add a notification channel (e-mail, Slack, Teams, Mattermost) for events",
            permission=PERMISSION,
            body=ChannelCreateSchema,
            responses={201: ChannelSchema},
            headers=("ETag", "Location"),
            idempotent=True,
            errors=(422,),
        ),
    }

    def get(self):
        principal = authorize(PERMISSION)
        query = load_query(PageQuerySchema())
        statement = notifications.channels(principal)
        return page_response(
            statement, NotificationChannel.created_at, NotificationChannel.id, query
        )

    def post(self):
        principal = authorize(PERMISSION)
        data = load_json(ChannelCreateSchema())

        def create():
            channel = notifications.create_channel(principal, data)
            location = {"Location": f"/notification-channels/{channel.id}"}
            return respond(channel, 201, etag=channel.version, headers=location)

        return idempotency.answer_once(principal.user_id, CHANNEL_CREATION, create)


class NotificationChannelItem(Resource):
    openapi = {
        "get": Operation(
            "One of your channels",
            permission=PERMISSION,
            responses={200: ChannelSchema},
            headers=("ETag",),
        ),
        "patch": Operation(
            "Edit one of your channels",
            permission=PERMISSION,
            body=ChannelEditSchema,
            responses={200: ChannelSchema},
            headers=("ETag",),
            if_match=True,
            errors=(422,),
        ),
        "delete": Operation(
            "Remove one of your channels",
            permission=PERMISSION,
            responses={204: None},
            if_match=True,
        ),
    }

    def get(self, channel_id: int):
        principal = authorize(PERMISSION)
        channel = notifications.get_channel(principal, channel_id)
        return respond(channel, etag=channel.version)

    def patch(self, channel_id: int):
        principal = authorize(PERMISSION)
        data = load_json(ChannelEditSchema())
        channel = notifications.get_channel(principal, channel_id, lock=True)
        ensure_version_matches(channel.version)
        notifications.update_channel(channel, data)
        db.session.commit()
        return respond(channel, etag=channel.version)

    def delete(self, channel_id: int):
        principal = authorize(PERMISSION)
        channel = notifications.get_channel(principal, channel_id, lock=True)
        ensure_version_matches(channel.version)
        notifications.delete_channel(channel)
        db.session.commit()
        return None, 204


class NotificationChannelTest(Resource):
    openapi = {
        "post": Operation(
            "Queue a test notification to one of your channels (an admin: anyone's) now",
            permission=PERMISSION,
            responses={202: ChannelTestSchema},
        )
    }

    def post(self, channel_id: int):
        principal = authorize(PERMISSION)
        channel = notifications.get_channel_to_test(principal, channel_id)
        queued = notifications.send_test(channel, principal)
        db.session.commit()
        return respond(queued, 202)


def register(api) -> None:
    api.add_resource(NotificationChannelList, "/notification-channels")
    api.add_resource(NotificationChannelItem, "/notification-channels/<int:channel_id>")
    api.add_resource(NotificationChannelTest, "/notification-channels/<int:channel_id>/test")
