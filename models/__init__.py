"""SQLAlchemy models, one module per area; the schema itself comes from ``migrations/``.

Importing this package registers every model on :data:`db` (Alembic and the app need them
all loaded), so each area's module is imported here.
"""

from models.api_keys import ApiKey, CredentialUsage
from models.attack import AttackTechnique
from models.audit import AuditEntry
from models.base import db, utcnow
from models.blocks import AuthBlock, LoginFailure
from models.comments import Comment, CommentRevision
from models.custom_fields import CustomField
from models.detection import Alert, AlertObservable, DetectionRule
from models.evidence import Evidence
from models.incident_templates import IncidentTemplate
from models.incidents import IdempotencyRecord, Incident, TimelineEntry
from models.iocs import IncidentIoc, Ioc
from models.notifications import NotificationChannel
from models.sla_policies import SlaPolicy
from models.tasks import Task
from models.taxii import TaxiiCollection, TaxiiFeed, TaxiiObject, TaxiiStatus
from models.users import (
    AuthToken,
    MfaChallenge,
    MfaPolicy,
    MfaRecoveryCode,
    PasswordHistoryEntry,
    PasswordReset,
    User,
)
from models.webhooks import IocExpiryNotice, SlaTimerMark, Webhook, WebhookDelivery

__all__ = [
    "Alert",
    "AlertObservable",
    "ApiKey",
    "AttackTechnique",
    "AuditEntry",
    "AuthBlock",
    "AuthToken",
    "Comment",
    "CommentRevision",
    "CredentialUsage",
    "CustomField",
    "DetectionRule",
    "Evidence",
    "IdempotencyRecord",
    "Incident",
    "IncidentIoc",
    "IncidentTemplate",
    "Ioc",
    # automation (issue 16)
    "IocExpiryNotice",
    "LoginFailure",
    "MfaChallenge",
    "MfaPolicy",
    "MfaRecoveryCode",
    "NotificationChannel",
    "PasswordHistoryEntry",
    "PasswordReset",
    "SlaPolicy",
    "SlaTimerMark",
    "Task",
    "TaxiiCollection",
    "TaxiiFeed",
    "TaxiiObject",
    "TaxiiStatus",
    "TimelineEntry",
    "User",
    "Webhook",
    "WebhookDelivery",
    "db",
    "utcnow",
]
