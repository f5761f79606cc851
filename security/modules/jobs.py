"""The job queue: procrastinate on the application's own PostgreSQL, and what runs on it.

Why procrastinate: it needs no other server (the embedded PostgreSQL keeps working), wakes
workers with LISTEN/NOTIFY, defers periodic tasks once per tick however many workers run,
and lets any number of workers on any machine share one database. Its schema is applied by
the project's migration ``0013``.

Two ways a job enters the queue:

* :func:`defer_in_transaction` inserts it with procrastinate's own SQL function in the
  caller's SQLAlchemy transaction, so the job exists exactly when the change that asked
  for it committed (the webhook outbox relies on this);
* the periodic tasks of :func:`build_queue`, deferred by every worker's scheduler and
  deduplicated by procrastinate (one job per task and tick).

Each task runs its work inside the Flask app's context, with the app's session, and is
idempotent: a job run twice (a worker killed after the work, before the job was marked
done) does no harm, because every task re-reads and claims what it acts on.

A worker killed (``kill -9``, its machine lost) leaves its jobs in procrastinate's
``doing`` state, which nothing else would ever take again. Every worker writes a heartbeat
to ``procrastinate_workers`` each ``WORKER_HEARTBEAT_SECONDS``; the periodic
:data:`RETRY_STALLED_TASK` asks procrastinate for the running jobs of workers silent for
``WORKER_STALLED_SECONDS`` and queues them again, so every kind of job (deliveries,
notifications, timers, polls) is at least once. ``/jobs`` counts those jobs as
``stalled``, not ``running``.

Not here: what a delivery does (:mod:`security.modules.webhooks`) and what the timers
announce (:mod:`security.modules.timers`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import text
from sqlalchemy.engine import make_url

from models import db

logger = logging.getLogger("soc.jobs")

QUEUE = "automation"
DELIVER_TASK = "deliver_webhook"
TIMERS_TASK = "run_timers"
PRUNE_TASK = "prune_records"
RETRY_STALLED_TASK = "retry_stalled_jobs"
PRUNE_CRON = "17 3 * * *"  # daily, at a quiet hour (UTC)

_DEFER = text(
    "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW(:queue, :task, 0, NULL, NULL,"
    " CAST(:args AS jsonb), :scheduled_at)::procrastinate_job_to_defer_v1])"
)


def defer_in_transaction(task: str, scheduled_at: datetime | None = None, **args: Any) -> None:
    """Queue ``task(**args)`` in the current transaction (committed or rolled back with it),
    to run at ``scheduled_at`` (now if None)."""
    db.session.execute(
        _DEFER,
        {"queue": QUEUE, "task": task, "args": json.dumps(args), "scheduled_at": scheduled_at},
    )


# A running job is stalled by procrastinate's own test (its select_stalled_jobs_by_heartbeat
# query): its worker is gone (pruned: the column is set to NULL) or has not beaten for
# the given seconds.
_COUNTS = text(
    "SELECT count(*) FILTER (WHERE status = 'todo'),"
    " count(*) FILTER (WHERE status = 'doing' AND NOT stalled),"
    " count(*) FILTER (WHERE status = 'doing' AND stalled),"
    " count(*) FILTER (WHERE status = 'failed')"
    " FROM (SELECT job.status, worker.id IS NULL"
    " OR worker.last_heartbeat < now() - make_interval(secs => :seconds) AS stalled"
    " FROM procrastinate_jobs job"
    " LEFT JOIN procrastinate_workers worker ON worker.id = job.worker_id"
    " WHERE job.status IN ('todo', 'doing', 'failed')) AS jobs"
)


def queue_counts() -> dict[str, int]:
    """Jobs by state: ``queued`` (waiting, due or scheduled), ``running`` (on a worker
    that still beats), ``stalled`` (on a worker silent for ``WORKER_STALLED_SECONDS``,
    about to be queued again), ``failed``."""
    seconds = current_app.config["WORKER_STALLED_SECONDS"]
    row = db.session.execute(_COUNTS, {"seconds": seconds}).one()
    return dict(zip(("queued", "running", "stalled", "failed"), row, strict=True))


async def retry_stalled(queue: Any, stalled_seconds: float) -> int:
    """Queue again the running jobs of workers silent for ``stalled_seconds`` (they died
    mid-job); how many. A job another worker requeued first is skipped."""
    from procrastinate.exceptions import ConnectorException

    retried = 0
    for job in await queue.job_manager.get_stalled_jobs(
        queue=QUEUE, seconds_since_heartbeat=stalled_seconds
    ):
        try:
            await queue.job_manager.retry_job(job)
        except ConnectorException as error:  # it left 'doing' meanwhile: not ours
            logger.info("stalled job %s not retried: %s", job.id, error)
            continue
        logger.warning("job %s (%s) of a dead worker queued again", job.id, job.task_name)
        retried += 1
    return retried


def libpq_conninfo(database_url: str) -> str:
    """The SQLAlchemy URL as psycopg 3 reads it: the same server, socket and credentials,
    without the ``+psycopg2`` driver name (the embedded server's URL keeps its
    ``?host=<socket directory>``)."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def tick_cron(seconds: int) -> str:
    """A cron line (procrastinate's six fields, seconds last) firing every ``seconds``."""
    if seconds < 60:
        return f"* * * * * */{seconds}"
    return f"*/{max(seconds // 60, 1)} * * * *"


