"""reports: versioned SLA policies, each incident's policy version, and the report indexes

The first policy version holds the targets that were hard-coded per severity until now
(models/incidents.py), so every existing incident keeps the due times it had; a new
incident's policy defaults to the newest version (current_sla_policy_id()). The
partial index on the timeline serves the reopen rate of /reports/metrics.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 22:00:00

"""

import json

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# Minutes to first response and to resolution, per severity, as shipped before policies.
FIRST_POLICY_TARGETS = {
    "critical": {"response_minutes": 15, "resolution_minutes": 60},
    "high": {"response_minutes": 60, "resolution_minutes": 4 * 60},
    "medium": {"response_minutes": 4 * 60, "resolution_minutes": 24 * 60},
    "low": {"response_minutes": 24 * 60, "resolution_minutes": 5 * 24 * 60},
}


def upgrade():
    op.create_table(
        "sla_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("targets", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("version"),
    )
    op.execute(
        sa.text(
            "INSERT INTO sla_policies (version, targets, note, created_at)"
            " VALUES (1, CAST(:targets AS jsonb), :note, now())"
        ).bindparams(
            targets=json.dumps(FIRST_POLICY_TARGETS),
            note="the targets shipped before SLA policies",
        )
    )
    # The database itself gives every new incident the current version, whatever writes
    # the row (the API, a bulk load, a script): a default may not hold a subquery, but it
    # may call a function that does.
    op.execute(
        "CREATE FUNCTION current_sla_policy_id() RETURNS integer LANGUAGE sql STABLE"
        " AS 'SELECT id FROM sla_policies ORDER BY version DESC LIMIT 1'"
    )
    op.add_column("incidents", sa.Column("sla_policy_id", sa.Integer(), nullable=True))
    op.execute("UPDATE incidents SET sla_policy_id = current_sla_policy_id()")
    op.alter_column(
        "incidents",
        "sla_policy_id",
        nullable=False,
        server_default=sa.text("current_sla_policy_id()"),
    )
    op.create_foreign_key(
        "incidents_sla_policy_id_fkey", "incidents", "sla_policies", ["sla_policy_id"], ["id"]
    )
    op.create_index("ix_incidents_sla_policy_id", "incidents", ["sla_policy_id"])
    op.create_index(
        "ix_incident_timeline_reopens",
        "incident_timeline",
        ["incident_id"],
        postgresql_where=sa.text(
            "kind = 'status_change' AND from_status IN ('resolved', 'closed')"
        ),
    )


def downgrade():
    op.drop_index("ix_incident_timeline_reopens", table_name="incident_timeline")
    op.drop_index("ix_incidents_sla_policy_id", table_name="incidents")
    op.drop_constraint("incidents_sla_policy_id_fkey", "incidents", type_="foreignkey")
    op.drop_column("incidents", "sla_policy_id")
    op.execute("DROP FUNCTION current_sla_policy_id()")
    op.drop_table("sla_policies")
