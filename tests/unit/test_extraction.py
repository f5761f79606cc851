"""IOC extraction from free text, against specific cases and the labelled data set."""

import pytest

from bench.ioc_extraction import load_labelled_cases, score_labelled_cases
from security.modules.extraction import extract_iocs


def test_labelled_cases_reach_the_precision_and_recall_targets():
    score = score_labelled_cases(load_labelled_cases())
    print(f"\n{score}")
    assert score.cases >= 400
    assert score.precision >= 0.97, score.misses
    assert score.recall >= 0.95, score.misses


def test_cases_from_other_projects_tests_reach_the_targets_on_their_own():
    converted = [case for case in load_labelled_cases() if "source" in case]
    score = score_labelled_cases(converted)
    print(f"\n{score}")
    assert score.cases >= 250
    assert score.precision >= 0.97, score.misses
    assert score.recall >= 0.95, score.misses


def test_defanged_url_is_refanged_with_its_domain():
    assert extract_iocs("get hxxps://evil[.]example[.]com/a?b=1 now") == {
        "domain": ["evil.example.com"],
        "url": ["https://evil.example.com/a?b=1"],
    }


def test_text_without_indicators_gives_an_empty_result():
    assert extract_iocs("Nothing to see here, e.g. no hosts at all.") == {}


def test_only_types_found_are_returned_in_vocabulary_order():
    found = extract_iocs("CVE-2024-1234 on evil.com from 1.2.3.4")
    assert list(found) == ["ipv4", "domain", "cve"]


def test_values_are_sorted_and_unique():
    assert extract_iocs("b.evil.com a.evil.com B.EVIL.COM b[.]evil[.]com") == {
        "domain": ["a.evil.com", "b.evil.com"]
    }


@pytest.mark.parametrize(
    "file_name",
    ["invoice.pdf", "setup.exe", "run.sh", "notes.md", "archive.zip", "script.py", "clip.mov"],
)
def test_file_name_is_not_a_domain(file_name):
    assert extract_iocs(f"The user opened {file_name} yesterday.") == {}


def test_file_extension_tld_is_a_domain_when_defanged():
    assert extract_iocs("Phishing host invoice-portal[.]zip") == {"domain": ["invoice-portal.zip"]}


def test_file_extension_tld_is_a_domain_as_a_url_host():
    assert extract_iocs("https://github-release.zip/x")["domain"] == ["github-release.zip"]


def test_file_extension_tld_is_a_domain_after_www():
    assert extract_iocs("visit www.bank-statement.zip") == {"domain": ["www.bank-statement.zip"]}


def test_unknown_tld_is_not_a_domain():
    assert extract_iocs("db01.corp.local and evil.notarealtld") == {}


def test_domain_in_parentheses_is_found_intact():
    assert extract_iocs("a backup host (cdn.evil.net) is used") == {"domain": ["cdn.evil.net"]}


def test_code_style_mixed_case_namespace_is_not_a_domain():
    assert extract_iocs("It used System.Net.WebClient and System.IO.") == {}


def test_method_call_is_not_a_domain():
    assert extract_iocs("then logging.info(msg) runs") == {}


def test_domain_inside_a_non_ascii_word_is_not_reported():
    assert extract_iocs("évil.com") == {}


def test_version_with_prefix_and_suffix_is_not_an_ipv4():
    assert extract_iocs("Upgrade to v1.2.3.4-beta today") == {}


def test_dotted_quad_of_an_oid_is_not_an_ipv4():
    assert extract_iocs("OID 1.3.6.1.4.1.311.21.8") == {}


def test_bare_dotted_quad_is_an_ipv4():
    assert extract_iocs("beacon to 1.2.3.4") == {"ipv4": ["1.2.3.4"]}


@pytest.mark.parametrize(
    "text", ["version 1.2.3.4", "Version: 10.0.0.1", "ver. 6.4.1.12", "v 2.0.1.3", "v. 3.1.0.7"]
)
def test_dotted_quad_after_a_version_word_is_not_an_ipv4(text):
    assert extract_iocs(f"agent {text} installed") == {}


