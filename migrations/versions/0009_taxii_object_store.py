"""taxii: each collection's STIX 2.1 object store (every posted version, as posted)

One row per version of one object: its JSON as posted (JSONB keeps every string, so
timestamps come back in their own precision), its version as an instant, its date_added
and its TLP. Every existing collection is given the OASIS TLP 2.0 marking definitions
(all but red) that the IOCs it serves refer to, added now; new collections get them when
they are created.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 18:30:00

"""
import json

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

TLP_2_EXTENSION_ID = 'extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d'
# The OASIS TLP 2.0 marking definitions (ids and created fixed by OASIS), as served.
TLP_2_MARKING_IDS = {
    'clear': 'marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487',
    'green': 'marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb',
    'amber': 'marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421',
    'amber+strict': 'marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003',
}
TLP_2_CREATED = '2022-10-01T00:00:00.000Z'


def _marking(tlp):
    return {
        'type': 'marking-definition',
        'spec_version': '2.1',
        'id': TLP_2_MARKING_IDS[tlp],
        'created': TLP_2_CREATED,
        'name': f'TLP:{tlp.upper()}',
        'extensions': {
            TLP_2_EXTENSION_ID: {'extension_type': 'property-extension', 'tlp_2_0': tlp},
        },
    }


def upgrade():
    op.create_table('taxii_objects',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('collection_id', sa.UUID(), nullable=False),
    sa.Column('stix_id', sa.Text(), nullable=False),
    sa.Column('stix_type', sa.Text(), nullable=False),
    sa.Column('version_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('date_added', sa.DateTime(timezone=True), nullable=False),
    sa.Column('tlp', sa.String(length=16), nullable=True),
    sa.Column('body', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('added_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['collection_id'], ['taxii_collections.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['added_by_id'], ['users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('collection_id', 'stix_id', 'version_at', name='uq_taxii_objects_version')
    )
    op.create_index('ix_taxii_objects_collection_added', 'taxii_objects',
                    ['collection_id', 'date_added', 'id'], unique=False)
    insert = sa.text(
        "INSERT INTO taxii_objects"
        " (collection_id, stix_id, stix_type, version_at, date_added, tlp, body)"
        " SELECT id, :stix_id, 'marking-definition', CAST(:created AS timestamptz), now(), :tlp,"
        " CAST(:body AS jsonb)"
        " FROM taxii_collections"
    )
    for tlp, stix_id in TLP_2_MARKING_IDS.items():
        op.execute(insert.bindparams(
            stix_id=stix_id, created=TLP_2_CREATED, tlp=tlp, body=json.dumps(_marking(tlp))
        ))


def downgrade():
    op.drop_index('ix_taxii_objects_collection_added', table_name='taxii_objects')
    op.drop_table('taxii_objects')
