"""Retention: ``flask prune`` deletes (or, for raw alert events, clears) what is older than
its configured limit, keeps what is newer, keeps everything set to ``forever``, and records
the pruning in the audit log."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from config import ConfigError, load_settings
from models import Alert, AuditEntry, CredentialUsage, Incident, db, utcnow
from tests.helpers import add_credential_usage, create_user_row


def days_ago(days: int):
    return utcnow() - timedelta(days=days)


def add_audit_entry(app, age_days: int) -> None:
    with app.app_context():
        db.session.add(
            AuditEntry(
                action=f"test.{age_days}d", outcome="success", occurred_at=days_ago(age_days)
            )
        )
        db.session.commit()


def add_alert(app, name: str, last_seen_days: int, incident_id: int | None = None) -> None:
    with app.app_context():
        db.session.add(
            Alert(
                rule_name=name,
                severity="low",
                group_key=name,
                sample_event={"user": "alice", "host": name},
                first_seen=days_ago(last_seen_days),
                last_seen=days_ago(last_seen_days),
                incident_id=incident_id,
            )
        )
        db.session.commit()


def add_incident(app, status: str, resolved_days: int | None) -> int:
    reporter_id = create_user_row(app, f"reporter-{status}-{resolved_days}", "analyst")
    with app.app_context():
        incident = Incident(
            title=f"{status} {resolved_days}",
            severity="low",
            status=status,
            reporter_id=reporter_id,
            resolved_at=None if resolved_days is None else days_ago(resolved_days),
        )
        db.session.add(incident)
        db.session.commit()
        return incident.id


def prune(app) -> str:
    result = app.test_cli_runner().invoke(args=["prune"])
    assert result.exit_code == 0, result.output
    return result.output


def audit_actions(app) -> set[str]:
    with app.app_context():
        return set(db.session.scalars(select(AuditEntry.action)))


def alerts_with_events(app) -> set[str]:
    with app.app_context():
        alerts = db.session.scalars(select(Alert)).all()
        return {alert.rule_name for alert in alerts if alert.sample_event is not None}


def test_audit_entries_older_than_the_limit_are_deleted_and_newer_ones_stay(app):
    add_audit_entry(app, 366)
    add_audit_entry(app, 364)
    output = prune(app)
    assert "pruned 1 audit log" in output
    assert audit_actions(app) == {"test.364d", "retention.prune"}


def test_credential_usage_older_than_the_limit_is_deleted(app):
    add_credential_usage(app, 91)
    add_credential_usage(app, 89)
    prune(app)
    with app.app_context():
        assert set(db.session.scalars(select(CredentialUsage.operation))) == {"89 days ago"}


def test_raw_events_of_old_alerts_outside_incidents_are_cleared_and_the_alerts_stay(app):
    add_alert(app, "old", 91)
    add_alert(app, "recent", 89)
    prune(app)
    assert alerts_with_events(app) == {"recent"}
    with app.app_context():
        assert len(db.session.scalars(select(Alert)).all()) == 2


def test_raw_events_of_incidents_closed_long_ago_are_cleared_open_ones_keep_theirs(app):
    add_alert(app, "closed-long-ago", 400, add_incident(app, "closed", 366))
    add_alert(app, "closed-recently", 400, add_incident(app, "false_positive", 364))
    add_alert(app, "open", 400, add_incident(app, "investigating", None))
    prune(app)
    assert alerts_with_events(app) == {"closed-recently", "open"}


def test_the_pruning_is_in_the_audit_log_with_counts_and_cutoffs(app):
    add_audit_entry(app, 500)
    add_credential_usage(app, 100)
    add_alert(app, "old", 100)
    prune(app)
    with app.app_context():
        entry = db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "retention.prune")
        ).one()
    assert entry.actor == "cli"
    assert entry.details["pruned"] == {
        "audit_log": 1,
        "alert_events": 1,
        "closed_incident_events": 0,
        "credential_usage": 1,
    }
    assert set(entry.details["cutoffs"]) == set(entry.details["pruned"])


def test_forever_keeps_everything(app, monkeypatch):
    for setting in (
        "AUDIT_RETENTION_DAYS",
        "CREDENTIAL_USAGE_RETENTION_DAYS",
        "ALERT_EVENT_RETENTION_DAYS",
        "CLOSED_INCIDENT_EVENT_RETENTION_DAYS",
    ):
        monkeypatch.setitem(app.config, setting, None)
    add_audit_entry(app, 5000)
    add_credential_usage(app, 5000)
    add_alert(app, "ancient", 5000)
    prune(app)
    assert audit_actions(app) == {"test.5000d", "retention.prune"}
    assert alerts_with_events(app) == {"ancient"}
    with app.app_context():
        assert db.session.scalars(select(CredentialUsage)).one().operation == "5000 days ago"


def test_a_shorter_configured_limit_applies(app, monkeypatch):
    monkeypatch.setitem(app.config, "AUDIT_RETENTION_DAYS", 30)
    add_audit_entry(app, 31)
    add_audit_entry(app, 29)
    prune(app)
    assert audit_actions(app) == {"test.29d", "retention.prune"}


def test_retention_settings_default_and_accept_forever(database_url):
    defaults = load_settings({"APP_ENV": "testing", "DATABASE_URL": database_url})
    assert (
        defaults.audit_retention_days,
        defaults.credential_usage_retention_days,
        defaults.alert_event_retention_days,
        defaults.closed_incident_event_retention_days,
    ) == (365, 90, 90, 365)
    forever = load_settings(
        {"APP_ENV": "testing", "DATABASE_URL": database_url, "AUDIT_RETENTION_DAYS": "forever"}
    )
    assert forever.audit_retention_days is None
    with pytest.raises(ConfigError, match="AUDIT_RETENTION_DAYS must be at least 1"):
        load_settings(
            {"APP_ENV": "testing", "DATABASE_URL": database_url, "AUDIT_RETENTION_DAYS": "0"}
        )
