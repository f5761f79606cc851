"""intel: IOCs, incident links, API keys, credential usage

The partial GiST index (inet_ops) on the networks' iocs.address makes
`type = 'cidr' AND address >>= <ip>` (stored networks containing an address) an index scan; gen_random_uuid() is built in from PostgreSQL 13.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 14:41:37.480915

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('api_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('scopes', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('rotated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('previous_secret_hash', sa.String(length=64), nullable=True),
    sa.Column('previous_valid_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_used_ip', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('prefix')
    )
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.create_index('ix_api_keys_user_created', ['user_id', 'created_at', 'id'], unique=False)

    op.create_table('iocs',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('address', postgresql.INET(), nullable=True),
    sa.Column('confidence', sa.SmallInteger(), nullable=False),
    sa.Column('source', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('tags', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('tlp', sa.String(length=16), nullable=False),
    sa.Column('first_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sighting_count', sa.Integer(), nullable=False),
    sa.Column('last_sighted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('stix_id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint('confidence BETWEEN 0 AND 100', name='ck_iocs_confidence_range'),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('stix_id'),
    sa.UniqueConstraint('type', 'value', name='uq_iocs_type_value')
    )
    with op.batch_alter_table('iocs', schema=None) as batch_op:
        batch_op.create_index('ix_iocs_networks', ['address'], unique=False, postgresql_using='gist', postgresql_ops={'address': 'inet_ops'}, postgresql_where=sa.text("type = 'cidr'"))
        batch_op.create_index('ix_iocs_created_id', ['created_at', 'id'], unique=False)
        batch_op.create_index('ix_iocs_tags', ['tags'], unique=False, postgresql_using='gin')

    op.create_table('credential_usage',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('credential_kind', sa.String(length=16), nullable=False),
    sa.Column('credential_name', sa.String(length=64), nullable=False),
    sa.Column('api_key_id', sa.Integer(), nullable=True),
    sa.Column('component', sa.String(length=64), nullable=False),
    sa.Column('operation', sa.String(length=128), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['api_key_id'], ['api_keys.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('credential_usage', schema=None) as batch_op:
        batch_op.create_index('ix_credential_usage_key_time', ['api_key_id', 'occurred_at'], unique=False)
        batch_op.create_index('ix_credential_usage_name_time', ['credential_kind', 'credential_name', 'occurred_at'], unique=False)
        batch_op.create_index('ix_credential_usage_time', ['occurred_at'], unique=False)

    op.create_table('incident_iocs',
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('ioc_id', sa.BigInteger(), nullable=False),
    sa.Column('linked_by_id', sa.Integer(), nullable=True),
    sa.Column('linked_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ioc_id'], ['iocs.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['linked_by_id'], ['users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('incident_id', 'ioc_id')
    )
    with op.batch_alter_table('incident_iocs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_iocs_ioc_id'), ['ioc_id'], unique=False)



def downgrade():
    with op.batch_alter_table('incident_iocs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_iocs_ioc_id'))

    op.drop_table('incident_iocs')
    with op.batch_alter_table('credential_usage', schema=None) as batch_op:
        batch_op.drop_index('ix_credential_usage_time')
        batch_op.drop_index('ix_credential_usage_name_time')
        batch_op.drop_index('ix_credential_usage_key_time')

    op.drop_table('credential_usage')
    with op.batch_alter_table('iocs', schema=None) as batch_op:
        batch_op.drop_index('ix_iocs_tags', postgresql_using='gin')
        batch_op.drop_index('ix_iocs_created_id')
        batch_op.drop_index('ix_iocs_networks', postgresql_using='gist', postgresql_ops={'address': 'inet_ops'}, postgresql_where=sa.text("type = 'cidr'"))

    op.drop_table('iocs')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_index('ix_api_keys_user_created')

    op.drop_table('api_keys')
