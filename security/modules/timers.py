"""The timers: what the product does on its own as time passes, run by the job queue.

Every tick (``AUTOMATION_TICK_SECONDS``) a worker runs :func:`run_all`:

* SLA clocks: an incident's response or resolution SLA that reached the
  ``SLA_APPROACHING_SHARE`` of its time is announced once (``incident.sla_approaching``),
  one past its due time once (``incident.sla_breached``). "Once" holds across workers: the
  event is emitted by whichever transaction inserts the incident's
  :class:`~models.SlaTimerMark`; a concurrent one waits on the unique key and inserts
  nothing. Due times are the incident's own (``Incident.sla``: its policy version).
* IOC expiry: an IOC whose ``expires_at`` passed is announced once per expiry
  (``ioc.expired``), by the same insert-or-nothing on :class:`~models.IocExpiryNotice`.
* TAXII feeds: each enabled feed whose ``poll_interval_seconds`` has passed gets a poll
  job; the feed's own lease (:mod:`security.modules.taxii.client`) keeps two polls of
  one feed from running at once, whichever workers run them.
* Deliveries no job will attempt (a worker died holding one) are queued again.

Once a day :func:`prune_records` deletes what is past its retention (``flask prune``'s
work, expired idempotency records, and the queue's jobs that succeeded a day ago) and the
evidence blobs no row names (an upload whose transaction failed).

Each step commits on its own, so one failing does not undo the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, text

from models import IdempotencyRecord, TaxiiFeed, db, utcnow
from models.vocabulary import SLA_KINDS
from security.events import SYSTEM, EventType, emit_all
from security.modules import evidence, jobs, retention, webhooks
from security.modules.taxii.client import FeedBusy, FeedPollError, due_feeds, poll_feed

logger = logging.getLogger("soc.timers")

POLL_FEED_TASK = "poll_feed"
IDEMPOTENCY_RECORD_RETENTION = timedelta(hours=24)
"""``idempotency.RETENTION`` (the HTTP layer, which the engine may not import); a test
holds the two equal."""
# Older than any upload still in flight: its blob is written seconds before its row.
ORPHAN_BLOB_AGE = timedelta(hours=1)
EXPIRY_BATCH = 1_000

# One statement for every clock and stage. ``:target`` is the policy's field for the
# clock; a clock stops when the incident responded (response) or resolved (resolution);
# "approaching" is not announced for an incident found already past its due time.
_MARK_SLA_STAGE = text(
    "WITH clocks AS ("
    " SELECT i.id, i.created_at, i.created_at"
    " + make_interval(mins => (p.targets -> i.severity ->> :target)::int) AS due"
    " FROM incidents AS i JOIN sla_policies AS p ON p.id = i.sla_policy_id"
    " WHERE i.status NOT IN ('resolved', 'closed', 'false_positive')"
    " AND CASE :kind WHEN 'response' THEN i.responded_at IS NULL"
    " ELSE i.resolved_at IS NULL END),"
    " reached AS (SELECT id, due FROM clocks"
    " WHERE created_at + (due - created_at) * :share < :now"
    " AND (:stage <> 'approaching' OR due > :now))"
    " INSERT INTO sla_timer_marks (incident_id, kind, stage, marked_at)"
    " SELECT id, :kind, :stage, :now FROM reached"
    " ON CONFLICT DO NOTHING RETURNING incident_id,"
    " (SELECT due FROM reached WHERE reached.id = incident_id)"
)
_TARGETS = {"response": "response_minutes", "resolution": "resolution_minutes"}


def _mark_sla_stage(kind: str, stage: str, share: float, now: datetime) -> list[tuple[int, str]]:
    """Insert the marks of every incident whose ``kind`` clock reached ``stage`` now;
    returns (incident id, due time) of those this call marked."""
    rows = db.session.execute(
        _MARK_SLA_STAGE,
        {"target": _TARGETS[kind], "kind": kind, "stage": stage, "share": share, "now": now},
    )
    return [(incident_id, due.isoformat()) for incident_id, due in rows]


def announce_sla_timers(now: datetime | None = None) -> int:
    """Announce the SLA clocks that reached a stage since the last run; how many."""
    now = now or utcnow()
    share = current_app.config["SLA_APPROACHING_SHARE"]
    stages = (
        ("approaching", share, EventType.INCIDENT_SLA_APPROACHING),
        ("breached", 1.0, EventType.INCIDENT_SLA_BREACHED),
    )
    announced = 0
    for kind in SLA_KINDS:
        for stage, stage_share, event_type in stages:
            marked = _mark_sla_stage(kind, stage, stage_share, now)
            changes = [(incident_id, {"kind": kind, "due": due}) for incident_id, due in marked]
            announced += len(emit_all(event_type, changes, actor=SYSTEM))
    return announced


def announce_expired_iocs(now: datetime | None = None) -> int:
    """Announce IOCs whose expiry passed (each expiry once); how many, at most a batch."""
    now = now or utcnow()
    rows = db.session.execute(
        text(
            "INSERT INTO ioc_expiry_notices (ioc_id, expires_at, noticed_at)"
            " SELECT id, expires_at, :now FROM iocs WHERE expires_at <= :now"
            " ORDER BY expires_at LIMIT :batch"
            " ON CONFLICT DO NOTHING RETURNING ioc_id, expires_at"
        ),
        {"now": now, "batch": EXPIRY_BATCH},
    )
    changes = [(ioc_id, {"expires_at": expires.isoformat()}) for ioc_id, expires in rows]
    return len(emit_all(EventType.IOC_EXPIRED, changes, actor=SYSTEM))


def queue_due_feed_polls(now: datetime | None = None) -> int:
    """A poll job for each feed that is due and has none waiting; how many were queued."""
    waiting = set(
        db.session.scalars(
            text(
                "SELECT (args ->> 'feed_id')::int FROM procrastinate_jobs"
                " WHERE status = 'todo' AND task_name = :task"
            ).bindparams(task=POLL_FEED_TASK)
        )
    )
    queued = 0
    for feed in due_feeds(now):
        if feed.id not in waiting:
            jobs.defer_in_transaction(POLL_FEED_TASK, feed_id=feed.id)
            queued += 1
    return queued


def poll_due_feed(feed_id: int) -> None:
    """The job of :data:`POLL_FEED_TASK`: poll the feed if it is still due and free."""
    feed = db.session.get(TaxiiFeed, feed_id)
    if feed is None or not feed.enabled or not feed.is_due(utcnow()):
        return
    try:
        result = poll_feed(feed_id)
    except FeedBusy:
        return  # another worker (or the CLI) is polling it
    except FeedPollError as error:
        logger.warning("TAXII feed %s: poll failed: %s", feed_id, error)
        return
    logger.info(
        "TAXII feed %s: %d objects, %d IOCs created", feed_id, result.objects, result.created
    )


def prune_records(now: datetime | None = None) -> dict[str, int]:
    """What ``flask prune`` deletes, and idempotency records past their 24 hours."""
    now = now or utcnow()
    pruned = retention.prune(now, actor=SYSTEM)
    result = db.session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.created_at < now - IDEMPOTENCY_RECORD_RETENTION
        )
    )
    pruned["idempotency_records"] = getattr(result, "rowcount", 0)
    pruned["finished_jobs"] = _prune_finished_jobs()
    db.session.commit()
    pruned["evidence_blobs"] = evidence.forget_orphans(now - ORPHAN_BLOB_AGE)
    return pruned


def _prune_finished_jobs() -> int:
    """Delete this queue's jobs that succeeded over a day ago (their events go with them):
    every tick leaves one. The newest job of each periodic task stays, because
    procrastinate's record of the last periodic defer refers to it."""
    result = db.session.execute(
        text(
            "DELETE FROM procrastinate_jobs AS job WHERE job.queue_name = :queue"
            " AND job.status = 'succeeded'"
            " AND NOT EXISTS (SELECT 1 FROM procrastinate_periodic_defers AS defer"
            " WHERE defer.job_id = job.id)"
            " AND NOT EXISTS (SELECT 1 FROM procrastinate_events AS event"
            " WHERE event.job_id = job.id AND event.at > now() - interval '1 day')"
        ),
        {"queue": jobs.QUEUE},
    )
    return getattr(result, "rowcount", 0)


STEPS: tuple[tuple[str, Callable[[], object]], ...] = (
    ("SLA timers", announce_sla_timers),
    ("IOC expiry", announce_expired_iocs),
    ("TAXII schedule", queue_due_feed_polls),
    ("stalled deliveries", webhooks.requeue_stalled),
)


def run_all() -> None:
    """One tick: every step in its own transaction; one that fails is logged, the
    others still run (the next tick tries it again)."""
    for name, step in STEPS:
        try:
            step()
            db.session.commit()
        except Exception:
            db.session.rollback()
            logger.exception("timer step %r failed", name)
