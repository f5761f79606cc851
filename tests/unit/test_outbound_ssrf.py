"""The outbound URL check that keeps integrations (feed polling) from reaching internal
addresses."""

from __future__ import annotations

import pytest

from security.outbound.ssrf import OutboundPolicy, OutboundUrlRefused, check_outbound_url


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/taxii2/",
        "http://localhost:8080/taxii2/",
        "http://10.1.2.3/",
        "http://192.168.0.10/",
        "http://172.16.5.4/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[fe80::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://224.0.0.1/",
        "http://0.0.0.0/",
        "http://100.64.0.1/",
    ],
)
def test_private_loopback_link_local_and_reserved_targets_are_refused(url):
    with pytest.raises(OutboundUrlRefused, match="TAXII_ALLOWED_HOSTS"):
        check_outbound_url(url)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://203.0.113.5/", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://203.0.113.5/", "only http and https"),
        ("http://user:pw@203.0.113.5/", "credentials do not belong in the URL"),
        ("http:///no-host", "no host"),
        ("http://203.0.113.5:99999/", "port"),
    ],
)
def test_malformed_or_non_http_urls_are_refused(url, reason):
    with pytest.raises(OutboundUrlRefused, match=reason):
        check_outbound_url(url)


def test_a_public_address_passes():
    check_outbound_url("https://8.8.8.8/taxii2/")


def test_an_allowlisted_address_passes():
    check_outbound_url("http://127.0.0.1:5000/taxii2/", OutboundPolicy(("127.0.0.1",)))


def test_an_allowlisted_network_passes():
    check_outbound_url("http://10.20.30.40/", OutboundPolicy(("10.0.0.0/8",)))


def test_an_allowlisted_host_name_passes_without_resolving():
    check_outbound_url(
        "https://taxii.internal.example/", OutboundPolicy(("taxii.internal.example",))
    )


def test_allowlisting_one_address_does_not_open_its_neighbours():
    with pytest.raises(OutboundUrlRefused):
        check_outbound_url("http://127.0.0.2/", OutboundPolicy(("127.0.0.1",)))


def test_an_unresolvable_host_is_refused():
    with pytest.raises(OutboundUrlRefused, match="cannot resolve"):
        check_outbound_url("http://no-such-host.invalid/")


def test_only_allowed_hosts_refuses_a_public_address_and_passes_what_it_lists():
    egress = OutboundPolicy(("127.0.0.1", "8.8.4.0/24"), only_allowed_hosts=True)
    with pytest.raises(OutboundUrlRefused, match="OUTBOUND_ONLY_ALLOWED_HOSTS"):
        check_outbound_url("https://8.8.8.8/taxii2/", egress)
    with pytest.raises(OutboundUrlRefused, match="OUTBOUND_ONLY_ALLOWED_HOSTS"):
        check_outbound_url("http://127.0.0.2/", egress)
    check_outbound_url("https://8.8.4.4/taxii2/", egress)
    check_outbound_url("http://127.0.0.1:5000/taxii2/", egress)
