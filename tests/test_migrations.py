"""Migrations build what the models declare, and the hand-written ones step down and up."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from database import MIGRATIONS_DIRECTORY
from models import db
from models.iocs import HASH_TYPES
from security.modules.ioc_values import HASH_TYPES_BY_LENGTH
from tests.conftest import app_settings

# Migrations run on a database made from the server URL (see the url_form marker).
pytestmark = pytest.mark.url_form

SEARCH_INDEXES_0007 = {
    "ix_iocs_value_trgm",
    "ix_iocs_description_trgm",
    "ix_iocs_source_trgm",
    "ix_iocs_value_prefix",
}


@pytest.fixture
def migrated_app(fresh_database_url: str) -> Iterator[Flask]:
    """An app on a database of its own, migrated to the heads at startup."""
    from app import create_app

    application = create_app(app_settings(fresh_database_url))
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


def index_names(table_name: str) -> set[str]:
    """Indexes of a table that stand on their own (not those behind a constraint)."""
    found = db.session.execute(
        text(
            "SELECT index.indexrelid::regclass::text FROM pg_index AS index"
            " WHERE index.indrelid = CAST(:table AS regclass) AND NOT EXISTS"
            " (SELECT 1 FROM pg_constraint WHERE conindid = index.indexrelid)"
        ),
        {"table": table_name},
    )
    return set(found.scalars())


def test_every_named_index_of_the_models_and_no_other_is_in_the_database(migrated_app):
    with migrated_app.app_context():
        for table in db.metadata.sorted_tables:
            declared = {index.name for index in table.indexes}
            assert index_names(table.name) == declared, table.name


def test_search_indexes_step_down_to_the_joined_one_and_back(migrated_app):
    with migrated_app.app_context():
        downgrade(directory=MIGRATIONS_DIRECTORY, revision="0006")
        db.session.remove()
        assert "ix_iocs_search_trgm" in index_names("iocs")
        assert not SEARCH_INDEXES_0007 & index_names("iocs")
        db.session.remove()
        upgrade(directory=MIGRATIONS_DIRECTORY, revision="heads")
        assert index_names("iocs") >= SEARCH_INDEXES_0007
        assert "ix_iocs_search_trgm" not in index_names("iocs")


def unique_constraints(table_name: str) -> set[str]:
    found = db.session.execute(
        text(
            "SELECT conname FROM pg_constraint"
            " WHERE conrelid = CAST(:table AS regclass) AND contype = 'u'"
        ),
        {"table": table_name},
    )
    return set(found.scalars())


def test_separate_ioc_records_step_down_to_one_record_per_value_and_back(migrated_app):
    insert_ioc = text(
        "INSERT INTO iocs (type, value, confidence, source, description, tags, tlp,"
        " first_seen, last_seen, sighting_count, created_at, updated_at, version,"
        " separate_for_id) VALUES ('domain', 'a.example.com', 50, 'test', '', '{}', 'amber',"
        " now(), now(), 0, now(), now(), 1, :separate_for_id)"
    )
    with migrated_app.app_context():
        for separate_for_id in (0, 7):
            db.session.execute(insert_ioc, {"separate_for_id": separate_for_id})
        db.session.commit()
        downgrade(directory=MIGRATIONS_DIRECTORY, revision="0007")
        db.session.remove()
        assert "uq_iocs_type_value" in unique_constraints("iocs")
        assert db.session.scalar(text("SELECT count(*) FROM iocs")) == 1
        db.session.remove()
        upgrade(directory=MIGRATIONS_DIRECTORY, revision="heads")
        assert "uq_iocs_type_value_separate" in unique_constraints("iocs")
        assert "uq_iocs_type_value" not in unique_constraints("iocs")


def test_the_models_digest_types_are_the_normaliser_s():
    assert set(HASH_TYPES_BY_LENGTH.values()) == HASH_TYPES


def test_the_object_store_gives_existing_collections_their_tlp_markings(migrated_app):
    with migrated_app.app_context():
        downgrade(directory=MIGRATIONS_DIRECTORY, revision="0007")
        db.session.remove()
        db.session.execute(
            text(
                "INSERT INTO taxii_collections (id, title, description, min_confidence, max_tlp,"
                " ioc_types, sources, active_only, read_roles, write_roles, created_at,"
                " updated_at, version) VALUES (gen_random_uuid(), 'Before 0009', '', 0,"
                " 'amber', '{}', '{}', true, '{admin}', '{admin}', now(), now(), 1)"
            )
        )
        db.session.commit()
        upgrade(directory=MIGRATIONS_DIRECTORY, revision="heads")
        stored = db.session.execute(
            text("SELECT tlp, body->>'created' FROM taxii_objects ORDER BY tlp")
        ).all()
    assert stored == [
        (tlp, "2022-10-01T00:00:00.000Z") for tlp in ("amber", "amber+strict", "clear", "green")
    ]
