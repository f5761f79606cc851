"""IOC vocabulary, refanging, type detection and normalisation (no database)."""

import re

import pytest

from security.modules.ioc_values import (
    IOC_TYPES,
    TLD_LIST_PATH,
    InvalidIoc,
    detect_ioc_type,
    known_tlds,
    normalize_ioc,
    refang,
)


def test_ioc_types_are_the_design_vocabulary():
    assert IOC_TYPES == (
        "ipv4",
        "ipv6",
        "cidr",
        "domain",
        "url",
        "email",
        "md5",
        "sha1",
        "sha256",
        "sha512",
        "cve",
    )


def test_invalid_indicator_is_a_value_error():
    assert issubclass(InvalidIoc, ValueError)


@pytest.mark.parametrize(
    ("defanged", "refanged"),
    [
        ("evil[.]com", "evil.com"),
        ("evil(.)com", "evil.com"),
        ("evil{.}com", "evil.com"),
        ("evil[dot]com", "evil.com"),
        ("evil(DOT)com", "evil.com"),
        ("evil [.] com", "evil.com"),
        ("bob[at]evil.com", "bob@evil.com"),
        ("bob(at)evil.com", "bob@evil.com"),
        ("bob[@]evil.com", "bob@evil.com"),
        ("http[:]//evil.com", "http://evil.com"),
        ("http[://]evil.com", "http://evil.com"),
        ("hxxp://evil.com", "http://evil.com"),
        ("hXXps://evil.com", "https://evil.com"),
        ("fxp://evil.com", "ftp://evil.com"),
    ],
)
def test_refang_undoes_defanged_punctuation(defanged, refanged):
    assert refang(defanged) == refanged


def test_refang_leaves_parenthesised_domain_alone():
    assert refang("a backup host (cdn.evil.net) is used") == "a backup host (cdn.evil.net) is used"


def test_refang_leaves_hxxp_alone_when_it_is_not_a_scheme():
    assert refang("the hxxp tool") == "the hxxp tool"


@pytest.mark.parametrize(
    ("value", "ioc_type"),
    [
        ("1.2.3.4", "ipv4"),
        ("::ffff:1.2.3.4", "ipv4"),
        ("2001:db8::1", "ipv6"),
        ("[::1]", "ipv6"),
        ("10.0.0.0/8", "cidr"),
        ("2001:db8::/32", "cidr"),
        ("evil[.]example[.]com", "domain"),
        ("hxxps://evil[.]example[.]com/a?b=1", "url"),
        ("bob[at]evil.com", "email"),
        ("d41d8cd98f00b204e9800998ecf8427e", "md5"),
        ("da39a3ee5e6b4b0d3255bfef95601890afd80709", "sha1"),
        ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "sha256"),
        ("a" * 127 + "1", "sha512"),
        ("cve-2021-44228", "cve"),
    ],
)
def test_detect_ioc_type_names_the_type(value, ioc_type):
    assert detect_ioc_type(value) == ioc_type


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("hello", "needs at least two labels"),
        ("deadbeef", "8 characters long"),
        ("evil.notatld", "not a top-level domain"),
        ("10.1.2.3/24", "the network is 10.1.2.0/24"),
        ("http://localhost/", "needs at least two labels"),
    ],
)
def test_detect_ioc_type_rejects_a_value_of_no_type_with_the_reason(value, reason):
    with pytest.raises(InvalidIoc, match=re.escape(reason)):
        detect_ioc_type(value)


def test_unknown_type_is_rejected_listing_the_types():
    with pytest.raises(InvalidIoc, match="expected one of ipv4, ipv6"):
        normalize_ioc("hostname", "evil.com")


def test_non_string_value_is_rejected():
    with pytest.raises(InvalidIoc, match="must be a string"):
        normalize_ioc("ipv4", 16909060)


def test_empty_value_is_rejected():
    with pytest.raises(InvalidIoc, match="cannot be empty"):
        normalize_ioc("domain", "   ")


def test_overlong_value_is_rejected():
    with pytest.raises(InvalidIoc, match="at most 4096"):
        normalize_ioc("url", "http://evil.com/" + "a" * 5000)


