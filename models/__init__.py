"""SQLAlchemy models, one module per area; the schema itself comes from ``migrations/``.

Importing this package registers every model on :data:`db` (Alembic and the app need them
all loaded), so each area's module is imported here.
"""

from models.audit import AuditEntry
from models.auth_guard import AuthBlock, LoginFailure
from models.base import db, utcnow
from models.credentials import ApiKey, CredentialUsage
from models.detection import Alert, DetectionRule
from models.incidents import IdempotencyRecord, Incident, TimelineEntry
from models.intel import IncidentIndicator, Indicator
from models.taxii import TaxiiCollection, TaxiiFeed, TaxiiObject, TaxiiStatus
from models.users import AuthToken, User

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
    "IncidentIndicator",
    "Indicator",
    "LoginFailure",
    "TaxiiCollection",
    "TaxiiFeed",
    "TaxiiObject",
    "TaxiiStatus",
    "TimelineEntry",
    "User",
    "db",
    "utcnow",
]
