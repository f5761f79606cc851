"""The engine raises its own errors; ``errors.py`` answers each with one status, in one table."""

from __future__ import annotations

import json

import pytest
from werkzeug.exceptions import HTTPException

import errors
import security
from models.base import IllegalTransition
from security import errors as domain
from security.modules.credentials import CredentialError
from security.modules.detection import InvalidRule


def test_add_ioc_outside_a_request_raises_a_domain_error_not_an_http_one(app):
    with app.app_context(), pytest.raises(domain.DomainError) as raised:
        security.add_ioc("ipv4", "not-an-address", source="script")
    assert isinstance(raised.value, domain.Invalid)
    assert not isinstance(raised.value, HTTPException)
    assert "not-an-address" in raised.value.detail


def answer(app, error: Exception, path: str = "/anything"):
    """What the app's one error handler answers ``error`` with, as status, body, headers."""
    with app.test_request_context(path):
        response = errors.handle_exception(error)
    return response.status_code, json.loads(response.get_data()), response.headers


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (domain.NotFound("Incident 7 does not exist."), 404),
        (domain.Conflict("A feed named 'x' exists already."), 409),
        (domain.Invalid("The assignee does not exist."), 422),
        (domain.Unauthenticated("A valid API key is required."), 401),
        (domain.Forbidden("You may not write collection c."), 403),
        (domain.NotAcceptable("Only TAXII."), 406),
        (domain.TooLarge("The request body is larger than 10 bytes."), 413),
        (domain.UnsupportedMediaType("Send the body as application/json."), 415),
        (domain.Unavailable("The database is not reachable."), 503),
        (domain.DomainError("Refused."), 400),
    ],
)
def test_each_domain_error_is_answered_with_its_status_as_a_problem(app, error, status):
    answered, body, headers = answer(app, error)
    assert answered == status
    assert headers["Content-Type"] == errors.PROBLEM_MEDIA_TYPE
    assert (body["status"], body["title"], body["detail"]) == (
        status,
        errors.status_title(status),
        error.detail,
    )


def test_a_field_error_and_extra_members_reach_the_problem_body(app):
    error = domain.Invalid("IOCs [9] do not exist.", field="ioc_ids", extra={"missing": [9]})
    status, body, _ = answer(app, error)
    assert (status, body["errors"], body["missing"]) == (422, {"ioc_ids": [error.detail]}, [9])


def test_a_blocked_login_is_429_with_retry_after(app):
    status, _, headers = answer(app, domain.TooManyAttempts("Too many.", retry_after=42))
    assert (status, headers["Retry-After"]) == (429, "42")


def test_an_illegal_transition_is_409_listing_the_allowed_steps(app):
    error = IllegalTransition("incident 3", "closed", "new", ["reopened"])
    status, body, _ = answer(app, error)
    assert status == 409
    assert (body["current_status"], body["allowed_transitions"]) == ("closed", ["reopened"])


@pytest.mark.parametrize(
    ("error", "field", "detail"),
    [
        (security.InvalidIoc("bad"), "value", "bad"),
        (CredentialError("give 1 to 50 scopes", field="scopes"), "scopes", "give 1 to 50 scopes"),
        (InvalidRule("no title", field="source"), "source", "The rule cannot be used: no title"),
    ],
)
def test_the_engines_own_errors_are_422_naming_their_field(app, error, field, detail):
    status, body, _ = answer(app, error)
    assert (status, body["detail"]) == (422, detail)
    assert list(body["errors"]) == [field]


def test_taxii_paths_answer_domain_errors_in_taxii_format(app):
    status, body, _ = answer(app, domain.NotFound("Collection c does not exist."), "/taxii2/x/")
    assert (status, body["http_status"], body["description"]) == (
        404,
        "404",
        "Collection c does not exist.",
    )
