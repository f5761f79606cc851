"""The run command: the server (gunicorn) or the ``flask`` CLI, on a database that answers.

``python launcher.py serve`` is what ``./run.sh`` starts; ``./run.sh flask COMMAND...`` runs
the ``flask`` CLI (admin commands, migrations) with the same environment, attaching to the
embedded server even while a ``serve`` uses it. With no ``DATABASE_URL`` it starts
the embedded PostgreSQL (data in ``<instance>/pgdata``) and points the app at its ``soc``
database; with no ``SECRET_KEY`` it uses a strong key generated once and kept in
``<instance>/secret_key`` (mode 0600), so a newcomer's server runs in production mode, and
likewise with no ``ENCRYPTION_KEY`` a Fernet key kept in ``<instance>/encryption_key``, so
stored feed credentials still decrypt after a restart.
Stopping the launcher (Ctrl-C, SIGTERM, SIGHUP) stops gunicorn, then the embedded server:
no postgres process outlives it. Killed outright (SIGKILL, a crash), it still takes gunicorn
with it: the kernel sends gunicorn SIGTERM when the launcher dies. One ``serve`` at a time
per instance: a second one exits at once with one line (exit status 5), before it starts or
touches anything. ``<instance>`` is ``instance/`` beside this file, or ``SOC_INSTANCE_DIR``.

The app itself is configured only by ``config.py``; this module merely fills in the
variables a fresh machine lacks, then hands over to gunicorn or the ``flask`` CLI.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import click
from cryptography.fernet import Fernet

from embedded_db import (
    PROJECT_ROOT,
    embedded_database_url,
    release_embedded_server,
    start_embedded_server,
)

EMBEDDED_DATABASE_NAME = "soc"
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
SERVE_LOCK_NAME = "serve.lock"
ALREADY_SERVING_EXIT = 5
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def instance_directory() -> Path:
    """Where local state lives: ``SOC_INSTANCE_DIR`` or ``instance/`` in the project."""
    configured = os.environ.get("SOC_INSTANCE_DIR")
    return Path(configured).resolve() if configured else PROJECT_ROOT / "instance"


def load_or_create_key(path: Path, generate: Callable[[], str]) -> str:
    """The key in ``path``; made by ``generate`` and written (mode 0600) on first use.

    Keeping it on disk means what it signs or encrypts stays valid across restarts.
    """
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key + "\n")
    return key


def new_secret_key() -> str:
    """48 random bytes, URL-safe: the signing key (``SECRET_KEY``)."""
    return secrets.token_urlsafe(48)


def new_encryption_key() -> str:
    """A Fernet key: encrypts secrets at rest (``ENCRYPTION_KEY``)."""
    return Fernet.generate_key().decode()


# Variable -> (file in the instance directory, how to make it): filled in when unset.
KEPT_KEYS: dict[str, tuple[str, Callable[[], str]]] = {
    "SECRET_KEY": ("secret_key", new_secret_key),
    "ENCRYPTION_KEY": ("encryption_key", new_encryption_key),
}


def fill_in_kept_keys(env: dict[str, str], instance: Path) -> None:
    """Set each unset variable of :data:`KEPT_KEYS` from its file, created on first use."""
    for variable, (file_name, generate) in KEPT_KEYS.items():
        if not env.get(variable):
            env[variable] = load_or_create_key(instance / file_name, generate)


@contextmanager
def app_environment() -> Iterator[dict[str, str]]:
    """The environment for the app's process, with the embedded server running if needed.

    When the block ends, however it ends, the embedded server is stopped (unless another
    launcher, e.g. a running ``serve``, still uses it).
    """
    env = dict(os.environ)
    instance = instance_directory()
    fill_in_kept_keys(env, instance)
    if env.get("DATABASE_URL"):
        yield env
        return
    pgdata = instance / "pgdata"
    click.echo(
        f"launcher: no DATABASE_URL; starting the embedded PostgreSQL (data in {pgdata})", err=True
    )
    server = start_embedded_server(pgdata)
    try:
        env["DATABASE_URL"] = embedded_database_url(server, EMBEDDED_DATABASE_NAME)
        yield env
    finally:
        stopped = release_embedded_server(server)
        state = "stopped" if stopped else "left running for the other process using it"
        click.echo(f"launcher: embedded PostgreSQL {state}", err=True)


def hold_serve_lock(instance: Path) -> int:
    """Take ``<instance>/serve.lock`` for this ``serve``, or exit with one line if taken.

    Returns the locked descriptor; passed on to gunicorn (whose workers inherit it), the
    lock lasts until the last process of this server has exited, even if the launcher is
    killed first. Checked before anything starts, so a second ``serve`` neither starts nor
    stops the embedded PostgreSQL under a running server.
    """
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / SERVE_LOCK_NAME
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        click.echo(
            f"error: a server for {instance} is already running ({path} is locked); stop it first",
            err=True,
        )
        sys.exit(ALREADY_SERVING_EXIT)
    return descriptor


def _die_with_launcher(launcher_pid: int) -> Callable[[], None]:
    """Runs in the child before it execs: ask the kernel for SIGTERM when the launcher dies.

    Without it a launcher killed by SIGKILL (which it cannot forward) leaves gunicorn serving
    with nobody to stop it. Linux only; elsewhere the child is on its own.
    """

    def request_parent_death_signal() -> None:
        if not sys.platform.startswith("linux"):
            return
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != launcher_pid:  # the launcher died before the request took effect
            os._exit(128 + signal.SIGTERM)

    return request_parent_death_signal


def run_child(
    command: Sequence[str],
    env: dict[str, str],
    *,
    same_signal: bool = False,
    pass_fds: Sequence[int] = (),
) -> int:
    """Run ``command`` to its end and return its exit status (128 + N if signal N ended it).

    A stop signal to us is passed on to the child as SIGTERM (as itself with
    ``same_signal``, so a CLI sees Ctrl-C as SIGINT): without this, SIGTERM would kill the
    launcher at once and leave the child and the embedded PostgreSQL running. The child also
    gets SIGTERM if the launcher dies without passing anything on.
    """
    child = subprocess.Popen(  # noqa: S603
        command,
        env=env,
        cwd=PROJECT_ROOT,
        pass_fds=pass_fds,
        # preexec_fn is unsafe only in a process with threads; the launcher has none.
        preexec_fn=_die_with_launcher(os.getpid()),
    )

    def forward(signum: int, frame: object) -> None:
        child.send_signal(signum if same_signal else signal.SIGTERM)

    previous = {signum: signal.signal(signum, forward) for signum in FORWARDED_SIGNALS}
    try:
        status = child.wait()
        return status if status >= 0 else 128 - status
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _exit_on_stop_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@click.group()
def cli() -> None:
    """Start the SOC incident API, or manage it, on the configured or embedded PostgreSQL."""
    # SIGTERM or SIGHUP while the embedded server starts must still unwind through
    # app_environment() and stop it, as Ctrl-C (KeyboardInterrupt) already does.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on_stop_signal)


# automation (issue 16): the job-queue worker that runs beside gunicorn.
WORKER_COMMAND = (sys.executable, "-m", "flask", "--app", "app:create_app", "worker")
WORKER_STOP_SECONDS = 30


def run_server_and_worker(
    server: Sequence[str], worker: Sequence[str], env: dict[str, str], pass_fds: Sequence[int]
) -> int:
    """Run the server with one job-queue worker beside it; the server's exit status.

    The worker lives as long as the server: it is started after it, and stopped
    (SIGTERM: it finishes its running jobs, then SIGKILL after
    :data:`WORKER_STOP_SECONDS`) when the server has exited, however that happened. It
    also gets SIGTERM if the launcher dies, like the server. A worker that dies on its own
    is not restarted: its jobs wait in the queue for the next start (or another worker).
    """
    worker_process = subprocess.Popen(  # noqa: S603
        worker, env=env, cwd=PROJECT_ROOT, preexec_fn=_die_with_launcher(os.getpid())
    )
    try:
        return run_child(server, env, pass_fds=pass_fds)
    finally:
        worker_process.terminate()
        try:
            worker_process.wait(timeout=WORKER_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            worker_process.kill()
            worker_process.wait()


@cli.command()
def serve() -> None:
    """Serve the API with gunicorn (gunicorn.conf.py: 127.0.0.1:8000, 2 workers x 4 threads)
    and one job-queue worker (``flask worker``: webhooks, SLA timers, feed polls)."""
    command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"]
    lock = hold_serve_lock(instance_directory())
    with app_environment() as env:
        code = run_server_and_worker(command, WORKER_COMMAND, env, pass_fds=(lock,))
    sys.exit(code)


FLASK_COMMAND = (sys.executable, "-m", "flask", "--app", "app:create_app")
# Click settings for commands that pass every argument on as it is, --help included.
PASSTHROUGH_SETTINGS = {"ignore_unknown_options": True, "help_option_names": []}


def run_flask(arguments: Sequence[str]) -> int:
    """Run ``flask ARGUMENTS`` with serve's environment; its exit status.

    Help (``--help``, or no arguments) needs no database, so none is started for it.
    """
    if not arguments or "--help" in arguments:
        command = [*FLASK_COMMAND, *(arguments or ["--help"])]
        return run_child(command, dict(os.environ), same_signal=True)
    with app_environment() as env:
        return run_child([*FLASK_COMMAND, *arguments], env, same_signal=True)


@cli.command("flask", context_settings=PASSTHROUGH_SETTINGS)
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
def flask_command(arguments: tuple[str, ...]) -> None:
    """Run ``flask ARGUMENTS`` (e.g. ``taxii-poll``, ``db current``) on serve's database."""
    sys.exit(run_flask(arguments))


@cli.command("create-admin", context_settings=PASSTHROUGH_SETTINGS)
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
def create_admin(arguments: tuple[str, ...]) -> None:
    """Run ``flask create-admin ARGUMENTS`` against the same database as ``serve``."""
    sys.exit(run_flask(["create-admin", *arguments]))


if __name__ == "__main__":
    cli()
