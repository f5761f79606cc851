"""The STIX 2.1 mapping: IOC records to STIX objects and bundles, and bundles back to IOCs."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import stix2
from stix2validator import ValidationOptions, validate_instance, validate_string

from security.modules.ioc_values import IOC_TYPES
from security.modules.stix_mapping import (
    EXPORTABLE_IOC_TYPES,
    IndicatorRecord,
    InvalidBundle,
    TlpRedNotExportable,
    UnmappablePattern,
    build_bundle,
    indicator_to_iocs,
    new_stix_id,
    parse_bundle,
    tlp_marking,
    to_stix,
)

FIRST_SEEN = datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)
TLP_2_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
OASIS_TLP_2_IDS = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}

PATTERNS = {
    ("ipv4", "203.0.113.7"): "[ipv4-addr:value = '203.0.113.7']",
    ("ipv6", "2001:db8::1"): "[ipv6-addr:value = '2001:db8::1']",
    ("cidr", "198.51.100.0/24"): "[ipv4-addr:value = '198.51.100.0/24']",
    ("cidr", "2001:db8::/32"): "[ipv6-addr:value = '2001:db8::/32']",
    ("domain", "evil.example.com"): "[domain-name:value = 'evil.example.com']",
    ("url", "http://evil.example.com/a?b=c"): "[url:value = 'http://evil.example.com/a?b=c']",
    ("email", "phish@evil.example.com"): "[email-addr:value = 'phish@evil.example.com']",
    ("md5", "d41d8cd98f00b204e9800998ecf8427e"): (
        "[file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e']"
    ),
    ("sha1", "da39a3ee5e6b4b0d3255bfef95601890afd80709"): (
        "[file:hashes.'SHA-1' = 'da39a3ee5e6b4b0d3255bfef95601890afd80709']"
    ),
    ("sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"): (
        "[file:hashes.'SHA-256' = "
        "'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855']"
    ),
    (
        "sha512",
        "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
        "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
    ): (
        "[file:hashes.'SHA-512' = 'cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36"
        "ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e']"
    ),
}
ALL_TYPES = [*PATTERNS, ("cve", "CVE-2021-44228")]


def make_record(ioc_type: str = "ipv4", value: str = "203.0.113.7", **changes) -> IndicatorRecord:
    fields = {
        "ioc_type": ioc_type,
        "value": value,
        "confidence": 85,
        "tlp": "amber",
        "source": "unit-test feed",
        "first_seen": FIRST_SEEN,
        "created": FIRST_SEEN,
        "modified": FIRST_SEEN + timedelta(hours=1),
        "stix_id": new_stix_id(),
        "expires_at": FIRST_SEEN + timedelta(days=30),
        "tags": ["apt29", "c2"],
    }
    return IndicatorRecord(**{**fields, **changes})


def bundle_of(*objects: dict) -> str:
    return json.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": objects})


def raw_indicator(pattern: str, **changes) -> dict:
    properties = {"pattern_type": "stix", "valid_from": FIRST_SEEN, **changes}
    return json.loads(stix2.Indicator(pattern=pattern, **properties).serialize())


def assert_passes_validator(result) -> None:
    assert result.is_valid, [str(error) for error in result.errors]
    assert result.errors == []
    assert result.warnings == []


# --- export: patterns -------------------------------------------------------------------


@pytest.mark.parametrize(("ioc", "pattern"), PATTERNS.items(), ids=lambda item: str(item))
def test_each_ioc_type_exports_its_stix_pattern(ioc, pattern):
    ioc_type, value = ioc

    indicator = to_stix(make_record(ioc_type, value))

    assert indicator.type == "indicator"
    assert indicator.pattern == pattern
    assert indicator.pattern_type == "stix"


def test_quotes_and_backslashes_in_a_value_are_escaped_in_the_pattern():
    indicator = to_stix(make_record("url", "http://evil.example.com/it's\\here"))

    assert indicator.pattern == r"[url:value = 'http://evil.example.com/it\'s\\here']"


def test_an_escaped_value_reads_back_unchanged():
    value = "http://evil.example.com/it's\\here"

    (ioc,) = indicator_to_iocs(to_stix(make_record("url", value)))

    assert ioc.value == value


# --- export: indicator properties -------------------------------------------------------


def test_indicator_keeps_the_stix_id_stored_with_the_ioc():
    record = make_record()

    first, second = to_stix(record), to_stix(record)

    assert first.id == second.id == record.stix_id


def test_indicator_carries_validity_confidence_labels_and_type():
    record = make_record()

    indicator = to_stix(record)

    assert indicator.valid_from == record.first_seen
    assert indicator.valid_until == record.expires_at
    assert indicator.confidence == 85
    assert indicator.labels == ["apt29", "c2"]
    assert indicator.indicator_types == ["malicious-activity"]
    assert indicator.created == record.created
    assert indicator.modified == record.modified


def test_indicator_without_expiry_has_no_valid_until():
    indicator = to_stix(make_record(expires_at=None))

    assert "valid_until" not in indicator


def test_expiry_not_after_first_seen_is_left_out_rather_than_rejected():
    indicator = to_stix(make_record(expires_at=FIRST_SEEN - timedelta(days=1)))

    assert "valid_until" not in indicator


def test_cve_exports_as_a_vulnerability_with_a_cve_reference_and_the_same_uuid():
    record = make_record("cve", "CVE-2021-44228")

    vulnerability = to_stix(record)

    assert vulnerability.type == "vulnerability"
    assert vulnerability.id == "vulnerability--" + record.stix_id.removeprefix("indicator--")
    assert vulnerability.name == "CVE-2021-44228"
    (reference,) = vulnerability.external_references
    assert (reference.source_name, reference.external_id) == ("cve", "CVE-2021-44228")


def test_record_refuses_a_stix_id_that_is_not_uuid4():
    with pytest.raises(ValueError, match="UUIDv4"):
        make_record(stix_id="indicator--6ba7b810-9dad-11d1-80b4-00c04fd430c8")


def test_record_refuses_naive_times():
    with pytest.raises(ValueError, match="timezone-aware"):
        make_record(first_seen=datetime(2026, 3, 1))


# --- export: TLP ------------------------------------------------------------------------


def test_tlp_red_ioc_is_refused_for_export():
    with pytest.raises(TlpRedNotExportable):
        to_stix(make_record(tlp="red"))


def test_bundle_with_a_tlp_red_ioc_is_refused_as_a_whole():
    with pytest.raises(TlpRedNotExportable):
        build_bundle([make_record(), make_record(tlp="red")])


@pytest.mark.parametrize("tlp", OASIS_TLP_2_IDS)
def test_tlp_2_marking_is_the_oasis_object(tlp):
    marking = json.loads(tlp_marking(tlp).serialize())

    assert marking == {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": OASIS_TLP_2_IDS[tlp],
        "created": "2022-10-01T00:00:00.000Z",
        "name": f"TLP:{tlp.upper()}",
        "extensions": {
            TLP_2_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": tlp},
        },
    }


def test_unknown_tlp_has_no_marking():
    with pytest.raises(ValueError, match="unknown TLP"):
        tlp_marking("white")


@pytest.mark.parametrize("tlp", ["clear", "green", "amber", "amber+strict"])
def test_indicator_is_marked_with_its_tlp_2_marking(tlp):
    indicator = to_stix(make_record(tlp=tlp))

    assert indicator.object_marking_refs == [OASIS_TLP_2_IDS[tlp]]


def test_bundle_carries_exactly_the_markings_its_objects_reference():
    bundle = build_bundle([make_record(tlp="green"), make_record("cve", "CVE-2024-3094")])

    markings = [obj for obj in bundle.objects if obj.type == "marking-definition"]

    assert sorted(marking.id for marking in markings) == sorted(
        [OASIS_TLP_2_IDS["green"], OASIS_TLP_2_IDS["amber"]]
    )


# --- export: validator ------------------------------------------------------------------


@pytest.mark.parametrize(("ioc_type", "value"), ALL_TYPES, ids=lambda item: str(item))
def test_exported_object_passes_the_stix_validator(ioc_type, value):
    stix_object = json.loads(to_stix(make_record(ioc_type, value)).serialize())

    assert_passes_validator(validate_instance(stix_object))


@pytest.mark.parametrize("tlp", ["clear", "green", "amber", "amber+strict"])
def test_exported_tlp_marking_passes_the_stix_validator(tlp):
    marking = json.loads(tlp_marking(tlp).serialize())

    assert_passes_validator(validate_instance(marking))


def test_exported_bundle_passes_the_validator_with_references_enforced():
    records = [
        make_record(ioc_type, value, tlp=tlp)
        for (ioc_type, value), tlp in zip(
            ALL_TYPES, ["clear", "green", "amber", "amber+strict"] * 3, strict=True
        )
    ]

    bundle = build_bundle(records).serialize()

    assert_passes_validator(validate_string(bundle, ValidationOptions(enforce_refs=True)))


# --- import -----------------------------------------------------------------------------


@pytest.mark.parametrize(("ioc_type", "value"), ALL_TYPES, ids=lambda item: str(item))
def test_record_round_trips_through_a_stix_bundle(ioc_type, value):
    record = make_record(ioc_type, value, tlp="amber+strict")

    result = parse_bundle(build_bundle([record]).serialize())

    (ioc,) = result.iocs
    assert (ioc.ioc_type, ioc.value, ioc.confidence, ioc.tlp, ioc.tags) == (
        record.ioc_type,
        record.value,
        record.confidence,
        record.tlp,
        tuple(record.tags),
    )
    assert ioc.source_stix_id.endswith(record.stix_id.removeprefix("indicator--"))
    assert result.unmapped == []


def test_imported_indicator_keeps_its_validity_window():
    record = make_record()

    (ioc,) = parse_bundle(build_bundle([record]).serialize()).iocs

    assert (ioc.valid_from, ioc.valid_until) == (record.first_seen, record.expires_at)


def test_or_of_same_type_comparisons_yields_one_ioc_each():
    indicator = raw_indicator(
        "[domain-name:value = 'a.example.com' OR domain-name:value = 'b.example.com']"
        " OR [domain-name:value = 'c.example.com']"
    )

    result = parse_bundle(bundle_of(indicator))

    assert [(ioc.ioc_type, ioc.value) for ioc in result.iocs] == [
        ("domain", "a.example.com"),
        ("domain", "b.example.com"),
        ("domain", "c.example.com"),
    ]


def test_alternative_hashes_of_one_file_yield_one_ioc_per_hash():
    md5, sha256 = "d41d8cd98f00b204e9800998ecf8427e", "e3b0c442" * 8
    indicator = raw_indicator(f"[file:hashes.MD5 = '{md5}' OR file:hashes.SHA256 = '{sha256}']")

    result = parse_bundle(bundle_of(indicator))

    assert [(ioc.ioc_type, ioc.value) for ioc in result.iocs] == [
        ("md5", md5),
        ("sha256", sha256),
    ]


def test_issubset_of_an_address_range_imports_as_cidr():
    indicator = raw_indicator("[ipv4-addr:value ISSUBSET '198.51.100.0/24']")

    (ioc,) = parse_bundle(bundle_of(indicator)).iocs

    assert (ioc.ioc_type, ioc.value) == ("cidr", "198.51.100.0/24")


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("[process:name = 'x']", "process:name is not a property we store"),
        ("[domain-name:value = 'a.example.com' AND url:value = 'http://b.example.com/']", "AND"),
        ("[ipv4-addr:value = '203.0.113.7'] AND [domain-name:value = 'a.example.com']", "AND"),
        (
            "[ipv4-addr:value = '203.0.113.7'] FOLLOWEDBY [ipv4-addr:value = '1.1.1.1']",
            "FOLLOWEDBY",
        ),
        ("[ipv4-addr:value = '203.0.113.7'] WITHIN 60 SECONDS", "WITHIN 60 SECONDS"),
        ("[ipv4-addr:value != '203.0.113.7']", "only '=' comparisons"),
        ("[ipv4-addr:value NOT ISSUBSET '10.0.0.0/8']", "only '=' comparisons"),
        ("[domain-name:value LIKE '%.example.com']", "only '=' comparisons"),
        ("[ipv4-addr:value = '203.0.113.7'] OR [domain-name:value = 'a.example.com']", "different"),
        ("[file:name = 'dropper.exe']", "file:name is not a property we store"),
    ],
)
def test_unmappable_pattern_is_reported_with_its_reason(pattern, reason):
    indicator = raw_indicator(pattern)

    result = parse_bundle(bundle_of(indicator))

    assert result.iocs == []
    ((object_id, message),) = result.unmapped
    assert object_id == indicator["id"]
    assert reason in message


def test_unmappable_pattern_raises_a_clear_error_from_indicator_to_iocs():
    indicator = stix2.Indicator(
        pattern="[process:name = 'x']", pattern_type="stix", valid_from=FIRST_SEEN
    )

    with pytest.raises(UnmappablePattern, match="process:name"):
        indicator_to_iocs(indicator)


def test_non_stix_pattern_type_is_reported():
    indicator = raw_indicator("rule x { condition: true }", pattern_type="yara")

    result = parse_bundle(bundle_of(indicator))

    assert result.unmapped == [(indicator["id"], "pattern_type 'yara' is not a STIX pattern")]


def test_vulnerability_without_a_cve_reference_is_reported():
    vulnerability = json.loads(stix2.Vulnerability(name="an unnamed flaw").serialize())

    result = parse_bundle(bundle_of(vulnerability))

    ((object_id, message),) = result.unmapped
    assert object_id == vulnerability["id"]
    assert "source_name 'cve'" in message


def test_malformed_object_is_reported_and_the_rest_still_import():
    broken = {"type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.uuid4()}"}
    good = raw_indicator("[domain-name:value = 'a.example.com']")

    result = parse_bundle(bundle_of(broken, good))

    assert [ioc.value for ioc in result.iocs] == ["a.example.com"]
    ((object_id, message),) = result.unmapped
    assert object_id == broken["id"]
    assert "pattern" in message


def test_objects_that_carry_no_ioc_are_listed_as_skipped():
    identity = json.loads(stix2.Identity(name="ACME CERT").serialize())

    result = parse_bundle(bundle_of(identity))

    assert result.skipped == [(identity["id"], "identity")]
    assert result.iocs == result.unmapped == []


@pytest.mark.parametrize(
    "text", ["not json", '{"type": "indicator"}', '{"type": "bundle", "objects": 3}']
)
def test_input_that_is_not_a_bundle_is_refused(text):
    with pytest.raises(InvalidBundle):
        parse_bundle(text)


# --- import: TLP ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("marking", "tlp"),
    [
        (stix2.TLP_WHITE, "clear"),
        (stix2.TLP_GREEN, "green"),
        (stix2.TLP_AMBER, "amber"),
        (stix2.TLP_RED, "red"),
    ],
)
def test_tlp_1_marking_maps_to_our_tlp(marking, tlp):
    indicator = raw_indicator(
        "[domain-name:value = 'a.example.com']", object_marking_refs=[marking]
    )

    (ioc,) = parse_bundle(bundle_of(indicator)).iocs

    assert ioc.tlp == tlp


@pytest.mark.parametrize("tlp", OASIS_TLP_2_IDS)
def test_tlp_2_marking_maps_to_our_tlp_without_the_definition_in_the_bundle(tlp):
    indicator = raw_indicator(
        "[domain-name:value = 'a.example.com']", object_marking_refs=[OASIS_TLP_2_IDS[tlp]]
    )

    (ioc,) = parse_bundle(bundle_of(indicator)).iocs

    assert ioc.tlp == tlp


def test_tlp_2_marking_defined_by_the_producer_under_its_own_id_maps():
    producer_marking = json.loads(
        stix2.MarkingDefinition(
            name="TLP:AMBER+STRICT (ours)",
            extensions={
                TLP_2_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": "amber+strict"}
            },
        ).serialize()
    )
    indicator = raw_indicator(
        "[domain-name:value = 'a.example.com']", object_marking_refs=[producer_marking["id"]]
    )

    (ioc,) = parse_bundle(bundle_of(producer_marking, indicator)).iocs

    assert ioc.tlp == "amber+strict"


def test_tlp_1_marking_defined_by_the_producer_under_its_own_id_maps():
    producer_marking = {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": f"marking-definition--{uuid.uuid4()}",
        "created": "2020-01-01T00:00:00.000Z",
        "definition_type": "tlp",
        "definition": {"tlp": "white"},
    }
    indicator = raw_indicator(
        "[domain-name:value = 'a.example.com']", object_marking_refs=[producer_marking["id"]]
    )

    (ioc,) = parse_bundle(bundle_of(producer_marking, indicator)).iocs

    assert ioc.tlp == "clear"


def test_most_restrictive_of_several_tlp_markings_wins():
    indicator = raw_indicator(
        "[domain-name:value = 'a.example.com']",
        object_marking_refs=[OASIS_TLP_2_IDS["green"], stix2.TLP_AMBER.id],
    )

    (ioc,) = parse_bundle(bundle_of(indicator)).iocs

    assert ioc.tlp == "amber"


def test_indicator_without_tlp_or_confidence_leaves_them_to_the_importer():
    indicator = raw_indicator("[domain-name:value = 'a.example.com']")

    (ioc,) = parse_bundle(bundle_of(indicator)).iocs

    assert (ioc.tlp, ioc.confidence, ioc.tags, ioc.valid_until) == (None, None, (), None)


# --- import: normalisation --------------------------------------------------------------


def test_imported_values_are_normalised_like_stored_iocs():
    indicator = raw_indicator("[domain-name:value = 'EVIL.Example.COM.']")

    (ioc,) = parse_bundle(bundle_of(indicator)).iocs

    assert ioc.value == "evil.example.com"


def test_value_the_ioc_store_would_refuse_is_reported_with_the_reason():
    indicator = raw_indicator("[ipv4-addr:value = '10.1.2.3/24']")

    result = parse_bundle(bundle_of(indicator))

    assert result.iocs == []
    ((object_id, message),) = result.unmapped
    assert object_id == indicator["id"]
    assert "host bits are set; the network is 10.1.2.0/24" in message


def test_every_ioc_type_of_the_store_has_a_stix_mapping():
    assert set(IOC_TYPES) == EXPORTABLE_IOC_TYPES
