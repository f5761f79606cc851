"""Bringing the PostgreSQL database up to date at startup.

Two jobs, in order: create the target database when the server lacks it, then apply the
Alembic migrations in ``migrations/`` while holding an advisory lock, so that several
gunicorn workers (or instances) starting at once neither race nor fail. The schema comes
only from migrations; there is no ``create_all()``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg2
from flask import Flask
from psycopg2 import errors as pg_errors
from psycopg2 import sql
from psycopg2.extensions import TRANSACTION_STATUS_IDLE
from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

MIGRATIONS_DIRECTORY = str(Path(__file__).resolve().parent / "migrations")
# Any constant works as long as every process agrees on it: "soc-api" in ASCII.
MIGRATION_LOCK_KEY = 0x736F632D617069
CONNECT_TIMEOUT_SECONDS = 5


class DatabaseUnavailable(RuntimeError):
    """The PostgreSQL server could not be reached; the message names host and port."""


def lost_connection(error: BaseException) -> bool:
    """Whether ``error`` says the database went away (a restart, a failover, a network cut)
    rather than refused a statement.

    SQLAlchemy marks a pooled connection found dead as ``connection_invalidated`` and
    discards every connection of the pool opened before it, so the next checkout connects
    anew; an ``OperationalError`` is also what connecting to a server still starting gives.
    """
    return isinstance(error, OperationalError) or (
        isinstance(error, DBAPIError) and error.connection_invalidated
    )


UNIQUE_VIOLATION = "23505"
"""PostgreSQL's SQLSTATE for a row that a unique constraint already holds."""


def unique_violation(error: BaseException) -> bool:
    """Whether ``error`` is a unique constraint refusing a row: what a check-then-insert
    (a name already taken, a key already used) meets when another transaction inserted
    the same value between the check and the insert."""
    return isinstance(error, IntegrityError) and getattr(error.orig, "pgcode", None) == (
        UNIQUE_VIOLATION
    )


def close_sessions_despite_lost_connections(app: Flask) -> None:
    """End each request's session (Flask-SQLAlchemy's teardown, run first) without letting
    a connection lost after the answer was made turn that answer into a 500: the rollback
    that ends a read then fails, but the pool has already discarded the connection."""
    from models import db

    @app.teardown_appcontext
    def close_session(_error: BaseException | None) -> None:
        try:
            db.session.remove()
        except DBAPIError as error:
            if not lost_connection(error):
                raise
            db.session.registry.clear()


# The connection info key marking a connection lent to an operation that only reads.
_READING_ONLY = "reading_only"
# What makes a statement more than a read for its own moment: it writes, locks rows, takes
# an advisory lock held to the end of the transaction, or sets something for the rest of it.
_MORE_THAN_A_READ = re.compile(
    r"\bFOR\s+(?:NO\s+KEY\s+)?(?:UPDATE|SHARE|KEY\s+SHARE)\b|pg_advisory|set_config|nextval",
    re.IGNORECASE,
)


