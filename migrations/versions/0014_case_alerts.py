"""case work (part A): alerts from other tools, their observables, merges, tags and ATT&CK

Alerts gain what a SIEM, EDR or SOAR sends (source and its own id, title, description,
TLP, time, tags, ATT&CK techniques) and stay one table with the rules' alerts. The unique
index uq_alerts_source_ref on (source, source_ref) is the arbiter of INSERT ... ON
CONFLICT DO UPDATE, so a tool's retries (also concurrent ones) count into one alert; rule
alerts leave source NULL, which never conflicts. An alert's observables are rows of
alert_observables, with an inet column (GiST) so "which stored network holds this
address" is an index scan. merge_carried records what merging an alert into an incident
added to it, so unmerging removes exactly that. Incidents gain tags, techniques and the
incident a duplicate was merged into; attack_techniques is the loaded ATT&CK catalogue.

Revision ID: 0014
Revises: 0011
Create Date: 2026-11-30 00:50:00

"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

EMPTY_ARRAY = sa.text("'{}'")


def upgrade():
    op.alter_column("alerts", "rule_name", existing_type=sa.String(length=200), nullable=True)
    op.add_column("alerts", sa.Column("title", sa.String(length=200), server_default="", nullable=False))
    op.execute("UPDATE alerts SET title = rule_name")
    op.add_column("alerts", sa.Column("description", sa.Text(), server_default="", nullable=False))
    op.add_column("alerts", sa.Column("tlp", sa.String(length=16), server_default="amber", nullable=False))
    op.add_column("alerts", sa.Column("source", sa.String(length=64), nullable=True))
    op.add_column("alerts", sa.Column("source_ref", sa.String(length=255), nullable=True))
    op.add_column("alerts", sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "alerts",
        sa.Column("tags", postgresql.ARRAY(sa.Text()), server_default=EMPTY_ARRAY, nullable=False),
    )
    op.add_column(
        "alerts",
        sa.Column(
            "techniques", postgresql.ARRAY(sa.Text()), server_default=EMPTY_ARRAY, nullable=False
        ),
    )
    op.add_column("alerts", sa.Column("reported_by_id", sa.Integer(), nullable=True))
    op.create_foreign_key(
        "fk_alerts_reported_by_id_users", "alerts", "users", ["reported_by_id"], ["id"],
        ondelete="SET NULL",
    )
    op.add_column(
        "alerts",
        sa.Column("merge_carried", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.create_index("uq_alerts_source_ref", "alerts", ["source", "source_ref"], unique=True)
    op.create_index("ix_alerts_tags", "alerts", ["tags"], postgresql_using="gin")
    op.create_index("ix_alerts_techniques", "alerts", ["techniques"], postgresql_using="gin")

    op.create_table(
        "alert_observables",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("address", postgresql.INET(), nullable=True),
        sa.Column("known_bad", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column(
            "ioc_ids", postgresql.ARRAY(sa.BigInteger()), server_default=EMPTY_ARRAY, nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("alert_id", "type", "value", name="uq_alert_observables_alert_type_value"),
    )
    op.create_index("ix_alert_observables_type_value", "alert_observables", ["type", "value"])
    op.create_index(
        "ix_alert_observables_address",
        "alert_observables",
        ["address"],
        postgresql_using="gist",
        postgresql_ops={"address": "inet_ops"},
        postgresql_where=sa.text("address IS NOT NULL"),
    )
    op.create_index(
        "ix_alert_observables_ioc_ids", "alert_observables", ["ioc_ids"], postgresql_using="gin"
    )

    op.add_column(
        "incidents",
        sa.Column("tags", postgresql.ARRAY(sa.Text()), server_default=EMPTY_ARRAY, nullable=False),
    )
    op.add_column(
        "incidents",
        sa.Column(
            "techniques", postgresql.ARRAY(sa.Text()), server_default=EMPTY_ARRAY, nullable=False
        ),
    )
    op.add_column("incidents", sa.Column("merged_into_id", sa.Integer(), nullable=True))
    op.create_foreign_key(
        "fk_incidents_merged_into_id_incidents", "incidents", "incidents", ["merged_into_id"],
        ["id"], ondelete="SET NULL",
    )
    op.create_index("ix_incidents_tags", "incidents", ["tags"], postgresql_using="gin")
    op.create_index("ix_incidents_techniques", "incidents", ["techniques"], postgresql_using="gin")

    op.create_table(
        "attack_techniques",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("tactics", postgresql.ARRAY(sa.Text()), server_default=EMPTY_ARRAY, nullable=False),
        sa.Column("stix_id", sa.String(length=100), nullable=False),
        sa.Column("deprecated", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade():
    op.drop_table("attack_techniques")
    op.drop_index("ix_incidents_techniques", table_name="incidents")
    op.drop_index("ix_incidents_tags", table_name="incidents")
    op.drop_constraint("fk_incidents_merged_into_id_incidents", "incidents", type_="foreignkey")
    op.drop_column("incidents", "merged_into_id")
    op.drop_column("incidents", "techniques")
    op.drop_column("incidents", "tags")
    op.drop_table("alert_observables")
    op.drop_index("ix_alerts_techniques", table_name="alerts")
    op.drop_index("ix_alerts_tags", table_name="alerts")
    op.drop_index("uq_alerts_source_ref", table_name="alerts")
    op.drop_column("alerts", "merge_carried")
    op.drop_constraint("fk_alerts_reported_by_id_users", "alerts", type_="foreignkey")
    for column in (
        "reported_by_id", "techniques", "tags", "occurred_at", "source_ref", "source", "tlp",
        "description", "title",
    ):
        op.drop_column("alerts", column)
    op.execute("DELETE FROM alerts WHERE rule_name IS NULL")
    op.alter_column("alerts", "rule_name", existing_type=sa.String(length=200), nullable=False)
