"""User administration: the list of accounts and an admin's edit of one.

What an edit changes takes effect at once, not at the next login: deactivating a user ends
their sessions and revokes their API keys; lowering their role ends their sessions (their
API keys keep working with only the scopes the new role still covers,
``credentials.key_permissions``). The last active admin can be neither deactivated nor
demoted: the instance would have no one left to administer it (:class:`LastAdmin`, 409).
Passwords are :mod:`security.modules.users`; sessions :mod:`security.modules.sessions`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select

from models import ApiKey, User, db
from models.vocabulary import ROLES
from security.errors import Conflict
from security.events import EventType, emit
from security.modules.credentials import revoke_api_key
from security.modules.lookup import first_or_404
from security.modules.sessions import revoke_sessions

# Higher is more power: a change to a lower rank is a demotion.
ROLE_RANK = {role: len(ROLES) - index for index, role in enumerate(ROLES)}
EDITABLE_FIELDS = ("role", "is_active", "display_name", "email")


class LastAdmin(Conflict):
    """The change would leave no active admin."""


def users_query(role: str | None = None, active: bool | None = None) -> Select:
    """Every account, optionally of one role and activation, for a keyset page."""
    statement = select(User)
    if role is not None:
        statement = statement.where(User.role == role)
    if active is not None:
        statement = statement.where(User.is_active.is_(active))
    return statement


def get_user(user_id: int, *, lock: bool = False) -> User:
    return first_or_404(
        select(User).where(User.id == user_id), f"User {user_id} does not exist.", lock=lock
    )


def is_demotion(old_role: str, new_role: str) -> bool:
    return ROLE_RANK.get(new_role, 0) < ROLE_RANK.get(old_role, 0)


def update_user(user: User, changes: dict[str, Any]) -> dict[str, Any]:
    """Apply an admin's ``changes`` (a subset of :data:`EDITABLE_FIELDS`) to a locked
    ``user``; returns what actually changed, as ``{field: [old, new]}``.

    One ``user.update`` event names the changes; the sessions and keys a deactivation or
    demotion ends are their own events.
    """
    changed = {
        name: [getattr(user, name), value]
        for name, value in changes.items()
        if name in EDITABLE_FIELDS and getattr(user, name) != value
    }
    if not changed:
        return changed
    loses_admin = (
        user.role == "admin"
        and user.is_active
        and (changes.get("role", "admin") != "admin" or changes.get("is_active", True) is False)
    )
    if loses_admin:
        _ensure_another_active_admin(user)
    for name, (_old, new) in changed.items():
        setattr(user, name, new)
    user.version += 1
    db.session.flush()
    emit(EventType.USER_EDITED, user.id, {"username": user.username, "changes": changed})
    if "is_active" in changed and not user.is_active:
        revoke_sessions(user, reason="deactivated")
        _revoke_api_keys(user)
    elif "role" in changed and is_demotion(*changed["role"]):
        revoke_sessions(user, reason="demoted")
    return changed


def _ensure_another_active_admin(user: User) -> None:
    """Refuse to remove the last active admin. The active admins' rows are locked first,
    so two admins demoting each other at once cannot both succeed."""
    admins = select(User.id).where(User.role == "admin", User.is_active.is_(True))
    locked = list(db.session.scalars(admins.order_by(User.id).with_for_update()))
    if [admin_id for admin_id in locked if admin_id != user.id]:
        return
    raise LastAdmin(f"{user.username!r} is the last active admin: make another admin first.")


def _revoke_api_keys(user: User) -> None:
    """Revoke every key of a deactivated user: reactivating them must not bring keys back."""
    keys = select(ApiKey).where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
    for key in db.session.scalars(keys.with_for_update(of=ApiKey)):
        revoke_api_key(key)
