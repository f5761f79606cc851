"""case work: tasks, incident templates, custom fields (and their GIN-indexed values on
incidents), evidence, comments (with their earlier texts)

The partial index ix_tasks_open_queue serves the analyst's work queue
(GET /tasks?assignee=me&status=open) as one index range in page order.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 01:00:00

"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

JSONB = postgresql.JSONB(astext_type=sa.Text())


def _times() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade():
    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "incident_id",
            sa.Integer(),
            sa.ForeignKey("incidents.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column(
            "assignee_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")
        ),
        sa.Column("due_at", sa.DateTime(timezone=True)),
        sa.Column("mandatory", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        *_times(),
    )
    op.create_index("ix_tasks_incident_position", "tasks", ["incident_id", "position", "id"])
    op.create_index(
        "ix_tasks_open_queue",
        "tasks",
        ["assignee_id", "created_at", "id"],
        postgresql_where=sa.text("status IN ('todo', 'in_progress')"),
    )
    op.create_index("ix_tasks_assignee_created", "tasks", ["assignee_id", "created_at", "id"])

    op.create_table(
        "incident_templates",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("tlp", sa.String(16), nullable=False),
        sa.Column("tags", JSONB, nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("tasks", JSONB, nullable=False),
        sa.Column("custom_fields", JSONB, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        *_times(),
    )

    op.create_table(
        "custom_fields",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("field_type", sa.String(16), nullable=False),
        sa.Column("choices", JSONB, nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.add_column(
        "incidents",
        sa.Column("custom_fields", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    )
    op.create_index(
        "ix_incidents_custom_fields",
        "incidents",
        ["custom_fields"],
        postgresql_using="gin",
        postgresql_ops={"custom_fields": "jsonb_path_ops"},
    )

    op.create_table(
        "evidence",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "incident_id",
            sa.Integer(),
            sa.ForeignKey("incidents.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("declared_type", sa.String(255), nullable=False),
        sa.Column("sniffed_type", sa.String(255)),
        sa.Column(
            "uploader_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_evidence_incident_created", "evidence", ["incident_id", "created_at", "id"]
    )
    op.create_index("ix_evidence_sha256", "evidence", ["sha256"])

    op.create_table(
        "comments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("incident_id", sa.Integer(), sa.ForeignKey("incidents.id", ondelete="CASCADE")),
        sa.Column("alert_id", sa.BigInteger(), sa.ForeignKey("alerts.id", ondelete="CASCADE")),
        sa.Column("task_id", sa.Integer(), sa.ForeignKey("tasks.id", ondelete="CASCADE")),
        sa.Column("author_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        *_times(),
        sa.CheckConstraint(
            "num_nonnulls(incident_id, alert_id, task_id) = 1", name="ck_comments_one_subject"
        ),
    )
    for subject in ("incident", "alert", "task"):
        op.create_index(
            f"ix_comments_{subject}", "comments", [f"{subject}_id", "created_at", "id"]
        )
    op.create_table(
        "comment_revisions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "comment_id",
            sa.Integer(),
            sa.ForeignKey("comments.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("replaced_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_comment_revisions_comment_id", "comment_revisions", ["comment_id"])


def downgrade():
    op.drop_table("comment_revisions")
    op.drop_table("comments")
    op.drop_table("evidence")
    op.drop_index("ix_incidents_custom_fields", table_name="incidents")
    op.drop_column("incidents", "custom_fields")
    op.drop_table("custom_fields")
    op.drop_table("incident_templates")
    op.drop_table("tasks")
