"""The IOC vocabulary and the one place an indicator's canonical form is decided.

Lives here: the type vocabulary (:data:`IOC_TYPES`), :class:`InvalidIoc`,
:func:`refang`, :func:`detect_ioc_type` and :func:`normalize_ioc`, plus the regular
expression fragments for defanged punctuation, shared with the extractor so that what
the extractor recognises and what :func:`refang` undoes cannot drift apart.
Does not live here: finding indicators in free text (:mod:`security.modules.extraction`),
storing, deduplicating or searching them (the IOC store).

Canonical forms, and the decisions behind them:

- Every value is stripped and refanged first (``hxxp``, ``[.]``, ``(dot)``, ``[at]``,
  ``[:]``, ``[://]``, ``user @ host`` ...). Refanging only rewrites a token that is
  bracketed as a whole, or an at-sign with a space beside it, so ``(cdn.evil.net)``
  stays as it is.
- ``domain``: lower-case, trailing dot dropped, IDN labels converted to punycode with the
  standard library's IDNA 2003 codec (no dependency; ``xn--`` labels pass unchanged).
  Labels are letters, digits and inner hyphens (no underscores), at least two of them,
  and the last must be in IANA's root-zone list, shipped as
  ``security/data/tlds-alpha-by-domain.txt`` (its header line says which release), or
  one of the reserved test TLDs (:data:`RESERVED_TLDS`: ``example``, ``test``,
  ``invalid``, ``localhost``; RFC 2606 and RFC 6761). Those never resolve on the public
  internet, but exercises, sandboxes and partners' test feeds write indicators under them
  on purpose, so an explicit write of one is kept; the free-text extractor is the one
  that leaves them out (:func:`is_reserved_domain`), because in prose they are examples.
- ``ipv4``: dotted quad without leading zeros. An IPv4-mapped IPv6 address
  (``::ffff:1.2.3.4``) *is* that IPv4 address: it is detected and stored as ``ipv4``
  and refused as ``ipv6``, so one host never sits under two types.
- ``ipv6``: compressed form; brackets and a zone index (``fe80::1%eth0``) are dropped,
  as a zone only names an interface on the machine that wrote it.
- ``cidr``: ``ipaddress`` canonical network. A network with host bits set
  (``10.1.2.3/24``) is refused, naming the network it would be, rather than masked:
  whether the writer meant the host or the network is theirs to say.
- ``url``: scheme and host lower-cased (host normalised like a domain or an IP), the
  scheme's default port dropped, an empty path written ``/``; user info, path, query and
  fragment are kept as written because servers may treat them case-sensitively. The
  host must be an IP address or a domain with a known TLD.
- ``email``: lower-case, domain validated like a domain.
- hashes: lower-case hex of exactly the type's length.
- ``cve``: upper-case ``CVE-YYYY-NNNN`` (year from 1999, four or more digits).
"""

import functools
import ipaddress
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from security.errors import Invalid

IOC_TYPES = (
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

HASH_TYPES_BY_LENGTH = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}

URL_SCHEMES = frozenset({"http", "https", "ftp", "ftps", "sftp"})

# Reserved for testing and documentation (RFC 2606 section 2, RFC 6761 section 6): not in
# IANA's root zone, never delegated, accepted by explicit writes (module docstring).
RESERVED_TLDS = frozenset({"example", "invalid", "localhost", "test"})

MAX_VALUE_LENGTH = 4096

TLD_LIST_PATH = Path(__file__).resolve().parent.parent / "data" / "tlds-alpha-by-domain.txt"

# Regular-expression fragments for defanged punctuation, for use with re.IGNORECASE.
# A dot or an at-sign may be written bracketed, as a symbol or a word, with spaces
# inside or around the brackets: "[.]", "(dot)", "{.}", " [ dot ] ", "[at]", "(@)"; an
# at-sign also bare with a space beside it ("user @ example[.]com").
DEFANGED_DOT = r"(?:[ \t]*+[\[({][ \t]*+(?:\.|dot)[ \t]*+[\])}][ \t]*+)"
DEFANGED_AT = r"(?:[ \t]*+[\[({][ \t]*+(?:@|at)[ \t]*+[\])}][ \t]*+|[ \t]@[ \t]?|@[ \t])"
# A colon or slashes bracketed as a whole: "[:]", "[://]", "(:)", "[/]", "[//]".
DEFANGED_PUNCTUATION = r"(?:[\[(](?::|:?//?)[\])])"
# A scheme written "hxxp", "hXXps", "h**p", "fxp" or "sfxp".
DEFANGED_SCHEME = r"(?:h(?:xx|\*\*)ps?|s?fxps?)"

