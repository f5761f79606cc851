"""Client certificates: the identities a verified TLS client certificate carries, and the API
key an admin mapped one of them to.

Where the certificate comes from:

- gunicorn serving mutual TLS itself: the worker passes the certificate its handshake
  verified (chain to ``GUNICORN_CLIENT_CA``, validity dates) in
  ``environ["soc.client_certificate"]`` (``buffering_worker.py``);
- a reverse proxy that ends mutual TLS: it passes the certificate it verified, as
  URL-escaped PEM (nginx's ``$ssl_client_escaped_cert``), in the header named by
  ``CLIENT_CERTIFICATE_HEADER``. The header is believed only when ``TRUSTED_PROXIES`` is
  set, the same trust as ``X-Forwarded-For`` (the app must then be reachable only through
  the proxy, which must overwrite the header on every request); otherwise it is ignored.

A certificate's identities are its subject's common name as ``CN=<name>`` and each subject
alternative name as ``DNS:<name>``, ``URI:<uri>``, ``email:<address>`` or ``IP:<address>``.
``CLIENT_CERTIFICATE_KEYS`` maps an identity to an API key's prefix: the request is then
that key's principal, with its scopes (within its owner's role), its revocation and
expiry, and an entry in its usage log, exactly as if its secret had been presented. An
unmapped certificate names nobody: without another credential the request is 401.
"""

from __future__ import annotations

from urllib.parse import unquote

from cryptography import x509
from cryptography.x509.oid import NameOID
from flask import current_app, request

from models import db
from security.modules.credentials import authenticate_api_key_by_certificate, key_permissions
from security.modules.principals import Principal

ENVIRON_KEY = "soc.client_certificate"
_NAME_KINDS: tuple[tuple[type, str], ...] = (
    (x509.DNSName, "DNS"),
    (x509.UniformResourceIdentifier, "URI"),
    (x509.RFC822Name, "email"),
    (x509.IPAddress, "IP"),
)


def certificate_identities(certificate: x509.Certificate) -> list[str]:
    """The subject's common names, then the subject alternative names, in mapping form."""
    identities = [
        f"CN={attribute.value!s}"
        for attribute in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    ]
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return identities
    for kind, label in _NAME_KINDS:
        identities += [f"{label}:{value}" for value in names.value.get_values_for_type(kind)]
    return identities


def presented_certificate() -> x509.Certificate | None:
    """The request's verified client certificate: from the TLS connection, or from a trusted
    proxy's header; None when there is none (or the header is not to be believed)."""
    der = request.environ.get(ENVIRON_KEY)
    if der:
        return x509.load_der_x509_certificate(der)
    header = current_app.config["CLIENT_CERTIFICATE_HEADER"]
    if not header or not current_app.config["TRUSTED_PROXIES"]:
        return None
    escaped = request.headers.get(header, "")
    if not escaped:
        return None
    try:
        return x509.load_pem_x509_certificate(unquote(escaped).encode())
    except ValueError:
        return None


def resolve_client_certificate() -> Principal | None:
    """The principal of the API key the request's client certificate is mapped to, if any."""
    mapping: dict[str, str] = current_app.config["CLIENT_CERTIFICATE_KEYS"]
    if not mapping:
        return None
    certificate = presented_certificate()
    if certificate is None:
        return None
    prefix = next(
        (mapping[name] for name in certificate_identities(certificate) if name in mapping), None
    )
    if prefix is None:
        return None
    key = authenticate_api_key_by_certificate(
        prefix, component="http", operation=f"{request.method} {request.path}"[:128]
    )
    db.session.commit()  # the use is logged even when the key refuses it
    if key is None:
        return None
    return Principal.of(key.user, key_permissions(key), "api_key", key.id)
