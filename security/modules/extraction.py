"""Finding indicators of compromise in free text: :func:`extract_iocs`.

Lives here: the candidate scanner and the rules that tell an indicator from text that
only looks like one. Does not live here: what a valid indicator is and its canonical
form (:mod:`security.modules.indicators`, which every candidate goes through), nor
storing or looking up what was found.

Why our own extractor rather than a wrapper around ioc-finder: ioc-finder (LGPL) is a
pyparsing grammar that ran at about 0.27 MB/s on ``bench/ioc_extraction.py``'s corpus,
reports file names such as ``archive.zip`` as domains and rewrites ``(cdn.evil.net)``
as ``cdn.evil.n@`` in its refang pass; iocextract (GPL, so not usable at run time)
rescans the text per IPv4 and mangles emails. A wrapper would pay ioc-finder's cost and
then undo its mistakes. This module makes one pass of one compiled regular expression
whose alternatives match a candidate of each type, defanged punctuation included, so it
knows *how* a candidate was written (defanged, inside a URL or an email), which the
rules below use. Each distinct candidate is then validated and normalised by
:func:`~security.modules.indicators.normalize_ioc`; on the bench corpus this runs at
about 3 MB/s, some ten times ioc-finder.

Rules, and the decisions behind them:

- A URL needs a scheme (``http``, ``https``, ``ftp``, ``ftps``, ``sftp``, or defanged
  as ``hxxp``, ``fxp``): without one its canonical form would be a guess. Trailing
  punctuation is trimmed, and a closing bracket too unless the URL opened it. The URL's
  host is reported as well, as a domain, IPv4 or IPv6; domain-like text inside the URL's
  path or query is not.
- An email's domain is not reported as a domain: the address is the indicator, and its
  domain is often a mail provider shared with everyone else.
- A domain's last label must be a TLD in IANA's list, and one directly followed by
  ``(`` is a call (``logging.info(``), not a host. A domain written plainly (not
  defanged, not a URL host, not in an email) is also refused when
  * its TLD is a common file extension (``zip``, ``mov``, ``py``, ``sh``, ``md`` ...,
    see :data:`FILE_EXTENSION_TLDS`), unless its first label is ``www``: ``archive.zip``
    and ``run.sh`` are file names far more often than hosts; defang such a host to
    have it found;
  * it is written in code-style mixed case (``System.Net``, ``System.IO``): a host name
    is written all lower-case, all upper-case, or with only its first letter capitalised.
  Known misses: a plain module path whose last part is a TLD (``collections.abc``).
- A dotted quad attached to letters or followed by ``-letter`` (``v1.2.3.4``,
  ``1.2.3.4-beta``) is a version number, as is one with a fifth part (OIDs, builds).
  A bare ``1.2.3.4`` is reported: written alone, an address, a version and a four-part
  OID (``2.5.4.3``) look the same.
- ``a.b.c.d/nn`` is a CIDR; with host bits set (``10.1.2.3/24``) it names a host on a
  network, so the address is reported as an IPv4 instead. A port (``1.2.3.4:8080``)
  is dropped. An IPv6 zone (``fe80::1%eth0``) is dropped; an IPv6 candidate must
  contain a digit, which keeps ``::`` and hex words like ``dead::beef`` out.
- A hash is a run of exactly 32, 40, 64 or 128 hex digits standing alone (not part of a
  longer run of letters or digits), with at least one digit and one letter.
- Addresses are not filtered by range (private, loopback): which ones matter is the
  caller's policy, not the text's.
- Domains are matched in ASCII and punycode (``xn--``); Unicode host names in running
  text are not looked for.
"""

import re
from collections.abc import Callable

from security.modules.indicators import (
    AT,
    DEFANGED_SCHEME,
    DOT,
    HASH_TYPES_BY_LENGTH,
    IOC_TYPES,
    InvalidIndicator,
    detect_ioc_type,
    normalize_ioc,
    refang,
)

FILE_EXTENSION_TLDS = frozenset(
    {
        "app",
        "cab",
        "cat",
        "cc",
        "java",
        "md",
        "mk",
        "ml",
        "mo",
        "mov",
        "one",
        "pl",
        "pm",
        "ps",
        "pub",
        "py",
        "rs",
        "run",
        "sh",
        "so",
        "zip",
    }
)

# Letters and digits, and any non-ASCII character, so that an indicator is never cut
# out of the middle of a word in another script ("évil.com" is not "vil.com").
_ALNUM = r"0-9a-z\u0080-\U0010ffff"
_LABEL = r"[a-z0-9][a-z0-9-]*+"
_DOMAIN = rf"{_LABEL}(?:{DOT}{_LABEL})++"
_SCHEME_SEPARATOR = r"(?:(?::|[\[(]:[\])])(?://|[\[(]//[\])])|[\[(]://[\])])"
_URL = rf"(?<![{_ALNUM}])(?:https?|ftps?|sftp|{DEFANGED_SCHEME}){_SCHEME_SEPARATOR}[^\s<>\"'`]+"
_EMAIL = rf"(?<![{_ALNUM}._%+-])[a-z0-9._%+-]+{AT}{_DOMAIN}(?![{_ALNUM}_-])"
_IPV6 = (
    rf"(?<![{_ALNUM}:._-])(?:[0-9a-f]{{0,4}}:){{2,7}}(?:\d{{1,3}}(?:\.\d{{1,3}}){{3}}|[0-9a-f]{{0,4}})"
    rf"(?:%[0-9a-z_.-]+)?(?:/\d{{1,3}})?(?![{_ALNUM}_:]|\.[0-9a-z])"
)
_IPV4 = (
    rf"(?<![{_ALNUM}_.])\d{{1,3}}(?:{DOT}\d{{1,3}}){{3}}(?:/\d{{1,2}})?"
    rf"(?![{_ALNUM}_]|{DOT}[0-9a-z]|-[a-z])"
)
_HASH = rf"(?<![{_ALNUM}])[0-9a-f]{{32,128}}+(?![{_ALNUM}])"
_CVE = rf"(?<![{_ALNUM}-])cve-\d{{4}}-\d{{4,7}}(?![0-9])"
_PLAIN_DOMAIN = rf"(?<![{_ALNUM}_.@-]){_DOMAIN}(?![{_ALNUM}_@(])"

