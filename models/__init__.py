"""SQLAlchemy models, one module per area; the schema itself comes from ``migrations/``.

Importing this package registers every model on :data:`db` (Alembic and the app need them
all loaded), so each area's module is imported here.
"""

from models.api_keys import ApiKey, CredentialUsage
from models.audit import AuditEntry
from models.base import db, utcnow
from models.blocks import AuthBlock, LoginFailure
from models.detection import Alert, DetectionRule
from models.incidents import IdempotencyRecord, Incident, TimelineEntry
from models.iocs import IncidentIoc, Ioc
from models.sla_policies import SlaPolicy
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

__all__ = [
    "Alert",
    "ApiKey",
    "AuditEntry",
    "AuthBlock",
    "AuthToken",
    "CredentialUsage",
    "DetectionRule",
    "IdempotencyRecord",
    "Incident",
    "IncidentIoc",
    "Ioc",
    "LoginFailure",
    "MfaChallenge",
    "MfaPolicy",
    "MfaRecoveryCode",
    "PasswordHistoryEntry",
    "PasswordReset",
    "SlaPolicy",
    "TaxiiCollection",
    "TaxiiFeed",
    "TaxiiObject",
    "TaxiiStatus",
    "TimelineEntry",
    "User",
    "db",
    "utcnow",
]