DOT = rf"(?:\.|{DEFANGED_DOT})"
AT = rf"(?:@|{DEFANGED_AT})"

_REFANG = re.compile(
    rf"(?P<dot>{DEFANGED_DOT})"
    rf"|(?P<at>{DEFANGED_AT})"
    rf"|(?P<punctuation>{DEFANGED_PUNCTUATION})"
    rf"|(?P<scheme>\b{DEFANGED_SCHEME}(?=:|{DEFANGED_PUNCTUATION}))",
    re.IGNORECASE | re.ASCII,
)
# Something every match of _REFANG contains: a cheap search that lets most values (plain
# hosts, addresses, hashes) skip the substitution, which tries every alternative at every
# character and is the largest single cost of extracting from text.
_DEFANG_MARK = re.compile(r"[\[({@]|xx|\*\*|fx", re.IGNORECASE)
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_EMAIL_LOCAL_PART = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_CVE = re.compile(r"CVE-(\d{4})-\d{4,}")
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_IPV6_CHARACTERS = _HEX_DIGITS | {":", "."}
_DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21, "ftps": 990, "sftp": 22}


class InvalidIoc(Invalid, ValueError):
    """A value that is not a valid indicator of the type asked for (or of any type);
    ``field`` names the input at fault (the value, unless said otherwise)."""

    def __init__(self, detail: str, *, field: str = "value") -> None:
        super().__init__(detail, field=field)


@functools.cache
def known_tlds() -> frozenset[str]:
    """Return IANA's top-level domains, lower-case, read once from the shipped list."""
    lines = TLD_LIST_PATH.read_text(encoding="ascii").splitlines()
    return frozenset(
        line.strip().lower() for line in lines if line.strip() and not line.startswith("#")
    )


def _refang_token(match: re.Match[str]) -> str:
    kind = match.lastgroup
    if kind == "dot":
        return "."
    if kind == "at":
        return "@"
    if kind == "punctuation":
        return match.group()[1:-1]
    scheme = match.group().lower()
    if scheme.startswith("s"):
        return "sftp"
    return ("ftp" if scheme.startswith("f") else "http") + ("s" if scheme.endswith("s") else "")


def refang(text: str) -> str:
    """Undo common defanging (``hxxp``, ``fxp``, ``sfxp``, ``[.]``, ``(dot)``, ``[at]``, ``[:]``, ``[://]``).

    Only whole bracketed tokens are rewritten, so ordinary parentheses and brackets
    around an indicator, as in ``(cdn.evil.net)``, are left alone.
    """
    if _DEFANG_MARK.search(text) is None:
        return text
    return _REFANG.sub(_refang_token, text)


def _fail(ioc_type: str, value: str, reason: str) -> InvalidIoc:
    shown = value if len(value) <= 80 else value[:77] + "..."
    return InvalidIoc(f"{shown!r} is not a valid {ioc_type}: {reason}")


def _to_ascii_host(value: str) -> str:
    if value.isascii():
        return value.lower()
    try:
        return value.encode("idna").decode("ascii").lower()
    except UnicodeError as error:
        raise _fail("domain", value, f"cannot be converted to punycode ({error})") from None


def _normalize_domain(value: str) -> str:
    domain = _to_ascii_host(value.removesuffix("."))
    if len(domain) > 253:
        raise _fail("domain", value, "longer than 253 characters")
    labels = domain.split(".")
    if len(labels) < 2:
        raise _fail("domain", value, "needs at least two labels, e.g. example.com")
    for label in labels:
        if not _LABEL.fullmatch(label):
            raise _fail(
                "domain",
                value,
                f"label {label!r} must be 1-63 letters, digits or inner hyphens",
            )
    if labels[-1] not in known_tlds() and labels[-1] not in RESERVED_TLDS:
        raise _fail("domain", value, f"{labels[-1]!r} is not a top-level domain in IANA's list")
    return domain


