"""One error format for everything: problem+json, the right status, never a 500 for bad input."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models import db

PROBLEM_KEYS = {"type", "title", "status", "detail", "request_id"}


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert set(body) >= PROBLEM_KEYS
    assert body["status"] == status
    assert "Traceback" not in response.get_data(as_text=True)
    return body


def test_unknown_route_is_problem_404(client):
    assert_problem(client.get("/no/such/route"), 404)


def test_wrong_method_is_problem_405_with_allow(client):
    response = client.delete("/auth/login")
    assert_problem(response, 405)
    assert "POST" in response.headers["Allow"]


def test_malformed_json_is_400(analyst):
    response = analyst.client.post(
        "/incidents", data="{not json", headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 400)


def test_json_array_instead_of_object_is_400(analyst):
    assert_problem(analyst.client.post("/incidents", json=[1, 2]), 400)


def test_empty_body_is_400(analyst):
    response = analyst.client.post("/incidents", headers={"Content-Type": "application/json"})
    assert_problem(response, 400)


def test_non_json_content_type_is_415(analyst):
    response = analyst.client.post(
        "/incidents", data="title=x", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert_problem(response, 415)


def test_oversized_body_is_413(app, analyst):
    huge = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    response = analyst.client.post(
        "/incidents",
        data='{"title": "' + huge + '"}',
        headers={"Content-Type": "application/json"},
    )
    assert_problem(response, 413)


@pytest.mark.parametrize("limit", ["100000", "0", "-1", "ten", "1e3"])
def test_bad_limit_is_400(analyst, limit):
    body = assert_problem(analyst.client.get("/incidents", query_string={"limit": limit}), 400)
    assert "limit" in body["errors"]


@pytest.mark.parametrize("cursor", ["garbage", "eyJ4IjoxfQ", "W10", "WyJ4IiwgMV0"])
def test_bad_cursor_is_422(analyst, cursor):
    assert_problem(analyst.client.get("/incidents", query_string={"cursor": cursor}), 422)


def test_unknown_query_parameter_is_400(analyst):
    assert_problem(analyst.client.get("/incidents?sevrity=high"), 400)


def test_repeated_query_parameter_is_400(analyst):
    assert_problem(analyst.client.get("/incidents?status=new&status=closed"), 400)


def test_bad_date_filter_is_400(analyst):
    assert_problem(analyst.client.get("/incidents?created_after=yesterday"), 400)


def test_bad_if_match_is_400(analyst):
    incident_id = analyst.client.post(
        "/incidents", json={"title": "x", "severity": "low"}
    ).get_json()["id"]
    response = analyst.client.patch(
        f"/incidents/{incident_id}", json={"title": "y"}, headers={"If-Match": "banana"}
    )
    assert_problem(response, 400)


def test_huge_incident_id_is_404_not_500(analyst):
    assert_problem(analyst.client.get("/incidents/99999999999999999999"), 404)


def test_validation_errors_name_the_fields(analyst):
    body = assert_problem(analyst.client.post("/incidents", json={"severity": "extreme"}), 400)
    assert set(body["errors"]) == {"title", "severity"}


def test_unexpected_error_is_problem_500_without_details(database_url):
    from app import create_app
    from tests.conftest import app_settings

    fresh_app = create_app(app_settings(database_url, AUTO_MIGRATE=False))

    @fresh_app.route("/_test_boom")
    def boom():
        raise RuntimeError("secret internals")

    body = assert_problem(fresh_app.test_client().get("/_test_boom"), 500)
    assert "secret internals" not in body["detail"]


@pytest.mark.usefixtures("app")  # for its clean_database: this test adds templates
def test_a_unique_value_written_concurrently_is_problem_409_not_500(database_url):
    """What a check-then-insert meets when another transaction wrote the same name between
    the check and the insert (two imports of one template at once, found by the fuzzer)."""
    from app import create_app
    from models import IncidentTemplate, db
    from tests.conftest import app_settings

    fresh_app = create_app(app_settings(database_url, AUTO_MIGRATE=False))

    @fresh_app.route("/_test_duplicate", methods=["POST"])
    def duplicate():
        for _ in range(2):
            db.session.add(IncidentTemplate(name="twin", severity="low", version=1))
            db.session.flush()
        db.session.commit()
        return "", 201

    response = fresh_app.test_client().post("/_test_duplicate")

    body = assert_problem(response, 409)
    assert "incident_templates" not in body["detail"]
    with fresh_app.app_context():
        assert db.session.scalars(select(IncidentTemplate)).all() == []


@pytest.mark.usefixtures("app")  # for its clean_database: this test adds a user
def test_an_error_after_a_failed_write_is_still_a_problem_500_with_its_headers(database_url):
    """A failed flush leaves the session needing a rollback; logging the error must not
    load the caller from it (which raised again and let the server's HTML page out)."""
    from app import create_app
    from auth import authenticate
    from security.modules import audit
    from tests.conftest import app_settings
    from tests.helpers import ApiClient, make_user

    fresh_app = create_app(app_settings(database_url, AUTO_MIGRATE=False))

    @fresh_app.route("/_test_failed_write", methods=["POST"])
    def failed_write():
        authenticate()
        audit.record("nul\x00action")  # PostgreSQL text cannot hold NUL: the flush fails
        db.session.flush()

    user = make_user(fresh_app, ApiClient(fresh_app.test_client()), "failed-write", "analyst")
    response = user.client.post("/_test_failed_write", headers={"X-Request-ID": "trace-failed-1"})

    body = assert_problem(response, 500)
    assert body["request_id"] == "trace-failed-1"
    assert response.headers["X-Request-ID"] == "trace-failed-1"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
