"""Shared fixtures: a throwaway PostgreSQL database for the session, a clean one per test.

The database lives on the server named by ``TEST_DATABASE_URL`` (e.g. the machine's
``postgresql://postgres@127.0.0.1:5432/``); without it, on the embedded PostgreSQL. The app
itself creates and migrates it, exactly as in production.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import sql
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.helpers import ApiClient, make_user

# The SLA policy's first version is written by its migration, like alembic_version's row:
# kept across tests, while the versions a test writes are deleted after it.
TABLES_KEPT = {"alembic_version", "sla_policies"}
FIRST_SLA_POLICY_VERSION = 1
# Session-wide checks: security headers on every response, no credential in any log line.
pytest_plugins = ["tests.suite_guards"]


@pytest.fixture(scope="session")
def database_server_url() -> Iterator[str]:
    """Base URL of the server tests use (no database part)."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        url = make_url(configured).set(drivername="postgresql+psycopg2", database="postgres")
        yield url.render_as_string(hide_password=False)
        return
    from embedded_db import (
        PROJECT_ROOT,
        embedded_database_url,
        release_embedded_server,
        start_embedded_server,
    )

    server = start_embedded_server(PROJECT_ROOT / "instance" / "pgdata-test")
    try:
        yield embedded_database_url(server, "postgres")
    finally:
        release_embedded_server(server)


def database_url_for(server_url: str, database: str) -> str:
    return make_url(server_url).set(database=database).render_as_string(hide_password=False)


def drop_database(database_url: str) -> None:
    url = make_url(database_url)
    connection = psycopg2.connect(
        dbname="postgres",
        user=url.username,
        password=url.password,
        host=url.host or url.query.get("host"),
        port=url.port,
    )
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(url.database))
        )
    connection.close()


@pytest.fixture(scope="session")
def database_url(database_server_url: str) -> Iterator[str]:
    url = database_url_for(database_server_url, f"soc_test_{uuid.uuid4().hex[:12]}")
    yield url
    drop_database(url)


@pytest.fixture
def fresh_database_url(database_server_url: str) -> Iterator[str]:
    """The URL of a database that does not exist yet; dropped after the test."""
    url = database_url_for(database_server_url, f"soc_start_{uuid.uuid4().hex[:12]}")
    yield url
    drop_database(url)


def app_settings(database_url: str, **extra) -> dict:
    return {
        "APP_ENV": "testing",
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        **extra,
    }


@pytest.fixture(scope="session")
def app(database_url: str, tmp_path_factory: pytest.TempPathFactory):
    from app import create_app

    # Evidence files go to a directory of the session's own, never the checkout's instance/.
    evidence_dir = str(tmp_path_factory.mktemp("evidence"))
    application = create_app(app_settings(database_url, EVIDENCE_DIR=evidence_dir))
    yield application
    with application.app_context():
        from models import db

        db.engine.dispose()


@pytest.fixture(autouse=True)
def clean_database(request):
    """Empty every table after each test that used the app, so tests run in any order."""
    yield
    if "app" not in request.fixturenames:
        return
    application = request.getfixturevalue("app")
    with application.app_context():
        from models import db

        db.session.remove()
        tables = [t.name for t in db.metadata.sorted_tables if t.name not in TABLES_KEPT]
        db.session.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        db.session.execute(
            text("DELETE FROM sla_policies WHERE version > :first"),
            {"first": FIRST_SLA_POLICY_VERSION},
        )
        db.session.commit()


@pytest.fixture(autouse=True)
def reset_rate_limits(request):
    """Forget rate-limit counters after each test that used the app: every test logs in
    from the same address, so counts would otherwise carry over from test to test."""
    yield
    if "app" not in request.fixturenames:
        return
    from security.modules.ratelimit import limiter

    limiter.storage.reset()


@pytest.fixture
def client(app) -> ApiClient:
    return ApiClient(app.test_client())


@pytest.fixture
def admin(app, client):
    return make_user(app, client, "admin1", "admin")


@pytest.fixture
def analyst(app, client):
    return make_user(app, client, "analyst1", "analyst")


@pytest.fixture
def viewer(app, client):
    return make_user(app, client, "viewer1", "viewer")


@pytest.fixture
def project_root() -> Path:
    return Path(__file__).resolve().parent.parent