def is_reserved_domain(domain: str) -> bool:
    """Tell whether a normalised domain is under a reserved test TLD (:data:`RESERVED_TLDS`)."""
    return domain.rpartition(".")[2] in RESERVED_TLDS


def _normalize_ipv4(value: str) -> str:
    if ":" in value:
        mapped = _parse_ipv6(value, "ipv4").ipv4_mapped
        if mapped is None:
            raise _fail("ipv4", value, "an IPv6 address that is not IPv4-mapped")
        return str(mapped)
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError as error:
        raise _fail("ipv4", value, str(error)) from None


def _parse_ipv6(value: str, ioc_type: str) -> ipaddress.IPv6Address:
    address = value.removeprefix("[").removesuffix("]").partition("%")[0]
    try:
        return ipaddress.IPv6Address(address)
    except ValueError as error:
        raise _fail(ioc_type, value, str(error)) from None


def _normalize_ipv6(value: str) -> str:
    address = _parse_ipv6(value, "ipv6")
    if address.ipv4_mapped is not None:
        raise _fail("ipv6", value, f"IPv4-mapped; store it as ipv4 {address.ipv4_mapped}")
    return address.compressed


def _normalize_cidr(value: str) -> str:
    if "/" not in value:
        raise _fail("cidr", value, "needs a /prefix length, e.g. 10.0.0.0/8")
    try:
        return ipaddress.ip_network(value).compressed
    except ValueError as error:
        if "has host bits set" not in str(error):
            raise _fail("cidr", value, str(error)) from None
        network = ipaddress.ip_network(value, strict=False).compressed
        raise _fail("cidr", value, f"host bits are set; the network is {network}") from None


def _normalize_host(host: str, value: str) -> str:
    """Return a URL host in canonical form: a bracketed IPv6, an IPv4 or a domain."""
    if host.startswith("["):
        return f"[{_parse_ipv6(host, 'url').compressed}]"
    if host.replace(".", "").isdigit():
        return _normalize_ipv4(host)
    try:
        return _normalize_domain(host)
    except InvalidIoc as error:
        raise _fail("url", value, f"host {error}") from None


def _normalize_url(value: str) -> str:
    if value.split(maxsplit=1) != [value]:
        raise _fail("url", value, "contains whitespace")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as error:
        raise _fail("url", value, str(error)) from None
    scheme = parts.scheme.lower()
    if scheme not in URL_SCHEMES:
        raise _fail("url", value, f"scheme must be one of {', '.join(sorted(URL_SCHEMES))}")
    userinfo, _, hostport = parts.netloc.rpartition("@")
    host = hostport.partition("]")[0] + "]" if hostport.startswith("[") else hostport.split(":")[0]
    if not host:
        raise _fail("url", value, "has no host")
    netloc = _normalize_host(host, value)
    if userinfo:
        netloc = f"{userinfo}@{netloc}"
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, parts.fragment))


def _normalize_email(value: str) -> str:
    local_part, at, domain = value.lower().rpartition("@")
    if not at or not local_part:
        raise _fail("email", value, "needs a local part, '@' and a domain")
    if len(local_part) > 64 or not _EMAIL_LOCAL_PART.fullmatch(local_part):
        raise _fail("email", value, f"local part {local_part!r} is not a valid mailbox name")
    try:
        return f"{local_part}@{_normalize_domain(domain)}"
    except InvalidIoc as error:
        raise _fail("email", value, f"domain {error}") from None


def _hash_normalizer(ioc_type: str, length: int) -> Callable[[str], str]:
    def normalize(value: str) -> str:
        if len(value) != length or not _HEX_DIGITS.issuperset(value):
            raise _fail(ioc_type, value, f"must be exactly {length} hexadecimal characters")
        return value.lower()

    return normalize


