"""Which incidents are related: they share an indicator or an observable.

Lives here: an incident's *items* (the IOCs linked to it and the observables of the
alerts merged into it), :func:`related_incidents` (other incidents sharing items with
one, ranked by how many), and :func:`ioc_incidents` (the incidents an IOC appears in).
Not here: who may see which incident, alert or IOC (``incidents.visibility``,
``alerts.visibility``, :mod:`security.modules.ioc_visibility`, applied to every side of
every query here), HTTP.

Sharing is exact (same type and value) or by network: an address inside a stored
network (``10.1.2.3`` and ``10.0.0.0/8``), either way round, counts, on the ``inet``
columns of IOCs and observables.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, and_, distinct, func, or_, select, tuple_, union
from sqlalchemy.dialects.postgresql import JSONB

from models import Alert, AlertObservable, Incident, IncidentIoc, Ioc, db
from security.modules import alerts, incidents, ioc_visibility
from security.modules.principals import Principal

MAX_RELATED = 50
MAX_SHARED_SHOWN = 20


def _items(principal: Principal) -> Any:
    """Every incident's visible items as ``(incident_id, type, value, address)`` rows."""
    linked = select(IncidentIoc.incident_id, Ioc.type, Ioc.value, Ioc.address).join(
        Ioc, Ioc.id == IncidentIoc.ioc_id
    )
    hidden = ioc_visibility.visibility_condition(ioc_visibility.viewer_of(principal))
    if hidden is not None:
        linked = linked.where(hidden)
    observed = (
        select(
            Alert.incident_id, AlertObservable.type, AlertObservable.value, AlertObservable.address
        )
        .join(Alert, Alert.id == AlertObservable.alert_id)
        .where(Alert.incident_id.is_not(None), alerts.visibility(principal))
    )
    return union(linked, observed).cte("incident_items")


def related_incidents(incident: Incident, principal: Principal) -> list[dict[str, Any]]:
    """Other visible incidents sharing items with ``incident``, most shared first (then
    newest), each with how many of its items they share and which (at most
    :data:`MAX_SHARED_SHOWN`): ``{"incident", "shared_count", "shared"}``."""
    items = _items(principal)
    mine = items.alias("mine")
    theirs = items.alias("theirs")
    same = and_(mine.c.type == theirs.c.type, mine.c.value == theirs.c.value)
    inside = and_(
        mine.c.address.is_not(None),
        theirs.c.address.is_not(None),
        or_(mine.c.address.op("<<=")(theirs.c.address), theirs.c.address.op("<<=")(mine.c.address)),
    )
    shared = (
        select(
            theirs.c.incident_id,
            func.count(distinct(tuple_(mine.c.type, mine.c.value))).label("shared_count"),
            func.jsonb_agg(
                distinct(
                    func.jsonb_build_object(
                        "type", mine.c.type, "value", mine.c.value, "matched", theirs.c.value
                    )
                ),
                type_=JSONB,
            ).label("shared"),
        )
        .join(theirs, or_(same, inside))
        .where(mine.c.incident_id == incident.id, theirs.c.incident_id != incident.id)
        .group_by(theirs.c.incident_id)
        .subquery()
    )
    statement = (
        select(Incident, shared.c.shared_count, shared.c.shared)
        .join(shared, shared.c.incident_id == Incident.id)
        .where(incidents.visibility(principal))
        .order_by(shared.c.shared_count.desc(), Incident.created_at.desc(), Incident.id.desc())
        .limit(MAX_RELATED)
    )
    return [
        {
            "incident": related,
            "shared_count": count,
            "shared": sorted(values, key=lambda item: (item["type"], item["value"]))[
                :MAX_SHARED_SHOWN
            ],
        }
        for related, count, values in db.session.execute(statement)
    ]


def ioc_incidents(indicator: Ioc, principal: Principal) -> Select:
    """The visible incidents an IOC appears in: linked to it, or holding an alert whose
    observable matched it at intake; unordered, for paging."""
    linked = select(IncidentIoc.incident_id).where(IncidentIoc.ioc_id == indicator.id)
    observed = (
        select(Alert.incident_id)
        .join(AlertObservable, AlertObservable.alert_id == Alert.id)
        .where(
            AlertObservable.ioc_ids.contains([indicator.id]),
            Alert.incident_id.is_not(None),
            alerts.visibility(principal),
        )
    )
    return incidents.visible_incidents(principal).where(Incident.id.in_(union(linked, observed)))
