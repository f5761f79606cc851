"""Schemas for reports: the metrics and rule-efficacy queries and tables, and the
incident export. Every answer row is flat (numbers and labels) so that the CSV form of a
table has the same columns as its JSON form (``security/modules/report_documents.py``)."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate

from models.vocabulary import EFFICACY_GROUPINGS, REPORT_GROUPINGS, RULE_KINDS
from schemas.common import (
    ResponseSchema,
    StrictSchema,
    one_of,
    text,
    timestamp,
    utc_datetime,
)
from schemas.detection import AlertSchema
from schemas.incidents import IncidentSchema, TimelineEntrySchema
from schemas.iocs import IocSchema

MAX_GROUPINGS = 2
MAX_RULES = 100


class GroupingList(fields.String):
    """``severity`` or ``week,severity``: up to two dimensions; a repeated one counts once
    (grouping twice by severity is grouping by severity)."""

    def _deserialize(  # type: ignore[override]  # a list of words from one string
        self, value: Any, attr: str | None, data: Any, **kwargs
    ) -> list[str]:
        names = list(dict.fromkeys(super()._deserialize(value, attr, data, **kwargs).split(",")))
        unknown = sorted(set(names) - set(REPORT_GROUPINGS))
        if unknown:
            raise ValidationError(f"unknown grouping {', '.join(unknown)}")
        if len(names) > MAX_GROUPINGS:
            raise ValidationError(f"up to {MAX_GROUPINGS} different groupings")
        return names


class ReportRangeQuerySchema(StrictSchema):
    """``[created_after, created_before)``: incidents (or alerts) opened in the range."""

    created_after = utc_datetime()
    created_before = utc_datetime()
    ranges = (("created_after", "created_before"),)


class MetricsQuerySchema(ReportRangeQuerySchema):
    group_by = GroupingList(
        load_default=["severity"],
        metadata={
            "description": (
                f"one or two of {', '.join(REPORT_GROUPINGS)}, comma-separated (e.g. week,severity)"
            ),
            "pattern": f"^({'|'.join(REPORT_GROUPINGS)})(,({'|'.join(REPORT_GROUPINGS)}))?$",
        },
    )


class RuleEfficacyQuerySchema(ReportRangeQuerySchema):
    by = fields.String(load_default="rule", validate=validate.OneOf(EFFICACY_GROUPINGS))
    limit = fields.Integer(load_default=MAX_RULES, validate=validate.Range(min=1, max=MAX_RULES))


# --- responses ----------------------------------------------------------------------------


def _seconds(what: str) -> fields.Float:
    return fields.Float(required=True, allow_none=True, metadata={"description": what})


def _fraction(what: str) -> fields.Float:
    return fields.Float(
        required=True,
        allow_none=True,
        validate=validate.Range(min=0, max=1),
        metadata={"description": f"{what}; null when nothing was measured"},
    )


def _count(what: str = "") -> fields.Integer:
    return fields.Integer(
        required=True, validate=validate.Range(min=0), metadata={"description": what}
    )


class MetricsRowSchema(ResponseSchema):
    group = fields.Dict(
        keys=fields.String(validate=validate.OneOf(REPORT_GROUPINGS)),
        values=fields.String(allow_none=True),
        required=True,
        metadata={"description": "grouping -> this row's value (null: no assignee or rule)"},
    )
    opened = _count("incidents opened in the range")
    resolved = _count("of those, now resolved, closed or false positive")
    closed = _count("of those, now closed")
    false_positives = _count("of those, now false positive")
    reopened = _count("of those, reopened at least once")
    mtta_mean_seconds = _seconds("mean time from opened to the first move out of new")
    mtta_p50_seconds = _seconds("median of the same")
    mtta_p90_seconds = _seconds("90th percentile of the same")
    mttr_mean_seconds = _seconds("mean time from opened to resolved")
    mttr_p50_seconds = _seconds("median of the same")
    mttr_p90_seconds = _seconds("90th percentile of the same")
    response_sla_compliance = _fraction("share responded within (or not yet past) the target")
    resolution_sla_compliance = _fraction("share resolved within (or not yet past) the target")
    false_positive_rate = _fraction("false positives over opened")
    reopen_rate = _fraction("reopened over ever resolved")
    backlog_under_1d = _count("still open, opened under a day ago")
    backlog_1d_to_7d = _count("still open, opened 1 to 7 days ago")
    backlog_7d_to_30d = _count("still open, opened 7 to 30 days ago")
    backlog_over_30d = _count("still open, opened over 30 days ago")
    sla_policy_versions = fields.List(
        fields.Integer(),
        required=True,
        metadata={"description": "the SLA policy versions these incidents are measured against"},
    )


class MetricsSchema(ResponseSchema):
    created_after = timestamp(nullable=True)
    created_before = timestamp(nullable=True)
    group_by = fields.List(fields.String(validate=validate.OneOf(REPORT_GROUPINGS)), required=True)
    rows = fields.List(fields.Nested(MetricsRowSchema), required=True)


class RuleEfficacyRowSchema(ResponseSchema):
    rule_id = fields.Integer(required=True, allow_none=True)
    rule = text(nullable=True)
    source = one_of(RULE_KINDS, nullable=True)
    alerts = _count("alerts raised in the range")
    events_matched = _count("matches folded into those alerts")
    escalated = _count("alerts escalated to an incident")
    dismissed = _count("alerts dismissed")
    incidents = _count("visible incidents opened from them")
    false_positives = _count("of those, closed as false_positive")
    precision = _fraction("confirmed alerts over alerts with a verdict")


class RuleEfficacySchema(ResponseSchema):
    created_after = timestamp(nullable=True)
    created_before = timestamp(nullable=True)
    by = one_of(EFFICACY_GROUPINGS)
    rows = fields.List(fields.Nested(RuleEfficacyRowSchema), required=True)


class IncidentExportSchema(ResponseSchema):
    incident = fields.Nested(IncidentSchema, required=True)
    timeline = fields.List(fields.Nested(TimelineEntrySchema), required=True)
    alerts = fields.List(fields.Nested(AlertSchema), required=True)
    iocs = fields.List(fields.Nested(IocSchema), required=True)
    attack_techniques = fields.List(fields.String(), required=True)
    exported_at = timestamp()
