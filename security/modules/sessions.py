"""Sessions: the login tokens a user holds, listed and ended one at a time or all at once.

A session is an ``auth_tokens`` row (``auth.issue_token`` opens it). Ending one sets its
``revoked_at``; every worker stops accepting it within ``auth.VERIFIED_TOKEN_SECONDS``,
because the workers re-read a token that often. Each ended session is its own
``auth.logout`` event, so a bulk revocation (a deactivation, a password change, an admin's
"sign out everywhere") records the sessions it ended one by one.
"""

from __future__ import annotations

from sqlalchemy import Select, select

from models import AuthToken, User, db, utcnow
from security.events import Actor, EventType, emit_all
from security.modules.lookup import first_or_404
from security.modules.principals import Principal


def open_sessions(user_id: int) -> Select:
    """The user's sessions that still work (not revoked, not expired), for a keyset page."""
    return select(AuthToken).where(
        AuthToken.user_id == user_id,
        AuthToken.revoked_at.is_(None),
        AuthToken.expires_at > utcnow(),
    )


def get_own_session(principal: Principal, session_id: int) -> AuthToken:
    """One of the caller's open sessions; someone else's is :class:`NotFound`, like a
    missing one, so session ids reveal nothing."""
    statement = open_sessions(principal.user_id).where(AuthToken.id == session_id)
    return first_or_404(statement, f"Session {session_id} does not exist.", lock=True)


def revoke_sessions(
    user: User, *, keep: int | None = None, actor: Actor | None = None, reason: str
) -> list[int]:
    """End every open session of ``user`` except ``keep`` (the caller's own, when a
    password change keeps it); one event per session ended. Returns their ids."""
    statement = open_sessions(user.id).with_for_update(of=AuthToken)
    if keep is not None:
        statement = statement.where(AuthToken.id != keep)
    tokens = list(db.session.scalars(statement))
    now = utcnow()
    for token in tokens:
        token.revoked_at = now
    emit_all(
        EventType.SESSION_REVOKED,
        [(token.id, {"user_id": user.id, "reason": reason}) for token in tokens],
        actor=actor,
    )
    return [token.id for token in tokens]


def revoke_session(token: AuthToken) -> None:
    """End one session (the caller's own, by its id)."""
    token.revoked_at = utcnow()
    emit_all(EventType.SESSION_REVOKED, [(token.id, {"user_id": token.user_id})])
