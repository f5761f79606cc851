"""The floor of ``bench/api_overhead.py``: each hot endpoint reduced to the round trips it
needs, with nothing of the API around them.

Issue 13 asks that an authenticated read cost "little more than the query it needs". This
app answers the four benchmarked paths with exactly those round trips and no more: the
rate-limit script counting three counters in Redis (what ``OneTripLimiter`` sends), then
the API's own SQL for the endpoint on a raw psycopg2 connection (one per thread, as a pool
would lend it) in autocommit for reads and in one transaction for writes. No
authentication, no ORM, no schema, no logging, no metrics, no security headers. Served
under the same gunicorn settings as the API and the hello-world, its request rate over the
hello-world's is the highest ratio an endpoint could reach on this machine with these
round trips: a target above it cannot be met by any change to the code around them. Its
answers are written by orjson, as the API's are (the hello-world's by Flask).

The statements are the ones the API sends (``bench.api_overhead --profile`` prints them),
written out here: the incident with its reporter, assignee and SLA policy; a page of 50
of them; the sighting counted and the matches returned in one ``UPDATE ... RETURNING``
committed without a WAL flush; the incident, its audit entry and its timeline entry.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
import psycopg2
import redis
from flask import Flask, Response, request
from psycopg2.extensions import connection as Connection
from psycopg2.extensions import cursor as Cursor

app = Flask(__name__)
# The benchmark's analyst: the reads see what they may see, the writes are theirs.
ANALYST_ID = int(os.environ.get("BENCH_ANALYST_ID", "1"))

_INCIDENT_COLUMNS = """
    incidents.id, incidents.title, incidents.description, incidents.severity,
    incidents.status, incidents.tlp, incidents.version, incidents.created_at,
    incidents.updated_at, incidents.responded_at, incidents.resolved_at, incidents.tags,
    incidents.techniques, incidents.merged_into_id, incidents.custom_fields,
    reporters.username AS reporter, assignees.username AS assignee,
    sla_policies.version AS sla_policy_version, sla_policies.targets AS sla_targets
FROM incidents
LEFT OUTER JOIN users AS reporters ON reporters.id = incidents.reporter_id
LEFT OUTER JOIN users AS assignees ON assignees.id = incidents.assignee_id
LEFT OUTER JOIN sla_policies ON sla_policies.id = incidents.sla_policy_id
WHERE (incidents.tlp != 'red' OR incidents.reporter_id = %(viewer)s
       OR incidents.assignee_id = %(viewer)s)
"""
INCIDENT = f"SELECT {_INCIDENT_COLUMNS} AND incidents.id = %(id)s"
INCIDENT_PAGE = (
    f"SELECT {_INCIDENT_COLUMNS} ORDER BY incidents.created_at DESC, incidents.id DESC "
    "LIMIT %(limit)s"
)
COUNT_SIGHTINGS = """
UPDATE iocs SET sighting_count = iocs.sighting_count + 1, last_sighted_at = now()
WHERE iocs.id IN (
    SELECT iocs.id FROM iocs
    WHERE (iocs.tlp != 'red' OR iocs.created_by_id = %(viewer)s)
      AND (iocs.type = 'ipv4' AND iocs.value = %(value)s
           OR iocs.type = 'cidr' AND iocs.address >>= CAST(%(value)s AS INET))
    ORDER BY iocs.confidence DESC, iocs.id LIMIT 100)
  AND set_config('synchronous_commit', 'off', true) IS NOT NULL
RETURNING iocs.id, iocs.type, iocs.value, iocs.confidence, iocs.tlp, iocs.sighting_count,
          iocs.last_sighted_at
"""
CREATE_INCIDENT = """
INSERT INTO incidents (title, description, severity, status, tlp, reporter_id, version,
                       created_at, updated_at, tags, techniques, custom_fields)
VALUES (%(title)s, %(description)s, %(severity)s, 'new', 'amber', %(viewer)s, 1, now(),
        now(), '{}', '{}', '{}')
RETURNING incidents.id, incidents.created_at, incidents.sla_policy_id
"""
AUDIT_CREATION = """
INSERT INTO audit_log (occurred_at, actor_id, actor, action, object_type, object_id,
                       outcome, ip, request_id, details)
VALUES (now(), %(viewer)s, 'bench', 'incident.create', 'incident', %(id)s, 'success',
        '127.0.0.1', NULL, '{}')
"""
RECORD_CREATION = """
INSERT INTO incident_timeline (incident_id, actor_id, kind, changes, created_at)
VALUES (%(id)s, %(viewer)s, 'created', '{}', now())
"""
# OneTripLimiter's script, reduced: every counter incremented and its time to live read.
COUNT_REQUEST = (
    "local a = {} for i, k in ipairs(KEYS) do "
    "a[i] = {redis.call('incrby', k, 1), redis.call('ttl', k)} end return a"
)
COUNTERS = ["floor:route", "floor:principal", "floor:ip"]

_rate_limits = redis.Redis.from_url(os.environ["RATELIMIT_STORAGE_URI"]).register_script(
    COUNT_REQUEST
)
_per_thread = threading.local()


def _connection() -> Connection:
    connection = getattr(_per_thread, "connection", None)
    if connection is None:
        url = os.environ["DATABASE_URL"].replace("postgresql+psycopg2://", "postgresql://")
        connection = _per_thread.connection = psycopg2.connect(url)
        connection.autocommit = True
    return connection


def _json(answer: object, status: int = 200) -> Response:
    return Response(orjson.dumps(answer), status, mimetype="application/json")


@contextmanager
def _counted_request(*, write: bool = False) -> Iterator[Cursor]:
    """The request counted against its rate limits, then a cursor on the thread's
    connection: in autocommit for a read, in one transaction for a write."""
    _rate_limits(keys=COUNTERS)
    with _connection().cursor() as cursor:
        if write:
            cursor.execute("BEGIN")
        yield cursor
        if write:
            cursor.execute("COMMIT")


def _rows(statement: str, parameters: dict, *, write: bool = False) -> list[dict]:
    with _counted_request(write=write) as cursor:
        cursor.execute(statement, parameters)
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@app.get("/hello")
def hello() -> dict[str, str]:
    return {"hello": "world"}


@app.get("/incidents/<int:incident_id>")
def incident(incident_id: int) -> Response:
    return _json(_rows(INCIDENT, {"viewer": ANALYST_ID, "id": incident_id})[0])


@app.get("/incidents")
def incident_page() -> Response:
    limit = int(request.args.get("limit", "50"))
    return _json({"items": _rows(INCIDENT_PAGE, {"viewer": ANALYST_ID, "limit": limit})})


@app.get("/iocs/check")
def ioc_check() -> Response:
    value = request.args["value"]
    parameters = {"viewer": ANALYST_ID, "value": value}
    return _json({"matches": _rows(COUNT_SIGHTINGS, parameters, write=True)})


@app.post("/incidents")
def incident_create() -> Response:
    body = request.get_json()
    with _counted_request(write=True) as cursor:
        cursor.execute(CREATE_INCIDENT, {**body, "viewer": ANALYST_ID})
        incident_id, created_at, sla_policy_id = cursor.fetchone()
        entry = {"id": incident_id, "viewer": ANALYST_ID}
        cursor.execute(AUDIT_CREATION, {**entry, "id": str(incident_id)})
        cursor.execute(RECORD_CREATION, entry)
    created = {"id": incident_id, "created_at": created_at, "sla_policy_id": sla_policy_id}
    return _json({**body, **created}, 201)
