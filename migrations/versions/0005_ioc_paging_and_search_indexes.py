"""ioc paging and search indexes; merges the detection (0003) and taxii (0004) heads

- iocs(updated_at, id): TAXII pages IOCs by date_added, which is updated_at.
- a pg_trgm GIN index over the text GET /iocs?q= searches (value, source and
  description, joined as models.iocs.SEARCH_TEXT_SQL spells it), so a substring
  (ILIKE) query is an index scan. Its pending list is 32 MiB (models.iocs says why). pg_trgm is a trusted extension from PostgreSQL 13:
  a database owner may create it without being a superuser.

Written by hand: autogenerate cannot compare expression indexes.

Revision ID: 0005
Revises: 0003, 0004
Create Date: 2026-11-25 15:40:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0005'
down_revision = ('0003', '0004')
branch_labels = None
depends_on = None

# The index expression as it stood when this revision was written (models.iocs may move on).
SEARCH_TEXT_SQL = "value || E'\\x1f' || source || E'\\x1f' || description"


def upgrade():
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_index('ix_iocs_updated_id', 'iocs', ['updated_at', 'id'], unique=False)
    op.execute(
        "CREATE INDEX ix_iocs_search_trgm ON iocs"
        f" USING gin (({SEARCH_TEXT_SQL}) gin_trgm_ops) WITH (gin_pending_list_limit = 32768)"
    )


def downgrade():
    op.drop_index('ix_iocs_search_trgm', table_name='iocs')
    op.drop_index('ix_iocs_updated_id', table_name='iocs')
