"""Test helpers: a JSON client that carries a bearer token, user creation, and the SQL
statements an app runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event

STRONG_PASSWORD = "Correct-Horse-42-Battery"


class ApiClient:
    """Wraps Flask's test client: JSON bodies, an optional bearer token, any extra headers."""

    def __init__(self, test_client, token: str | None = None) -> None:
        self.test_client = test_client
        self.token = token

    def with_token(self, token: str | None) -> ApiClient:
        return ApiClient(self.test_client, token)

    def request(self, method: str, path: str, json: Any = None, headers=None, **kwargs):
        headers = dict(headers or {})
        if self.token and "Authorization" not in headers:
            headers["Authorization"] = f"Bearer {self.token}"
        if json is not None:
            kwargs["json"] = json
        return self.test_client.open(path, method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs):
        return self.request("POST", path, json=json, **kwargs)

    def patch(self, path: str, json: Any = None, **kwargs):
        return self.request("PATCH", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs):
        return self.request("DELETE", path, **kwargs)


@dataclass
class TestUser:
    id: int
    username: str
    password: str
    role: str
    token: str
    client: ApiClient

    __test__ = False


def create_user_row(app, username: str, role: str, password: str = STRONG_PASSWORD) -> int:
    from models import db
    from security.modules.users import create_user

    with app.app_context():
        user = create_user(username, password, role)
        db.session.commit()
        return user.id


def login(client: ApiClient, username: str, password: str = STRONG_PASSWORD) -> str:
    response = client.with_token(None).post(
        "/auth/login", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()["access_token"]


def make_user(app, client: ApiClient, username: str, role: str) -> TestUser:
    user_id = create_user_row(app, username, role)
    token = login(client, username)
    return TestUser(user_id, username, STRONG_PASSWORD, role, token, client.with_token(token))


def add_credential_usage(app, days_ago: int) -> None:
    """One use of the API_KEY environment secret ``days_ago`` days ago, named after its age."""
    from datetime import timedelta

    from models import CredentialUsage, db, utcnow

    with app.app_context():
        db.session.add(
            CredentialUsage(
                credential_kind="env",
                credential_name="API_KEY",
                component="test",
                operation=f"{days_ago} days ago",
                outcome="success",
                occurred_at=utcnow() - timedelta(days=days_ago),
            )
        )
        db.session.commit()


@contextmanager
def statements_seen(app) -> Iterator[list[tuple[str, int]]]:
    """Each statement the app's engine runs meanwhile, with psycopg2's transaction status
    right after it."""
    from models import db

    seen: list[tuple[str, int]] = []

    def note(connection, cursor, statement, *_args) -> None:
        status = connection.connection.dbapi_connection.info.transaction_status
        seen.append((" ".join(statement.split()), status))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "after_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "after_cursor_execute", note)
