"""users: the password policy's history and the time each password was set

``password_history`` keeps the argon2 hashes of a user's earlier passwords, so that the
last ``PASSWORD_HISTORY_SIZE`` cannot be set again; ``users.password_changed_at`` is when
the current one was set, from which the optional ``PASSWORD_MAX_AGE_DAYS`` counts. Users
that exist already count from their creation.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 22:00:00

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('password_changed_at', sa.DateTime(timezone=True), nullable=True))
    op.execute('UPDATE users SET password_changed_at = created_at')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('password_changed_at', nullable=False, server_default=sa.text('now()'))

    op.create_table('password_history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('set_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_password_history_user_set', 'password_history', ['user_id', 'set_at'], unique=False)


def downgrade():
    op.drop_index('ix_password_history_user_set', table_name='password_history')
    op.drop_table('password_history')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('password_changed_at')