def test_domain_is_lower_cased_without_its_trailing_dot():
    assert normalize_ioc("domain", " Evil.Example.COM. ") == "evil.example.com"


def test_defanged_domain_is_refanged():
    assert normalize_ioc("domain", "evil[.]example(dot)com") == "evil.example.com"


def test_idn_domain_becomes_punycode():
    assert normalize_ioc("domain", "Bücher.de") == "xn--bcher-kva.de"


def test_punycode_tld_is_known():
    assert normalize_ioc("domain", "xn--e1afmkfd.xn--p1ai") == "xn--e1afmkfd.xn--p1ai"


def test_domain_with_unknown_tld_is_rejected():
    with pytest.raises(InvalidIoc, match="'local' is not a top-level domain"):
        normalize_ioc("domain", "db01.corp.local")


def test_domain_with_one_label_is_rejected():
    with pytest.raises(InvalidIoc, match="at least two labels"):
        normalize_ioc("domain", "com")


@pytest.mark.parametrize("label", ["_dmarc", "-evil", "evil-", "a" * 64, ""])
def test_domain_label_outside_letters_digits_and_inner_hyphens_is_rejected(label):
    with pytest.raises(InvalidIoc, match="must be 1-63 letters"):
        normalize_ioc("domain", f"{label}.example.com")


def test_url_scheme_and_host_are_lower_cased_but_path_and_query_kept():
    assert (
        normalize_ioc("url", "HTTPS://Evil.Example.COM/Path/To?Q=Keep#Frag")
        == "https://evil.example.com/Path/To?Q=Keep#Frag"
    )


def test_defanged_url_is_refanged():
    assert (
        normalize_ioc("url", "hxxps://evil[.]example[.]com/a?b=1")
        == "https://evil.example.com/a?b=1"
    )


def test_url_default_port_is_dropped():
    assert normalize_ioc("url", "https://evil.com:443/x") == "https://evil.com/x"


def test_url_other_port_is_kept():
    assert normalize_ioc("url", "http://evil.com:8080/x") == "http://evil.com:8080/x"


def test_url_empty_path_is_written_as_slash():
    assert normalize_ioc("url", "http://evil.com") == "http://evil.com/"


def test_url_user_info_is_kept_as_written():
    assert (
        normalize_ioc("url", "ftp://Admin:Pw@FTP.Evil.com/pub") == "ftp://Admin:Pw@ftp.evil.com/pub"
    )


def test_url_ipv6_host_is_compressed():
    assert normalize_ioc("url", "http://[2001:DB8:0::1]:8080/") == "http://[2001:db8::1]:8080/"


def test_url_with_other_scheme_is_rejected():
    with pytest.raises(InvalidIoc, match="scheme must be one of"):
        normalize_ioc("url", "javascript://evil.com/")


def test_url_host_needs_a_known_tld():
    with pytest.raises(InvalidIoc, match="'lan' is not a top-level domain"):
        normalize_ioc("url", "http://build.internal.lan/")


def test_url_with_whitespace_is_rejected():
    with pytest.raises(InvalidIoc, match="contains whitespace"):
        normalize_ioc("url", "http://evil.com/a b")


def test_url_with_bad_port_is_rejected():
    with pytest.raises(InvalidIoc, match="Port out of range"):
        normalize_ioc("url", "http://evil.com:99999/")


def test_email_is_lower_cased():
    assert normalize_ioc("email", "John.Doe@Evil.COM") == "john.doe@evil.com"


def test_defanged_email_is_refanged():
    assert normalize_ioc("email", "john[at]evil[.]com") == "john@evil.com"


def test_email_with_invalid_domain_is_rejected():
    with pytest.raises(InvalidIoc, match="domain 'localhost' is not a valid domain"):
        normalize_ioc("email", "root@localhost")


def test_email_with_invalid_local_part_is_rejected():
    with pytest.raises(InvalidIoc, match="not a valid mailbox name"):
        normalize_ioc("email", "john..doe@evil.com")