def build_queue(app: Flask) -> Any:
    """A procrastinate app on ``app``'s database with the product's tasks registered."""
    import procrastinate

    from security.modules import notifications, timers, webhooks

    queue = procrastinate.App(
        connector=procrastinate.PsycopgConnector(
            conninfo=libpq_conninfo(app.config["SQLALCHEMY_DATABASE_URI"]),
            min_size=1,
            max_size=4,
        )
    )

    def in_app(work: Callable[..., object]) -> Callable[..., None]:
        def run(**kwargs: Any) -> None:
            with app.app_context():
                try:
                    work(**kwargs)
                finally:
                    db.session.remove()

        run.__name__ = work.__name__
        return run

    queue.task(name=DELIVER_TASK, queue=QUEUE)(in_app(webhooks.deliver))
    queue.task(name=timers.POLL_FEED_TASK, queue=QUEUE)(in_app(timers.poll_due_feed))
    # A notification has no outbox row of its own: its job is the record, retried by
    # procrastinate (waits of 2, 4, 8, ... s) up to the webhooks' number of attempts.
    retry = procrastinate.RetryStrategy(
        max_attempts=app.config["WEBHOOK_MAX_ATTEMPTS"] - 1, exponential_wait=2
    )
    queue.task(name=notifications.NOTIFY_TASK, queue=QUEUE, retry=retry)(in_app(notifications.send))

    def run_timers(timestamp: int) -> None:
        timers.run_all()

    def prune_records(timestamp: int) -> None:
        timers.prune_records()

    queue.periodic(cron=tick_cron(app.config["AUTOMATION_TICK_SECONDS"]))(
        queue.task(name=TIMERS_TASK, queue=QUEUE)(in_app(run_timers))
    )
    stalled_seconds = app.config["WORKER_STALLED_SECONDS"]

    async def retry_stalled_jobs(timestamp: int) -> None:
        await retry_stalled(queue, stalled_seconds)

    queue.periodic(cron=tick_cron(app.config["AUTOMATION_TICK_SECONDS"]))(
        queue.task(name=RETRY_STALLED_TASK, queue=QUEUE)(retry_stalled_jobs)
    )
    queue.periodic(cron=PRUNE_CRON)(queue.task(name=PRUNE_TASK, queue=QUEUE)(in_app(prune_records)))
    return queue


def run_worker(app: Flask, concurrency: int, poll_seconds: float) -> None:
    """Work the queue until SIGINT or SIGTERM (a running job is let finish).

    New jobs wake the worker at once (LISTEN/NOTIFY); ``poll_seconds`` bounds how late it
    starts a job scheduled for later (a delivery's retry after its backoff).
    """
    queue = build_queue(app)
    logger.info("worker started: queue %s, concurrency %d", QUEUE, concurrency)
    queue.run_worker(
        queues=[QUEUE],
        concurrency=concurrency,
        fetch_job_polling_interval=poll_seconds,
        update_heartbeat_interval=app.config["WORKER_HEARTBEAT_SECONDS"],
        stalled_worker_timeout=app.config["WORKER_STALLED_SECONDS"],
        install_signal_handlers=True,
    )


@click.command("worker")
@click.option(
    "--concurrency",
    default=4,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Jobs run at once by this worker (each in a thread, with a database connection).",
)
@click.option(
    "--poll-seconds",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0.05, 60),
    help="How often to look for jobs scheduled for later (new ones arrive by NOTIFY).",
)
@with_appcontext
def worker_command(concurrency: int, poll_seconds: float) -> None:
    """Run a job-queue worker: webhook deliveries, SLA timers, TAXII polls, pruning. Run as
    many as needed, on any machine that reaches the database; stop with SIGTERM."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    run_worker(app, concurrency, poll_seconds)
