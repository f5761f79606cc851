"""Settings read from the environment and validated once, at startup.

Every knob the deployer can turn is listed here with its default; nothing else in the
code reads ``os.environ`` for configuration. A misconfiguration stops startup with one
line naming the variable (:class:`ConfigError`), never a traceback deep in a request.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from limits import parse_many

from models.vocabulary import ROLES, SEVERITIES

DEVELOPMENT_ENVIRONMENTS = frozenset({"development", "testing"})
MIN_SECRET_KEY_BYTES = 32
WEAK_SECRET_KEYS = frozenset({"changeme", "secret", "dev", "development", "please-change-me"})
DEFAULT_MAX_CONTENT_LENGTH = 1024 * 1024
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
MIN_METRICS_TOKEN_LENGTH = 32
# Secrets the security package verifies (``security.verify_api_key`` and friends).
ENV_CREDENTIAL_NAMES = ("API_KEY", "DB_PASSWORD", "SECRET_TOKEN", "MAIL_API_KEY", "LOGGING_API_KEY")
DEFAULT_ROTATION_GRACE_SECONDS = 24 * 3600
MAX_ROTATION_GRACE_SECONDS = 7 * 24 * 3600
DEFAULT_CREDENTIAL_USAGE_RETENTION_DAYS = 90
# Retention (README, "Retention"): days each kind of record is kept; KEEP_FOREVER keeps it.
KEEP_FOREVER = "forever"
DEFAULT_AUDIT_RETENTION_DAYS = 365
DEFAULT_ALERT_EVENT_RETENTION_DAYS = 90
DEFAULT_CLOSED_INCIDENT_EVENT_RETENTION_DAYS = 365
DEFAULT_PASSWORD_HISTORY_SIZE = 5
DEFAULT_TAXII_POLL_DEADLINE_SECONDS = 600
DEFAULT_TAXII_PAGE_DEADLINE_SECONDS = 120
# A poll holds its feed's lease for 15 minutes (taxii.client.LEASE): it must end before.
MAX_TAXII_POLL_DEADLINE_SECONDS = 14 * 60
# Evidence files (case work): where they are stored and the largest one accepted.
DEFAULT_EVIDENCE_DIR = str(Path(__file__).resolve().parent / "instance" / "evidence")
DEFAULT_EVIDENCE_MAX_BYTES = 25 * 1024 * 1024


class ConfigError(RuntimeError):
    """A setting is missing or invalid; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    """Validated runtime settings; ``to_flask()`` maps them onto Flask's config keys."""

    environment: str
    secret_key: str
    database_url: str
    ratelimit_storage_uri: str = "memory://"
    token_ttl_seconds: int = 3600
    max_content_length: int = DEFAULT_MAX_CONTENT_LENGTH
    trusted_proxies: int = 0
    auto_migrate: bool = True
    login_max_failures: int = 5
    login_failure_window_seconds: int = 300
    login_block_seconds: int = 900
    encryption_keys: tuple[str, ...] = ()
    outbound_allowed_hosts: tuple[str, ...] = ()
    outbound_only_allowed_hosts: bool = False
    ratelimit_default: str = "300 per minute"
    ratelimit_per_ip: str = "600 per minute"
    ratelimit_login: str = "10 per minute"
    ratelimit_register: str = "30 per minute"
    ratelimit_storage_timeout_ms: int = 250
    ratelimit_key_prefix: str = "soc"
    cors_origins: tuple[str, ...] = ()
    hsts_enabled: bool = False
    metrics_token: str = ""
    log_level: str = "INFO"
    alert_auto_incident_severity: str = "high"
    alert_group_window_seconds: int = 3600
    api_key_rotation_grace_seconds: int = DEFAULT_ROTATION_GRACE_SECONDS
    # None keeps the records forever.
    credential_usage_retention_days: int | None = DEFAULT_CREDENTIAL_USAGE_RETENTION_DAYS
    audit_retention_days: int | None = DEFAULT_AUDIT_RETENTION_DAYS
    alert_event_retention_days: int | None = DEFAULT_ALERT_EVENT_RETENTION_DAYS
    closed_incident_event_retention_days: int | None = DEFAULT_CLOSED_INCIDENT_EVENT_RETENTION_DAYS
    password_history_size: int = DEFAULT_PASSWORD_HISTORY_SIZE
    password_max_age_days: int = 0
    client_certificate_keys: dict[str, str] = field(default_factory=dict)
    client_certificate_header: str = ""
    taxii_poll_deadline_seconds: int = DEFAULT_TAXII_POLL_DEADLINE_SECONDS
    taxii_page_deadline_seconds: int = DEFAULT_TAXII_PAGE_DEADLINE_SECONDS
    # automation (issue 16): the job queue's and the webhooks' knobs, as Flask config keys.
    automation: dict[str, Any] = field(default_factory=dict)
    evidence_dir: str = DEFAULT_EVIDENCE_DIR
    evidence_max_bytes: int = DEFAULT_EVIDENCE_MAX_BYTES
    # Name -> secret of the set ones; kept out of repr() so no log or traceback shows them.
    env_credentials: dict[str, str] = field(default_factory=dict, repr=False)
    extra: dict[str, Any] = field(default_factory=dict, repr=False)
    identity: dict[str, Any] = field(default_factory=dict)  # identity_settings()

    def to_flask(self) -> dict[str, Any]:
        """The Flask config mapping; extension settings keep their documented names."""
        return {
            **self.extra,
            "ENV_NAME": self.environment,
            "TESTING": self.environment == "testing",
            "SECRET_KEY": self.secret_key,
            "SQLALCHEMY_DATABASE_URI": self.database_url,
            # No pre-ping: a round trip on every checkout. A connection a restart cut is found
            # by the statement that uses it (database.lost_connection, app.ApiFlask).
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 8, "max_overflow": 4},
            "RATELIMIT_STORAGE_URI": self.ratelimit_storage_uri,
            "TOKEN_TTL_SECONDS": self.token_ttl_seconds,
            "MAX_CONTENT_LENGTH": self.max_content_length,
            "TRUSTED_PROXIES": self.trusted_proxies,
            "AUTO_MIGRATE": self.auto_migrate,
            "LOGIN_MAX_FAILURES": self.login_max_failures,
            "LOGIN_FAILURE_WINDOW_SECONDS": self.login_failure_window_seconds,
            "LOGIN_BLOCK_SECONDS": self.login_block_seconds,
            "ENCRYPTION_KEYS": self.encryption_keys,
            "OUTBOUND_ALLOWED_HOSTS": self.outbound_allowed_hosts,
            "OUTBOUND_ONLY_ALLOWED_HOSTS": self.outbound_only_allowed_hosts,
            "RATELIMIT_DEFAULT": self.ratelimit_default,
            "RATELIMIT_PER_IP": self.ratelimit_per_ip,
            "RATELIMIT_LOGIN": self.ratelimit_login,
            "RATELIMIT_REGISTER": self.ratelimit_register,
            "RATELIMIT_STORAGE_TIMEOUT_MS": self.ratelimit_storage_timeout_ms,
            "RATELIMIT_KEY_PREFIX": self.ratelimit_key_prefix,
            "CORS_ORIGINS": self.cors_origins,
            "HSTS_ENABLED": self.hsts_enabled,
            "METRICS_TOKEN": self.metrics_token,
            "LOG_LEVEL": self.log_level,
            "ALERT_AUTO_INCIDENT_SEVERITY": self.alert_auto_incident_severity,
            "ALERT_GROUP_WINDOW_SECONDS": self.alert_group_window_seconds,
            "API_KEY_ROTATION_GRACE_SECONDS": self.api_key_rotation_grace_seconds,
            "CREDENTIAL_USAGE_RETENTION_DAYS": self.credential_usage_retention_days,
            "AUDIT_RETENTION_DAYS": self.audit_retention_days,
            "ALERT_EVENT_RETENTION_DAYS": self.alert_event_retention_days,
            "CLOSED_INCIDENT_EVENT_RETENTION_DAYS": self.closed_incident_event_retention_days,
            "PASSWORD_HISTORY_SIZE": self.password_history_size,
            "PASSWORD_MAX_AGE_DAYS": self.password_max_age_days,
            "CLIENT_CERTIFICATE_KEYS": self.client_certificate_keys,
            "CLIENT_CERTIFICATE_HEADER": self.client_certificate_header,
            "TAXII_POLL_DEADLINE_SECONDS": self.taxii_poll_deadline_seconds,
            "TAXII_PAGE_DEADLINE_SECONDS": self.taxii_page_deadline_seconds,
            **self.automation,
            "EVIDENCE_DIR": self.evidence_dir,
            "EVIDENCE_MAX_BYTES": self.evidence_max_bytes,
            # Unset credentials are None, so their checks fail (never pass).
            **{name: self.env_credentials.get(name) for name in ENV_CREDENTIAL_NAMES},
            # Flask-RESTful appends "did you mean" hints to 404s; the problem handler owns them.
            "ERROR_404_HELP": False,
            **self.identity,
        }