def test_word_ending_in_ver_does_not_hide_an_address():
    assert extract_iocs("server 192.0.2.44") == {"ipv4": ["192.0.2.44"]}


def test_dots_among_stray_brackets_in_an_address_are_refanged():
    assert extract_iocs("10[[[.]]]10.10.)))10") == {"ipv4": ["10.10.10.10"]}


def test_port_is_dropped_from_an_ipv4():
    assert extract_iocs("shell to 1.2.3.4:8080") == {"ipv4": ["1.2.3.4"]}


def test_defanged_ipv4_is_refanged():
    assert extract_iocs("beacon 45[.]77(.)12[dot]9") == {"ipv4": ["45.77.12.9"]}


def test_cidr_is_a_cidr_not_an_address():
    assert extract_iocs("allow 10.0.0.0/8 only") == {"cidr": ["10.0.0.0/8"]}


def test_cidr_with_host_bits_gives_the_address():
    assert extract_iocs("eth0 is 10.1.2.3/24") == {"ipv4": ["10.1.2.3"]}


def test_ipv6_loopback_is_found():
    assert extract_iocs("binds to ::1 only") == {"ipv6": ["::1"]}


def test_ipv6_zone_is_dropped():
    assert extract_iocs("neighbour fe80::1%eth0 answered") == {"ipv6": ["fe80::1"]}


def test_ipv4_mapped_ipv6_is_reported_as_ipv4():
    assert extract_iocs("peer ::ffff:203.0.113.9") == {"ipv4": ["203.0.113.9"]}


def test_scope_operator_and_times_are_not_ipv6():
    assert extract_iocs("std::vector at 12:30:45 and a :: b, MAC 00:1a:2b:3c:4d:5e") == {}


def test_email_in_angle_brackets_is_found():
    assert extract_iocs("From: Alice <Alice@Corp-Mail.com>") == {
        "domain": ["corp-mail.com"],
        "email": ["alice@corp-mail.com"],
    }


def test_email_domain_is_reported_as_a_domain():
    assert extract_iocs("write to bob@evil.com") == {
        "domain": ["evil.com"],
        "email": ["bob@evil.com"],
    }


def test_at_sign_with_a_space_beside_it_is_refanged():
    found = extract_iocs("reply to myuser @ example[.]com")
    assert found["email"] == ["myuser@example.com"]


def test_email_at_an_ip_literal_gives_the_address():
    assert extract_iocs("sent by a@127.0.0.1") == {"ipv4": ["127.0.0.1"]}


def test_defanged_email_is_refanged():
    assert extract_iocs("ops [at] darkmarket [.] cc") == {
        "domain": ["darkmarket.cc"],
        "email": ["ops@darkmarket.cc"],
    }


def test_url_trailing_punctuation_is_trimmed():
    found = extract_iocs("See (http://evil.com/a), then http://evil.com/b.")
    assert found["url"] == ["http://evil.com/a", "http://evil.com/b"]


def test_url_keeps_parentheses_it_opened():
    found = extract_iocs("see https://en.wikipedia.org/wiki/Emotet_(malware).")
    assert found["url"] == ["https://en.wikipedia.org/wiki/Emotet_(malware)"]


def test_url_ip_host_is_reported_as_ipv4():
    assert extract_iocs("hxxp://185[.]220[.]101[.]45:8443/x") == {
        "ipv4": ["185.220.101.45"],
        "url": ["http://185.220.101.45:8443/x"],
    }


def test_domain_in_url_query_is_reported():
    found = extract_iocs("http://safe.example.com/r?to=evil.net")
    assert found["domain"] == ["evil.net", "safe.example.com"]


def test_hash_in_a_sandbox_report_path_is_reported_with_the_url():
    sha256 = "0f1e2d3c4b5a6978" * 4
    found = extract_iocs(f"https://sandbox.example.net/report/{sha256}/summary")
    assert found["sha256"] == [sha256]
    assert found["url"] == [f"https://sandbox.example.net/report/{sha256}/summary"]


def test_address_in_a_lookup_query_is_reported_with_the_url():
    found = extract_iocs("https://intel.example.org/lookup?ip=203.0.113.9")
    assert found["ipv4"] == ["203.0.113.9"]
    assert found["url"] == ["https://intel.example.org/lookup?ip=203.0.113.9"]


