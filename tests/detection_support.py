"""Helpers shared by the rule, event and alert tests: creating rules, posting events."""

from __future__ import annotations

from typing import Any

from tests.unit.sigma_support import rule_yaml

YAML = "application/yaml"


def create_seed_rule(user, detection: dict[str, Any], **fields: Any) -> dict:
    """POST a seed-form rule as JSON; asserts it was created."""
    body = {"name": "Seed rule", "severity": "medium", "detection": detection, **fields}
    response = user.client.post("/rules", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def upload_sigma(user, text: str, query: str = "", **kwargs: Any):
    """POST a Sigma rule as YAML; returns the response."""
    return user.client.request(
        "POST", f"/rules{query}", data=text, headers={"Content-Type": YAML}, **kwargs
    )


def create_sigma_rule(user, detection: dict[str, Any], **metadata: Any) -> dict:
    """Upload a minimal Sigma rule with the given detection section; asserts it was created."""
    response = upload_sigma(user, rule_yaml(detection, **metadata))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def post_events(user, events: Any, **kwargs: Any) -> dict:
    """POST events; asserts a 200 and returns the body."""
    response = user.client.post("/events", json=events, **kwargs)
    assert response.status_code == 200, response.get_json()
    return response.get_json()
