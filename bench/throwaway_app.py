"""The app a benchmark measures: built on a database of its own, dropped afterwards.

The benchmarks that drive the API in process (`bench/ioc_store.py`,
`bench/reports_metrics.py`) each need the same thing: a fresh database on the server
named by ``BENCH_DATABASE_URL``, the production code path with rate limits off, quiet
logs, and nothing left behind whatever happens.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from sqlalchemy.engine import make_url


@contextmanager
def throwaway_app(server_url: str) -> Iterator[Flask]:
    from app import create_app
    from models import db
    from tests.conftest import drop_database

    database_url = (
        make_url(server_url)
        .set(drivername="postgresql+psycopg2", database=f"soc_bench_{uuid.uuid4().hex[:10]}")
        .render_as_string(hide_password=False)
    )
    app = create_app(
        {
            "DATABASE_URL": database_url,
            "APP_ENV": "testing",
            "SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789",
            "RATELIMIT_ENABLED": False,
            "LOG_LEVEL": "WARNING",
        }
    )
    try:
        yield app
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        drop_database(database_url)
