"""The IOC store engine (security.modules.intel), called as a library inside an app context."""

from __future__ import annotations

import sys
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from auth import Principal, permissions_for_role
from models import Ioc, User, db, utcnow
from schemas.iocs import IocBulkResultSchema, IocCheckSchema, IocSchema
from security.modules import intel, ioc_upsert
from security.modules.ioc_values import InvalidIoc
from tests.helpers import create_user_row


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield
        db.session.rollback()


def principal_for(app, username: str, role: str) -> Principal:
    user = db.session.get(User, create_user_row(app, username, role))
    return Principal.of(user, permissions_for_role(role), "token", 0)


def stored(ioc_type: str, value: str) -> Ioc | None:
    return db.session.scalars(select(Ioc).where(Ioc.type == ioc_type, Ioc.value == value)).first()


def test_address_inside_a_stored_network_is_known_bad(ctx):
    intel.add_ioc("cidr", "10.0.0.0/8", "feed", 80)
    result = IocCheckSchema().dump(intel.check_threat_intelligence("10.1.2.3"))
    assert result["known_bad"] is True
    assert result["type"] == "ipv4"
    assert [(m["match"], m["ioc"]["value"]) for m in result["matches"]] == [("cidr", "10.0.0.0/8")]
    assert result["max_confidence"] == 80


def test_address_outside_every_stored_network_is_not_known(ctx):
    intel.add_ioc("cidr", "10.0.0.0/8", "feed", 80)
    result = intel.check_threat_intelligence("11.1.2.3")
    assert result == {
        "value": "11.1.2.3",
        "type": "ipv4",
        "known_bad": False,
        "max_confidence": None,
        "matches": [],
    }


def test_exact_address_and_enclosing_networks_match_together(ctx):
    intel.add_ioc("ipv4", "192.0.2.7", "feed", 90)
    intel.add_ioc("cidr", "192.0.2.0/24", "feed", 60)
    intel.add_ioc("cidr", "192.0.0.0/16", "feed", 40)
    matches = IocCheckSchema().dump(intel.check_ioc("ipv4", "192.0.2.7"))["matches"]
    assert [(m["match"], m["ioc"]["value"]) for m in matches] == [
        ("exact", "192.0.2.7"),
        ("cidr", "192.0.2.0/24"),
        ("cidr", "192.0.0.0/16"),
    ]


def test_ipv6_address_is_found_in_a_stored_ipv6_network(ctx):
    intel.add_ioc("cidr", "2001:db8::/32", "feed", 70)
    assert intel.check_threat_intelligence("2001:db8::1")["known_bad"] is True


def test_defanged_url_is_stored_refanged(ctx):
    indicator = intel.add_ioc(None, "hxxps://evil[.]example[.]com/a?b=1", "report", 70)
    assert (indicator.type, indicator.value) == ("url", "https://evil.example.com/a?b=1")


def test_reporting_a_known_value_merges_into_the_stored_ioc(ctx):
    first = intel.add_ioc("domain", "evil.example.com", "feed-a", 40, tags=["c2"], tlp="green")
    again = intel.add_ioc("domain", "EVIL.example.com", "feed-b", 90, tags=["apt"], tlp="amber")
    assert again.id == first.id
    assert db.session.scalar(select(func.count()).select_from(Ioc)) == 1
    assert (again.confidence, again.tags, again.tlp) == (90, ["apt", "c2"], "amber")
    assert (again.source, again.version) == ("feed-a", 2)


def test_merge_keeps_the_stricter_tlp_and_the_higher_confidence(ctx):
    intel.add_ioc("domain", "evil.example.com", "feed", 90, tlp="red")
    merged = intel.add_ioc("domain", "evil.example.com", "feed", 10, tlp="clear")
    assert (merged.tlp, merged.confidence) == ("red", 90)


def test_stix_id_stays_the_same_across_merges(ctx):
    first = IocSchema().dump(intel.add_ioc("md5", "d41d8cd98f00b204e9800998ecf8427e", "feed", 50))
    again = IocSchema().dump(intel.add_ioc("md5", "D41D8CD98F00B204E9800998ECF8427E", "feed", 60))
    assert first["stix_id"] == again["stix_id"]
    assert first["stix_id"].startswith("indicator--")


def test_invalid_value_is_refused_with_the_reason(ctx):
    with pytest.raises(InvalidIoc, match="host bits"):
        intel.add_ioc("cidr", "10.1.2.3/8", "feed", 50)


