"""Schemas for threat rules, events and alerts: what a client may send, and (for the OpenAPI
document) the exact shape of every answer of ``resources/detection.py``.

Events themselves have no schema: any JSON object is an event, and rules decide what its
fields mean.
"""

from __future__ import annotations

from marshmallow import fields, validate

from models.vocabulary import (
    ALERT_STATUSES,
    OBSERVABLE_EXTRA_TYPES,
    RULE_KINDS,
    SEVERITIES,
    TLP_LEVELS,
)
from schemas.common import (
    ChangeSchema,
    ComputedList,
    JsonBoolean,
    QueryBoolean,
    ResponseSchema,
    StrictSchema,
    TimeRangeQuerySchema,
    identifier,
    one_of,
    page_of,
    text,
    timestamp,
    trimmed_string,
    username_of,
    utc_datetime,
)
from schemas.incidents import (
    DESCRIPTION_MAX,
    IncidentCreateSchema,
    IncidentSchema,
    TechniqueId,
    tag_field,
    tags_field,
    technique_details,
    techniques_field,
)
from security.modules.alert_intake import MAX_BULK_ALERTS, MAX_OBSERVABLE_LENGTH, MAX_OBSERVABLES
from security.modules.alerts import MAX_EVENTS
from security.modules.detection import MAX_GROUP_FIELDS
from security.modules.ioc_values import IOC_TYPES

MAX_TEST_EVENTS = 1_000
OBSERVABLE_TYPES = (*IOC_TYPES, *OBSERVABLE_EXTRA_TYPES)
ALERT_ANALYST_STATUSES = ("acknowledged", "dismissed")


def _group_by_field(**kwargs) -> fields.List:
    return fields.List(
        trimmed_string(max_length=200),
        allow_none=True,
        validate=validate.Length(min=1, max=MAX_GROUP_FIELDS),
        metadata={
            "description": "event fields whose values group repeated matches into one alert; "
            "null groups by the event's host, user and source IP"
        },
        **kwargs,
    )


class RuleCreateSchema(StrictSchema):
    """A seed-form rule, as JSON. (Sigma rules are sent as YAML; see SigmaRuleQuerySchema.)"""

    name = trimmed_string(max_length=200, required=True)
    description = fields.String(load_default="", validate=validate.Length(max=DESCRIPTION_MAX))
    severity = fields.String(required=True, validate=validate.OneOf(SEVERITIES))
    detection = fields.Dict(
        required=True,
        metadata={
            "description": "{'ioc': {'type': 'ip', 'value': '192.168.0.0/16'}}; value may be "
            "a list; {'type': 'domain', 'min_confidence': 80} matches stored IOCs"
        },
    )
    enabled = JsonBoolean(load_default=True)
    group_by = _group_by_field(load_default=None)


class SigmaRuleQuerySchema(StrictSchema):
    """Query parameters of a Sigma rule upload (the body is the rule's YAML)."""

    severity = fields.String(
        validate=validate.OneOf(SEVERITIES),
        metadata={"description": "overrides the rule's level"},
    )
    enabled = QueryBoolean(load_default=True)


class RuleUpdateSchema(ChangeSchema):
    name = trimmed_string(max_length=200)
    description = fields.String(validate=validate.Length(max=DESCRIPTION_MAX))
    severity = fields.String(validate=validate.OneOf(SEVERITIES))
    enabled = JsonBoolean()
    group_by = _group_by_field()


class RuleListQuerySchema(TimeRangeQuerySchema):
    kind = fields.String(validate=validate.OneOf(RULE_KINDS))
    severity = fields.String(validate=validate.OneOf(SEVERITIES))
    enabled = QueryBoolean()


class RuleTestSchema(StrictSchema):
    events = fields.List(
        fields.Dict(),
        required=True,
        validate=validate.Length(min=1, max=MAX_TEST_EVENTS),
        metadata={"description": f"sample events (JSON objects), at most {MAX_TEST_EVENTS}"},
    )


