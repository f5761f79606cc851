"""detection: threat rules (seed form or Sigma) and alerts

The partial unique index uq_alerts_grouping on alerts (rule_id, group_key) WHERE grouping
is the arbiter of INSERT ... ON CONFLICT DO UPDATE: concurrent ingestion of matches of
one group folds into one alert row instead of creating two.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 14:50:54.661164

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('detection_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('source', sa.Text(), nullable=True),
    sa.Column('detection', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('sigma_id', sa.String(length=64), nullable=True),
    sa.Column('tags', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('group_by', postgresql.ARRAY(sa.Text()), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('detection_rules', schema=None) as batch_op:
        batch_op.create_index('ix_detection_rules_created_id', ['created_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_detection_rules_enabled'), ['enabled'], unique=False)
        batch_op.create_index(batch_op.f('ix_detection_rules_sigma_id'), ['sigma_id'], unique=False)

    op.create_table('alerts',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('rule_id', sa.Integer(), nullable=True),
    sa.Column('rule_name', sa.String(length=200), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('grouping', sa.Boolean(), nullable=False),
    sa.Column('group_key', sa.String(length=64), nullable=False),
    sa.Column('group_values', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.Column('first_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sample_event', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('matched', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['rule_id'], ['detection_rules.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index('ix_alerts_created_id', ['created_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_rule_id'), ['rule_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_severity'), ['severity'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_status'), ['status'], unique=False)
        batch_op.create_index('uq_alerts_grouping', ['rule_id', 'group_key'], unique=True, postgresql_where=sa.text('grouping'))



def downgrade():
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('uq_alerts_grouping', postgresql_where=sa.text('grouping'))
        batch_op.drop_index(batch_op.f('ix_alerts_status'))
        batch_op.drop_index(batch_op.f('ix_alerts_severity'))
        batch_op.drop_index(batch_op.f('ix_alerts_rule_id'))
        batch_op.drop_index(batch_op.f('ix_alerts_incident_id'))
        batch_op.drop_index('ix_alerts_created_id')

    op.drop_table('alerts')
    with op.batch_alter_table('detection_rules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_detection_rules_sigma_id'))
        batch_op.drop_index(batch_op.f('ix_detection_rules_enabled'))
        batch_op.drop_index('ix_detection_rules_created_id')

    op.drop_table('detection_rules')
