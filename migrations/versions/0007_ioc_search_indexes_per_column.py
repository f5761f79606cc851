"""ioc search indexes per column: addresses and digests by prefix; other values,
descriptions and sources by trigram

Replaces 0005's one trigram index over value, source and description joined, which took
most of a bulk import's time. Each row now adds only its own columns' entries: addresses
and digests (their trigrams were most of the index) are found by prefix through a btree,
and empty descriptions add none. Bulk imports of 1M IOCs went from about 16,900-18,800
to 20,100-24,600 IOCs/s, with the other changes of that day (bench/RESULTS.md).

Written by hand: autogenerate cannot compare partial or operator-class indexes.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 18:10:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

# The predicates as they stood when this revision was written (models.iocs may move on).
PREFIX_SEARCHED_SQL = "type IN ('cidr', 'ipv4', 'ipv6', 'md5', 'sha1', 'sha256', 'sha512')"
SUBSTRING_SEARCHED_SQL = PREFIX_SEARCHED_SQL.replace(" IN ", " NOT IN ", 1)
JOINED_SEARCH_TEXT_SQL = "value || E'\\x1f' || source || E'\\x1f' || description"


def upgrade():
    op.drop_index('ix_iocs_search_trgm', table_name='iocs')
    op.execute(
        "CREATE INDEX ix_iocs_value_trgm ON iocs USING gin (value gin_trgm_ops)"
        f" WITH (gin_pending_list_limit = 32768) WHERE {SUBSTRING_SEARCHED_SQL}"
    )
    op.execute(
        "CREATE INDEX ix_iocs_description_trgm ON iocs USING gin (description gin_trgm_ops)"
        " WHERE description <> ''"
    )
    op.execute("CREATE INDEX ix_iocs_source_trgm ON iocs USING gin (source gin_trgm_ops)")
    op.execute(
        "CREATE INDEX ix_iocs_value_prefix ON iocs (value text_pattern_ops)"
        f" WHERE {PREFIX_SEARCHED_SQL}"
    )


def downgrade():
    for name in ('ix_iocs_value_prefix', 'ix_iocs_source_trgm', 'ix_iocs_description_trgm',
                 'ix_iocs_value_trgm'):
        op.drop_index(name, table_name='iocs')
    op.execute(
        "CREATE INDEX ix_iocs_search_trgm ON iocs"
        f" USING gin (({JOINED_SEARCH_TEXT_SQL}) gin_trgm_ops) WITH (gin_pending_list_limit = 32768)"
    )
