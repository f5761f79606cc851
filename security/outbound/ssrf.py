"""Outbound URL checks against server-side request forgery (SSRF), for every integration.

An admin-supplied URL (a TAXII feed today; a webhook or an identity provider later) makes
the server send requests; without a check it could be aimed at the metadata service
(169.254.169.254), the database, or anything else on the internal network. Only
``http``/``https`` URLs without embedded credentials pass, and every address the host
resolves to must be public, unless ``OUTBOUND_ALLOWED_HOSTS`` (older name:
``TAXII_ALLOWED_HOSTS``) names the host, the address or a network containing it.

Callers check a URL when it is saved; the checked session (:mod:`security.outbound.http`)
checks it again before every request and every redirect. What it cannot see: a DNS answer
that changes between this check and the connection (rebinding); the allowlist and
short-lived requests keep that window small.

``OUTBOUND_ONLY_ALLOWED_HOSTS`` turns the guard into an egress allow-list: then public
addresses are refused too and only what ``OUTBOUND_ALLOWED_HOSTS`` names may be reached
(a deployment without internet access, or a fuzz run that must not leave the machine).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import current_app

ALLOWED_SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class OutboundUrlRefused(ValueError):
    """The URL may not be fetched; the message says why and how to allow it."""


@dataclass(frozen=True)
class OutboundPolicy:
    """Where the server may send requests: the ``allowed_hosts`` (host names, addresses or
    networks) although they are private, and every public address unless
    ``only_allowed_hosts``."""

    allowed_hosts: tuple[str, ...] = ()
    only_allowed_hosts: bool = False

    def lists(self, host: str) -> bool:
        """Whether ``allowed_hosts`` names ``host`` itself, or holds it in a network when
        it is an address (a name is not resolved here)."""
        if host in self.allowed_hosts:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in _networks(self.allowed_hosts))


def configured_policy() -> OutboundPolicy:
    """The app's ``OUTBOUND_ALLOWED_HOSTS`` and ``OUTBOUND_ONLY_ALLOWED_HOSTS``."""
    return OutboundPolicy(
        tuple(current_app.config.get("OUTBOUND_ALLOWED_HOSTS") or ()),
        bool(current_app.config.get("OUTBOUND_ONLY_ALLOWED_HOSTS")),
    )


def _networks(allowed_hosts: Sequence[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = []
    for entry in allowed_hosts:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            continue
    return networks


def _resolve(host: str, port: int) -> list[IpAddress]:
    try:
        answers = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as error:
        raise OutboundUrlRefused(f"cannot resolve host {host!r}: {error}") from None
    addresses = []
    for *_, sockaddr in answers:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        mapped = getattr(address, "ipv4_mapped", None)
        addresses.append(mapped or address)
    return addresses


def _is_public(address: IpAddress) -> bool:
    """Routable on the internet: not private, loopback, link-local, multicast, reserved."""
    return address.is_global and not (
        address.is_multicast or address.is_reserved or address.is_unspecified
    )


def check_outbound_url(url: str, policy: OutboundPolicy = OutboundPolicy()) -> None:
    """Raise :class:`OutboundUrlRefused` unless the server may send a request to ``url``."""
    try:
        parts = urlsplit(url)
    except ValueError as error:  # e.g. a bracketed host that is no IPv6 address
        raise OutboundUrlRefused(f"the URL cannot be read: {error}") from None
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise OutboundUrlRefused(f"only http and https URLs are allowed, not {parts.scheme!r}")
    if parts.username is not None or parts.password is not None:
        raise OutboundUrlRefused("credentials do not belong in the URL; store them with the feed")
    host = (parts.hostname or "").lower()
    if not host:
        raise OutboundUrlRefused("the URL has no host")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme.lower()]
    except ValueError:
        raise OutboundUrlRefused("the URL's port is not a number from 0 to 65535") from None
    if policy.lists(host):
        return
    allowed_networks = _networks(policy.allowed_hosts)
    for address in _resolve(host, port):
        if any(address in network for network in allowed_networks):
            continue
        if policy.only_allowed_hosts:
            raise OutboundUrlRefused(
                f"{host} ({address}) is not in OUTBOUND_ALLOWED_HOSTS, and "
                "OUTBOUND_ONLY_ALLOWED_HOSTS lets this server reach nothing else"
            )
        if _is_public(address):
            continue
        raise OutboundUrlRefused(
            f"{host} resolves to {address}, a private, loopback, link-local, multicast or "
            "reserved address; add it to OUTBOUND_ALLOWED_HOSTS (or its older name "
            "TAXII_ALLOWED_HOSTS) if this server may reach it"
        )
