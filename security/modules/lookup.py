"""Reading the one object a request names: found, optionally row-locked, or NotFound (404).

The areas' ``get_…(id, lock=...)`` functions share :func:`first_or_404`, so a missing and
a hidden object answer alike and an edit locks exactly the row it changes. Which rows a
caller may see stays with each area's statement.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Select

from models import db
from security.errors import NotFound


def first_or_404(
    statement: Select, missing: str, *, lock: bool = False, params: Mapping[str, Any] | None = None
) -> Any:
    """The statement's first object, or :class:`NotFound` with the detail ``missing``.

    ``lock`` takes ``FOR UPDATE OF`` the selected object's table only: PostgreSQL refuses
    a plain ``FOR UPDATE`` across the outer joins of eager-loaded relationships, and an
    edit has no reason to block readers of the joined rows. ``params`` are the values of
    the statement's bound parameters (a statement built once and reused).
    """
    if lock:
        statement = statement.with_for_update(of=statement.column_descriptions[0]["entity"])
    found = db.session.scalars(statement, params).first()
    if found is None:
        raise NotFound(missing)
    return found
