"""The application factory and the CLI commands (``flask create-admin``).

``create_app()`` validates the configuration, makes sure the database exists and is
migrated (under an advisory lock), then registers, in one place, everything the app uses:
the error handlers, the security middleware, the credential kinds it accepts (login
tokens, API keys), the resources and the CLI commands.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Mapping
from typing import Any

import click
from flask import Flask, Request, Response, g, request
from flask import typing as ft
from flask.cli import with_appcontext
from flask.json.provider import DefaultJSONProvider
from flask.sessions import SessionInterface, SessionMixin
from flask_migrate import Migrate
from sqlalchemy.exc import DBAPIError

from auth import register_credential_resolver, register_login_tokens
from config import ConfigError, load_settings
from database import (
    MIGRATIONS_DIRECTORY,
    DatabaseUnavailable,
    close_sessions_despite_lost_connections,
    ensure_database_exists,
    lost_connection,
    serve_reads,
)
from errors import ProblemApi, register_error_handlers
from models import db
from resources import register_resources
from security import events
from security.modules import metrics, notifications, webhooks
from security.modules.attack import attack_load_command  # case work, part A
from security.modules.credentials import API_KEY_PREFIX, resolve_api_key
from security.modules.jobs import worker_command
from security.modules.sso import principal_for_jwt as sso_principal_for_jwt
from security.modules.taxii.cli import reencrypt_secrets_command, taxii_poll_command
from security.modules.utils import json_default, load_json

logger = logging.getLogger("soc.app")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
EXIT_USER_EXISTS = 1
EXIT_NO_SUCH_USER = 1
EXIT_PASSWORD_REJECTED = 3
EXIT_DATABASE_UNAVAILABLE = 4
EXIT_SSO_ACCOUNT = 5  # identity: flask reset-password of a single-sign-on account
EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130, as a shell reports a command ended by Ctrl-C


class ApiFlask(Flask):
    """Flask that retries a read once when its database connection was found dead.

    Pooled connections are not pinged before use (that would be a round trip on every
    request), so after a database restart the first statement on each old connection
    fails; SQLAlchemy then drops the pool's old connections. A read is safe to run again on
    a new one; a write is not retried here: it is answered 503, unacknowledged
    (``errors.handle_exception``).
    """

    def dispatch_request(self) -> ft.ResponseReturnValue:
        try:
            return super().dispatch_request()
        except DBAPIError as error:
            if request.method not in SAFE_METHODS or not lost_connection(error):
                raise
        logger.warning(
            "database connection lost; retrying %s %s once", request.method, request.path
        )
        db.session.rollback()
        g.pop("principal", None)
        return super().dispatch_request()


class NoCookieSessions(SessionInterface):
    """The API keeps nothing in cookies: callers name themselves on every request (bearer
    tokens, API keys), so no cookie is read, signed or sent, and none can be forged or
    ridden cross-site. Flask's default signed-cookie session was opened on every request
    for nothing."""

    def open_session(self, app: Flask, request: Request) -> None:
        return None

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        return None


class ApiJSONProvider(DefaultJSONProvider):
    """Flask's own JSON output (outside Flask-RESTful) with the API's ISO 8601 ``Z`` times."""

    default = staticmethod(json_default)


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the app; ``overrides`` replace settings (tests pass ``DATABASE_URL`` etc.).

    Called without overrides (gunicorn, the ``flask`` CLI), a configuration or database
    problem ends the process with one clear line instead of a traceback; with overrides
    (tests, embedding) it raises, so the caller can handle it.
    """
    if overrides is None and _flask_cli_shows_help():
        return _help_app()
    try:
        return _build_app(overrides)
    except (ConfigError, DatabaseUnavailable) as error:
        if overrides is not None:
            raise
        print(f"error: {error}", file=sys.stderr)
        code = EXIT_DATABASE_UNAVAILABLE if isinstance(error, DatabaseUnavailable) else 2
        raise SystemExit(code) from None


def _flask_cli_shows_help() -> bool:
    """Whether this process is the ``flask`` CLI printing help (``--help``). Help needs the
    app's commands, not its settings or database, so it works on a machine with neither."""
    return bool(os.environ.get("FLASK_RUN_FROM_CLI")) and "--help" in sys.argv[1:]


