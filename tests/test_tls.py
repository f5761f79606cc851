"""TLS and mutual TLS served by gunicorn itself (``gunicorn.conf.py``, ``buffering_worker.py``).

One real server on loopback with a certificate from a test CA and client certificates
required from another (both made by ``trustme``): a client without a certificate, with one
from a CA the server does not trust, or with an expired one is refused during the TLS
handshake, before any HTTP is read. A certificate that ``CLIENT_CERTIFICATE_KEYS`` maps to
an API key reaches exactly that key's scopes; a valid one mapped to nothing is 401.
"""

from __future__ import annotations

import dataclasses
import socket
import ssl
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import trustme
from sqlalchemy import select

from models import ApiKey, CredentialUsage, db
from security.modules.principals import hash_secret
from tests.helpers import create_user_row
from tests.servers import GunicornServer, HttpAnswer, running_gunicorn
from tests.suite_guards import GUARDS_KEY

pytestmark = pytest.mark.slow

MAPPED_NAME = "siem.example.org"
MAPPED_KEY_PREFIX = "sak_siem0001"


@dataclasses.dataclass
class Pki:
    server_ca: trustme.CA
    client_ca: trustme.CA
    directory: Path

    def client_context(self, leaf: trustme.LeafCert | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.server_ca.configure_trust(context)
        if leaf is not None:
            leaf.configure_cert(context)
        return context


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(trustme.CA(), trustme.CA(), tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def server(database_url: str, pytestconfig: pytest.Config, pki: Pki) -> Iterator[GunicornServer]:
    server_pem = pki.directory / "server.pem"
    client_ca_pem = pki.directory / "client-ca.pem"
    pki.server_ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(
        str(server_pem)
    )
    pki.client_ca.cert_pem.write_to_path(str(client_ca_pem))
    with running_gunicorn(
        database_url,
        pytestconfig.stash[GUARDS_KEY].log_directory,
        workers=1,
        client_context=pki.client_context(pki.client_ca.issue_cert("probe.example.org")),
        GUNICORN_CERTFILE=str(server_pem),
        GUNICORN_CLIENT_CA=str(client_ca_pem),
        GUNICORN_HEAD_TIMEOUT="2",
        CLIENT_CERTIFICATE_KEYS=f"DNS:{MAPPED_NAME}={MAPPED_KEY_PREFIX}",
    ) as started:
        yield started


@pytest.fixture
def mapped_key(app) -> int:
    """An analyst's API key that may only read IOCs, under the prefix the server maps."""
    owner_id = create_user_row(app, "siem-owner", "analyst")
    with app.app_context():
        key = ApiKey(
            user_id=owner_id,
            name="SIEM connector",
            prefix=MAPPED_KEY_PREFIX,
            secret_hash=hash_secret("never-presented"),
            scopes=["iocs:read"],
        )
        db.session.add(key)
        db.session.commit()
        return key.id


def request_with(
    server: GunicornServer, context: ssl.SSLContext, method: str, path: str
) -> HttpAnswer:
    return dataclasses.replace(server, client_context=context).request(method, path)


def handshake_refusal(server: GunicornServer, context: ssl.SSLContext) -> ssl.SSLError:
    """The TLS error that ends the connection before any HTTP answer arrives."""
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
        pytest.raises(ssl.SSLError) as refused,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        # With TLS 1.3 the client's certificate is judged after the client's side of the
        # handshake ends: the server's alert arrives at the first read.
        tls.recv(1)
    return refused.value


def test_a_client_without_a_certificate_is_refused_at_the_handshake(server, pki):
    refusal = handshake_refusal(server, pki.client_context())
    assert "CERTIFICATE_REQUIRED" in refusal.reason


def test_a_certificate_from_another_ca_is_refused_at_the_handshake(server, pki):
    stranger = trustme.CA().issue_cert(MAPPED_NAME)
    refusal = handshake_refusal(server, pki.client_context(stranger))
    assert "UNKNOWN_CA" in refusal.reason


def test_an_expired_certificate_is_refused_at_the_handshake(server, pki):
    now = datetime.now(UTC)
    expired = pki.client_ca.issue_cert(
        MAPPED_NAME, not_before=now - timedelta(days=30), not_after=now - timedelta(days=1)
    )
    refusal = handshake_refusal(server, pki.client_context(expired))
    assert "CERTIFICATE_EXPIRED" in refusal.reason


def test_protocols_older_than_tls_1_2_are_refused(server, pki):
    context = pki.client_context(pki.client_ca.issue_cert(MAPPED_NAME))
    with warnings.catch_warnings():  # the old protocol is the point of this client
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("ALL:@SECLEVEL=0")
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
        pytest.raises(ssl.SSLError),
    ):
        context.wrap_socket(raw, server_hostname="127.0.0.1")


def test_tls_1_3_is_chosen_when_the_client_offers_it(server, pki):
    context = pki.client_context(pki.client_ca.issue_cert(MAPPED_NAME))
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.version() == "TLSv1.3"


def test_a_mapped_certificate_reaches_only_its_keys_scopes(app, server, pki, mapped_key):
    context = pki.client_context(pki.client_ca.issue_cert(MAPPED_NAME))
    assert request_with(server, context, "GET", "/iocs").status == 200
    assert request_with(server, context, "GET", "/incidents").status == 403
    with app.app_context():
        uses = db.session.scalars(
            select(CredentialUsage).where(CredentialUsage.api_key_id == mapped_key)
        ).all()
    assert sorted((use.operation, use.outcome, use.reason) for use in uses) == [
        ("GET /incidents", "denied", "client_certificate"),
        ("GET /iocs", "success", "client_certificate"),
    ]


def test_a_revoked_key_no_longer_lets_its_certificate_in(app, server, pki, mapped_key):
    with app.app_context():
        db.session.get(ApiKey, mapped_key).revoked_at = datetime.now(UTC)
        db.session.commit()
    context = pki.client_context(pki.client_ca.issue_cert(MAPPED_NAME))
    assert request_with(server, context, "GET", "/iocs").status == 401


def test_a_valid_certificate_mapped_to_nothing_is_401(server, pki, mapped_key):
    context = pki.client_context(pki.client_ca.issue_cert("unmapped.example.org"))
    answer = request_with(server, context, "GET", "/iocs")
    assert answer.status == 401
    assert answer.headers["Strict-Transport-Security"]


def test_a_client_that_never_finishes_its_handshake_is_closed_and_holds_no_thread(server, pki):
    silent = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        assert server.request("GET", "/health").status == 200
        assert silent.recv(1) == b""  # closed after GUNICORN_HEAD_TIMEOUT (2 s)
    finally:
        silent.close()


# --- behind a reverse proxy: the identity it verified, in a header -----------------------


@pytest.fixture
def proxied(app, monkeypatch, mapped_key):
    monkeypatch.setitem(app.config, "CLIENT_CERTIFICATE_HEADER", "X-Client-Cert")
    monkeypatch.setitem(
        app.config, "CLIENT_CERTIFICATE_KEYS", {f"DNS:{MAPPED_NAME}": MAPPED_KEY_PREFIX}
    )
    return app


def escaped_certificate(pki: Pki) -> str:
    """The certificate as nginx's ``$ssl_client_escaped_cert`` passes it."""
    return quote(pki.client_ca.issue_cert(MAPPED_NAME).cert_chain_pems[0].bytes().decode())


def test_a_trusted_proxys_certificate_header_stands_for_the_mapped_key(
    proxied, client, pki, monkeypatch
):
    monkeypatch.setitem(proxied.config, "TRUSTED_PROXIES", 1)
    headers = {"X-Client-Cert": escaped_certificate(pki)}
    assert client.get("/iocs", headers=headers).status_code == 200
    assert client.get("/incidents", headers=headers).status_code == 403


def test_the_certificate_header_is_ignored_without_trusted_proxies(proxied, client, pki):
    headers = {"X-Client-Cert": escaped_certificate(pki)}
    assert client.get("/iocs", headers=headers).status_code == 401