def test_percent_encoded_redirect_target_is_reported_by_its_host():
    found = extract_iocs("https://l.facebook.com/l.php?u=https%3A%2F%2Fdrop.top%2Fa.exe&h=x")
    assert found["domain"] == ["drop.top", "l.facebook.com"]
    assert len(found["url"]) == 1


def test_file_name_in_a_url_path_is_not_a_domain():
    assert extract_iocs("https://cdn-files.net/tools/run.sh")["domain"] == ["cdn-files.net"]


@pytest.mark.parametrize(
    "text",
    [
        "[label](https://host.com/path)",
        "[https://host.com/path](https://host.com/path)",
        "[https://host.com/path]",
    ],
)
def test_markdown_link_does_not_run_the_url_into_the_bracket(text):
    assert extract_iocs(text)["url"] == ["https://host.com/path"]


def test_markdown_link_with_another_label_url_gives_both():
    found = extract_iocs("[https://a-host.com/p](https://b-host.org/q)")
    assert found["url"] == ["https://a-host.com/p", "https://b-host.org/q"]


def test_url_ends_before_a_typographic_quote_or_a_unicode_space():
    found = extract_iocs("“https://evil-cdn.net/a” and https://evil-cdn.net/b\u00a0next")
    assert found["url"] == ["https://evil-cdn.net/a", "https://evil-cdn.net/b"]


def test_url_without_known_host_is_not_reported():
    assert extract_iocs("dev server http://localhost:5000/") == {}


@pytest.mark.parametrize(
    ("length", "ioc_type"), [(32, "md5"), (40, "sha1"), (64, "sha256"), (128, "sha512")]
)
def test_hash_type_follows_its_length(length, ioc_type):
    value = ("0a" * 64)[:length]
    assert extract_iocs(f"hash {value.upper()} seen") == {ioc_type: [value]}


def test_hex_run_longer_than_a_hash_is_not_a_hash():
    assert extract_iocs("blob " + "ab12" * 17 + " end") == {}


def test_hash_before_a_file_extension_is_found():
    found = extract_iocs("dropped d41d8cd98f00b204e9800998ecf8427e.exe")
    assert found == {"md5": ["d41d8cd98f00b204e9800998ecf8427e"]}


def test_digits_only_run_is_not_a_hash():
    assert extract_iocs("serial 12345678901234567890123456789012") == {}


def test_cve_is_upper_cased():
    assert extract_iocs("exploits cve-2017-0144.") == {"cve": ["CVE-2017-0144"]}


@pytest.mark.parametrize("written", ["CVE 2021 44228", "CVE_2021_44228", "cve-2021_44228"])
def test_cve_written_with_a_space_or_underscore_is_normalised(written):
    assert extract_iocs(f"patch {written} now") == {"cve": ["CVE-2021-44228"]}


@pytest.mark.parametrize(
    "signature",
    [
        "Trojan:Win32/Foo.AB!ml",
        "Trojan:Win32/Emotet.PK!MTB",
        "W32/Agent.XY!tr",
        "W32/AGENT.CO!tr",
        "Win32/agent.co",
        "MSIL/bladabindi.io",
        "Linux/Mirai.cc",
    ],
)
def test_antivirus_signature_name_is_not_a_domain(signature):
    assert extract_iocs(f"detected as {signature} by the gateway") == {}


def test_domain_after_a_signature_name_is_still_found():
    found = extract_iocs("W32/Agent.XY!tr downloaded from update-check.info!")
    assert found == {"domain": ["update-check.info"]}


def test_host_name_with_one_case_per_label_is_a_domain():
    found = extract_iocs("PTR NWD2HUBCAS1234.ad.analog.com")
    assert found == {"domain": ["nwd2hubcas1234.ad.analog.com"]}


@pytest.mark.parametrize(
    "text",
    [
        "see foo.example",
        "see bar.test",
        "see https://baz.invalid/x",
        "mail admin@web.localhost",
        "host.EXAMPLE",
    ],
)
def test_reserved_test_domains_are_not_extracted(text):
    assert extract_iocs(text) == {}
