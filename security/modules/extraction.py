"""Finding indicators of compromise in free text: :func:`extract_iocs`.

Lives here: the candidate scanner and the rules that tell an indicator from text that
only looks like one. Does not live here: what a valid indicator is and its canonical
form (:mod:`security.modules.ioc_values`, which every candidate goes through), nor
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
:func:`~security.modules.ioc_values.normalize_ioc`; on the bench corpus this runs at
about 3 MB/s, some ten times ioc-finder.

Rules, and the decisions behind them:

- A URL needs a scheme (``http``, ``https``, ``ftp``, ``ftps``, ``sftp``, or defanged
  as ``hxxp``, ``fxp``, ``sfxp``): without one its canonical form would be a guess. Trailing
  punctuation is trimmed, and a closing bracket too unless the URL opened it. A square
  bracket inside a URL is only taken as part of it when it closes within a few characters
  (``[.]``, ``[dot]``, ``[::1]``), so a Markdown link, ``[label](https://host/p)`` or
  ``[https://host/p](https://host/p)``, ends its URL at the ``]``.
- The URL's host is reported as well, as a domain, IPv4 or IPv6, and so is what its
  path, query or fragment names, percent-decoded and judged by the rules for plain text
  (so ``/download/run.sh`` names no domain): a sandbox or multi-AV report link
  (``/report/<sha256>/summary``) names a sample, a lookup link (``?ip=203.0.113.9``,
  ``/domain/evil.net``) an address or a host, an open redirect (``?to=evil.net``,
  ``?u=http%3A%2F%2Fevil.net%2F``) its target, an advisory link a CVE. A URL nested in a
  query is reported by its host only: where it ends among the outer URL's parameters is
  a guess.
- An email's domain is reported as a domain too: a sender's domain is what a mail
  gateway blocks. Whether to act on a shared provider's domain is the caller's policy.
- Domains under the reserved test TLDs (``example``, ``test``, ``invalid``,
  ``localhost``), which :func:`~security.modules.ioc_values.normalize_ioc` accepts for
  explicit writes, are not reported, nor URLs and emails on them: in prose they are
  placeholders, not sightings.
- An antivirus signature name (``Trojan:Win32/Foo.AB!ml``, ``W32/Agent.XY!tr``,
  ``Linux/Mirai.cc``) is not a domain: in plain text, domain-like text right after a
  platform prefix (``Win32/``, ``MSIL/``, ``JS/`` ..., see :data:`SIGNATURE_PLATFORMS`)
  is not a host, and neither is one followed by ``!`` and a letter or digit (a
  vendor's suffix such as ``!ml``, ``!tr``, ``!MTB``).
- A domain's last label must be a TLD in IANA's list, and one directly followed by
  ``(`` is a call (``logging.info(``), not a host. A domain written plainly (not
  defanged, not a URL host, not in an email) is also refused when
  * its TLD is a common file extension (``zip``, ``mov``, ``py``, ``sh``, ``md`` ...,
    see :data:`FILE_EXTENSION_TLDS`), unless its first label is ``www``: ``archive.zip``
    and ``run.sh`` are file names far more often than hosts; defang such a host to
    have it found;
  * it is written in code-style mixed case (``System.Net``, ``System.IO``): a host name
    is written all lower-case, all upper-case, with only its first letter capitalised,
    or with each label in one case (``NWD2HUBCAS1234.ad.analog.com``).
  Known misses: a plain module path whose last part is a TLD (``collections.abc``).
- A CVE id may be written with a space or an underscore for either dash
  (``CVE 2021 44228``, ``CVE_2021_44228``); it is reported as ``CVE-2021-44228``.
- A dotted quad attached to letters or followed by ``-letter`` (``v1.2.3.4``,
  ``1.2.3.4-beta``) is a version number, as is one with a fifth part (OIDs, builds) and
  one written after the word ``version``, ``ver.`` or ``v`` (``version 1.2.3.4``,
  ``v. 10.0.0.1``). Otherwise a bare ``1.2.3.4`` is reported: written alone, an
  address, a version and a four-part OID (``2.5.4.3``) look the same.
- The dots of an IPv4 address may be defanged like any dot, or sit among a few stray
  brackets (``10.10.10.]]]10``, ``111[.111.]111[.111``), which are dropped.
- ``a.b.c.d/nn`` is a CIDR; with host bits set (``10.1.2.3/24``) it names a host on a
  network, so the address is reported as an IPv4 instead. A port (``1.2.3.4:8080``)
  is dropped. An IPv6 zone (``fe80::1%eth0``) is dropped; an IPv6 candidate must
  contain a digit, which keeps ``::`` and hex words like ``dead::beef`` out.
- A hash is a run of exactly 32, 40, 64 or 128 hex digits with at least one digit and
  one letter, not preceded by a letter or digit and not followed by ``_`` (so a longer
  hex run or an identifier does not match). A letter beyond ``f`` may follow: command
  lines glue words to hashes (``-hash=<md5>hash``).
- Addresses are not filtered by range (private, loopback): which ones matter is the
  caller's policy, not the text's.
- Domains are matched in ASCII and punycode (``xn--``); Unicode host names in running
  text are not looked for.
"""

