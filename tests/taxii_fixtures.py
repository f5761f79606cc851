"""Fixtures of the TAXII and STIX tests (loaded with ``pytest_plugins``): the app behind a
real HTTP server, the configuration TAXII needs, a collection, and a second app on its own
empty database to poll the first (a consumer never polls its own server: every poll
re-reports, and so re-dates, the IOCs it would then read again).

The app runs under Werkzeug's real HTTP server on 127.0.0.1 in a background thread, so
the OASIS ``taxii2-client`` talks to it over TCP exactly as to any TAXII server.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from werkzeug.serving import make_server

from tests.conftest import TABLES_KEPT, app_settings, database_url_for, drop_database
from tests.helpers import ApiClient, make_user
from tests.taxii_helpers import ENCRYPTION_KEY, create_collection


@pytest.fixture
def taxii_settings(app, monkeypatch):
    """What the TAXII tests need of the configuration: a key, and 127.0.0.1 allowlisted."""
    monkeypatch.setitem(app.config, "ENCRYPTION_KEYS", (ENCRYPTION_KEY,))
    monkeypatch.setitem(app.config, "OUTBOUND_ALLOWED_HOSTS", ("127.0.0.1",))
    return app.config


@pytest.fixture(scope="session")
def live_server(app) -> Iterator[str]:
    """The app served over HTTP on a free local port; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture
def collection(admin) -> dict:
    return create_collection(admin)


@pytest.fixture(scope="module")
def consumer_app(database_server_url):
    """A second app on a second, empty database, allowed to reach 127.0.0.1."""
    from app import create_app
    from models import db

    url = database_url_for(database_server_url, f"soc_test_consumer_{uuid.uuid4().hex[:10]}")
    consumer = create_app(
        app_settings(url, TAXII_ALLOWED_HOSTS="127.0.0.1", ENCRYPTION_KEY=ENCRYPTION_KEY)
    )
    yield consumer
    with consumer.app_context():
        db.engine.dispose()
    drop_database(url)


@pytest.fixture
def consumer_admin(consumer_app):
    """An admin of the consumer app; the consumer's tables are emptied afterwards."""
    from models import db

    yield make_user(consumer_app, ApiClient(consumer_app.test_client()), "consumer1", "admin")
    with consumer_app.app_context():
        tables = [t.name for t in db.metadata.sorted_tables if t.name not in TABLES_KEPT]
        db.session.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        db.session.commit()
