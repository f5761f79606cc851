"""Who is calling the TAXII server: the API's bearer token or API key, or HTTP Basic.

TAXII clients (the OASIS client included) often speak only Basic, so a username and
password are accepted too, checked exactly like a login: the brute-force guard first,
argon2 verification, failures counted and audited. Every other rule (permissions, which
collections) is the same whichever way the caller authenticated.
"""

from __future__ import annotations

from flask import g, request
from sqlalchemy import func, select

import auth
from errors import ApiError
from models import User, db
from security.modules import audit, brute_force


def _basic_principal(username: str, password: str) -> auth.Principal:
    ip = request.remote_addr or "unknown"
    brute_force.ensure_login_allowed(username, ip)
    user = db.session.scalars(
        select(User).where(func.lower(User.username) == username.lower())
    ).first()
    if not auth.verify_password(user, password):
        brute_force.record_failed_login(username, ip)
        audit.record(
            "auth.taxii_basic",
            outcome="failure",
            actor_id=user.id if user else None,
            actor=username[:64],
        )
        db.session.commit()
        raise ApiError(401, "Invalid username or password.")
    brute_force.forget_account_failures(username)
    db.session.commit()
    return auth.Principal(user, auth.permissions_for_role(user.role), "password", user.id)


def taxii_principal() -> auth.Principal:
    """The authenticated caller, by HTTP Basic or bearer; 401 (audited) otherwise."""
    if g.get("principal") is not None:
        return g.principal
    credentials = request.authorization
    if credentials is None or credentials.type != "basic":
        return auth.authenticate()
    g.principal = _basic_principal(credentials.username or "", credentials.password or "")
    return g.principal


def authorize_taxii(permission: str) -> auth.Principal:
    """Authenticate (Basic or bearer), then require ``permission``; 403 is audited."""
    taxii_principal()
    return auth.authorize(permission)