class AlertListQuerySchema(TimeRangeQuerySchema):
    status = fields.String(validate=validate.OneOf(ALERT_STATUSES))
    severity = fields.String(validate=validate.OneOf(SEVERITIES))
    rule_id = fields.Integer(validate=validate.Range(min=1))
    incident_id = fields.Integer(
        validate=validate.Range(min=1),
        metadata={"description": "alerts merged into (or escalated to) this incident"},
    )
    source = trimmed_string(max_length=64, metadata={"description": "the sending tool"})
    tlp = fields.String(validate=validate.OneOf(TLP_LEVELS))
    tag = tag_field()
    technique = TechniqueId()


class ObservableSchema(StrictSchema):
    type = fields.String(required=True, validate=validate.OneOf(OBSERVABLE_TYPES))
    value = trimmed_string(max_length=MAX_OBSERVABLE_LENGTH, required=True)


class AlertIntakeSchema(StrictSchema):
    """An alert another tool formed (a SIEM, EDR or SOAR); the same ``source`` and
    ``source_ref`` again counts into the alert already received."""

    source = trimmed_string(
        max_length=64, required=True, metadata={"description": "the sending tool, e.g. splunk"}
    )
    source_ref = trimmed_string(
        max_length=255, required=True, metadata={"description": "the tool's own id of the alert"}
    )
    title = trimmed_string(max_length=200, required=True)
    description = fields.String(load_default="", validate=validate.Length(max=DESCRIPTION_MAX))
    severity = fields.String(required=True, validate=validate.OneOf(SEVERITIES))
    tlp = fields.String(load_default="amber", validate=validate.OneOf(TLP_LEVELS))
    occurred_at = utc_datetime(load_default=None)
    tags = tags_field(load_default=list)
    techniques = techniques_field(load_default=list)
    observables = fields.List(
        fields.Nested(ObservableSchema),
        load_default=list,
        validate=validate.Length(max=MAX_OBSERVABLES),
    )
    raw = fields.Dict(
        load_default=None,
        allow_none=True,
        metadata={"description": "the tool's original alert as JSON, at most 64 KiB"},
    )


class AlertBulkSchema(StrictSchema):
    alerts = fields.List(
        fields.Nested(AlertIntakeSchema),
        required=True,
        validate=validate.Length(min=1, max=MAX_BULK_ALERTS),
    )


class AlertUpdateSchema(StrictSchema):
    status = fields.String(required=True, validate=validate.OneOf(ALERT_ANALYST_STATUSES))
    comment = fields.String(validate=validate.Length(max=1000))


class AlertEscalateSchema(IncidentCreateSchema):
    """The incident's fields; all optional, by default taken from the alert."""

    title = trimmed_string(max_length=200)
    severity = fields.String(validate=validate.OneOf(SEVERITIES))
    description = fields.String(validate=validate.Length(max=DESCRIPTION_MAX))


# --- responses ----------------------------------------------------------------------------

_MATCHED = fields.Dict(
    keys=fields.String(),
    values=fields.List(fields.Raw()),
    required=True,
    metadata={"description": "event field (normalised name) -> its values that the rule tested"},
)
_GROUP_VALUES = fields.Dict(keys=fields.String(), values=fields.String(), required=True)


class RuleSchema(ResponseSchema):
    id = identifier()
    kind = one_of(RULE_KINDS)
    name = text()
    description = text()
    severity = one_of(SEVERITIES)
    enabled = fields.Boolean(required=True)
    source = text(nullable=True, metadata={"description": "a Sigma rule's YAML"})
    detection = fields.Dict(required=True, allow_none=True)
    sigma_id = text(nullable=True)
    tags = fields.List(fields.String(), required=True)
    group_by = fields.List(fields.String(), required=True, allow_none=True)
    version = fields.Integer(required=True, validate=validate.Range(min=1))
    created_by = username_of("created_by")
    created_at = timestamp()
    updated_at = timestamp()


class AlertObservableSchema(ResponseSchema):
    type = one_of(OBSERVABLE_TYPES)
    value = text()
    known_bad = fields.Boolean(
        required=True, metadata={"description": "an active stored IOC matched it at intake"}
    )
    ioc_ids = fields.List(
        fields.Integer(),
        required=True,
        metadata={"description": "the stored IOCs it matched (exactly or inside a network)"},
    )