def test_bulk_import_reports_invalid_items_by_index_and_stores_the_rest(ctx):
    result = intel.bulk_add_iocs(
        [{"value": "198.51.100.1"}, {"value": "not an indicator"}, {"value": "evil.example.org"}]
    )
    body = IocBulkResultSchema().dump(result)
    assert (body["created"], body["merged"], body["failed"]) == (2, 0, 1)
    assert [error["index"] for error in body["errors"]] == [1]
    assert [entry["index"] for entry in body["results"]] == [0, 2]
    assert stored("domain", "evil.example.org") is not None


def test_bulk_import_merges_duplicates_within_one_call_via_copy(ctx):
    items = [{"value": f"198.51.{i // 256}.{i % 256}"} for i in range(600)]
    items.append({"value": "198.51.0.5", "confidence": 99, "tags": ["dup"]})
    body = IocBulkResultSchema().dump(intel.bulk_add_iocs(items, defaults={"source": "feed"}))
    assert (body["created"], body["merged"], body["failed"]) == (600, 1, 0)
    assert body["results"][5]["id"] == body["results"][600]["id"]
    merged = stored("ipv4", "198.51.0.5")
    assert (merged.confidence, merged.tags, merged.source) == (99, ["dup"], "feed")
    assert db.session.scalar(select(func.count()).select_from(Ioc)) == 600


def test_bulk_import_hands_the_gil_over_promptly_and_restores_the_interval(ctx):
    before = sys.getswitchinterval()
    during = []

    def load_item(item: dict) -> dict:
        during.append(sys.getswitchinterval())
        return item

    intel.bulk_add_iocs([{"value": "198.51.100.1"}], load_item=load_item)
    assert during == [ioc_upsert._PromptHandOver.INTERVAL_SECONDS] != [before]
    assert sys.getswitchinterval() == before


def test_bulk_import_that_fails_restores_the_switch_interval(ctx):
    before = sys.getswitchinterval()

    def load_item(item: dict) -> dict:
        raise RuntimeError("loader broke")

    with pytest.raises(RuntimeError, match="loader broke"):
        intel.bulk_add_iocs([{"value": "198.51.100.1"}], load_item=load_item)
    assert sys.getswitchinterval() == before


def test_overlapping_bulk_writes_restore_the_interval_only_when_the_last_ends():
    hand_over = ioc_upsert._PromptHandOver()
    before = sys.getswitchinterval()
    hand_over.begin()
    hand_over.begin()
    hand_over.end()
    assert sys.getswitchinterval() == hand_over.INTERVAL_SECONDS
    hand_over.end()
    assert sys.getswitchinterval() == before


def test_bulk_copy_path_keeps_tabs_backslashes_and_quotes_intact(ctx):
    description = 'tab\there, newline\nthere, back\\slash, "quoted"'
    items = [{"value": f"host{i}.example.com"} for i in range(3)]
    items[0] |= {"description": description, "tags": ['a"b', "c\\d"]}
    intel.bulk_add_iocs(items)
    first = stored("domain", "host0.example.com")
    assert first.description == description
    assert first.tags == ['a"b', "c\\d"]


def test_bulk_duplicate_in_a_later_pipeline_chunk_merges_into_the_first(ctx):
    items = [{"value": f"10.9.{i // 256}.{i % 256}"} for i in range(intel.PIPELINE_CHUNK + 10)]
    items.append({"value": "10.9.0.1", "confidence": 97})
    body = IocBulkResultSchema().dump(intel.bulk_add_iocs(items))
    assert (body["results"][1]["status"], body["results"][-1]["status"]) == ("created", "merged")
    assert body["results"][1]["id"] == body["results"][-1]["id"]
    assert stored("ipv4", "10.9.0.1").confidence == 97


def _reimport(item: dict) -> tuple[tuple, tuple]:
    """(updated_at, version) after a first and after a second, identical report."""
    intel.add_ioc(**item)
    first = stored("domain", item["value"])
    before = (first.updated_at, first.version)
    intel.add_ioc(**item)
    db.session.expire_all()
    again = stored("domain", item["value"])
    assert again.id == first.id
    return before, (again.updated_at, again.version)


def test_reimporting_the_stored_values_bumps_neither_version_nor_updated_at(ctx):
    seen = utcnow() - timedelta(days=1)
    item = {"ioc_type": "domain", "value": "same.example.com", "tags": ["a"], "tlp": "green"}
    item |= {"first_seen": seen, "last_seen": seen}
    before, after = _reimport(item)
    assert after == before