def _comma_separated(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """The setting's comma-separated items, trimmed, empty ones dropped."""
    return tuple(part.strip() for part in env.get(name, "").split(",") if part.strip())


def _int_setting(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _retention_setting(env: Mapping[str, str], name: str, default: int) -> int | None:
    """Days to keep a kind of record (at least 1), or None for ``forever``."""
    if env.get(name, "").strip().lower() == KEEP_FOREVER:
        return None
    return _int_setting(env, name, default, minimum=1)


CERTIFICATE_IDENTITY = re.compile(r"^(?:CN=|DNS:|URI:|email:|IP:)\S.*$")
API_KEY_PREFIX_FORM = re.compile(r"^sak_[a-z0-9]{8}$")


def _client_certificate_keys(env: Mapping[str, str]) -> dict[str, str]:
    """``IDENTITY=PREFIX`` pairs, comma-separated: a client certificate identity (``CN=...``,
    ``DNS:...``, ``URI:...``, ``email:...``, ``IP:...``) and the API key prefix it stands for."""
    mapping: dict[str, str] = {}
    for entry in filter(
        None, (part.strip() for part in env.get("CLIENT_CERTIFICATE_KEYS", "").split(","))
    ):
        identity, _, prefix = entry.rpartition("=")
        if not CERTIFICATE_IDENTITY.match(identity) or not API_KEY_PREFIX_FORM.match(prefix):
            raise ConfigError(
                "CLIENT_CERTIFICATE_KEYS entries must be IDENTITY=sak_xxxxxxxx with an identity "
                f"CN=, DNS:, URI:, email: or IP:, got {entry!r}"
            )
        mapping[identity] = prefix
    return mapping


def _bool_setting(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _taxii_deadlines(env: Mapping[str, str]) -> dict[str, int]:
    """``TAXII_POLL_DEADLINE_SECONDS`` and ``TAXII_PAGE_DEADLINE_SECONDS``: how long one
    feed poll, and one page of it, may take in all (a server sending a byte at a time
    never trips a per-read timeout). A page cannot outlast its poll."""
    poll = _int_setting(
        env, "TAXII_POLL_DEADLINE_SECONDS", DEFAULT_TAXII_POLL_DEADLINE_SECONDS, minimum=1
    )
    if poll > MAX_TAXII_POLL_DEADLINE_SECONDS:
        raise ConfigError(
            f"TAXII_POLL_DEADLINE_SECONDS must be at most {MAX_TAXII_POLL_DEADLINE_SECONDS} "
            f"(a poll's lease on its feed lasts 15 minutes), got {poll}"
        )
    page = _int_setting(
        env, "TAXII_PAGE_DEADLINE_SECONDS", min(DEFAULT_TAXII_PAGE_DEADLINE_SECONDS, poll), 1
    )
    if page > poll:
        raise ConfigError(
            f"TAXII_PAGE_DEADLINE_SECONDS ({page}) must not exceed "
            f"TAXII_POLL_DEADLINE_SECONDS ({poll})"
        )
    return {"taxii_poll_deadline_seconds": poll, "taxii_page_deadline_seconds": page}


def _secret_key(env: Mapping[str, str], environment: str) -> str:
    """Outside development/testing the key must be present and strong; never invent one there."""
    key = env.get("SECRET_KEY", "")
    if environment in DEVELOPMENT_ENVIRONMENTS and not key:
        # A per-process random key is fine for development: nothing signed must outlive it.
        return os.urandom(32).hex()
    if not key:
        raise ConfigError("SECRET_KEY is not set; set it to at least 32 random bytes")
    if len(key.encode()) < MIN_SECRET_KEY_BYTES or key.lower() in WEAK_SECRET_KEYS:
        raise ConfigError(
            f"SECRET_KEY is too weak; use at least {MIN_SECRET_KEY_BYTES} random bytes "
            '(e.g. python -c "import secrets; print(secrets.token_urlsafe(48))")'
        )
    return key


# The project's PostgreSQL driver is psycopg2. The forms hosting providers hand out name no
# driver, and SQLAlchemy 2.1 would then load psycopg 3, which is not installed: they are
# rewritten here, so the app, gunicorn's start check, the CLI and migrations all get this one.
POSTGRESQL_SCHEME = "postgresql+psycopg2://"
DRIVERLESS_POSTGRESQL_SCHEMES = ("postgresql://", "postgres://")


def _database_url(env: Mapping[str, str]) -> str:
    """``DATABASE_URL``, with the project's driver named (see :data:`POSTGRESQL_SCHEME`)."""
    url = env.get("DATABASE_URL", "")
    if not url:
        raise ConfigError(
            "DATABASE_URL is not set; use the README's run command (embedded PostgreSQL) "
            "or point it at a server, e.g. postgresql+psycopg2://user:pass@host:5432/soc"
        )
    for scheme in DRIVERLESS_POSTGRESQL_SCHEMES:
        if url.startswith(scheme):
            return POSTGRESQL_SCHEME + url.removeprefix(scheme)
    if not url.startswith(POSTGRESQL_SCHEME):
        raise ConfigError(f"DATABASE_URL must be a PostgreSQL URL ({POSTGRESQL_SCHEME}...)")
    return url


FERNET_KEY_BYTES = 32
_HOSTNAME_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_HOSTNAME_LABEL}(?:\.{_HOSTNAME_LABEL})*$")


def _encryption_keys(env: Mapping[str, str]) -> tuple[str, ...]:
    """``ENCRYPTION_KEY``: Fernet keys, comma-separated, newest first (older ones still
    decrypt, so a key can be rotated without losing stored secrets). Unset is allowed:
    storing a secret then fails with a clear error instead."""
    keys = _comma_separated(env, "ENCRYPTION_KEY")
    for key in keys:
        try:
            valid = len(base64.urlsafe_b64decode(key.encode())) == FERNET_KEY_BYTES
        except (binascii.Error, ValueError):
            valid = False
        if not valid:
            raise ConfigError(
                "ENCRYPTION_KEY must be Fernet keys (32 url-safe base64 bytes), comma-separated; "
                'make one with python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"'
            )
    return keys


# The first name is the setting; the others are older names still read (every entry of
# every one that is set is allowed).
ALLOWED_HOSTS_SETTINGS = ("OUTBOUND_ALLOWED_HOSTS", "TAXII_ALLOWED_HOSTS")


def _allowed_hosts(env: Mapping[str, str]) -> tuple[str, ...]:
    """``OUTBOUND_ALLOWED_HOSTS`` (or its older name ``TAXII_ALLOWED_HOSTS``): host names,
    addresses or networks (comma-separated) that outbound requests (TAXII polling, any
    later integration) may reach even though they are private or loopback."""
    entries: list[str] = []
    for name in ALLOWED_HOSTS_SETTINGS:
        for entry in (item.lower() for item in _comma_separated(env, name)):
            if entry in entries:
                continue
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                if not _HOSTNAME.match(entry):
                    raise ConfigError(
                        f"{name}: {entry!r} is neither a host name, an address nor a network"
                    ) from None
            entries.append(entry)
    return tuple(entries)


def _rate_limit_setting(env: Mapping[str, str], name: str, default: str) -> str:
    """A Flask-Limiter limit string such as ``"10 per minute"`` (several joined by ``;``)."""
    value = env.get(name) or default
    try:
        parse_many(value)
    except ValueError:
        raise ConfigError(
            f"{name} must be a rate limit such as '10 per minute', got {value!r}"
        ) from None
    return value


def _cors_origins(env: Mapping[str, str]) -> tuple[str, ...]:
    """Comma-separated origins (``https://app.example.org``); ``*`` is refused on purpose:
    only origins someone chose may read the API from a browser."""
    origins = _comma_separated(env, "CORS_ORIGINS")
    for origin in origins:
        parts = urlsplit(origin)
        if parts.scheme not in {"http", "https"} or not parts.netloc or parts.path:
            raise ConfigError(
                f"CORS_ORIGINS must list origins like https://app.example.org, got {origin!r}"
            )
    return origins


def _metrics_token(env: Mapping[str, str]) -> str:
    token = env.get("METRICS_TOKEN", "")
    if token and len(token) < MIN_METRICS_TOKEN_LENGTH:
        raise ConfigError(f"METRICS_TOKEN must be at least {MIN_METRICS_TOKEN_LENGTH} characters")
    return token


def _log_level(env: Mapping[str, str]) -> str:
    level = env.get("LOG_LEVEL", "INFO").upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    return level


def _env_credentials(env: Mapping[str, str]) -> dict[str, str]:
    """The environment credentials that are set. Surrounding whitespace is refused rather
    than stripped: a secret that differs from what the deployer typed would fail
    mysteriously. The message names the variable, never the value."""
    credentials = {}
    for name in ENV_CREDENTIAL_NAMES:
        value = env.get(name, "")
        if value != value.strip():
            raise ConfigError(f"{name} has leading or trailing whitespace; remove it")
        if value:
            credentials[name] = value
    return credentials


def _rotation_grace_seconds(env: Mapping[str, str]) -> int:
    """How long a rotated-out API key secret keeps working: 0 (none) to 7 days."""
    name = "API_KEY_ROTATION_GRACE_SECONDS"
    seconds = _int_setting(env, name, DEFAULT_ROTATION_GRACE_SECONDS)
    if seconds > MAX_ROTATION_GRACE_SECONDS:
        raise ConfigError(f"{name} must be at most {MAX_ROTATION_GRACE_SECONDS} (7 days)")
    return seconds


def _alert_auto_incident_severity(env: Mapping[str, str]) -> str:
    """The lowest alert severity that opens an incident by itself; ``none`` turns it off."""
    value = env.get("ALERT_AUTO_INCIDENT_SEVERITY", "high").lower()
    if value not in (*SEVERITIES, "none"):
        raise ConfigError(
            "ALERT_AUTO_INCIDENT_SEVERITY must be one of "
            f"{', '.join(SEVERITIES)} or none, got {value!r}"
        )
    return value


# automation (issue 16): name -> (default, minimum) of the integer settings.
AUTOMATION_INT_SETTINGS = {
    # Attempts of one delivery before it is ``failed`` (the dead letter).
    "WEBHOOK_MAX_ATTEMPTS": (8, 1),
    # The first retry waits about this long; each next one twice as long (with jitter).
    "WEBHOOK_BACKOFF_BASE_MS": (10_000, 1),
    "WEBHOOK_BACKOFF_MAX_SECONDS": (3600, 1),
    # A delivery a worker took and did not finish in this time (it died) is taken again.
    "WEBHOOK_LEASE_SECONDS": (60, 1),
    # How long one delivery request may take, answer included.
    "WEBHOOK_TIMEOUT_SECONDS": (10, 1),
    # How often the worker's timers run: SLA clocks, due feeds, expiries, stuck deliveries.
    "AUTOMATION_TICK_SECONDS": (10, 1),
    # A worker writes a heartbeat this often; one silent for WORKER_STALLED_SECONDS is dead
    # (killed, its machine gone) and the jobs it was running are queued again.
    "WORKER_HEARTBEAT_SECONDS": (10, 1),
    "WORKER_STALLED_SECONDS": (30, 2),
}
DEFAULT_SLA_APPROACHING_SHARE = 0.8


def _automation_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """The job queue's settings: :data:`AUTOMATION_INT_SETTINGS` and
    ``SLA_APPROACHING_SHARE``, the share of an SLA's time after which it is "approaching"."""
    settings: dict[str, Any] = {
        name: _int_setting(env, name, default, minimum=minimum)
        for name, (default, minimum) in AUTOMATION_INT_SETTINGS.items()
    }
    raw = env.get("SLA_APPROACHING_SHARE", str(DEFAULT_SLA_APPROACHING_SHARE))
    try:
        share = float(raw)
    except ValueError:
        share = -1.0
    if not 0 < share < 1:
        raise ConfigError(f"SLA_APPROACHING_SHARE must be a number between 0 and 1, got {raw!r}")
    settings["SLA_APPROACHING_SHARE"] = share
    return settings


def load_settings(
    env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Read and validate every setting; raise :class:`ConfigError` naming the first bad one."""
    env = dict(os.environ if env is None else env)
    overrides = dict(overrides or {})
    # Scalar overrides act like environment variables (and are validated like them); all
    # overrides also reach Flask's config, below the validated settings.
    env.update({k: str(v) for k, v in overrides.items() if isinstance(v, str | int | bool)})
    environment = env.get("APP_ENV", "production").lower()
    if environment not in DEVELOPMENT_ENVIRONMENTS | {"production"}:
        raise ConfigError(
            f"APP_ENV must be production, development or testing, got {environment!r}"
        )
    return Settings(
        environment=environment,
        secret_key=_secret_key(env, environment),
        database_url=_database_url(env),
        ratelimit_storage_uri=env.get("RATELIMIT_STORAGE_URI", "memory://"),
        token_ttl_seconds=_int_setting(env, "TOKEN_TTL_SECONDS", 3600, minimum=60),
        max_content_length=_int_setting(
            env, "MAX_CONTENT_LENGTH", DEFAULT_MAX_CONTENT_LENGTH, minimum=1024
        ),
        trusted_proxies=_int_setting(env, "TRUSTED_PROXIES", 0),
        auto_migrate=_bool_setting(env, "AUTO_MIGRATE", True),
        login_max_failures=_int_setting(env, "LOGIN_MAX_FAILURES", 5, minimum=1),
        login_failure_window_seconds=_int_setting(
            env, "LOGIN_FAILURE_WINDOW_SECONDS", 300, minimum=1
        ),
        login_block_seconds=_int_setting(env, "LOGIN_BLOCK_SECONDS", 900, minimum=1),
        encryption_keys=_encryption_keys(env),
        outbound_allowed_hosts=_allowed_hosts(env),
        outbound_only_allowed_hosts=_bool_setting(env, "OUTBOUND_ONLY_ALLOWED_HOSTS", False),
        ratelimit_default=_rate_limit_setting(env, "RATELIMIT_DEFAULT", "300 per minute"),
        ratelimit_per_ip=_rate_limit_setting(env, "RATELIMIT_PER_IP", "600 per minute"),
        ratelimit_login=_rate_limit_setting(env, "RATELIMIT_LOGIN", "10 per minute"),
        ratelimit_register=_rate_limit_setting(env, "RATELIMIT_REGISTER", "30 per minute"),
        ratelimit_storage_timeout_ms=_int_setting(
            env, "RATELIMIT_STORAGE_TIMEOUT_MS", 250, minimum=10
        ),
        ratelimit_key_prefix=env.get("RATELIMIT_KEY_PREFIX", "soc"),
        cors_origins=_cors_origins(env),
        hsts_enabled=_bool_setting(env, "HSTS_ENABLED", False),
        metrics_token=_metrics_token(env),
        log_level=_log_level(env),
        alert_auto_incident_severity=_alert_auto_incident_severity(env),
        alert_group_window_seconds=_int_setting(env, "ALERT_GROUP_WINDOW_SECONDS", 3600, minimum=1),
        api_key_rotation_grace_seconds=_rotation_grace_seconds(env),
        credential_usage_retention_days=_retention_setting(
            env, "CREDENTIAL_USAGE_RETENTION_DAYS", DEFAULT_CREDENTIAL_USAGE_RETENTION_DAYS
        ),
        audit_retention_days=_retention_setting(
            env, "AUDIT_RETENTION_DAYS", DEFAULT_AUDIT_RETENTION_DAYS
        ),
        alert_event_retention_days=_retention_setting(
            env, "ALERT_EVENT_RETENTION_DAYS", DEFAULT_ALERT_EVENT_RETENTION_DAYS
        ),
        closed_incident_event_retention_days=_retention_setting(
            env,
            "CLOSED_INCIDENT_EVENT_RETENTION_DAYS",
            DEFAULT_CLOSED_INCIDENT_EVENT_RETENTION_DAYS,
        ),
        password_history_size=_int_setting(
            env, "PASSWORD_HISTORY_SIZE", DEFAULT_PASSWORD_HISTORY_SIZE, minimum=1
        ),
        password_max_age_days=_int_setting(env, "PASSWORD_MAX_AGE_DAYS", 0),
        client_certificate_keys=_client_certificate_keys(env),
        client_certificate_header=env.get("CLIENT_CERTIFICATE_HEADER", "").strip(),
        **_taxii_deadlines(env),
        automation=_automation_settings(env),
        evidence_dir=env.get("EVIDENCE_DIR", "").strip() or DEFAULT_EVIDENCE_DIR,
        evidence_max_bytes=_int_setting(
            env, "EVIDENCE_MAX_BYTES", DEFAULT_EVIDENCE_MAX_BYTES, minimum=1
        ),
        env_credentials=_env_credentials(env),
        extra=overrides,
        identity=identity_settings(env),
    )


# --- identity: second factor, password resets, single sign-on -----------------------------

DEFAULT_OIDC_CLOCK_SKEW_SECONDS = 60
SSO_LOCAL_PASSWORD_CHOICES = ("disabled", "allowed")


def _oidc_role_map(env: Mapping[str, str]) -> dict[str, str]:
    """``OIDC_ROLE_MAP``: ``group=role`` pairs, comma-separated, e.g.
    ``soc-admins=admin,soc-analysts=analyst``; the first pair a user's groups match wins."""
    mapping: dict[str, str] = {}
    for pair in _comma_separated(env, "OIDC_ROLE_MAP"):
        group, sep, role = (part.strip() for part in pair.partition("="))
        if not sep or not group or role not in ROLES:
            raise ConfigError(f"OIDC_ROLE_MAP: {pair!r} is not group=admin|analyst|viewer")
        mapping[group] = role
    return mapping


def identity_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """The identity area's settings, as Flask config keys (README, "Identity")."""
    if env.get("MFA_REQUIRED_ROLES", "").strip():
        # Refused rather than ignored: an operator setting it would believe a factor is
        # required while nothing enforces it. The database holds the rule.
        raise ConfigError(
            "MFA_REQUIRED_ROLES is no longer read: admins set the roles that need a second "
            "factor with PATCH /auth/mfa-policy"
        )
    sso_local_passwords = env.get("SSO_LOCAL_PASSWORDS", "disabled").strip() or "disabled"
    if sso_local_passwords not in SSO_LOCAL_PASSWORD_CHOICES:
        raise ConfigError(
            f"SSO_LOCAL_PASSWORDS must be disabled or allowed, got {sso_local_passwords!r}"
        )
    default_role = env.get("OIDC_DEFAULT_ROLE", "").strip()
    if default_role not in ("", *ROLES):
        raise ConfigError(f"OIDC_DEFAULT_ROLE must be a role or empty, got {default_role!r}")
    return {
        "MFA_CHALLENGE_SECONDS": _int_setting(env, "MFA_CHALLENGE_SECONDS", 300, minimum=10),
        "PASSWORD_RESET_TTL_SECONDS": _int_setting(
            env, "PASSWORD_RESET_TTL_SECONDS", 3600, minimum=60
        ),
        "OIDC_ISSUER": env.get("OIDC_ISSUER", "").strip().rstrip("/"),
        "OIDC_CLIENT_ID": env.get("OIDC_CLIENT_ID", "").strip(),
        "OIDC_CLIENT_SECRET": env.get("OIDC_CLIENT_SECRET", "").strip() or None,
        "OIDC_REDIRECT_URI": env.get("OIDC_REDIRECT_URI", "").strip(),
        "OIDC_SCOPES": env.get("OIDC_SCOPES", "openid profile email").strip(),
        "OIDC_AUDIENCE": env.get("OIDC_AUDIENCE", "").strip(),
        "OIDC_ROLE_CLAIM": env.get("OIDC_ROLE_CLAIM", "groups").strip(),
        "OIDC_ROLE_MAP": _oidc_role_map(env),
        "OIDC_DEFAULT_ROLE": default_role or None,
        "OIDC_JIT_USERS": _bool_setting(env, "OIDC_JIT_USERS", True),
        "OIDC_CLOCK_SKEW_SECONDS": _int_setting(
            env, "OIDC_CLOCK_SKEW_SECONDS", DEFAULT_OIDC_CLOCK_SKEW_SECONDS
        ),
        # Whether single-sign-on accounts may also have a local password (an admin's reset
        # gives them one): login, password change and reset all ask.
        "SSO_LOCAL_PASSWORDS": sso_local_passwords,
    }
