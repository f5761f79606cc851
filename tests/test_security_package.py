"""The ``security`` package's public API, called as a library inside an app context.

The same functions are reached over HTTP in test_intel_api.py and test_api_keys.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import g, jsonify
from sqlalchemy import select

import security
from models import ApiKey, CredentialUsage, User, db
from security.modules import credentials, extraction, middleware
from security.modules.credentials import SuspicionPolicy
from tests.conftest import app_settings
from tests.helpers import create_user_row

DESIGN_FUNCTIONS = (
    "initialize",
    "verify_api_key",
    "verify_db_password",
    "log_credential_usage",
    "rotate_credential",
    "get_recent_usage",
    "analyze_for_suspicious_activity",
    "add_ioc",
    "check_ioc",
    "search_intelligence",
    "extract_iocs",
    "check_threat_intelligence",
    "create_security_middleware",
    "require_api_key",
)
ENV_KEY = "env-api-key-0123456789abcdef"


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app
        db.session.rollback()


@pytest.fixture
def env_key(app, monkeypatch):
    monkeypatch.setitem(app.config, "API_KEY", ENV_KEY)
    return ENV_KEY


def issue_key(app, scopes=("iocs:read",), role: str = "analyst") -> tuple[int, str]:
    user = db.session.get(User, create_user_row(app, f"owner-{role}", role))
    issued = credentials.create_api_key(user, "lib", scopes)
    db.session.commit()
    return issued.key.id, issued.secret


def usage_row(name: str, at: datetime, ip: str = "192.0.2.1", **fields) -> CredentialUsage:
    values = {"component": "test", "operation": "op", "outcome": "success", **fields}
    return CredentialUsage(
        credential_kind="other", credential_name=name, ip=ip, occurred_at=at, **values
    )


def test_every_design_function_is_public():
    assert set(DESIGN_FUNCTIONS) <= set(security.__all__)
    assert all(callable(getattr(security, name)) for name in DESIGN_FUNCTIONS)


def test_initialize_returns_the_app_it_is_given(app):
    assert security.initialize(app) is app


@pytest.mark.url_form
def test_initialize_without_an_app_builds_one_from_the_environment(database_url, monkeypatch):
    for name, value in app_settings(database_url).items():
        monkeypatch.setenv(name, value)
    built = security.initialize()
    with built.app_context():
        assert db.session.scalar(select(ApiKey.id).limit(1)) is None
        db.engine.dispose()


def test_verify_api_key_accepts_the_environment_key_and_logs_each_attempt(ctx, env_key):
    assert security.verify_api_key(env_key) is True
    assert security.verify_api_key(env_key + "x") is False
    outcomes = [entry.outcome for entry in security.get_recent_usage("API_KEY")]
    assert outcomes == ["failure", "success"]


@pytest.mark.parametrize("configured", [None, ""])
def test_unset_environment_credentials_always_fail(ctx, monkeypatch, configured):
    for name in credentials.ENV_CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.setitem(ctx.config, name, configured)
    assert security.verify_api_key("") is False
    assert security.verify_api_key(None) is False
    assert security.verify_db_password("") is False
    assert security.get_recent_usage("DB_PASSWORD")[0].reason == "unset"


def test_verify_db_password_checks_the_configured_password(ctx, monkeypatch):
    monkeypatch.setitem(ctx.config, "DB_PASSWORD", "s3cret-db-pass")
    assert security.verify_db_password("s3cret-db-pass") is True
    assert security.verify_db_password("S3cret-db-pass") is False


def test_verify_api_key_accepts_a_stored_key_until_it_is_revoked(ctx):
    key_id, secret = issue_key(ctx)
    assert security.verify_api_key(secret) is True
    credentials.revoke_api_key(db.session.get(ApiKey, key_id))
    db.session.commit()
    assert security.verify_api_key(secret) is False


def test_logged_usage_comes_back_newest_first(ctx):
    security.log_credential_usage("MAIL_API_KEY", "mailer", "send", ip="192.0.2.10")
    security.log_credential_usage("MAIL_API_KEY", "mailer", "send", outcome="failure")
    entries = security.get_recent_usage("MAIL_API_KEY")
    assert [(e.outcome, e.component, e.credential_kind) for e in entries] == [
        ("failure", "mailer", "env"),
        ("success", "mailer", "env"),
    ]
    assert entries[1].ip == "192.0.2.10"


def test_usage_of_a_raw_api_key_is_logged_under_its_prefix_only(ctx):
    key_id, secret = issue_key(ctx)
    entry = security.log_credential_usage(secret, "worker", "poll")
    assert (entry.credential_name, entry.api_key_id) == (secret[:12], key_id)


def test_rotate_credential_keeps_the_old_secret_for_the_grace_period(ctx):
    key_id, old = issue_key(ctx)
    new = security.rotate_credential(key_id, grace=timedelta(hours=1)).secret
    assert security.verify_api_key(new) is True
    assert security.verify_api_key(old) is True
    security.rotate_credential(key_id, grace=timedelta(0))
    assert security.verify_api_key(new) is False


def test_rotate_credential_refuses_environment_credentials(ctx):
    with pytest.raises(security.CredentialError, match="environment"):
        security.rotate_credential("API_KEY")


def test_analysis_finds_many_addresses_bursts_and_off_hours_use(ctx):
    sunday_night = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
    db.session.add_all(
        usage_row("crawler", sunday_night + timedelta(seconds=i), ip=f"198.51.100.{i}")
        for i in range(8)
    )
    db.session.commit()
    policy = SuspicionPolicy(max_distinct_ips=5, burst_per_minute=6)
    findings = security.analyze_for_suspicious_activity(
        "crawler", policy=policy, now=sunday_night + timedelta(hours=1)
    )
    by_kind = {finding["kind"]: finding for finding in findings}
    assert set(by_kind) == {"many_ips", "burst", "off_hours"}
    assert by_kind["many_ips"]["evidence"]["distinct_ips"] == 8
    assert by_kind["burst"]["evidence"]["max_per_minute"] == 8
    assert "business hours" in by_kind["off_hours"]["reason"]


def test_analysis_reports_nothing_for_quiet_use_in_business_hours(ctx):
    tuesday_noon = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    db.session.add_all(usage_row("quiet", tuesday_noon + timedelta(minutes=i)) for i in range(3))
    db.session.commit()
    findings = security.analyze_for_suspicious_activity(
        "quiet", now=tuesday_noon + timedelta(hours=1)
    )
    assert findings == []


def test_analysis_flags_repeated_wrong_secrets(ctx):
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    db.session.add_all(
        usage_row("guessed", now, outcome="failure", reason="wrong_secret") for _ in range(10)
    )
    db.session.commit()
    findings = security.analyze_for_suspicious_activity("guessed", now=now)
    assert [finding["kind"] for finding in findings] == ["repeated_failures"]


def test_ioc_functions_commit_their_work(ctx):
    security.add_ioc("cidr", "10.0.0.0/8", source="feed", confidence=80)
    db.session.rollback()
    assert security.check_ioc("ipv4", "10.1.2.3")["known_bad"] is True
    verdict = security.check_threat_intelligence("10[.]1[.]2[.]3")
    assert (verdict["known_bad"], verdict["max_confidence"]) == (True, 80)
    db.session.rollback()
    assert [i.value for i in security.search_intelligence(query="10.0.0.0")] == ["10.0.0.0/8"]
    assert security.search_intelligence(query="10.0.0.0")[0].sighting_count == 2


def test_failed_add_ioc_writes_nothing(ctx):
    with pytest.raises(security.InvalidIoc):
        security.add_ioc("domain", "no-tld", source="feed", confidence=50)
    assert security.search_intelligence() == []


def test_extract_iocs_finds_defanged_indicators():
    found = security.extract_iocs("beacon hxxps://evil[.]example[.]com/a?b=1 from 10.0.0[.]1")
    assert found == {
        "ipv4": ["10.0.0.1"],
        "domain": ["evil.example.com"],
        "url": ["https://evil.example.com/a?b=1"],
    }
    assert security.extract_iocs is extraction.extract_iocs


def test_create_security_middleware_is_the_middleware_installer():
    assert security.create_security_middleware is middleware.create_security_middleware


@pytest.fixture(scope="module")
def guarded_app(database_url):
    from app import create_app

    application = create_app(app_settings(database_url))

    @application.get("/guarded")
    @security.require_api_key
    def guarded():
        principal = g.get("principal")
        return jsonify(owner=principal.user.username if principal else None)

    @application.get("/guarded-write")
    @security.require_api_key(scope="iocs:write")
    def guarded_write():
        return jsonify(ok=True)

    yield application
    with application.app_context():
        db.engine.dispose()


def test_require_api_key_answers_401_problem_without_a_key(app, guarded_app):
    response = guarded_app.test_client().get("/guarded")
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"


def test_require_api_key_refuses_a_wrong_key(app, guarded_app, monkeypatch):
    monkeypatch.setitem(guarded_app.config, "API_KEY", ENV_KEY)
    response = guarded_app.test_client().get("/guarded", headers={"X-API-Key": "wrong"})
    assert response.status_code == 401


def test_require_api_key_accepts_the_environment_key(app, guarded_app, monkeypatch):
    monkeypatch.setitem(guarded_app.config, "API_KEY", ENV_KEY)
    response = guarded_app.test_client().get("/guarded", headers={"X-API-Key": ENV_KEY})
    assert response.status_code == 200
    assert response.get_json() == {"owner": None}


def test_require_api_key_accepts_a_stored_key_as_bearer(app, guarded_app):
    with app.app_context():
        _, secret = issue_key(app)
    response = guarded_app.test_client().get(
        "/guarded", headers={"Authorization": f"Bearer {secret}"}
    )
    assert response.get_json() == {"owner": "owner-analyst"}


def test_require_api_key_with_a_scope_refuses_a_key_without_it(app, guarded_app):
    with app.app_context():
        _, secret = issue_key(app, scopes=("iocs:read",))
    response = guarded_app.test_client().get("/guarded-write", headers={"X-API-Key": secret})
    assert response.status_code == 403


def test_env_credentials_are_read_through_the_validated_settings(database_url):
    from app import create_app

    built = create_app({**app_settings(database_url), "DB_PASSWORD": "from-settings-0001"})
    with built.app_context():
        assert built.config["DB_PASSWORD"] == "from-settings-0001"
        assert built.config["API_KEY"] is None
        assert security.verify_db_password("from-settings-0001") is True
        db.session.rollback()
        db.engine.dispose()


def test_environment_changed_after_startup_is_not_consulted(ctx, monkeypatch):
    monkeypatch.setitem(ctx.config, "SECRET_TOKEN", None)
    monkeypatch.setenv("SECRET_TOKEN", "set-too-late-0123456789")
    assert credentials.verify_env_credential("SECRET_TOKEN", "set-too-late-0123456789") is False


def test_settings_never_show_a_credential():
    from config import load_settings

    settings = load_settings(
        {"APP_ENV": "testing", "DATABASE_URL": "postgresql://db/soc", "API_KEY": "hunter2-key"}
    )
    assert settings.env_credentials == {"API_KEY": "hunter2-key"}
    assert "hunter2-key" not in repr(settings)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("API_KEY_ROTATION_GRACE_SECONDS", "604801", "at most 604800"),
        ("API_KEY_ROTATION_GRACE_SECONDS", "-1", "at least 0"),
        ("CREDENTIAL_USAGE_RETENTION_DAYS", "0", "at least 1"),
        ("MAIL_API_KEY", " padded-secret ", "whitespace"),
    ],
)
def test_invalid_credential_settings_stop_startup_naming_the_variable(name, value, message):
    from config import ConfigError, load_settings

    env = {"APP_ENV": "testing", "DATABASE_URL": "postgresql://db/soc", name: value}
    with pytest.raises(ConfigError, match=message) as raised:
        load_settings(env)
    assert name in str(raised.value)
    assert "padded-secret" not in str(raised.value)


def test_rotation_grace_comes_from_the_settings(database_url):
    from app import create_app

    built = create_app({**app_settings(database_url), "API_KEY_ROTATION_GRACE_SECONDS": 60})
    with built.app_context():
        assert credentials.rotation_grace() == timedelta(seconds=60)
        db.engine.dispose()
