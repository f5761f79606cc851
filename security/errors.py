"""The engine's exceptions: what went wrong, in the engine's words, never as HTTP.

Every refusal the engine makes is a :class:`DomainError` subclass carrying a human
``detail``, optional per-field ``errors`` and optional ``extra`` members a client needs to
correct the request (the allowed transitions, the ids that do not exist). A library caller
of :mod:`security` catches these; the web app answers them through the one table in the
top-level ``errors.py`` (``DOMAIN_ERROR_STATUS``), which is the only place that knows which
HTTP status each kind of refusal becomes.

Engine modules derive their own types from these (``InvalidIoc`` is an
:class:`Invalid`, ``CredentialError`` too), so that table covers them without a
translation at every call site.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class DomainError(Exception):
    """A refusal by the engine; ``str(error)`` is the detail."""

    retry_after: int | None = None

    def __init__(
        self,
        detail: str,
        *,
        errors: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = dict(errors) if errors else None
        self.extra = dict(extra or {})


class NotFound(DomainError):
    """The object does not exist, or the caller may not know that it does."""


class Conflict(DomainError):
    """The request contradicts the stored state (a name taken, a step already done)."""


class Invalid(DomainError):
    """Well-formed input refused for what it means; ``field`` names the input at fault."""

    def __init__(
        self,
        detail: str,
        *,
        field: str | None = None,
        errors: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        if errors is None and field is not None:
            errors = {field: [detail]}
        super().__init__(detail, errors=errors, extra=extra)


class Unauthenticated(DomainError):
    """No valid credential was presented."""


class Forbidden(DomainError):
    """The caller is known but may not do this."""


class TooLarge(DomainError):
    """The input is larger than the engine accepts in one piece."""


class UnsupportedMediaType(DomainError):
    """A body declared as a media type the receiving endpoint does not read."""


class NotAcceptable(DomainError):
    """The caller accepts no media type the endpoint can answer with."""


class TooManyAttempts(DomainError):
    """Refused for a while (a blocked login); ``retry_after`` says how many seconds."""

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """A dependency the engine needs (the database, a key) is not usable now."""