class AlertSchema(ResponseSchema):
    id = identifier()
    rule_id = fields.Integer(required=True, allow_none=True)
    rule_name = text(nullable=True, metadata={"description": "null for a tool's alert"})
    source = text(nullable=True, metadata={"description": "the sending tool; null for a rule's"})
    source_ref = text(nullable=True)
    title = text()
    description = text()
    tlp = one_of(TLP_LEVELS)
    occurred_at = timestamp(nullable=True)
    tags = fields.List(fields.String(), required=True)
    techniques = fields.List(fields.String(), required=True)
    technique_details = technique_details()
    observables = fields.List(fields.Nested(AlertObservableSchema), required=True)
    merge_carried = fields.Dict(
        required=True,
        allow_none=True,
        metadata={
            "description": "what merging into its incident added there (an unmerge removes it)"
        },
    )
    severity = one_of(SEVERITIES)
    status = one_of(ALERT_STATUSES)
    grouping = fields.Boolean(required=True)
    group_key = text()
    group_values = _GROUP_VALUES
    count = fields.Integer(required=True, validate=validate.Range(min=1))
    first_seen = timestamp()
    last_seen = timestamp()
    sample_event = fields.Raw(
        required=True,
        metadata={"description": "the matching event, or a tool's raw original (bounded)"},
    )
    matched = _MATCHED
    incident_id = fields.Integer(required=True, allow_none=True)
    allowed_transitions = ComputedList(
        lambda alert: list(alert.allowed_transitions()),
        fields.String(validate=validate.OneOf(ALERT_STATUSES)),
    )
    version = fields.Integer(required=True, validate=validate.Range(min=1))
    created_at = timestamp()
    updated_at = timestamp()


class EventMatchSchema(ResponseSchema):
    event_index = fields.Integer(required=True)
    rule_id = identifier()
    rule_name = text()
    severity = one_of(SEVERITIES)
    alert_id = fields.Integer(required=True, allow_none=True)
    matched = _MATCHED


class AlertWriteSchema(ResponseSchema):
    id = identifier()
    rule_id = identifier()
    severity = one_of(SEVERITIES)
    created = fields.Boolean(required=True, metadata={"description": "false: counted into it"})
    new_matches = fields.Integer(required=True)
    count = fields.Integer(required=True)
    group_values = _GROUP_VALUES
    incident_id = fields.Integer(required=True, allow_none=True)


class IngestResultSchema(ResponseSchema):
    events = fields.Integer(required=True)
    rules_evaluated = fields.Integer(required=True)
    match_count = fields.Integer(required=True)
    matches = fields.List(fields.Nested(EventMatchSchema), required=True)
    matches_truncated = fields.Boolean(required=True)
    alert_count = fields.Integer(required=True)
    alerts = fields.List(fields.Nested(AlertWriteSchema), required=True)
    incidents_created = fields.List(fields.Integer(), required=True)


class DryRunMatchSchema(ResponseSchema):
    event_index = fields.Integer(required=True)
    matched = _MATCHED
    group_values = _GROUP_VALUES


class DryRunSchema(ResponseSchema):
    events = fields.Integer(required=True)
    match_count = fields.Integer(required=True)
    matches = fields.List(fields.Nested(DryRunMatchSchema), required=True)
    matches_truncated = fields.Boolean(required=True)


class EscalationSchema(ResponseSchema):
    alert = fields.Nested(AlertSchema, required=True)
    incident = fields.Nested(IncidentSchema, required=True)


class AlertReceiptSchema(ResponseSchema):
    index = fields.Integer(required=True, metadata={"description": "position in the request"})
    id = identifier()
    created = fields.Boolean(required=True, metadata={"description": "false: counted into it"})
    count = fields.Integer(required=True)
    new_observables = fields.Integer(required=True)


class AlertBulkResultSchema(ResponseSchema):
    received = fields.Integer(required=True)
    created = fields.Integer(required=True)
    updated = fields.Integer(required=True)
    alerts = fields.List(fields.Nested(AlertReceiptSchema), required=True)


EVENTS_DESCRIPTION = f"one event (a JSON object) or a list of at most {MAX_EVENTS}"
RulePageSchema = page_of(RuleSchema, "RulePageSchema")
AlertPageSchema = page_of(AlertSchema, "AlertPageSchema")
