"""The security engine's public API: credentials, the IOC store, IOC extraction, middleware.

Every function works on the app's PostgreSQL and needs an app context::

    import security

    app = security.initialize()          # the app, built from the environment
    with app.app_context():
        security.add_ioc("cidr", "10.0.0.0/8", source="feed", confidence=80)
        security.check_threat_intelligence("10.1.2.3")["known_bad"]   # True

Functions that write (usage log, IOCs, sightings, rotation) commit their own work, so a
library caller needs no session handling; on an error nothing is written. Inside the app,
resources call the modules under :mod:`security.modules` instead, which leave the commit
to the request. ``security/README.md`` shows each function in use.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

from flask import Flask

# public name -> (module under security.modules, attribute, whether it commits its work).
# Resolved on first use (PEP 562): the foundation imports security.modules.* while it is
# itself being imported, so loading the engine here eagerly would be an import cycle.
_EXPORTS: dict[str, tuple[str, str, bool]] = {
    "verify_api_key": ("credentials", "verify_api_key", True),
    "verify_db_password": ("credentials", "verify_db_password", True),
    "log_credential_usage": ("credentials", "log_credential_usage", True),
    "rotate_credential": ("credentials", "rotate_credential", True),
    "get_recent_usage": ("credentials", "get_recent_usage", False),
    "analyze_for_suspicious_activity": ("credentials", "analyze_for_suspicious_activity", False),
    "require_api_key": ("credentials", "require_api_key", False),
    "CredentialError": ("credentials", "CredentialError", False),
    "add_ioc": ("intel", "add_ioc", True),
    "check_ioc": ("intel", "check_ioc", True),
    "check_threat_intelligence": ("intel", "check_threat_intelligence", True),
    "search_intelligence": ("intel", "search_intelligence", False),
    "extract_iocs": ("threat", "extract_iocs", False),
    "create_threat_rule": ("threat", "create_threat_rule", True),
    "IOC_TYPES": ("ioc_values", "IOC_TYPES", False),
    "InvalidIoc": ("ioc_values", "InvalidIoc", False),
    "create_security_middleware": ("middleware", "create_security_middleware", False),
}

__all__ = ["initialize", *sorted(_EXPORTS)]


def initialize(app: Flask | None = None) -> Flask:
    """The app to use the package with: ``app`` itself, or, without one, an app built from
    the environment by ``create_app()`` (database created and migrated, as at startup)."""
    if app is not None:
        return app
    from app import create_app

    return create_app()


def _committed(function: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``function`` as one transaction: commit on return, roll back on an exception."""
    from models import db

    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            result = function(*args, **kwargs)
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
        return result

    return run


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'security' has no attribute {name!r}")
    module_name, attribute, commits = _EXPORTS[name]
    value = getattr(importlib.import_module(f"security.modules.{module_name}"), attribute)
    if commits:
        value = _committed(value)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
