"""Settings read from the environment and validated once, at startup.

Every knob the deployer can turn is listed here with its default; nothing else in the
code reads ``os.environ`` for configuration. A misconfiguration stops startup with one
line naming the variable (:class:`ConfigError`), never a traceback deep in a request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEVELOPMENT_ENVIRONMENTS = frozenset({"development", "testing"})
MIN_SECRET_KEY_BYTES = 32
WEAK_SECRET_KEYS = frozenset({"changeme", "secret", "dev", "development", "please-change-me"})
DEFAULT_MAX_CONTENT_LENGTH = 1024 * 1024


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
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_development(self) -> bool:
        return self.environment in DEVELOPMENT_ENVIRONMENTS

    def to_flask(self) -> dict[str, Any]:
        """The Flask config mapping; extension settings keep their documented names."""
        return {
            **self.extra,
            "ENV_NAME": self.environment,
            "TESTING": self.environment == "testing",
            "SECRET_KEY": self.secret_key,
            "SQLALCHEMY_DATABASE_URI": self.database_url,
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "pool_size": 8, "max_overflow": 4},
            "RATELIMIT_STORAGE_URI": self.ratelimit_storage_uri,
            "TOKEN_TTL_SECONDS": self.token_ttl_seconds,
            "MAX_CONTENT_LENGTH": self.max_content_length,
            "TRUSTED_PROXIES": self.trusted_proxies,
            "AUTO_MIGRATE": self.auto_migrate,
            "LOGIN_MAX_FAILURES": self.login_max_failures,
            "LOGIN_FAILURE_WINDOW_SECONDS": self.login_failure_window_seconds,
            "LOGIN_BLOCK_SECONDS": self.login_block_seconds,
            # Flask-RESTful appends "did you mean" hints to 404s; the problem handler owns them.
            "ERROR_404_HELP": False,
        }


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


def _bool_setting(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


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


def _database_url(env: Mapping[str, str]) -> str:
    url = env.get("DATABASE_URL", "")
    if not url:
        raise ConfigError(
            "DATABASE_URL is not set; use the README's run command (embedded PostgreSQL) "
            "or point it at a server, e.g. postgresql+psycopg2://user:pass@host:5432/soc"
        )
    if not url.startswith(("postgresql://", "postgresql+psycopg2://", "postgres://")):
        raise ConfigError("DATABASE_URL must be a PostgreSQL URL (postgresql+psycopg2://...)")
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    return url


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
        extra=overrides,
    )