@pytest.mark.parametrize(
    ("ioc_type", "length"), [("md5", 32), ("sha1", 40), ("sha256", 64), ("sha512", 128)]
)
def test_hash_is_lower_cased(ioc_type, length):
    assert normalize_ioc(ioc_type, "AB" * (length // 2)) == "ab" * (length // 2)


def test_hash_of_another_length_is_rejected():
    with pytest.raises(InvalidIoc, match="exactly 64 hexadecimal"):
        normalize_ioc("sha256", "d41d8cd98f00b204e9800998ecf8427e")


def test_hash_with_non_hex_character_is_rejected():
    with pytest.raises(InvalidIoc, match="exactly 32 hexadecimal"):
        normalize_ioc("md5", "g41d8cd98f00b204e9800998ecf8427e")


def test_cve_is_upper_cased():
    assert normalize_ioc("cve", "cve-2024-1234") == "CVE-2024-1234"


@pytest.mark.parametrize("value", ["CVE-2024-123", "CVE-24-1234", "CVE 2024 1234"])
def test_malformed_cve_is_rejected(value):
    with pytest.raises(InvalidIoc, match="must look like CVE-2024-1234"):
        normalize_ioc("cve", value)


def test_cve_before_1999_is_rejected():
    with pytest.raises(InvalidIoc, match="start at 1999"):
        normalize_ioc("cve", "CVE-1998-0001")


@pytest.mark.parametrize(
    ("value", "canonical"),
    [("10.0.0.0/8", "10.0.0.0/8"), ("2001:DB8:0:0::/32", "2001:db8::/32")],
)
def test_cidr_is_canonical(value, canonical):
    assert normalize_ioc("cidr", value) == canonical


def test_cidr_with_host_bits_is_rejected_naming_the_network():
    with pytest.raises(
        InvalidIoc, match=re.escape("host bits are set; the network is 10.1.2.0/24")
    ):
        normalize_ioc("cidr", "10.1.2.3/24")


def test_cidr_without_prefix_is_rejected():
    with pytest.raises(InvalidIoc, match="needs a /prefix"):
        normalize_ioc("cidr", "10.0.0.0")


def test_defanged_ipv4_is_refanged():
    assert normalize_ioc("ipv4", "1[.]2[.]3[.]4") == "1.2.3.4"


@pytest.mark.parametrize("value", ["010.1.2.3", "256.1.2.3", "1.2.3", "1.2.3.4:80"])
def test_invalid_ipv4_is_rejected(value):
    with pytest.raises(InvalidIoc, match="not a valid ipv4"):
        normalize_ioc("ipv4", value)


def test_ipv4_mapped_address_is_normalised_as_ipv4():
    assert normalize_ioc("ipv4", "::ffff:1.2.3.4") == "1.2.3.4"


def test_ipv4_mapped_address_is_refused_as_ipv6():
    with pytest.raises(InvalidIoc, match=re.escape("store it as ipv4 1.2.3.4")):
        normalize_ioc("ipv6", "::ffff:1.2.3.4")


def test_ipv6_is_compressed():
    assert (
        normalize_ioc("ipv6", "2001:0DB8:0000:0000:0000:FF00:0042:8329") == "2001:db8::ff00:42:8329"
    )


def test_ipv6_zone_is_dropped():
    assert normalize_ioc("ipv6", "fe80::1%eth0") == "fe80::1"


def test_invalid_ipv6_is_rejected():
    with pytest.raises(InvalidIoc, match="not a valid ipv6"):
        normalize_ioc("ipv6", "2001:db8::1::2")


@pytest.mark.parametrize(
    ("ioc_type", "value"),
    [
        ("domain", "xn--bcher-kva.de"),
        ("url", "https://evil.example.com/a?b=1"),
        ("email", "john@evil.com"),
        ("cidr", "2001:db8::/32"),
        ("ipv6", "fe80::1"),
        ("cve", "CVE-2024-1234"),
    ],
)
def test_normalising_a_canonical_value_returns_it_unchanged(ioc_type, value):
    assert normalize_ioc(ioc_type, value) == value


def test_tld_list_names_its_release_and_holds_current_tlds():
    assert TLD_LIST_PATH.read_text().startswith("# Version ")
    assert {"com", "zip", "mov", "xn--p1ai"} <= known_tlds()
    assert "local" not in known_tlds()