def test_bulk_reimport_of_unchanged_values_reports_merged_and_leaves_rows_alone(ctx):
    seen = utcnow() - timedelta(days=1)
    items = [{"value": f"172.16.0.{i}", "first_seen": seen, "last_seen": seen} for i in range(5)]
    first = IocBulkResultSchema().dump(intel.bulk_add_iocs(items))
    versions = dict(db.session.execute(select(Ioc.id, Ioc.updated_at)).all())
    second = IocBulkResultSchema().dump(intel.bulk_add_iocs(items))
    assert (second["created"], second["merged"]) == (0, 5)
    assert [entry["id"] for entry in second["results"]] == [e["id"] for e in first["results"]]
    db.session.expire_all()
    assert dict(db.session.execute(select(Ioc.id, Ioc.updated_at)).all()) == versions


def test_merge_that_changes_a_value_bumps_version_and_updated_at(ctx):
    intel.add_ioc("domain", "changes.example.com", confidence=40)
    first = stored("domain", "changes.example.com")
    before = (first.updated_at, first.version)
    intel.add_ioc("domain", "changes.example.com", confidence=90)
    db.session.expire_all()
    again = stored("domain", "changes.example.com")
    assert again.version == before[1] + 1
    assert again.updated_at > before[0]


def test_search_finds_a_substring_of_the_description_or_source(ctx):
    intel.add_ioc("domain", "quiet.example.com", "Acme Feed", description="Seen in a Qakbot wave")
    intel.add_ioc("domain", "other.example.com", "other")
    assert [i.value for i in intel.search_intelligence("qakbot")] == ["quiet.example.com"]
    assert [i.value for i in intel.search_intelligence("acme f")] == ["quiet.example.com"]


SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def test_search_finds_a_digest_by_prefix_or_whole_but_not_by_an_inner_piece(ctx):
    intel.add_ioc("sha256", SHA256, "feed", 80)
    intel.add_ioc("domain", "9f86d0.example.com", "feed", 80)
    assert [i.value for i in intel.search_intelligence("9F86D081")] == [SHA256]
    assert [i.value for i in intel.search_intelligence(SHA256)] == [SHA256]
    assert [i.value for i in intel.search_intelligence("9f86d0")] == [
        "9f86d0.example.com",
        SHA256,
    ]
    assert intel.search_intelligence("884c7d659a2f") == []


def test_search_finds_addresses_and_networks_by_their_leading_octets_or_groups(ctx):
    for ioc_type, value in (
        ("ipv4", "185.220.101.5"),
        ("cidr", "185.220.0.0/16"),
        ("ipv4", "18.52.20.1"),
        ("ipv6", "2001:db8::7"),
    ):
        intel.add_ioc(ioc_type, value, "feed", 80)
    assert [i.value for i in intel.search_intelligence("185.220.")] == [
        "185.220.0.0/16",
        "185.220.101.5",
    ]
    assert [i.value for i in intel.search_intelligence("2001:DB8:")] == ["2001:db8::7"]
    assert intel.search_intelligence("220.101") == []
    assert [i.value for i in intel.search_intelligence("185[.]220[.]101")] == ["185.220.101.5"]


def test_search_finds_a_substring_of_a_value_other_than_a_digest(ctx):
    intel.add_ioc("url", "https://login.evil-campaign.com/a?b=1", "feed", 80)
    intel.add_ioc("domain", "benign.example.org", "feed", 80)
    found = intel.search_intelligence("EVIL-CAMP")
    assert [i.value for i in found] == ["https://login.evil-campaign.com/a?b=1"]
    defanged = intel.search_intelligence("evil-campaign[.]com/a")
    assert [i.value for i in defanged] == ["https://login.evil-campaign.com/a?b=1"]


def plan_of(statement) -> str:
    """EXPLAIN with the parameters inlined, as the server sees them (psycopg2 binds
    client-side), with sequential scans made a last resort."""
    compiled = statement.compile(
        dialect=db.engine.dialect, compile_kwargs={"render_postcompile": True}
    )
    db.session.execute(text("SET LOCAL enable_seqscan = off"))
    cursor = db.session.connection().connection.cursor()
    try:
        cursor.execute(b"EXPLAIN " + cursor.mogrify(compiled.string, compiled.params))
        return "\n".join(row[0] for row in cursor.fetchall())
    finally:
        cursor.close()


