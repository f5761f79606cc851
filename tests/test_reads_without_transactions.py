"""Operations marked ``reads_only`` (``database.reads_only``): a plain ``SELECT`` runs
without ``BEGIN``/``ROLLBACK``, anything more still runs in a transaction.

What each statement left open is read from psycopg2 itself right after it ran: a
statement in a transaction leaves it open (``INTRANS``) until commit or rollback; one run
in autocommit leaves nothing open (``IDLE``).
"""

from __future__ import annotations

from psycopg2.extensions import TRANSACTION_STATUS_IDLE, TRANSACTION_STATUS_INTRANS
from sqlalchemy import func, select, update

from database import reads_only
from models import AuthToken, Incident, db
from tests.helpers import statements_seen

INCIDENT = {"title": "Beaconing host", "severity": "medium"}


def test_reading_incidents_opens_no_transaction(app, analyst):
    created = analyst.client.post("/incidents", json=INCIDENT)
    assert created.status_code == 201
    with statements_seen(app) as seen:
        assert analyst.client.get(f"/incidents/{created.get_json()['id']}").status_code == 200
        assert analyst.client.get("/incidents?limit=50").status_code == 200
    reads = [status for statement, status in seen if "FROM incidents" in statement]
    assert len(reads) == 2
    assert reads == [TRANSACTION_STATUS_IDLE] * 2


def test_an_unmarked_request_still_reads_in_a_transaction(app, analyst):
    """The mode ends with the request: the connection goes back to the pool transactional."""
    created = analyst.client.post("/incidents", json=INCIDENT).get_json()
    assert analyst.client.get(f"/incidents/{created['id']}").status_code == 200
    with statements_seen(app) as seen:
        assert analyst.client.get("/iocs").status_code == 200
    assert seen, "the IOCs were read from the database"
    assert {status for _statement, status in seen} == {TRANSACTION_STATUS_INTRANS}


def test_a_write_during_a_read_only_operation_runs_in_a_transaction(app, analyst):
    """What the credential lookup does when it notes a token's use: the write begins a
    transaction, so rolling back undoes it (in autocommit it would already be stored)."""

    @reads_only
    def operation() -> None:
        db.session.execute(select(func.count()).select_from(Incident))
        db.session.execute(update(AuthToken).values(last_used_at=func.now()))
        db.session.execute(select(func.count()).select_from(Incident))
        db.session.rollback()
        db.session.execute(select(func.count()).select_from(Incident))

    with app.app_context():
        before = db.session.scalars(select(AuthToken.last_used_at)).all()
        db.session.remove()
        with statements_seen(app) as seen:
            operation()
        db.session.remove()
        after = db.session.scalars(select(AuthToken.last_used_at)).all()
    assert after == before
    assert [status for _statement, status in seen] == [
        TRANSACTION_STATUS_IDLE,
        TRANSACTION_STATUS_INTRANS,
        TRANSACTION_STATUS_INTRANS,
        TRANSACTION_STATUS_IDLE,
    ]


def test_locks_and_settings_begin_a_transaction_during_a_read_only_operation(app):
    """A lock held to the end of the transaction would end with the statement that took it."""
    held_to_the_end = [
        select(func.pg_advisory_xact_lock(421)),
        select(Incident.id).with_for_update(),
        select(func.set_config("synchronous_commit", "off", True)),
    ]

    @reads_only
    def operation() -> list[int]:
        statuses = []
        for statement in held_to_the_end:
            db.session.execute(statement)
            status = db.session.connection().connection.dbapi_connection.info.transaction_status
            statuses.append(status)
            db.session.rollback()
        return statuses

    with app.app_context():
        statuses = operation()
        db.session.remove()
    assert statuses == [TRANSACTION_STATUS_INTRANS] * len(held_to_the_end)


def test_reading_incidents_reads_no_secrets_of_people(app, analyst):
    """An incident names its reporter and assignee: their password hashes and MFA secrets
    (and the incident's search vector) are not read to say so."""
    created = analyst.client.post("/incidents", json=INCIDENT).get_json()
    with statements_seen(app) as seen:
        analyst.client.get(f"/incidents/{created['id']}")
        analyst.client.get("/incidents")
    incident_reads = [statement for statement, _ in seen if "FROM incidents" in statement]
    assert len(incident_reads) == 2
    for statement in incident_reads:
        assert "password_hash" not in statement
        assert "mfa_secret" not in statement
        assert "search_vector" not in statement