def _normalize_cve(value: str) -> str:
    cve = value.upper()
    match = _CVE.fullmatch(cve)
    if match is None:
        raise _fail("cve", value, "must look like CVE-2024-1234")
    if int(match.group(1)) < 1999:
        raise _fail("cve", value, "CVE years start at 1999")
    return cve


_NORMALIZERS = {
    "ipv4": _normalize_ipv4,
    "ipv6": _normalize_ipv6,
    "cidr": _normalize_cidr,
    "domain": _normalize_domain,
    "url": _normalize_url,
    "email": _normalize_email,
    **{name: _hash_normalizer(name, length) for length, name in HASH_TYPES_BY_LENGTH.items()},
    "cve": _normalize_cve,
}


def _prepare(value: str) -> str:
    if not isinstance(value, str):
        raise InvalidIoc(f"an indicator must be a string, not {type(value).__name__}")
    text = refang(value.strip())
    if not text:
        raise InvalidIoc("an indicator cannot be empty")
    if len(text) > MAX_VALUE_LENGTH:
        raise InvalidIoc(f"an indicator is at most {MAX_VALUE_LENGTH} characters long")
    return text


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANONICAL_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
_LOWER_HEX_DIGITS = frozenset("0123456789abcdef")


def _is_canonical_hash(length: int) -> Callable[[str], bool]:
    return lambda value: len(value) == length and _LOWER_HEX_DIGITS.issuperset(value)


# Shapes that are already canonical, so normalising them would return them unchanged:
# nothing to strip, nothing to refang (refanging needs brackets or a scheme's letters),
# and the type's normaliser would only rebuild the same text. Bulk feeds are mostly such
# values; checking the shape costs a fraction of parsing it.
_ALREADY_CANONICAL: dict[str, Callable[[str], bool]] = {
    "ipv4": lambda value: _CANONICAL_IPV4.fullmatch(value) is not None,
    **{name: _is_canonical_hash(length) for length, name in HASH_TYPES_BY_LENGTH.items()},
}


def normalize_ioc(ioc_type: str, value: str) -> str:
    """Return ``value`` in the canonical form of ``ioc_type`` (see the module docstring).

    Raises :class:`InvalidIoc` naming the reason when the value is not a valid
    indicator of that type, or when the type is not one of :data:`IOC_TYPES`.
    """
    is_canonical = _ALREADY_CANONICAL.get(ioc_type)
    if is_canonical is not None and type(value) is str and is_canonical(value):
        return value
    normalizer = _NORMALIZERS.get(ioc_type)
    if normalizer is None:
        raise InvalidIoc(f"{ioc_type!r} is not an IOC type; expected one of {', '.join(IOC_TYPES)}")
    return normalizer(_prepare(value))


def _shape_of(text: str) -> str:
    """Guess the one type a value can only be, from its shape; validation comes after."""
    if "://" in text:
        return "url"
    if text[:4].upper() == "CVE-":
        return "cve"
    if "@" in text:
        return "email"
    if "/" in text and _IPV6_CHARACTERS.issuperset(text.partition("/")[0]):
        return "cidr"
    if _HEX_DIGITS.issuperset(text) and not text.isdigit():
        if len(text) not in HASH_TYPES_BY_LENGTH:
            raise InvalidIoc(
                f"{text!r} is hexadecimal but {len(text)} characters long, "
                "not the length of an md5, sha1, sha256 or sha512 hash"
            )
        return HASH_TYPES_BY_LENGTH[len(text)]
    address = text.removeprefix("[").removesuffix("]").partition("%")[0]
    if ":" in address and _IPV6_CHARACTERS.issuperset(address):
        return "ipv4" if address.lower().startswith("::ffff:") and "." in address else "ipv6"
    if text.replace(".", "").isdigit():
        return "ipv4"
    return "domain"


def detect_ioc_type(value: str) -> str:
    """Return the IOC type of ``value``, which :func:`normalize_ioc` then accepts.

    The type comes from the value's shape and is then validated, so a value that looks
    like a type but is not a valid one (``10.1.2.3/24``, ``evil.notatld``) raises
    :class:`InvalidIoc` with the reason rather than being given another type.
    """
    text = _prepare(value)
    ioc_type = _shape_of(text)
    normalize_ioc(ioc_type, text)
    return ioc_type