def _help_app() -> Flask:
    """An app carrying only the CLI commands, for their help."""
    app = Flask(__name__)
    Migrate(app, db, directory=MIGRATIONS_DIRECTORY)
    register_commands(app)
    return app


def _build_app(overrides: Mapping[str, Any] | None) -> Flask:
    settings = load_settings(overrides=overrides)
    app = ApiFlask(__name__)
    app.json = ApiJSONProvider(app)
    app.session_interface = NoCookieSessions()
    app.config.update(settings.to_flask())
    # JSON columns (custom fields, SLA targets, timeline changes) read by orjson.
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
        **app.config["SQLALCHEMY_ENGINE_OPTIONS"],
        "json_deserializer": load_json,
    }
    db.init_app(app)
    close_sessions_despite_lost_connections(app)
    serve_reads(app)
    events.install_session_hooks()
    events.committed.connect(metrics.count_state_changes, sender=app)
    # automation (issue 16): the webhook outbox writes its deliveries with the change.
    events.recorded.connect(webhooks.record_deliveries, sender=app)
    events.recorded.connect(notifications.record_notifications, sender=app)
    Migrate(app, db, directory=MIGRATIONS_DIRECTORY)
    if settings.auto_migrate:
        from database import upgrade_schema

        ensure_database_exists(settings.database_url)
        upgrade_schema(app)
    # Everything the app answers with is registered here, and nowhere by importing a module.
    register_error_handlers(app)
    from security.modules.middleware import create_security_middleware

    create_security_middleware(app)
    register_login_tokens(app)
    register_credential_resolver(app, API_KEY_PREFIX, resolve_api_key)
    # identity: bearer JWTs an OIDC provider issued (every JWT's base64 header starts so)
    register_credential_resolver(app, "eyJ", sso_principal_for_jwt)
    api = ProblemApi(app, catch_all_404s=True)
    register_resources(api)
    register_commands(app)
    return app


def register_commands(app: Flask) -> None:
    app.cli.add_command(create_admin_command)
    app.cli.add_command(taxii_poll_command)
    app.cli.add_command(reencrypt_secrets_command)
    app.cli.add_command(prune_usage_command)
    app.cli.add_command(prune_command)
    app.cli.add_command(set_password_command)
    app.cli.add_command(reset_password_command)  # identity
    app.cli.add_command(worker_command)  # automation (issue 16)
    app.cli.add_command(attack_load_command)  # case work, part A


password_stdin_option = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input (for scripts).",
)


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def _exit_interrupted(signum: int, frame: object) -> None:
    """Ctrl-C: a new line after the prompt, then exit 130 (click would exit 1, which is
    create-admin's "user exists", and a traceback would follow a KeyboardInterrupt)."""
    # A second Ctrl-C (or the launcher passing this one on) must not interrupt the exit.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    click.echo(err=True)
    raise SystemExit(EXIT_INTERRUPTED)


@click.command("create-admin")
@with_appcontext
@click.argument("username")
@password_stdin_option
def create_admin_command(username: str, password_stdin: bool) -> None:
    """Create an admin account. Exit codes: 0 created, 1 user exists (checked before the
    password is asked for), 2 usage error, 3 password rejected by the policy, 4 database
    unreachable, 130 interrupted (Ctrl-C)."""
    previous_handler = signal.signal(signal.SIGINT, _exit_interrupted)
    try:
        _create_admin(username, password_stdin)
    finally:
        if signal.getsignal(signal.SIGINT) is _exit_interrupted:
            signal.signal(signal.SIGINT, previous_handler)


def _create_admin(username: str, password_stdin: bool) -> None:
    from schemas.auth import RegisterSchema
    from security.errors import Conflict
    from security.events import CLI, EventType, emit
    from security.modules.users import (
        create_user,
        password_policy_violations,
        username_taken_message,
    )

    problems = RegisterSchema().validate({"username": username, "password": "x", "role": "admin"})
    if problems:
        raise click.UsageError(f"invalid username: {'; '.join(problems['username'])}")
    taken = username_taken_message(username)
    if taken is not None:
        click.echo(f"error: {taken}", err=True)
        sys.exit(EXIT_USER_EXISTS)
    password = _read_password(password_stdin)
    violations = password_policy_violations(password, username)
    if violations:
        click.echo(f"error: password rejected: {'; '.join(violations)}", err=True)
        sys.exit(EXIT_PASSWORD_REJECTED)
    try:
        user = create_user(username, password, "admin")
    except Conflict as error:
        db.session.rollback()
        click.echo(f"error: {error.detail}", err=True)
        sys.exit(EXIT_USER_EXISTS)
    emit(
        EventType.USER_CREATED,
        user.id,
        {"username": user.username, "role": "admin", "via": "create-admin"},
        actor=CLI,
    )
    db.session.commit()
    click.echo(f"created admin {user.username!r} (id {user.id})")


