"""``/rules``: Sigma rules as YAML and seed rules as JSON, validation (422 naming the
reason), editing with If-Match, deletion, dry runs, permissions and audit."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from models import Alert, AuditEntry, DetectionRule, db
from security.modules import detection as detection_module
from tests.detection_support import (
    YAML,
    create_seed_rule,
    create_sigma_rule,
    post_events,
    upload_sigma,
)
from tests.unit.sigma_support import REGRESSION_DATA, rule_yaml

CERTUTIL = REGRESSION_DATA / "proc_creation_win_certutil_decode" / "rule.yml"
SEED_DETECTION = {"ioc": {"type": "ip", "value": "192.168.0.0/16"}}


def rule_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(DetectionRule))


def test_sigma_rule_uploaded_as_yaml_keeps_its_metadata(analyst):
    response = upload_sigma(analyst, CERTUTIL.read_text(encoding="utf-8"))

    assert response.status_code == 201
    rule = response.get_json()
    assert rule["kind"] == "sigma"
    assert rule["name"] == "File Decoded From Base64/Hex Via Certutil.EXE"
    assert rule["sigma_id"] == "cc9cbe82-7bc0-4ef5-bc23-bbfb83947be7"
    assert rule["severity"] == "high"
    assert "attack.t1027" in rule["tags"]
    assert rule["source"] == CERTUTIL.read_text(encoding="utf-8")
    assert response.headers["Location"] == f"/rules/{rule['id']}"
    assert response.headers["ETag"] == '"1"'


@pytest.mark.parametrize("media_type", ["application/x-yaml", "text/yaml"])
def test_other_yaml_media_types_are_accepted(analyst, media_type):
    response = analyst.client.request(
        "POST",
        "/rules",
        data=rule_yaml({"sel": {"a": "b"}, "condition": "sel"}),
        headers={"Content-Type": media_type},
    )

    assert response.status_code == 201


@pytest.mark.parametrize(
    ("level", "severity"),
    [("informational", "low"), ("low", "low"), ("medium", "medium"), ("critical", "critical")],
)
def test_sigma_level_maps_to_severity(analyst, level, severity):
    rule = create_sigma_rule(analyst, {"sel": {"a": "b"}, "condition": "sel"}, level=level)

    assert rule["severity"] == severity


def test_sigma_rule_without_level_is_medium(analyst):
    rule = create_sigma_rule(analyst, {"sel": {"a": "b"}, "condition": "sel"})

    assert rule["severity"] == "medium"


def test_severity_query_parameter_overrides_the_level(analyst):
    response = upload_sigma(analyst, CERTUTIL.read_text(encoding="utf-8"), "?severity=low")

    assert response.get_json()["severity"] == "low"


def test_disabled_on_upload_stays_disabled(analyst):
    response = upload_sigma(analyst, CERTUTIL.read_text(encoding="utf-8"), "?enabled=false")

    assert response.get_json()["enabled"] is False


@pytest.mark.parametrize(
    ("detection", "reason"),
    [
        ({"sel": {"a|expand": "%x%"}, "condition": "sel"}, "modifier 'expand' is not supported"),
        ({"sel": {"a|nosuchmodifier": "x"}, "condition": "sel"}, "nosuchmodifier"),
        ({"sel": {"a": "b"}, "condition": "sel and ("}, "invalid condition 'sel and ('"),
        ({"sel": {"a": "b"}, "condition": "sel | count() > 5"}, "aggregation"),
        ({"sel": {"a": "b"}, "condition": "other"}, "other"),
    ],
)
def test_unusable_sigma_rule_is_422_naming_the_reason(app, analyst, detection, reason):
    response = upload_sigma(analyst, rule_yaml(detection))

    assert response.status_code == 422
    body = response.get_json()
    assert reason in body["detail"]
    assert reason in body["errors"]["source"][0]
    assert rule_count(app) == 0


def test_malformed_yaml_is_422(analyst):
    response = upload_sigma(analyst, "title: [unclosed\n")

    assert response.status_code == 422
    assert "invalid YAML" in response.get_json()["detail"]


def test_yaml_that_is_not_a_mapping_is_422(analyst):
    response = upload_sigma(analyst, "- just\n- a list\n")

    assert response.status_code == 422
    assert "YAML mapping" in response.get_json()["detail"]


def test_yaml_with_python_tags_is_refused_not_executed(analyst):
    response = upload_sigma(analyst, "title: !!python/object/apply:os.system ['true']\n")

    assert response.status_code == 422
    assert "invalid YAML" in response.get_json()["detail"]


def test_alias_bomb_is_refused(analyst):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]" for n in range(1, 8)]

    response = upload_sigma(analyst, "\n".join(lines) + "\n")

    assert response.status_code == 422
    assert "too large" in response.get_json()["detail"]


def test_oversized_sigma_rule_is_422(analyst):
    text = rule_yaml({"sel": {"a": "b" * 300_000}, "condition": "sel"})

    response = upload_sigma(analyst, text)

    assert response.status_code == 422
    assert "at most" in response.get_json()["detail"]


def test_other_media_types_are_415(analyst):
    response = analyst.client.request(
        "POST", "/rules", data="x", headers={"Content-Type": "text/plain"}
    )

    assert response.status_code == 415


def test_seed_rule_with_unknown_body_field_is_400(analyst):
    response = analyst.client.post(
        "/rules",
        json={"name": "x", "severity": "low", "detection": SEED_DETECTION, "owner": "me"},
    )

    assert response.status_code == 400
    assert "owner" in response.get_json()["errors"]


def test_viewer_cannot_create_rules(app, viewer):
    response = upload_sigma(viewer, CERTUTIL.read_text(encoding="utf-8"))

    assert response.status_code == 403
    assert rule_count(app) == 0


def test_viewer_can_read_rules(analyst, viewer):
    rule = create_seed_rule(analyst, SEED_DETECTION)

    assert viewer.client.get(f"/rules/{rule['id']}").status_code == 200
    assert [item["id"] for item in viewer.client.get("/rules").get_json()["items"]] == [rule["id"]]


def test_list_filters_by_kind_and_pages(analyst):
    seed = create_seed_rule(analyst, SEED_DETECTION)
    sigma = [create_sigma_rule(analyst, {"s": {"a": n}, "condition": "s"}) for n in range(3)]

    first = analyst.client.get("/rules?kind=sigma&limit=2").get_json()
    second = analyst.client.get(f"/rules?kind=sigma&limit=2&cursor={first['next_cursor']}")

    listed = [rule["id"] for rule in first["items"] + second.get_json()["items"]]
    assert listed == [rule["id"] for rule in reversed(sigma)]
    assert seed["id"] not in listed
    assert second.get_json()["next_cursor"] is None


def test_patch_disables_a_rule_so_events_no_longer_match(analyst):
    rule = create_seed_rule(analyst, SEED_DETECTION)

    response = analyst.client.patch(
        f"/rules/{rule['id']}", json={"enabled": False}, headers={"If-Match": '"1"'}
    )

    assert response.status_code == 200
    assert response.get_json()["enabled"] is False
    assert response.headers["ETag"] == '"2"'
    assert post_events(analyst, {"ip": "192.168.1.1"})["match_count"] == 0


def test_patch_changes_severity_of_new_alerts(app, analyst):
    rule = create_seed_rule(analyst, SEED_DETECTION, severity="low")
    analyst.client.patch(f"/rules/{rule['id']}", json={"severity": "medium", "name": "Renamed"})

    body = post_events(analyst, {"ip": "192.168.1.1"})

    assert body["matches"][0]["severity"] == "medium"
    assert body["matches"][0]["rule_name"] == "Renamed"


def test_patch_with_stale_if_match_is_412(analyst):
    rule = create_seed_rule(analyst, SEED_DETECTION)
    analyst.client.patch(f"/rules/{rule['id']}", json={"severity": "high"})

    response = analyst.client.patch(
        f"/rules/{rule['id']}", json={"severity": "low"}, headers={"If-Match": '"1"'}
    )

    assert response.status_code == 412
    assert response.get_json()["current_version"] == 2


def test_patch_of_an_unknown_field_is_400(analyst):
    rule = create_seed_rule(analyst, SEED_DETECTION)

    response = analyst.client.patch(f"/rules/{rule['id']}", json={"detection": {}})

    assert response.status_code == 400


def test_delete_removes_the_rule_but_keeps_its_alerts(app, analyst):
    rule = create_seed_rule(analyst, SEED_DETECTION, name="Gone rule")
    post_events(analyst, {"ip": "192.168.1.1"})

    response = analyst.client.delete(f"/rules/{rule['id']}", headers={"If-Match": '"1"'})

    assert response.status_code == 204
    assert analyst.client.get(f"/rules/{rule['id']}").status_code == 404
    with app.app_context():
        alert = db.session.scalars(select(Alert)).one()
        assert (alert.rule_id, alert.rule_name) == (None, "Gone rule")


def test_delete_with_stale_if_match_is_412(analyst):
    rule = create_seed_rule(analyst, SEED_DETECTION)

    response = analyst.client.delete(f"/rules/{rule['id']}", headers={"If-Match": '"7"'})

    assert response.status_code == 412


def test_unknown_rule_is_404(analyst):
    assert analyst.client.get("/rules/999").status_code == 404


def test_dry_run_reports_matches_and_stores_nothing(app, analyst):
    rule = create_sigma_rule(analyst, {"sel": {"Image|endswith": "\\evil.exe"}, "condition": "sel"})
    analyst.client.patch(f"/rules/{rule['id']}", json={"enabled": False})

    response = analyst.client.post(
        f"/rules/{rule['id']}/test",
        json={"events": [{"Image": "C:\\evil.exe", "Computer": "ws1"}, {"Image": "ok.exe"}]},
    )

    assert response.status_code == 200
    body = response.get_json()
    assert body["match_count"] == 1
    assert body["matches"][0] == {
        "event_index": 0,
        "matched": {"image": ["C:\\evil.exe"]},
        "group_values": {"host": "ws1"},
    }
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Alert)) == 0


def test_rule_writes_are_audited(app, analyst):
    rule = create_seed_rule(analyst, SEED_DETECTION)
    analyst.client.patch(f"/rules/{rule['id']}", json={"severity": "high"})
    analyst.client.delete(f"/rules/{rule['id']}")

    with app.app_context():
        entries = db.session.scalars(
            select(AuditEntry).where(AuditEntry.object_type == "rule").order_by(AuditEntry.id)
        ).all()
    assert [entry.action for entry in entries] == ["rule.create", "rule.update", "rule.delete"]
    assert {entry.actor for entry in entries} == {"analyst1"}


def test_sigma_upload_accepts_the_whole_regression_set(app, analyst):
    folders = sorted(path for path in REGRESSION_DATA.iterdir() if path.is_dir())

    statuses = {
        upload_sigma(
            analyst,
            (folder / "rule.yml").read_text(encoding="utf-8"),
            environ_base={"REMOTE_ADDR": "10.77.0.1"},
        ).status_code
        for folder in folders
    }

    assert statuses == {201}
    assert rule_count(app) == len(folders)


def test_yaml_content_type_on_the_seed_form_is_read_as_sigma(analyst):
    response = analyst.client.request(
        "POST", "/rules", data='{"name": "x"}', headers={"Content-Type": YAML}
    )

    assert response.status_code == 422


def test_rules_compile_once_per_version_not_per_request(analyst, monkeypatch):
    rule = create_sigma_rule(analyst, {"sel": {"a": "b"}, "condition": "sel"})
    compiled = []
    original = detection_module.compile_sigma_rule
    monkeypatch.setattr(
        detection_module, "compile_sigma_rule", lambda text: compiled.append(1) or original(text)
    )

    post_events(analyst, [{"a": "b"}] * 3)
    post_events(analyst, {"a": "b"})
    after_two_requests = len(compiled)
    analyst.client.patch(f"/rules/{rule['id']}", json={"name": "Renamed"})
    post_events(analyst, {"a": "b"})

    assert after_two_requests == 1
    assert len(compiled) == 2


def test_yaml_nested_10000_levels_deep_is_refused_with_422(analyst):
    nested = "a: " + "[" * 10_000 + "]" * 10_000 + "\n"

    response = upload_sigma(analyst, nested)

    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert "nested deeper than" in response.get_json()["errors"]["source"][0]


def test_yaml_aliases_nesting_past_the_depth_limit_are_refused_with_422(analyst):
    chain = "l0: &l0 [x]\n" + "".join(
        f"l{level}: &l{level} [*l{level - 1}]\n"
        for level in range(1, detection_module.MAX_YAML_DEPTH)
    )

    response = upload_sigma(analyst, chain)

    assert response.status_code == 422
    assert "nested deeper than" in response.get_json()["errors"]["source"][0]


def sigma_text(title: str = "Nul test", description: str = "Plain", tag: str = "attack.t1059"):
    """A Sigma rule whose metadata is written as YAML double-quoted strings (escapes apply)."""
    return (
        f'title: "{title}"\ndescription: "{description}"\ntags: ["{tag}"]\n'
        "logsource: {product: test}\ndetection: {sel: {a: b}, condition: sel}\n"
    )


@pytest.mark.parametrize(
    ("field", "metadata"),
    [
        ("title", {"title": "Nul \\0 title"}),
        ("description", {"description": "Nul \\0 description"}),
        ("tags[0]", {"tag": "attack.\\0t1059"}),
    ],
)
def test_a_nul_character_in_a_sigma_rule_is_refused_with_422(app, analyst, field, metadata):
    assert upload_sigma(analyst, sigma_text()).status_code == 201
    response = upload_sigma(analyst, sigma_text(**metadata))

    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["errors"]["source"][0].startswith(f"{field} must not contain NUL")
    assert rule_count(app) == 1
