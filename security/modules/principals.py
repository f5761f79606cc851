"""Who is calling, in the engine's terms: the principal, roles and their permissions.

The engine decides with these (which IOCs a principal sees, whether a key may be given a
scope); the HTTP edge (``auth.py``) finds the principal of a request with them. Also here,
because tokens and API keys share them: how a presented bearer credential is read and how
a high-entropy secret is hashed for storage.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from flask import request

from models import User, db

# Everyone reads reports and SLA policies through ``*:read``; writing a policy is
# ``sla_policies:admin``, which only the admin's ``*:*`` covers.
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"*:*"}),
    "analyst": frozenset(
        {
            "*:read",
            "incidents:write",
            "iocs:write",
            "rules:write",
            "comments:write",
            "apikeys:write",
            "events:write",
            "alerts:write",
            "notifications:write",  # automation (issue 16): their own channels
        }
    ),
    "viewer": frozenset({"*:read"}),
}
# Refreshing a credential's last_used_at on every request would turn every read into a write.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def permissions_for_role(role: str) -> frozenset[str]:
    return ROLE_PERMISSIONS.get(role, frozenset())


def permission_granted(granted: frozenset[str] | set[str], permission: str) -> bool:
    """Whether ``permission`` (``area:action``) is covered, wildcards included.

    ``*:read`` does not cover ``area:admin``: admin-only areas use the ``admin`` action.
    """
    area, _, action = permission.partition(":")
    candidates = {permission, f"{area}:*", f"*:{action}", "*:*"}
    return not candidates.isdisjoint(granted)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: a user acting through a login token or an API key.

    It carries the user's id, name and role, which is all most requests need, so a
    principal can be made without loading the user (``auth.py`` makes one from a recently
    verified token); :attr:`user` loads the row into the current session on first use.
    Being plain values, they can also be read on the error path (logging, auditing) after
    a failed write, when touching a row would load it from a session that must first be
    rolled back, and fail again.
    """

    user_id: int
    username: str
    role: str
    permissions: frozenset[str]
    credential_type: str
    credential_id: int

    @classmethod
    def of(
        cls, user: User, permissions: frozenset[str], credential_type: str, credential_id: int
    ) -> Principal:
        """The principal of ``user`` (a loaded row) presenting the given credential."""
        return cls(user.id, user.username, user.role, permissions, credential_type, credential_id)

    @property
    def user(self) -> User:
        """The caller's row in the current session (the identity map answers repeats)."""
        user = db.session.get(User, self.user_id)
        assert user is not None, "a principal's user is never deleted while it is in use"
        return user

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def can(self, permission: str) -> bool:
        return permission_granted(self.permissions, permission)


def hash_secret(secret: str) -> str:
    """SHA-256 of a high-entropy secret; fine for tokens and keys (not for passwords)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def bearer_credential() -> str | None:
    """The credential of the request's ``Authorization: Bearer`` header, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