@click.command("prune-usage")
@with_appcontext
def prune_usage_command() -> None:
    """Delete credential usage entries older than CREDENTIAL_USAGE_RETENTION_DAYS (default
    90). Issuing or rotating an API key prunes too; run this from cron where that is rare."""
    from security.modules.credentials import prune_credential_usage

    pruned = prune_credential_usage()
    db.session.commit()
    click.echo(f"pruned {pruned} credential usage entries")


@click.command("prune")
@with_appcontext
def prune_command() -> None:
    """Delete what is past its retention: audit log entries (AUDIT_RETENTION_DAYS), credential
    usage (CREDENTIAL_USAGE_RETENTION_DAYS), raw alert events (ALERT_EVENT_RETENTION_DAYS)
    and those of closed incidents (CLOSED_INCIDENT_EVENT_RETENTION_DAYS). The pruning is
    itself audited (retention.prune). Run it daily from cron or a systemd timer."""
    from security.events import Actor
    from security.modules.retention import prune

    pruned = prune(actor=Actor(None, "cli"))
    db.session.commit()
    summary = (f"pruned {count} {name.replace('_', ' ')}" for name, count in pruned.items())
    click.echo(", ".join(summary))


@click.command("set-password")
@with_appcontext
@click.argument("username")
@password_stdin_option
def set_password_command(username: str, password_stdin: bool) -> None:
    """Give a user a new password, under the whole policy (one of the last
    PASSWORD_HISTORY_SIZE is refused). Exit codes: 0 set, 1 no such user, 3 password
    rejected, 5 an SSO account while SSO_LOCAL_PASSWORDS is disabled."""
    from sqlalchemy import func, select

    from models import User
    from security.events import Actor
    from security.modules.users import PasswordRefused, local_password_allowed, set_password

    user = db.session.scalar(select(User).where(func.lower(User.username) == username.lower()))
    if user is None:
        click.echo(f"error: no user is named {username!r}", err=True)
        sys.exit(EXIT_NO_SUCH_USER)
    if not local_password_allowed(user):  # identity: SSO_LOCAL_PASSWORDS
        click.echo(f"error: {user.username!r} signs in through single sign-on", err=True)
        sys.exit(EXIT_SSO_ACCOUNT)
    try:
        set_password(user, _read_password(password_stdin), actor=Actor(None, "cli"))
    except PasswordRefused as error:
        click.echo(f"error: password rejected: {'; '.join(error.problems)}", err=True)
        sys.exit(EXIT_PASSWORD_REJECTED)
    db.session.commit()
    click.echo(f"set a new password for {user.username!r}")


@click.command("reset-password")
@with_appcontext
@click.argument("username")
@click.option("--force-change", is_flag=True, help="No token: the next login must change it.")
def reset_password_command(username: str, force_change: bool) -> None:
    """Reset a user's password as an admin would (POST /users/<id>/password-reset): their
    sessions end, and the one-time reset token (PASSWORD_RESET_TTL_SECONDS) is printed for
    POST /auth/password/reset. Exit codes: 0 reset, 1 no such user, 5 an SSO account."""
    from sqlalchemy import func, select

    from models import User
    from security.errors import Conflict
    from security.events import Actor
    from security.modules.passwords import reset_password

    user = db.session.scalar(select(User).where(func.lower(User.username) == username.lower()))
    if user is None:
        click.echo(f"error: no user is named {username!r}", err=True)
        sys.exit(EXIT_NO_SUCH_USER)
    try:
        issued = reset_password(
            user, "force_change" if force_change else "token", Actor(None, "cli")
        )
    except Conflict as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_SSO_ACCOUNT)
    db.session.commit()
    if issued.reset_token is None:
        click.echo(f"{user.username!r} must choose a new password at the next login")
    else:
        until = f"{issued.expires_at:%Y-%m-%d %H:%M} UTC"
        click.echo(f"reset token for {user.username!r}, valid until {until}: {issued.reset_token}")
