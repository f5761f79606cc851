"""Which stored IOCs a caller may see: the one rule every read and write of the store applies.

Lives here: the rule (TLP red is seen by admins, by its creator and by the system; every
other level by everyone) as a SQL condition, and which record of a value a write from a
caller goes to. Not here: the queries and writes themselves (:mod:`security.modules.intel`,
:mod:`security.modules.ioc_upsert`, :mod:`security.modules.seed_rules`).

A write never touches a record its caller cannot see, and never says that one exists.
Each value has one *shared* record (``separate_for_id`` 0); when that record is hidden
from a caller, or the caller's report would hide it (a TLP red report merged into a
record someone else created), what the caller reports of the value is kept as the
caller's own record (``separate_for_id`` = the caller's user id), which the shared one
never merges with. The caller sees what they would have seen had the hidden record not
existed, and a red report never hides the team's record from the team.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import FromClause, case, exists, literal, or_

from models import Ioc
from security.modules.principals import Principal

SHARED = 0
"""``separate_for_id`` of the one record of a value everyone who may see it writes to."""


@dataclass(frozen=True)
class Viewer:
    """Whom the rule is applied for: a user (``user_id``) or, with ``user_id`` None, nobody
    in particular; ``sees_everything`` for admins and the system."""

    user_id: int | None
    sees_everything: bool


SYSTEM = Viewer(user_id=None, sees_everything=True)
EVERY_READER = Viewer(user_id=None, sees_everything=False)
"""What anyone with read access may see: what may appear in objects the whole team reads
(alerts, the incidents they open)."""


def viewer_of(principal: Principal | None) -> Viewer:
    """The viewer a request's principal is (None: the system itself)."""
    if principal is None:
        return SYSTEM
    return Viewer(user_id=principal.user_id, sees_everything=principal.is_admin)


def shown_to(viewer: Viewer, tlp: Any, created_by_id: Any) -> Any:
    """Whether a record of this TLP and creator is shown to the viewer, as SQL; None when
    every record is."""
    if viewer.sees_everything:
        return None
    shown = tlp != "red"
    if viewer.user_id is None:
        return shown
    return or_(shown, created_by_id == viewer.user_id)


def visibility_condition(viewer: Viewer, iocs: FromClause | None = None) -> Any:
    """The condition on rows of ``iocs`` (the ``iocs`` table, or an alias of it) that the
    viewer may see; None when it sees them all."""
    columns = (iocs if iocs is not None else Ioc.__table__).c
    return shown_to(viewer, columns.tlp, columns.created_by_id)


def separate_for(
    viewer: Viewer,
    reported_type: Any,
    reported_value: Any,
    merged_tlp: Callable[[Any], Any],
) -> Any:
    """SQL for the ``separate_for_id`` of the record a report of (type, value) by the viewer
    goes to: :data:`SHARED`, or the viewer's own id when the shared record is hidden
    from them, or would be once merged (``merged_tlp`` of its TLP: a red report by
    someone other than its creator would hide it from the reporter and the team)."""
    if viewer.user_id is None or viewer.sees_everything:
        return literal(SHARED)
    shared = Ioc.__table__.alias("shared")
    hidden_once_merged = exists().where(
        shared.c.type == reported_type,
        shared.c.value == reported_value,
        shared.c.separate_for_id == SHARED,
        ~shown_to(viewer, merged_tlp(shared.c.tlp), shared.c.created_by_id),
    )
    return case((hidden_once_merged, literal(viewer.user_id)), else_=literal(SHARED))
