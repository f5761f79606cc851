"""The brute-force guard as an admin sees it: blocks after 5 failures from one IP (whatever
the usernames), listed under /security/blocks, audited, and lifted by an admin."""

from __future__ import annotations

import pytest

from models import AuditEntry, AuthBlock, db
from tests.helpers import STRONG_PASSWORD, create_user_row


def failed_login(client, username: str):
    return client.with_token(None).post(
        "/auth/login", json={"username": username, "password": "Wrong-Password-123"}
    )


@pytest.fixture
def blocked_ip(admin, client) -> dict:
    """Five failures from 127.0.0.1 under five different usernames: the IP is blocked."""
    for number in range(5):
        assert failed_login(client, f"guess-{number}").status_code == 401
    blocks = admin.client.get("/security/blocks").get_json()["items"]
    return next(block for block in blocks if block["scope"] == "ip")


def test_sixth_failed_login_from_one_ip_is_blocked_whatever_the_username(app, admin, client):
    create_user_row(app, "victim", "viewer")
    for number in range(5):
        assert failed_login(client, f"guess-{number}").status_code == 401
    response = client.post("/auth/login", json={"username": "victim", "password": STRONG_PASSWORD})
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert response.get_json()["detail"] == "Too many failed logins; try again later."


def test_block_is_listed_for_admins(blocked_ip):
    assert blocked_ip["subject"] == "127.0.0.1"
    assert blocked_ip["failure_count"] == 5
    assert blocked_ip["lifted_at"] is None


def test_block_is_in_the_audit_log(admin, blocked_ip):
    entries = admin.client.get("/audit?action=auth.block_created").get_json()["items"]
    assert [(e["object_type"], e["object_id"], e["outcome"]) for e in entries] == [
        ("auth_block", str(blocked_ip["id"]), "denied")
    ]


def test_admin_lifting_a_block_lets_logins_through_again(app, admin, client, blocked_ip):
    create_user_row(app, "victim", "viewer")
    response = admin.client.delete(f"/security/blocks/{blocked_ip['id']}")
    assert response.status_code == 200
    assert response.get_json()["lifted_at"] is not None
    login = client.post("/auth/login", json={"username": "victim", "password": STRONG_PASSWORD})
    assert login.status_code == 200
    with app.app_context():
        block = db.session.get(AuthBlock, blocked_ip["id"])
        assert block.lifted_by_id == admin.id


def test_lifting_is_audited_with_the_admin_as_actor(admin, blocked_ip, app):
    admin.client.delete(f"/security/blocks/{blocked_ip['id']}")
    with app.app_context():
        entry = db.session.scalars(
            db.select(AuditEntry).where(AuditEntry.action == "auth.block_lifted")
        ).one()
        assert (entry.actor_id, entry.object_id) == (admin.id, str(blocked_ip["id"]))


def test_lifted_blocks_are_listed_only_on_request(admin, blocked_ip):
    admin.client.delete(f"/security/blocks/{blocked_ip['id']}")
    active = admin.client.get("/security/blocks").get_json()["items"]
    everything = admin.client.get("/security/blocks?include_inactive=true").get_json()["items"]
    assert blocked_ip["id"] not in [block["id"] for block in active]
    assert blocked_ip["id"] in [block["id"] for block in everything]


def test_lifting_a_block_twice_is_a_conflict(admin, blocked_ip):
    admin.client.delete(f"/security/blocks/{blocked_ip['id']}")
    assert admin.client.delete(f"/security/blocks/{blocked_ip['id']}").status_code == 409


def test_lifting_an_unknown_block_is_404(admin):
    assert admin.client.delete("/security/blocks/999999").status_code == 404


@pytest.mark.parametrize(
    "method, path", [("GET", "/security/blocks"), ("DELETE", "/security/blocks/1")]
)
def test_analysts_may_not_see_or_lift_blocks(analyst, method, path):
    assert analyst.client.request(method, path).status_code == 403