@pytest.mark.parametrize(
    ("query", "indexes"),
    [
        (
            "evil-campaign",
            ("ix_iocs_value_trgm", "ix_iocs_description_trgm", "ix_iocs_source_trgm"),
        ),
        ("9f86d081884c", ("ix_iocs_value_trgm", "ix_iocs_value_prefix")),
        ("185.220.", ("ix_iocs_value_trgm", "ix_iocs_value_prefix")),
        ("10.1.2.3", ("ix_iocs_value_trgm", "ix_iocs_value_prefix", "ix_iocs_networks")),
    ],
)
def test_every_part_of_a_text_search_is_planned_on_an_index(ctx, query, indexes):
    plan = plan_of(intel.search_statement(None, {"q": query}))
    assert "Seq Scan" not in plan, plan
    for index in indexes:
        assert index in plan, plan


def test_bulk_import_over_the_limit_is_refused(ctx):
    with pytest.raises(InvalidIoc, match="at most 10000"):
        intel.bulk_add_iocs([{"value": "192.0.2.1"}] * (intel.MAX_BULK_ITEMS + 1))


def test_expired_ioc_is_reported_inactive_and_not_known_bad(ctx):
    intel.add_ioc("ipv4", "203.0.113.9", "feed", 90)
    stored("ipv4", "203.0.113.9").expires_at = utcnow() - timedelta(minutes=1)
    result = intel.check_threat_intelligence("203.0.113.9")
    assert result["known_bad"] is False
    assert [match["active"] for match in result["matches"]] == [False]


def test_check_records_a_sighting_on_every_match(ctx):
    intel.add_ioc("cidr", "10.0.0.0/8", "feed", 80)
    intel.check_threat_intelligence("10.1.2.3")
    result = IocCheckSchema().dump(intel.check_threat_intelligence("10.9.9.9"))
    assert result["matches"][0]["ioc"]["sighting_count"] == 2
    assert stored("cidr", "10.0.0.0/8").last_sighted_at is not None


def test_check_without_sighting_leaves_the_count_alone(ctx):
    intel.add_ioc("cidr", "10.0.0.0/8", "feed", 80)
    intel.check_threat_intelligence("10.1.2.3", record_sighting=False)
    assert stored("cidr", "10.0.0.0/8").sighting_count == 0


def test_tlp_red_ioc_is_seen_only_by_its_creator_admins_and_the_system(app, ctx):
    creator = principal_for(app, "creator", "analyst")
    other = principal_for(app, "other", "analyst")
    admin = principal_for(app, "boss", "admin")
    intel.add_ioc("domain", "secret.example.com", "hunt", 90, tlp="red", principal=creator)
    for who, visible in ((creator, True), (admin, True), (None, True), (other, False)):
        check = intel.check_threat_intelligence("secret.example.com", principal=who)
        assert check["known_bad"] is visible
        found = intel.search_intelligence("secret", principal=who)
        assert bool(found) is visible


def test_search_by_defanged_address_finds_the_enclosing_network(ctx):
    intel.add_ioc("cidr", "10.0.0.0/8", "feed", 80)
    intel.add_ioc("domain", "unrelated.example.com", "feed", 80)
    found = intel.search_intelligence("10[.]1[.]2[.]3")
    assert [indicator.value for indicator in found] == ["10.0.0.0/8"]


def test_search_filters_by_type_tag_confidence_and_activity(ctx):
    intel.add_ioc("domain", "a.example.com", "feed", 30, tags=["phish"])
    intel.add_ioc("domain", "b.example.com", "feed", 80, tags=["phish"])
    intel.add_ioc("ipv4", "192.0.2.1", "feed", 80, tags=["phish"])
    found = intel.search_intelligence(type="domain", tag="PHISH", min_confidence=50, active=True)
    assert [indicator.value for indicator in found] == ["b.example.com"]


def test_search_treats_like_wildcards_literally(ctx):
    intel.add_ioc("domain", "a.example.com", "feed", 30)
    assert intel.search_intelligence("%") == []


def test_tags_must_be_a_list_of_strings(ctx):
    with pytest.raises(InvalidIoc, match="list of strings"):
        intel.add_ioc("domain", "evil.example.com", "feed", 50, tags="c2")
    result = intel.bulk_add_iocs([{"value": "evil.example.com", "tags": [1]}])
    body = IocBulkResultSchema().dump(result)
    assert body["failed"] == 1
