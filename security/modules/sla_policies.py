"""SLA policies: reading the versions, and writing the next one.

A version is immutable (``models/sla_policies.py``): an incident keeps the version it was
opened under, so "changing the policy" is :func:`create_policy`, which writes version
n + 1; the incidents opened from then on take it (the column's default, the database
function ``current_sla_policy_id()`` of migration 0011, is the one definition of
"current"). Due times and breaches are the
incident's own rule (``Incident.sla``); reports measure against each incident's version.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select

from models import SlaPolicy, db
from security.events import EventType, emit
from security.modules.lookup import first_or_404


def policies() -> Select:
    """Every version, for a keyset-paged list."""
    return select(SlaPolicy)


def get_policy(policy_id: int) -> SlaPolicy:
    return first_or_404(
        select(SlaPolicy).where(SlaPolicy.id == policy_id),
        f"SLA policy {policy_id} does not exist.",
    )


def create_policy(data: dict[str, Any]) -> SlaPolicy:
    """Write the next version with ``data["targets"]`` (every severity) and its note.

    The version number is taken under a transaction-scoped advisory lock, so two admins
    writing at once get n + 1 and n + 2 rather than a unique violation.
    """
    db.session.execute(select(func.pg_advisory_xact_lock(func.hashtext("sla_policies.version"))))
    latest = db.session.scalar(select(func.max(SlaPolicy.version))) or 0
    policy = SlaPolicy(version=latest + 1, targets=data["targets"], note=data.get("note", ""))
    db.session.add(policy)
    db.session.flush()
    emit(EventType.SLA_POLICY_CREATED, policy.id, {"version": policy.version})
    return policy