import re
from collections.abc import Callable
from urllib.parse import unquote

from security.modules.ioc_values import (
    AT,
    DEFANGED_DOT,
    DEFANGED_SCHEME,
    DOT,
    HASH_TYPES_BY_LENGTH,
    IOC_TYPES,
    InvalidIoc,
    detect_ioc_type,
    is_reserved_domain,
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

# The platform part of an antivirus signature name, before the "/": Microsoft
# ("Trojan:Win32/Foo.AB!ml"), ESET ("Win32/Agent.XY"), Fortinet ("W32/Agent.XY!tr"),
# Sophos and others use the same shape.
SIGNATURE_PLATFORMS = (
    "win16",
    "win32",
    "win64",
    "w32",
    "w64",
    "msil",
    "js",
    "vbs",
    "html",
    "pdf",
    "doc",
    "xml",
    "o97m",
    "x97m",
    "w97m",
    "linux",
    "unix",
    "elf",
    "android",
    "andr",
    "osx",
    "macos",
    "java",
    "php",
    "script",
    "bat",
    "powershell",
    "python",
    "perl",
    "swf",
    "multi",
)

# Unicode spaces (the pattern is ASCII-only, so \s does not cover them).
_UNICODE_SPACES = "\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# Letters and digits, and any non-ASCII character but spaces and punctuation (Latin-1's,
# General Punctuation's typographic quotes and dashes, CJK and full-width punctuation),
# so that an indicator is never cut out of the middle of a word in another script
# ("évil.com" is not "vil.com") while "as\u00a0example[.]com" and "“evil.com”" hold one.
_NON_ASCII_WORD_CHARACTER = r"\u00c0-\u167f\u1681-\u1fff\u2070-\u2fff\u3040-\uff00\uff21-\U0010ffff"
_ALNUM = rf"0-9a-z{_NON_ASCII_WORD_CHARACTER}"
_LABEL = r"[a-z0-9][a-z0-9-]*+"
_DOMAIN = rf"{_LABEL}(?:{DOT}{_LABEL})++"
_SCHEME_SEPARATOR = r"(?:(?::|[\[(]:[\])])(?://|[\[(]//[\])])|[\[(]://[\])])"
# A square bracket belongs to a URL only as a short bracketed token ("[.]", "[dot]",
# "[::1]"); any other "]" ends it, which is what splits Markdown's "[url](url)".
_URL_BODY = rf"(?:[^\s{_UNICODE_SPACES}<>\"'`\[\]]|\[[^\s{_UNICODE_SPACES}<>\"'`\[\]]{{1,46}}\])++"
_URL = rf"(?<![{_ALNUM}])(?:https?|ftps?|sftp|{DEFANGED_SCHEME}){_SCHEME_SEPARATOR}{_URL_BODY}"
_EMAIL = rf"(?<![{_ALNUM}._%+-])[a-z0-9._%+-]+{AT}{_DOMAIN}(?![{_ALNUM}_-])"
_IPV6 = (
    rf"(?<![{_ALNUM}:_-])(?<![{_ALNUM}]\.)(?:[0-9a-f]{{0,4}}:){{2,7}}(?:\d{{1,3}}(?:\.\d{{1,3}}){{3}}|[0-9a-f]{{0,4}})"
    rf"(?:%[0-9a-z_.-]+)?(?:/\d{{1,3}})?(?![{_ALNUM}_:]|\.[0-9a-z])"
)
# Fixed-width look-behinds (the re module's rule), checked only where a digit starts.
_AFTER_VERSION_WORD = "".join(
    rf"(?<!\b{word})" for word in ("version ", "version: ", "ver ", r"ver\. ", "v ", r"v\. ")
)
# Between the digits of an address, a dot may also sit among a few stray brackets
# ("10.10.10.]]]10", "111[.111.]111"): no other text puts brackets inside a number.
_IPV4_DOT = rf"(?:[\[\](){{}}]{{0,4}}\.[\[\](){{}}]{{0,4}}|{DEFANGED_DOT})"
_IPV4 = (
    rf"(?<![{_ALNUM}_])(?<!\d\.)(?=\d){_AFTER_VERSION_WORD}\d{{1,3}}(?:{_IPV4_DOT}\d{{1,3}}){{3}}"
    rf"(?:/\d{{1,2}})?"
    rf"(?![{_ALNUM}_]|{DOT}[0-9a-z]|-[a-z])"
)
_HASH = rf"(?<![{_ALNUM}])[0-9a-f]{{32,128}}+(?![0-9a-f_{_NON_ASCII_WORD_CHARACTER}])"
_CVE = rf"(?<![{_ALNUM}-])cve[-_ ]\d{{4}}[-_ ]\d{{4,7}}(?![0-9])"
_PLAIN_DOMAIN = rf"(?<![{_ALNUM}_.@-]){_DOMAIN}(?![{_ALNUM}_@(]|![a-z0-9])"

# Order matters where two alternatives can start at the same place: a URL or an email
# swallows the domain inside it, and a hash before a file extension ("<md5>.exe") is
# a hash, not the first label of a domain that then fails validation.
_ALTERNATIVES = (
    ("url", _URL),
    ("email", _EMAIL),
    ("ipv6", _IPV6),
    ("ipv4", _IPV4),
    ("hash", _HASH),
    ("cve", _CVE),
    ("domain", _PLAIN_DOMAIN),
)


def _compile(kinds: tuple[str, ...]) -> re.Pattern[str]:
    """Compile one pattern matching a candidate of any of ``kinds``, named by kind.

    No candidate starts inside a word, so one look-behind up front rejects most
    positions at once (about 1.5x faster than letting each alternative's own
    look-behind do it).
    """
    alternatives = "|".join(
        f"(?P<{name}>{pattern})" for name, pattern in _ALTERNATIVES if name in kinds
    )
    return re.compile(rf"(?<![{_ALNUM}])(?:{alternatives})", re.IGNORECASE | re.ASCII)


_CANDIDATES = _compile(tuple(name for name, _ in _ALTERNATIVES))
# Inside a URL's path, query and fragment, everything but another URL or an email: a
# URL nested in a query runs on into the outer URL's other parameters.
_NESTED_IN_URL = _compile(("ipv6", "ipv4", "hash", "cve", "domain"))
# Checked only before a domain candidate that follows a "/", which plain text rarely has:
# an alternative of its own in _CANDIDATES would be tried at every word and cost a third
# of the scan.
_SIGNATURE_PLATFORM = re.compile(
    rf"(?<![{_ALNUM}])(?:{'|'.join(SIGNATURE_PLATFORMS)})/\Z", re.IGNORECASE | re.ASCII
)
_DEFANGED = re.compile(r"[\[({]")
_STRAY_BRACKETS = str.maketrans("", "", "[](){}")
# Text writes a CVE id's dashes as spaces or underscores too; the stored form has dashes.
_CVE_SEPARATORS = str.maketrans(" _", "--")
# ASCII, typographic quotes and full-width angle brackets.
_URL_TRAILING_PUNCTUATION = ".,;:!?'\"*\u2019\u201d\u00bb\uff1c\uff1e"
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


def _host_of(netloc: str) -> str:
    host = netloc.rpartition("@")[2]
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.partition(":")[0]


def _nested_in(rest_of_url: str) -> Found:
    """Return the indicators written in a URL's path, query and fragment, decoded."""
    found: Found = []
    for match in _NESTED_IN_URL.finditer(unquote(rest_of_url)):
        found += _judge(_kind(match), match.group())
    return found


def _url(raw: str) -> Found:
    url = normalize_ioc("url", _trim_url(refang(raw)))
    _, _, netloc, rest = url.split("/", 3)  # a normalised URL always has a path
    host = _host_of(netloc)
    # The URL normaliser has validated the host and written it in canonical form, so only
    # its type is left to tell; an IPv6 host is checked again because an IPv4-mapped one
    # belongs under ipv4 and is refused as ipv6.
    if ":" in host:
        host_type = "ipv6"
        host = normalize_ioc(host_type, host)
    elif host.replace(".", "").isdigit():
        host_type = "ipv4"
    elif is_reserved_domain(host):
        return []
    else:
        host_type = "domain"
    return [("url", url), (host_type, host), *_nested_in(rest)]


def _email(raw: str) -> Found:
    at_host = refang(raw).rpartition("@")[2]
    if at_host.replace(".", "").isdigit():
        return _ipv4(at_host)
    email = normalize_ioc("email", raw)
    domain = email.rpartition("@")[2]
    if is_reserved_domain(domain):
        return []
    return [("email", email), ("domain", domain)]


def _ipv6(raw: str) -> Found:
    if not any(character.isdigit() for character in raw):
        return []
    if "/" in raw:
        return [("cidr", normalize_ioc("cidr", raw.partition("%")[0]))]
    ioc_type = detect_ioc_type(raw)
    return [(ioc_type, normalize_ioc(ioc_type, raw))]


def _ipv4(raw: str) -> Found:
    value = refang(raw).translate(_STRAY_BRACKETS)
    if "/" not in value:
        return [("ipv4", normalize_ioc("ipv4", value))]
    try:
        return [("cidr", normalize_ioc("cidr", value))]
    except InvalidIoc:
        return [("ipv4", normalize_ioc("ipv4", value.partition("/")[0]))]


def _hash(raw: str) -> Found:
    ioc_type = HASH_TYPES_BY_LENGTH.get(len(raw))
    if ioc_type is None or raw.isdigit() or raw.isalpha():
        return []
    return [(ioc_type, raw.lower())]


def _cve(raw: str) -> Found:
    return [("cve", normalize_ioc("cve", raw.translate(_CVE_SEPARATORS)))]


def _is_written_like_a_host(raw: str) -> bool:
    """Tell a host name's casing from code's: ``NWD2HUB.ad.corp.com`` but not ``System.Net``.

    A host is written all lower-case, all upper-case, with only its first letter
    capitalised, or with each label in one case; a capitalised word among the labels
    ("System", "Net") is how namespaces and member names are written.
    """
    if raw in (raw.lower(), raw.upper(), raw[0] + raw[1:].lower()):
        return True
    return all(label in (label.lower(), label.upper()) for label in raw.split("."))


def _domain(raw: str) -> Found:
    domain = normalize_ioc("domain", raw)
    if is_reserved_domain(domain):
        return []
    if not _DEFANGED.search(raw):
        if not _is_written_like_a_host(raw):
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


def _names_a_signature(text: str, start: int) -> bool:
    """Tell whether the domain candidate at ``start`` is the name in ``Win32/Name.XY``."""
    if not start or text[start - 1] != "/":
        return False
    return _SIGNATURE_PLATFORM.search(text, max(0, start - 12), start) is not None


def _kind(match: re.Match[str]) -> str:
    """The name of the alternative that matched: every alternative is a named group."""
    kind = match.lastgroup
    assert kind is not None  # the patterns are built of named groups only
    return kind


def _judge(kind: str, raw: str) -> Found:
    try:
        return _HANDLERS[kind](raw)
    except InvalidIoc:
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
        candidate = (_kind(match), match.group())
        if candidate[0] == "domain" and _names_a_signature(text, match.start()):
            continue
        if candidate not in judged:
            judged[candidate] = _judge(*candidate)
        for ioc_type, value in judged[candidate]:
            found.setdefault(ioc_type, set()).add(value)
    return {ioc_type: sorted(found[ioc_type]) for ioc_type in IOC_TYPES if ioc_type in found}
