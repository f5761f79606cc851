"""The TAXII client: poll a remote TAXII 2.1 collection (a feed) and store what it serves as IOCs.

Requests go through the OASIS ``taxii2-client`` (pagination with ``limit``/``next``,
``added_after``), over its session prepared by :func:`security.outbound.http.checked_session`:
no proxies from the environment, a timeout on every read and a deadline on every page and
on the whole poll (``TAXII_PAGE_DEADLINE_SECONDS``, ``TAXII_POLL_DEADLINE_SECONDS``), few
redirects, and every request URL and redirect target checked against SSRF. The watermark
for the next poll is the remote server's ``X-TAXII-Date-Added-Last``, saved after every
page together with that page's IOCs, so a poll that fails halfway resumes where it stopped.
Each page's IOCs are one ``ioc.bulk_import`` event, committed with the page; the poll's
end (its outcome saved on the feed) is one ``taxii.feed_polled`` event, a failed one too.

A poll ends when the server has no more, after :data:`MAX_PAGES_PER_POLL` pages, or when a
page holds only objects this poll already received: the server re-dated them because
storing them changed its own store (a feed of a server that this poll itself feeds), and
following it would never end.

A lease on the feed row (``poll_started_at``) keeps two pollers (the CLI and the API, or
two instances) from polling one feed at once; a crashed poller's lease expires.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import requests
from flask import current_app
from sqlalchemy import or_, update
from taxii2client.common import _HTTPConnection
from taxii2client.exceptions import TAXIIServiceException
from taxii2client.v21 import Collection, as_pages

from models import TaxiiFeed, db, utcnow
from security.events import EventType, emit
from security.modules.ioc_values import InvalidIoc
from security.modules.stix_mapping import parse_bundle
from security.modules.taxii.stix_exchange import store_imported
from security.outbound.http import Deadlines, checked_session
from security.outbound.secrets import UndecryptableSecret, decrypt_secret
from security.outbound.ssrf import OutboundUrlRefused, configured_policy

LEASE = timedelta(minutes=15)
MAX_REPORTED_FAILURES = 100
# One poll stops after this many pages (the watermark is saved; the next poll continues),
# so a feed that never stops saying "more" cannot hold a poller forever.
MAX_PAGES_PER_POLL = 1000
USER_AGENT = "soc-incident-api-taxii-client"


class FeedPollError(RuntimeError):
    """A poll failed; the message (also saved as the feed's ``last_error``) says why."""


class FeedBusy(RuntimeError):
    """Another poller holds the feed's lease."""


class _BearerAuth(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


class _FeedAuth(requests.auth.AuthBase):
    """Signs each request with the feed's credentials and reads the TAXII header the
    client library does not return (``X-TAXII-Date-Added-Last``) from each response."""

    def __init__(self, feed: TaxiiFeed) -> None:
        self.date_added_last: str | None = None
        self.signer: requests.auth.AuthBase | None = None
        if feed.credentials_encrypted is not None:
            secret = decrypt_secret(feed.credentials_encrypted)
            if feed.auth_type == "basic":
                self.signer = requests.auth.HTTPBasicAuth(secret["username"], secret["password"])
            elif feed.auth_type == "bearer":
                self.signer = _BearerAuth(secret["token"])

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self.signer is not None:
            request = self.signer(request)
        request.register_hook("response", self._inspect)
        return request

    def _inspect(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        last = response.headers.get("X-TAXII-Date-Added-Last")
        if last:
            self.date_added_last = last
        return response


def _deadlines() -> Deadlines:
    poll_seconds = current_app.config["TAXII_POLL_DEADLINE_SECONDS"]
    page_seconds = current_app.config["TAXII_PAGE_DEADLINE_SECONDS"]
    return Deadlines(
        total_seconds=poll_seconds,
        request_seconds=page_seconds,
        total_exceeded=(
            f"the poll did not finish within {poll_seconds:g} s "
            "(TAXII_POLL_DEADLINE_SECONDS); the pages stored so far are kept"
        ),
        request_exceeded=(
            f"the feed did not send a page within its deadline ({page_seconds:g} s a "
            f"page, TAXII_PAGE_DEADLINE_SECONDS; {poll_seconds:g} s a poll)"
        ),
    )


def _connection(auth: _FeedAuth) -> _HTTPConnection:
    connection = _HTTPConnection(auth=auth, version="2.1", user_agent=USER_AGENT)
    checked_session(configured_policy(), _deadlines(), session=connection.session)
    return connection


@dataclass
class PollResult:
    """What one poll brought in."""

    feed: str
    objects: int = 0
    pages: int = 0
    created: int = 0
    merged: int = 0
    failures: list[dict] = field(default_factory=list)
    skipped: int = 0
    added_after: datetime | None = None


def _claim(feed_id: int) -> TaxiiFeed:
    """Take the feed's lease (committed at once, so other pollers see it)."""
    now = utcnow()
    claimed = db.session.execute(
        update(TaxiiFeed)
        .where(
            TaxiiFeed.id == feed_id,
            or_(TaxiiFeed.poll_started_at.is_(None), TaxiiFeed.poll_started_at < now - LEASE),
        )
        .values(poll_started_at=now)
        .returning(TaxiiFeed.id)
    ).first()
    db.session.commit()
    if claimed is None:
        raise FeedBusy(f"feed {feed_id} is being polled already")
    return db.session.get_one(TaxiiFeed, feed_id, populate_existing=True)


def _store_page(feed: TaxiiFeed, objects: list[Any], result: PollResult) -> None:
    parsed = parse_bundle({"type": "bundle", "objects": objects})
    stored = store_imported(
        parsed,
        None,
        source=feed.source_name,
        default_confidence=feed.default_confidence,
        default_tlp=feed.default_tlp,
    )
    result.objects += len(objects)
    result.pages += 1
    result.created += stored.created
    result.merged += stored.merged
    result.skipped += len(stored.skipped)
    room = MAX_REPORTED_FAILURES - len(result.failures)
    result.failures.extend(
        {"id": object_id, "reason": reason}
        for object_id, reason in list(stored.failures.items())[: max(room, 0)]
    )


def _parse_watermark(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _poll_pages(feed: TaxiiFeed, result: PollResult) -> None:
    auth = _FeedAuth(feed)
    filters = {"added_after": feed.added_after} if feed.added_after else {}
    with Collection(feed.collection_url, conn=_connection(auth)) as collection:
        pages = as_pages(collection.get_objects, per_request=feed.page_size, **filters)
        received: set[str] = set()
        for envelope in pages:
            objects = envelope.get("objects", [])
            ids = {str(o.get("id")) for o in objects if isinstance(o, dict)}
            if ids and ids <= received:
                break
            received |= ids
            _store_page(feed, objects, result)
            watermark = _parse_watermark(auth.date_added_last or "")
            if watermark is not None:
                feed.added_after = result.added_after = watermark
            db.session.commit()
            if result.pages >= MAX_PAGES_PER_POLL:
                break


_POLL_FAILURES = (
    OutboundUrlRefused,
    UndecryptableSecret,
    InvalidIoc,
    requests.RequestException,
    TAXIIServiceException,
    ValueError,
)


def poll_feed(feed_id: int) -> PollResult:
    """Fetch the feed's new objects and store them as IOCs with the feed as their source.

    Raises :class:`FeedBusy` if another poller holds it, :class:`FeedPollError` if the
    poll failed (after saving the reason on the feed; pages stored before stay stored).
    """
    feed = _claim(feed_id)
    result = PollResult(feed=feed.name, added_after=feed.added_after)
    error_message = None
    try:
        _poll_pages(feed, result)
    except _POLL_FAILURES as error:
        db.session.rollback()
        error_message = f"{type(error).__name__}: {error}"[:2000]
    feed = db.session.get_one(TaxiiFeed, feed_id, populate_existing=True)
    now = utcnow()
    feed.poll_started_at = None
    feed.last_polled_at = now
    feed.last_error = error_message
    feed.last_object_count = result.objects
    if error_message is None:
        feed.last_success_at = now
    emit(
        EventType.TAXII_FEED_POLLED,
        feed.id,
        {
            "objects": result.objects,
            "created": result.created,
            "merged": result.merged,
            "failures": len(result.failures),
            "error": error_message,
        },
        outcome="failure" if error_message else "success",
    )
    db.session.commit()
    if error_message is not None:
        raise FeedPollError(error_message)
    return result


def due_feeds(now: datetime | None = None) -> list[TaxiiFeed]:
    """Enabled feeds whose poll interval has passed since their last poll."""
    now = now or utcnow()
    feeds = db.session.scalars(
        db.select(TaxiiFeed).where(TaxiiFeed.enabled.is_(True)).order_by(TaxiiFeed.id)
    )
    return [feed for feed in feeds if feed.is_due(now)]
