"""Which roles must use a second factor: the admins' policy at ``/auth/mfa-policy``.

A login session of a user whose role the policy names, and who has no factor enabled,
grants nothing but their own account (``/auth/me``, enrolling a factor, logging out):
``auth.session_permissions``. The policy is one database row (:class:`models.MfaPolicy`),
the only source of the rule. It is read in the same statement as the login token
(:func:`required_roles_column`), so it costs no round trip of its own, and an edit takes
effect on every worker as soon as their verified-token cache lets go of a token
(``auth.VERIFIED_TOKEN_SECONDS``, half a second); the worker that made the edit drops its
cache at once. API keys and provider-issued JWTs are not login sessions: the policy does
not apply to them (a key's owner created it from a session the policy already governed).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ScalarSelect, select
from sqlalchemy.dialects.postgresql import insert

from models import MfaPolicy, User, db, utcnow
from models.vocabulary import ROLES
from security.errors import Conflict
from security.events import Actor, EventType, emit

POLICY_ID = 1


def required_roles_column() -> ScalarSelect:
    """The policy's roles as a scalar subquery, to select beside a token (NULL: no row)."""
    return select(MfaPolicy.required_roles).where(MfaPolicy.id == POLICY_ID).scalar_subquery()


def current_policy() -> MfaPolicy:
    """The policy as stored, or the untouched default (no role required, version 1) when
    no admin has edited it yet; the default is not added to the session."""
    policy = db.session.get(MfaPolicy, POLICY_ID)
    return policy or MfaPolicy(id=POLICY_ID, required_roles=[], version=1)


def locked_policy() -> MfaPolicy:
    """The policy's row, locked for an edit; created first if it does not exist yet (two
    first edits at once both find the one row: the insert does nothing on a conflict)."""
    created = insert(MfaPolicy).values(id=POLICY_ID, required_roles=[], version=1)
    db.session.execute(created.on_conflict_do_nothing(index_elements=["id"]))
    statement = select(MfaPolicy).where(MfaPolicy.id == POLICY_ID).with_for_update()
    return db.session.scalars(statement.execution_options(populate_existing=True)).one()


class EditorWouldBeLockedOut(Conflict):
    """The admin editing the policy would require a factor of their own role without one."""


def set_required_roles(policy: MfaPolicy, roles: Iterable[str], editor: User) -> bool:
    """Make ``roles`` the ones that must use a second factor (the caller commits); one
    ``mfa_policy.update`` event when that changes anything. Returns whether it did.

    An admin cannot require a factor of their own role before enabling one themselves:
    their session would grant nothing at once, and with no admin left holding a factor
    nobody could undo it (:class:`EditorWouldBeLockedOut`, 409)."""
    wanted = sorted(set(roles), key=ROLES.index)
    old = list(policy.required_roles)
    if wanted == old:
        return False
    if editor.role in wanted and not editor.mfa_enabled:
        raise EditorWouldBeLockedOut(
            f"Enable your own second factor before requiring one for the {editor.role!r} "
            "role: your session would otherwise lose its permissions at once."
        )
    policy.required_roles = wanted
    policy.version += 1
    policy.updated_at = utcnow()
    policy.updated_by = editor.username
    db.session.flush()
    emit(
        EventType.MFA_POLICY_CHANGED,
        POLICY_ID,
        {"changes": {"required_roles": [old, wanted]}},
        actor=Actor(editor.id, editor.username),
    )
    return True
