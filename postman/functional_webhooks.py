"""The functional collection's webhooks folder: subscribe (the secret shown once), read,
edit, queue a test delivery, list deliveries, redeliver one, the job queue, remove; and a
person's notification channel, added, read, disabled and removed.

The target is 127.0.0.1 over plain HTTP, which ``scripts/run_newman.sh`` allows
(``OUTBOUND_ALLOWED_HOSTS``); nothing needs to answer there for these requests, which
only queue deliveries.
"""

from __future__ import annotations

from collection_builder import expect, folder, header, json_body, no_header, request, save, status

WEBHOOK_FIELDS = ("id", "name", "url", "event_types", "min_severity", "enabled", "version")
DELIVERY_FIELDS = ("id", "webhook_id", "message_id", "event_type", "status", "attempts")

WEBHOOKS = folder(
    "Webhooks",
    "Signed webhook subscriptions, their deliveries (redelivered by hand) and the job queue.",
    [
        request(
            "Subscribe a webhook (the signing secret is shown only here)",
            "POST",
            "/webhooks",
            [
                status(201),
                json_body(*WEBHOOK_FIELDS, "secret"),
                header("Location", r"^/webhooks/\d+$"),
                header("Cache-Control", "no-store"),
                expect(
                    "a Standard Webhooks secret",
                    "pm.expect(body.secret).to.match(/^whsec_/);",
                ),
                save("webhookId", "body.id"),
            ],
            body={
                "name": "SOAR {{runId}}",
                "url": "http://127.0.0.1:18299/soc-events",
                "event_types": ["incident.create", "incident.sla_breached"],
                "min_severity": "high",
            },
        ),
        request(
            "List webhooks (never a secret)",
            "GET",
            "/webhooks",
            [
                status(200),
                json_body("items", "next_cursor"),
                expect(
                    "no secret in the list",
                    "body.items.forEach((item) => pm.expect(item).to.not.have.property('secret'));",
                ),
            ],
        ),
        request(
            "Read a webhook",
            "GET",
            "/webhooks/{{webhookId}}",
            [
                status(200),
                json_body(*WEBHOOK_FIELDS),
                header("ETag"),
                expect("no secret", "pm.expect(body).to.not.have.property('secret');"),
            ],
        ),
        request(
            "Edit a webhook",
            "PATCH",
            "/webhooks/{{webhookId}}",
            [status(200), expect("the new version", "pm.expect(body.version).to.equal(2);")],
            headers={"If-Match": '"1"'},
            body={"min_severity": "critical"},
        ),
        request(
            "Refuse a webhook aimed at the metadata service",
            "POST",
            "/webhooks",
            [status(422), no_header("Location")],
            body={
                "name": "metadata {{runId}}",
                "url": "https://169.254.169.254/latest/meta-data/",
                "event_types": ["incident.create"],
            },
        ),
        request(
            "Queue a test delivery",
            "POST",
            "/webhooks/{{webhookId}}/test",
            [
                status(202),
                json_body(*DELIVERY_FIELDS),
                expect("a webhook.test", "pm.expect(body.event_type).to.equal('webhook.test');"),
                save("deliveryId", "body.id"),
            ],
        ),
        request(
            "List the webhook's deliveries",
            "GET",
            "/webhooks/{{webhookId}}/deliveries",
            [status(200), json_body("items", "next_cursor")],
        ),
        request(
            "Redeliver a delivery",
            "POST",
            "/deliveries/{{deliveryId}}/redeliver",
            [status(202), json_body(*DELIVERY_FIELDS)],
        ),
        request(
            "The job queue",
            "GET",
            "/jobs",
            [status(200), json_body("queued", "running", "stalled", "failed", "deliveries")],
        ),
        request(
            "Remove the webhook",
            "DELETE",
            "/webhooks/{{webhookId}}",
            [status(204)],
            headers={"If-Match": "*"},
        ),
        request(
            "Add a notification channel (e-mail; the URL is never shown again)",
            "POST",
            "/notification-channels",
            [
                status(201),
                json_body("id", "name", "kind", "event_types", "only_assigned_to_me"),
                expect("no URL in the answer", "pm.expect(body).to.not.have.property('url');"),
                save("channelId", "body.id"),
            ],
            body={
                "name": "my mail {{runId}}",
                "url": "mailto://127.0.0.1:18260?from=soc@example.com&to=admin@example.com",
                "event_types": ["incident.sla_approaching", "incident.assign"],
                "only_assigned_to_me": True,
            },
        ),
        request(
            "List your notification channels",
            "GET",
            "/notification-channels",
            [status(200), json_body("items", "next_cursor")],
        ),
        request(
            "Read a notification channel",
            "GET",
            "/notification-channels/{{channelId}}",
            [status(200), json_body("id", "kind", "enabled"), header("ETag")],
        ),
        request(
            "Disable a notification channel",
            "PATCH",
            "/notification-channels/{{channelId}}",
            [status(200), expect("disabled", "pm.expect(body.enabled).to.equal(false);")],
            headers={"If-Match": '"1"'},
            body={"enabled": False},
        ),
        request(
            "Queue a test notification to the channel (also when disabled)",
            "POST",
            "/notification-channels/{{channelId}}/test",
            [
                status(202),
                json_body("channel", "notification_id"),
                expect(
                    "the channel tested",
                    "pm.expect(String(body.channel))"
                    ".to.equal(String(pm.collectionVariables.get('channelId')));",
                ),
            ],
        ),
        request(
            "Remove a notification channel",
            "DELETE",
            "/notification-channels/{{channelId}}",
            [status(204)],
            headers={"If-Match": "*"},
        ),
    ],
)