# Order matters where two alternatives can start at the same place: a URL or an email
# swallows the domain inside it, and a hash before a file extension ("<md5>.exe") is
# a hash, not the first label of a domain that then fails validation. No candidate
# starts inside a word, so one look-behind up front rejects most positions at once
# (about 1.5x faster than letting each alternative's own look-behind do it).
_CANDIDATES = re.compile(
    rf"(?<![{_ALNUM}])(?:"
    + "|".join(
        f"(?P<{name}>{pattern})"
        for name, pattern in (
            ("url", _URL),
            ("email", _EMAIL),
            ("ipv6", _IPV6),
            ("ipv4", _IPV4),
            ("hash", _HASH),
            ("cve", _CVE),
            ("domain", _PLAIN_DOMAIN),
        )
    )
    + ")",
    re.IGNORECASE | re.ASCII,
)
_DEFANGED = re.compile(r"[\[({]")
_URL_TRAILING_PUNCTUATION = ".,;:!?'\"*"
_CLOSING_BRACKETS = {")": "(", "]": "[", "}": "{"}

Found = list[tuple[str, str]]


def _trim_url(url: str) -> str:
    """Drop punctuation that ends the sentence around a URL rather than the URL itself."""
    unmatched = {
        closing: url.count(closing) - url.count(opening)
        for closing, opening in _CLOSING_BRACKETS.items()
    }
    end = len(url)
    while end:
        last = url[end - 1]
        if unmatched.get(last, 0) > 0:
            unmatched[last] -= 1
        elif last not in _URL_TRAILING_PUNCTUATION:
            break
        end -= 1
    return url[:end]


def _host_of(url: str) -> str:
    netloc = url.split("/", 3)[2]
    host = netloc.rpartition("@")[2]
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.partition(":")[0]


def _url(raw: str) -> Found:
    url = normalize_ioc("url", _trim_url(refang(raw)))
    host = _host_of(url)
    host_type = detect_ioc_type(host)
    return [("url", url), (host_type, normalize_ioc(host_type, host))]


def _email(raw: str) -> Found:
    return [("email", normalize_ioc("email", raw))]


def _ipv6(raw: str) -> Found:
    if not any(character.isdigit() for character in raw):
        return []
    if "/" in raw:
        return [("cidr", normalize_ioc("cidr", raw.partition("%")[0]))]
    ioc_type = detect_ioc_type(raw)
    return [(ioc_type, normalize_ioc(ioc_type, raw))]


def _ipv4(raw: str) -> Found:
    value = refang(raw)
    if "/" not in value:
        return [("ipv4", normalize_ioc("ipv4", value))]
    try:
        return [("cidr", normalize_ioc("cidr", value))]
    except InvalidIndicator:
        return [("ipv4", normalize_ioc("ipv4", value.partition("/")[0]))]


def _hash(raw: str) -> Found:
    ioc_type = HASH_TYPES_BY_LENGTH.get(len(raw))
    if ioc_type is None or raw.isdigit() or raw.isalpha():
        return []
    return [(ioc_type, raw.lower())]


def _cve(raw: str) -> Found:
    return [("cve", normalize_ioc("cve", raw))]


def _domain(raw: str) -> Found:
    domain = normalize_ioc("domain", raw)
    if not _DEFANGED.search(raw):
        if raw not in (raw.lower(), raw.upper(), raw[0] + raw[1:].lower()):
            return []
        tld = domain.rpartition(".")[2]
        if tld in FILE_EXTENSION_TLDS and not domain.startswith("www."):
            return []
    return [("domain", domain)]


_HANDLERS: dict[str, Callable[[str], Found]] = {
    "url": _url,
    "email": _email,
    "ipv6": _ipv6,
    "ipv4": _ipv4,
    "hash": _hash,
    "cve": _cve,
    "domain": _domain,
}


def _judge(kind: str, raw: str) -> Found:
    try:
        return _HANDLERS[kind](raw)
    except InvalidIndicator:
        return []


def extract_iocs(text: str) -> dict[str, list[str]]:
    """Return the indicators in ``text`` as {IOC type: sorted unique normalised values}.

    Only types with at least one value appear, in :data:`IOC_TYPES` order. Defanged
    indicators are found and returned refanged. The module docstring lists what is
    deliberately not reported.
    """
    found: dict[str, set[str]] = {}
    # Logs repeat the same addresses and hosts; each distinct candidate is judged once.
    judged: dict[tuple[str, str], Found] = {}
    for match in _CANDIDATES.finditer(text):
        candidate = (match.lastgroup, match.group())
        if candidate not in judged:
            judged[candidate] = _judge(*candidate)
        for ioc_type, value in judged[candidate]:
            found.setdefault(ioc_type, set()).add(value)
    return {ioc_type: sorted(found[ioc_type]) for ioc_type in IOC_TYPES if ioc_type in found}
