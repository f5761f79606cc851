"""taxii: collections (filters over the IOC store), status resources, polled feeds

A branch from 0002 (intel): it needs only the users table and none of detection's
tables. Feed credentials live in a bytea column as Fernet tokens, never in clear.

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-25 14:45:57.265836

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('taxii_collections',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('title', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('min_confidence', sa.SmallInteger(), nullable=False),
    sa.Column('max_tlp', sa.String(length=16), nullable=False),
    sa.Column('ioc_types', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('sources', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('active_only', sa.Boolean(), nullable=False),
    sa.Column('read_roles', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('write_roles', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("max_tlp IN ('clear', 'green', 'amber', 'amber+strict')", name='ck_taxii_collections_max_tlp_not_red'),
    sa.CheckConstraint('min_confidence BETWEEN 0 AND 100', name='ck_taxii_collections_min_confidence'),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('taxii_collections', schema=None) as batch_op:
        batch_op.create_index('ix_taxii_collections_created_id', ['created_at', 'id'], unique=False)

    op.create_table('taxii_feeds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('api_root_url', sa.Text(), nullable=False),
    sa.Column('collection_id', sa.String(length=255), nullable=False),
    sa.Column('auth_type', sa.String(length=16), nullable=False),
    sa.Column('credentials_encrypted', sa.LargeBinary(), nullable=True),
    sa.Column('poll_interval_seconds', sa.Integer(), nullable=False),
    sa.Column('page_size', sa.Integer(), nullable=False),
    sa.Column('default_confidence', sa.SmallInteger(), nullable=False),
    sa.Column('default_tlp', sa.String(length=16), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('added_after', sa.DateTime(timezone=True), nullable=True),
    sa.Column('poll_started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_polled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_success_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_object_count', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("auth_type IN ('none', 'basic', 'bearer')", name='ck_taxii_feeds_auth_type'),
    sa.CheckConstraint('default_confidence BETWEEN 0 AND 100', name='ck_taxii_feeds_default_confidence'),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    with op.batch_alter_table('taxii_feeds', schema=None) as batch_op:
        batch_op.create_index('ix_taxii_feeds_created_id', ['created_at', 'id'], unique=False)

    op.create_table('taxii_statuses',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('collection_id', sa.UUID(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('request_timestamp', sa.DateTime(timezone=True), nullable=False),
    sa.Column('successes', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('failures', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('pendings', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.ForeignKeyConstraint(['collection_id'], ['taxii_collections.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('taxii_statuses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_taxii_statuses_collection_id'), ['collection_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_taxii_statuses_created_by_id'), ['created_by_id'], unique=False)



def downgrade():
    with op.batch_alter_table('taxii_statuses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_taxii_statuses_created_by_id'))
        batch_op.drop_index(batch_op.f('ix_taxii_statuses_collection_id'))

    op.drop_table('taxii_statuses')
    with op.batch_alter_table('taxii_feeds', schema=None) as batch_op:
        batch_op.drop_index('ix_taxii_feeds_created_id')

    op.drop_table('taxii_feeds')
    with op.batch_alter_table('taxii_collections', schema=None) as batch_op:
        batch_op.drop_index('ix_taxii_collections_created_id')

    op.drop_table('taxii_collections')
