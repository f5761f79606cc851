"""Who is calling the TAXII server: the API's bearer token or API key, or HTTP Basic.

TAXII clients (the OASIS client included) often speak only Basic, so a username and
password are accepted too, checked by the login's own :func:`auth.verify_login`: the
brute-force guard first, argon2 verification, failures counted and audited. Every other
rule (permissions, which collections) is the same whichever way the caller authenticated.
"""

from __future__ import annotations

from flask import g, request

import auth
from models import db


def _basic_principal(username: str, password: str) -> auth.Principal:
    ip = request.remote_addr or "unknown"
    user = auth.verify_login(username, password, ip, action="auth.taxii_basic")
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
