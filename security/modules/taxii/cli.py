"""``flask taxii-poll``: poll the TAXII feeds that are due (for cron or a systemd timer).
Exit codes: 0 every poll succeeded (or none was due), 1 at least one failed or was busy.

``flask reencrypt-secrets``: encrypt stored feed credentials (and webhook secrets and
notification channel URLs) again under the first ``ENCRYPTION_KEY``, the middle step of a
key rotation. Exit codes: 0 done, 1 a secret no configured key opens (nothing was
changed).
"""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext
from sqlalchemy import func, select

from models import TaxiiFeed, db
from security.events import CLI
from security.modules.taxii.client import FeedBusy, FeedPollError, due_feeds, poll_feed
from security.modules.taxii.feeds import reencrypt_feed_credentials
from security.outbound.secrets import EncryptionUnavailable, UndecryptableSecret


def _feeds_to_poll(names: tuple[str, ...], poll_all: bool) -> list[TaxiiFeed]:
    if names:
        lowered = [name.lower() for name in names]
        feeds = list(
            db.session.scalars(select(TaxiiFeed).where(func.lower(TaxiiFeed.name).in_(lowered)))
        )
        missing = sorted(set(lowered) - {feed.name.lower() for feed in feeds})
        if missing:
            raise click.UsageError(f"no feed named {', '.join(missing)}")
        return feeds
    if poll_all:
        return list(db.session.scalars(select(TaxiiFeed).where(TaxiiFeed.enabled.is_(True))))
    return due_feeds()


@click.command("taxii-poll")
@click.option("--feed", "names", multiple=True, help="Poll this feed now (repeatable).")
@click.option("--all", "poll_all", is_flag=True, help="Poll every enabled feed, due or not.")
@with_appcontext
def taxii_poll_command(names: tuple[str, ...], poll_all: bool) -> None:
    """Fetch new objects from TAXII feeds (those due, unless --feed or --all) into IOCs."""
    failed = False
    for feed in _feeds_to_poll(names, poll_all):
        try:
            result = poll_feed(feed.id)
        except (FeedBusy, FeedPollError) as error:
            click.echo(f"{feed.name}: failed: {error}", err=True)
            failed = True
            continue
        click.echo(
            f"{feed.name}: {result.objects} objects in {result.pages} pages, "
            f"{result.created} IOCs created, {result.merged} merged, "
            f"{len(result.failures)} not mapped, {result.skipped} skipped"
        )
    if failed:
        sys.exit(1)


@click.command("reencrypt-secrets")
@with_appcontext
def reencrypt_secrets_command() -> None:
    """Encrypt the stored feed credentials again under the first ENCRYPTION_KEY (rotation:
    prepend the new key, run this, then drop the old key)."""
    from security.modules.notifications import reencrypt_channel_urls
    from security.modules.webhooks import reencrypt_webhook_secrets

    try:
        count = reencrypt_feed_credentials(CLI)
        # automation (issue 16): webhook secrets and notification channel URLs too
        hooks = reencrypt_webhook_secrets(CLI)
        channels = reencrypt_channel_urls(CLI)
    except (EncryptionUnavailable, UndecryptableSecret) as error:
        db.session.rollback()
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    db.session.commit()
    click.echo(f"re-encrypted the credentials of {count} feeds")
    click.echo(f"re-encrypted {hooks} webhook secrets and {channels} notification channel URLs")
