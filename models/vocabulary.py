"""The product's vocabularies: the fixed words a field may hold, each defined once.

Models, schemas (validation and the OpenAPI enums), settings (``config.py``) and the
engine (STIX TLP markings, rule checks) import them from here. Rules *about* the words
(which status may follow which, SLA targets per severity) belong to the model that
enforces them, not here. This module imports nothing from the project, so anything may
import it without a cycle.
"""

from __future__ import annotations

# Least to most severe; the order ranks alerts and decides which severity opens an incident.
SEVERITIES = ("low", "medium", "high", "critical")
# Least to most restrictive (TLP 2.0); the order decides which TLP wins when several apply.
TLP_LEVELS = ("clear", "green", "amber", "amber+strict", "red")

INCIDENT_STATUSES = (
    "new",
    "triaged",
    "investigating",
    "contained",
    "resolved",
    "closed",
    "false_positive",
)
TIMELINE_KINDS = (
    "created",
    "status_change",
    "edit",
    "comment",
    # case work, part A: alerts merged in or out, a duplicate merged in (or into another)
    "alert_merge",
    "alert_unmerge",
    "incident_merge",
    # case work, part B: a task's or a piece of evidence's change
    "task",
    "evidence",
)

ALERT_STATUSES = ("open", "acknowledged", "dismissed", "escalated")
RULE_KINDS = ("seed", "sigma")

ROLES = ("admin", "analyst", "viewer")
# The outcome of an audited action, and of one use of a credential.
OUTCOMES = ("success", "failure", "denied")
# What a login block holds back: one account, or one client address.
BLOCK_SCOPES = ("account", "ip")

FEED_AUTH_TYPES = ("none", "basic", "bearer")

# What /reports/metrics groups incidents by; ``source`` is how an incident was opened:
# ``manual``, the kind (``RULE_KINDS``) of the rule whose alert was escalated, or the tool
# (an alert's ``source``) that sent it.
REPORT_GROUPINGS = ("severity", "assignee", "source", "rule", "week", "month")
MANUAL_SOURCE = "manual"
# What /reports/rules groups alerts by: each rule, or each rule kind.
EFFICACY_GROUPINGS = ("rule", "source")

# automation (issue 16): a webhook delivery's life (``failed`` is the dead letter), the
# SLA clocks an incident has and the stages a timer announces on each.
DELIVERY_STATUSES = ("pending", "delivering", "delivered", "failed")
SLA_KINDS = ("response", "resolution")
SLA_STAGES = ("approaching", "breached")
# case work, part A: what an alert's observables may be: the IOC types
# (security.modules.ioc_values.IOC_TYPES) plus these, which the IOC store does not hold.
OBSERVABLE_EXTRA_TYPES = ("filename", "hostname", "user", "process", "registry")
# --- case work (issue 15, part B): tasks, custom fields, evidence ---
TASK_STATUSES = ("todo", "in_progress", "done", "cancelled")
# The statuses of a task still to do: what /tasks?status=open and the resolve check mean.
OPEN_TASK_STATUSES = ("todo", "in_progress")
TASK_STATUS_FILTERS = (*TASK_STATUSES, "open")
CUSTOM_FIELD_TYPES = ("text", "number", "boolean", "date", "choice")
