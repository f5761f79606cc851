"""Reports: incident metrics, rule efficacy and the incident export, computed in SQL from
what is stored, for what the caller may see.

Every number of :func:`metrics` is about the incidents *opened* in the range (the
cohort): how many of them were resolved, how fast, whether within the SLA policy version
each was opened under. The clocks are the incident's own columns, written with the
timeline entry of the same status change (``security/modules/incidents.change_status``):
``responded_at`` is the first move out of ``new`` (MTTA), ``resolved_at`` the move into
a status that stops the resolution clock (MTTR); a reopen is a timeline entry out of
``resolved``/``closed``. TLP red incidents count only for those who may see them
(:func:`security.modules.incidents.visibility`), so a viewer's numbers are over the
incidents the viewer can open.

Not here: rendering (``security/modules/report_documents.py``), HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    String,
    and_,
    case,
    cast,
    column,
    func,
    not_,
    null,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB, distinct_on
from sqlalchemy.orm import aliased

from models import Alert, DetectionRule, Incident, SlaPolicy, TimelineEntry, User, db, utcnow
from models.incidents import RESOLVED_STATUSES
from models.vocabulary import MANUAL_SOURCE
from security.modules import incidents, intel
from security.modules.principals import Principal

# Open backlog buckets: (name, lower bound in days, upper bound in days or None).
BACKLOG_AGES = (
    ("under_1d", 0, 1),
    ("1d_to_7d", 1, 7),
    ("7d_to_30d", 7, 30),
    ("over_30d", 30, None),
)
REOPENED_FROM = ("resolved", "closed")
DAY_SECONDS = 86_400
# For the metrics query's transaction only (see metrics()).
REPORT_SETTINGS = "SET LOCAL jit = off; SET LOCAL work_mem = '64MB'"


@dataclass(frozen=True)
class TimeRange:
    """``[after, before)`` on the creation time; either end may be open."""

    after: datetime | None = None
    before: datetime | None = None

    def condition(self, column: Any) -> ColumnElement[bool]:
        conditions = []
        if self.after is not None:
            conditions.append(column >= self.after)
        if self.before is not None:
            conditions.append(column < self.before)
        return and_(true(), *conditions)


def _seconds(interval: Any) -> ColumnElement[Any]:
    """An interval in seconds as a float (``extract`` answers numeric, slower to sort)."""
    return func.date_part("epoch", interval, type_=Float)


def _ratio(numerator: Any, denominator: Any) -> ColumnElement[Any]:
    """numerator / denominator as a fraction, null when there is nothing to divide by."""
    return cast(numerator, Float) / func.nullif(denominator, 0)


def _count_where(condition: Any) -> ColumnElement[int]:
    return func.count().filter(condition)


def _utc_period(unit: str) -> ColumnElement[str]:
    """The UTC week (its Monday) or month an incident was opened in, as ISO text."""
    start = func.date_trunc(unit, func.timezone("UTC", Incident.created_at))
    return func.to_char(start, "YYYY-MM-DD" if unit == "week" else "YYYY-MM")


def _first_alerts() -> Any:
    """The alert each incident was escalated from (its first linked one), with what raised
    it (``opener``: its rule's kind, or the tool that sent it): one row per incident that
    has alerts."""
    return (
        select(
            Alert.incident_id,
            Alert.rule_name,
            func.coalesce(DetectionRule.kind, Alert.source).label("opener"),
        )
        .outerjoin(DetectionRule, DetectionRule.id == Alert.rule_id)
        .where(Alert.incident_id.is_not(None))
        .order_by(Alert.incident_id, Alert.id)
        .ext(distinct_on(Alert.incident_id))
        .subquery("first_alert")
    )


def _reopened_incidents() -> Any:
    """Incidents moved out of a resolved status at least once (the partial index
    ``ix_incident_timeline_reopens`` holds exactly these entries)."""
    return (
        select(TimelineEntry.incident_id)
        .where(
            TimelineEntry.kind == "status_change",
            TimelineEntry.from_status.in_(REOPENED_FROM),
            not_(TimelineEntry.to_status.in_(sorted(RESOLVED_STATUSES))),
        )
        .distinct()
        .subquery("reopened")
    )


def _policy_targets() -> Any:
    """Each policy version's targets in seconds, one narrow row per (version, severity),
    so the per-incident rows do not carry the policy's JSON."""
    target = func.jsonb_each(SlaPolicy.targets).table_valued(
        column("key", String), column("value", JSONB)
    )
    return (
        select(
            SlaPolicy.id,
            SlaPolicy.version,
            target.c.key.label("severity"),
            (cast(target.c.value["response_minutes"].astext, Integer) * 60).label("response"),
            (cast(target.c.value["resolution_minutes"].astext, Integer) * 60).label("resolution"),
        )
        .select_from(SlaPolicy)
        .join(target, true())
        .subquery("policy_target")
    )


def metrics(
    principal: Principal,
    group_by: Sequence[str],
    period: TimeRange,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """One row per group of the visible incidents opened in ``period``; see the module
    docstring for what each number counts. Groups are ordered by their labels."""
    cohort = _cohort(principal, group_by, period, now or utcnow())
    groups = [cohort.c[f"group_{name}"] for name in group_by]
    statement = (
        select(*groups, *_measures(cohort))
        .group_by(*groups)
        .order_by(*(group.asc().nulls_last() for group in groups))
    )
    # The planner's cost for the per-group sorts of a large cohort crosses the JIT
    # threshold, and compiling the expressions then takes longer (~0.7 s at 100,000
    # incidents) than running them; the sorts fit in memory with a little more of it.
    db.session.execute(text(REPORT_SETTINGS))
    return [_metrics_row(row._mapping, group_by) for row in db.session.execute(statement)]


def _cohort(principal: Principal, group_by: Sequence[str], period: TimeRange, now: datetime) -> Any:
    """One row per visible incident opened in ``period``: its group labels and the facts
    the measures aggregate (each computed once per incident)."""
    assignee = aliased(User)
    first_alert = _first_alerts()
    reopened = _reopened_incidents()
    target = _policy_targets()
    dimensions: dict[str, Any] = {
        "severity": Incident.severity,
        "assignee": assignee.username,
        "source": func.coalesce(first_alert.c.opener, MANUAL_SOURCE),
        "rule": first_alert.c.rule_name,
        "week": _utc_period("week"),
        "month": _utc_period("month"),
    }
    age = now - Incident.created_at
    statement = (
        select(
            *(dimensions[name].label(f"group_{name}") for name in group_by),
            Incident.status.label("status"),
            target.c.version.label("policy_version"),
            _seconds(Incident.responded_at - Incident.created_at).label("to_response"),
            _seconds(Incident.resolved_at - Incident.created_at).label("to_resolution"),
            (
                _seconds(func.coalesce(Incident.responded_at, now) - Incident.created_at)
                <= target.c.response
            ).label("response_met"),
            (
                _seconds(func.coalesce(Incident.resolved_at, now) - Incident.created_at)
                <= target.c.resolution
            ).label("resolution_met"),
            reopened.c.incident_id.is_not(None).label("reopened"),
            (_seconds(age) / DAY_SECONDS).label("age_days"),
        )
        .join(
            target,
            and_(target.c.id == Incident.sla_policy_id, target.c.severity == Incident.severity),
        )
        .outerjoin(reopened, reopened.c.incident_id == Incident.id)
        .where(incidents.visibility(principal), period.condition(Incident.created_at))
    )
    if "assignee" in group_by:
        statement = statement.outerjoin(assignee, assignee.id == Incident.assignee_id)
    if {"source", "rule"} & set(group_by):
        statement = statement.outerjoin(first_alert, first_alert.c.incident_id == Incident.id)
    return statement.subquery("cohort")


def _measures(cohort: Any) -> list[ColumnElement[Any]]:
    """The aggregate columns of :func:`metrics`, in the order they are answered."""
    c = cohort.c
    resolved = c.to_resolution.is_not(None)
    unresolved = c.to_resolution.is_(None)
    backlog = [
        _count_where(
            and_(unresolved, c.age_days >= low, c.age_days < high if high is not None else true())
        ).label(f"backlog_{name}")
        for name, low, high in BACKLOG_AGES
    ]
    return [
        func.count().label("opened"),
        _count_where(resolved).label("resolved"),
        _count_where(c.status == "closed").label("closed"),
        _count_where(c.status == "false_positive").label("false_positives"),
        _count_where(c.reopened).label("reopened"),
        func.avg(c.to_response).label("mtta_mean_seconds"),
        func.percentile_cont(0.5).within_group(c.to_response).label("mtta_p50_seconds"),
        func.percentile_cont(0.9).within_group(c.to_response).label("mtta_p90_seconds"),
        func.avg(c.to_resolution).label("mttr_mean_seconds"),
        func.percentile_cont(0.5).within_group(c.to_resolution).label("mttr_p50_seconds"),
        func.percentile_cont(0.9).within_group(c.to_resolution).label("mttr_p90_seconds"),
        func.avg(case((c.response_met, 1.0), else_=0.0)).label("response_sla_compliance"),
        func.avg(case((c.resolution_met, 1.0), else_=0.0)).label("resolution_sla_compliance"),
        _ratio(_count_where(c.status == "false_positive"), func.count()).label(
            "false_positive_rate"
        ),
        _ratio(_count_where(c.reopened), _count_where(resolved | c.reopened)).label("reopen_rate"),
        *backlog,
        func.array_agg(c.policy_version.distinct()).label("sla_policy_versions"),
    ]


def _metrics_row(row: Any, group_by: Sequence[str]) -> dict[str, Any]:
    answer = {key: row[key] for key in row if not key.startswith("group_")}
    for key, value in answer.items():
        if value is not None and key.endswith(("_seconds", "_compliance", "_rate")):
            answer[key] = float(value)
    answer["sla_policy_versions"] = sorted(answer["sla_policy_versions"])
    answer["group"] = {name: row[f"group_{name}"] for name in group_by}
    return answer


def rule_efficacy(
    principal: Principal, by: str, period: TimeRange, limit: int | None = None
) -> list[dict[str, Any]]:
    """Per detection rule (or per rule kind, ``by="source"``) over the alerts raised in
    ``period``: alerts, events matched (the matches folded into them), escalated and
    dismissed alerts, the visible incidents they opened and those closed as
    ``false_positive``, and the precision: alerts confirmed (escalated to an incident that
    was not a false positive) over alerts with a verdict (confirmed, false positive or
    dismissed). Noisiest first: the most alerts that were not confirmed.

    An alert escalated to an incident the caller may not see has no verdict for them.
    """
    incident = aliased(Incident)
    visible_incident = and_(
        incident.id == Alert.incident_id, incidents.visibility(principal, incident)
    )
    false_positive = incident.status == "false_positive"
    confirmed = _count_where(incident.id.is_not(None) & not_(false_positive))
    false_alarms = _count_where(false_positive)
    dismissed = _count_where(Alert.status == "dismissed")
    kind = DetectionRule.kind.label("source")
    grouped: list[ColumnElement[Any]] = [kind]
    keys: list[ColumnElement[Any]] = [null().label("rule_id"), null().label("rule"), kind]
    if by == "rule":
        grouped = keys = [Alert.rule_id.label("rule_id"), Alert.rule_name.label("rule"), kind]
    noise = func.count() - confirmed
    statement = (
        select(
            *keys,
            func.count().label("alerts"),
            func.sum(Alert.count).label("events_matched"),
            _count_where(Alert.incident_id.is_not(None)).label("escalated"),
            dismissed.label("dismissed"),
            func.count(incident.id.distinct()).label("incidents"),
            func.count(incident.id.distinct()).filter(false_positive).label("false_positives"),
            _ratio(confirmed, confirmed + false_alarms + dismissed).label("precision"),
        )
        .select_from(Alert)
        .outerjoin(DetectionRule, DetectionRule.id == Alert.rule_id)
        .outerjoin(incident, visible_incident)
        # Rules only: alerts other tools sent (source set) have no rule to rate.
        .where(period.condition(Alert.created_at), Alert.source.is_(None))
        .group_by(*grouped)
        .order_by(noise.desc(), func.sum(Alert.count).desc(), *grouped)
        .limit(limit)
    )
    rows = [dict(row._mapping) for row in db.session.execute(statement)]
    for row in rows:
        row["events_matched"] = int(row["events_matched"])
        row["precision"] = None if row["precision"] is None else float(row["precision"])
    return rows


def incident_export(principal: Principal, incident: Incident) -> dict[str, Any]:
    """Everything stored about one incident that the caller may see: the incident, its
    timeline, the alerts escalated into it, its visible IOCs, and the ATT&CK techniques
    named by the tags of the rules behind those alerts."""
    alerts = list(
        db.session.scalars(select(Alert).where(Alert.incident_id == incident.id).order_by(Alert.id))
    )
    rule_ids = {alert.rule_id for alert in alerts if alert.rule_id is not None}
    tags = db.session.scalars(
        select(func.unnest(DetectionRule.tags)).where(DetectionRule.id.in_(rule_ids))
    )
    return {
        "incident": incident,
        "timeline": incidents.timeline(incident),
        "alerts": alerts,
        "iocs": intel.incident_indicators(incident, principal),
        "attack_techniques": sorted(set(filter(None, map(_technique, tags)))),
        "exported_at": utcnow(),
    }


def _technique(tag: str) -> str | None:
    """The ATT&CK technique a Sigma tag names (``attack.t1059.001`` -> ``T1059.001``)."""
    prefix, _, name = tag.lower().partition(".")
    if prefix != "attack" or not (name[:1] == "t" and name[1:5].isdigit()):
        return None
    return name.upper()
