"""iocs: a separate record of a value for each user its shared record is hidden from

A report of a value whose shared record (TLP red) the reporter may not see is kept as the
reporter's own record, so it neither merges into the hidden one nor reveals it. The
uniqueness of (type, value) becomes that of (type, value, separate_for_id); 0 marks the
shared record, so every existing row keeps its place.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 18:30:00

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        'iocs', sa.Column('separate_for_id', sa.Integer(), server_default='0', nullable=False)
    )
    op.create_unique_constraint(
        'uq_iocs_type_value_separate', 'iocs', ['type', 'value', 'separate_for_id']
    )
    op.drop_constraint('uq_iocs_type_value', 'iocs', type_='unique')


def downgrade():
    # The separate records cannot stay: each value keeps its shared record only.
    op.execute("DELETE FROM iocs WHERE separate_for_id <> 0")
    op.create_unique_constraint('uq_iocs_type_value', 'iocs', ['type', 'value'])
    op.drop_constraint('uq_iocs_type_value_separate', 'iocs', type_='unique')
    op.drop_column('iocs', 'separate_for_id')