def reads_only(view: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a resource method that only reads: its ``SELECT`` statements run without a
    transaction.

    psycopg2 wraps every request's statements in ``BEGIN`` ... ``ROLLBACK``: two round
    trips, and two statements for the server to run, around a read of one ``SELECT``. Under
    ``READ COMMITTED`` each statement sees a snapshot of its own anyway, so a plain
    ``SELECT`` runs in autocommit instead. Anything more (the credential lookup noting
    when a token was last used, say) still begins a transaction, which lasts until it is
    committed or rolled back as before (:func:`serve_reads`).
    """

    @functools.wraps(view)
    def reading(*args: Any, **kwargs: Any) -> Any:
        from models import db

        db.session.info[_READING_ONLY] = True
        db.session.connection().info[_READING_ONLY] = True
        return view(*args, **kwargs)

    return reading


def serve_reads(app: Flask) -> None:
    """What :func:`reads_only` needs: on a connection lent to such an operation, between
    transactions, a plain ``SELECT`` runs in autocommit and any other statement begins a
    transaction; the connection leaves that mode when it goes back to the pool.

    The hooks are module functions, installed once per engine and once on the session
    (shared by every app), so a process building several apps does not stack copies."""
    from models import db

    with app.app_context():
        engine = db.engine
    hooks = (
        (engine, "before_cursor_execute", _begin_only_for_more_than_a_read),
        (engine, "checkin", _end_reading),
        (db.session, "after_begin", _lend_again_for_reading),
    )
    for target, name, hook in hooks:
        if not event.contains(target, name, hook):
            event.listen(target, name, hook)


def _begin_only_for_more_than_a_read(connection: Any, cursor: Any, statement: str, *_: Any) -> None:
    if not connection.info.get(_READING_ONLY):
        return
    dbapi_connection = connection.connection.dbapi_connection
    if dbapi_connection.info.transaction_status == TRANSACTION_STATUS_IDLE:
        dbapi_connection.autocommit = _only_reads(statement)


def _lend_again_for_reading(session: Any, transaction: Any, connection: Any) -> None:
    """A commit or rollback hands the connection back; the next is lent likewise."""
    if session.info.get(_READING_ONLY):
        connection.info[_READING_ONLY] = True


def _end_reading(dbapi_connection: Any, record: Any) -> None:
    # None when the connection was found dead and dropped (a database restart).
    if record.info.pop(_READING_ONLY, False) and dbapi_connection is not None:
        dbapi_connection.autocommit = False


def _only_reads(statement: str) -> bool:
    return statement.lstrip()[:6].upper() == "SELECT" and not _MORE_THAN_A_READ.search(statement)


def describe_server(url: URL) -> str:
    """Where the server is, for error messages: ``host:port`` or the Unix socket directory."""
    socket_dir = url.query.get("host")
    if socket_dir and not url.host:
        return f"socket {socket_dir}"
    return f"{url.host or 'localhost'}:{url.port or 5432}"


def _connect_kwargs(url: URL, database: str) -> dict:
    kwargs = {
        "dbname": database,
        "user": url.username,
        "password": url.password,
        "host": url.host or url.query.get("host"),
        "port": url.port,
        "connect_timeout": CONNECT_TIMEOUT_SECONDS,
    }
    return {key: value for key, value in kwargs.items() if value is not None}


def ensure_database_exists(database_url: str) -> bool:
    """Create the database named in ``database_url`` if missing; True when it was created.

    Concurrent creators are expected: the loser sees ``DuplicateDatabase`` or, when both
    passed the existence check, a ``UniqueViolation`` on ``pg_database``; both mean done.
    """
    url = make_url(database_url)
    try:
        connection = psycopg2.connect(**_connect_kwargs(url, "postgres"))
    except psycopg2.OperationalError as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else "no answer"
        raise DatabaseUnavailable(
            f"cannot reach PostgreSQL at {describe_server(url)}: {reason}"
        ) from None
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (url.database,))
            if cursor.fetchone():
                return False
            try:
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(url.database)))
            except (pg_errors.DuplicateDatabase, pg_errors.UniqueViolation):
                return False
            return True
    finally:
        connection.close()


def upgrade_schema(app: Flask) -> None:
    """Apply pending migrations under a PostgreSQL advisory lock held on its own connection."""
    from flask_migrate import upgrade

    from models import db

    with app.app_context(), db.engine.connect() as lock_connection:
        lock_connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        lock_connection.commit()
        try:
            # "heads": independent areas may branch from a common revision.
            upgrade(directory=MIGRATIONS_DIRECTORY, revision="heads")
        finally:
            lock_connection.execute(
                text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
            lock_connection.commit()


def schema_is_current(app: Flask) -> bool:
    """True when the database is at the newest migration (used by ``/ready``)."""
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from models import db

    config = Config()
    config.set_main_option("script_location", MIGRATIONS_DIRECTORY)
    heads = set(ScriptDirectory.from_config(config).get_heads())
    with db.engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    return current == heads
