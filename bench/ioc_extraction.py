"""Benchmark: IOC extraction quality and throughput, ours beside ioc-finder and iocextract.

Quality: precision and recall of ours on the labelled cases of
``tests/data/ioc_extraction_cases.json``, over all of them and over those converted from
ioc-finder's, iocextract's and msticpy's tests (the others were written for this project).

Throughput: generates a deterministic corpus (seeded) of at least 5 MB of threat
reports, log excerpts and phishing emails, a third of the documents defanged, then times
each extractor over the same documents, one call per document as a caller would make it.
ioc-finder and iocextract are optional (requirements-dev.txt): when one is missing the
line says so. They are much slower than ours, so each gets a time budget and is timed
on the documents it finishes within it; the output says how much of the corpus that was.
Times are CPU seconds of this process (``time.process_time``), so a machine shared with
other work slows every extractor's wall-clock rate but not the rates it compares.

Worst case: ours is also timed on adversarial inputs (:data:`ADVERSARIAL`), long runs
of what almost makes a candidate, the inputs a regular expression with catastrophic
backtracking would stall on. Each must run at no less than a tenth of the corpus rate.

Run: .venv/bin/python bench/ioc_extraction.py [--megabytes 5] [--budget 20]
"""

import argparse
import json
import random
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from security.modules.extraction import extract_iocs

LABELLED_CASES_PATH = (
    Path(__file__).resolve().parent.parent / "tests" / "data" / "ioc_extraction_cases.json"
)

SEED = 20240515
SENTENCES = (
    "The actor used a loader that contacted its server after the user opened the attachment.",
    "We observed lateral movement across several hosts during the incident response.",
    "Analysts reviewed telemetry from endpoint sensors and found persistence in a service.",
    "Operators rotated their infrastructure every week to evade blocking.",
    "The phishing wave targeted finance staff with invoices and shipping notices.",
    "No data was exfiltrated before the hosts were isolated.",
)
NAME_PARTS = ("update", "secure", "login", "cdn", "mail", "portal", "cloud", "sync", "files")
NAME_PARTS += ("docs", "verify", "account", "office", "service", "api", "track", "bank", "pay")
TLDS = ("com", "net", "org", "info", "ru", "top", "xyz", "io", "biz", "online", "co.uk", "cc")
FILES = (
    "invoice.pdf",
    "setup.exe",
    "archive.zip",
    "run.sh",
    "notes.md",
    "script.py",
    "report.docx",
)
DIGIT_DOT = re.compile(r"(?<=\d)\.(?=\d)")
TLD_DOT = re.compile(r"\.(" + "|".join(re.escape(tld) for tld in TLDS) + r")\b")
DEFANGED_DOTS = ("[.]", "(.)", "[dot]")
NOISE = (
    "Upgrade to v1.2.3.4-beta first.",
    "OID 1.3.6.1.4.1.311.21.8 appears in the certificate.",
    "Windows 10.0.19041.1288 was patched, e.g. via WSUS, i.e. centrally.",
    "The script calls os.path.join and logging.info(msg).",
    "Session 550e8400-e29b-41d4-a716-446655440000 expired at 12:30:45.",
)


def _domain(rng: random.Random) -> str:
    labels = [rng.choice(NAME_PARTS) + rng.choice(("", "-", "")) + rng.choice(NAME_PARTS)]
    if rng.random() < 0.4:
        labels.insert(0, rng.choice(("www", "mail", "cdn", "api", "login")))
    return ".".join(labels) + "." + rng.choice(TLDS)


def _ipv4(rng: random.Random) -> str:
    return ".".join(str(rng.randint(1, 254)) for _ in range(4))


def _hex(rng: random.Random, length: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(length))


def _url(rng: random.Random) -> str:
    host = _domain(rng) if rng.random() < 0.8 else _ipv4(rng) + ":" + str(rng.randint(80, 9000))
    path = "/".join(rng.choice(NAME_PARTS) for _ in range(rng.randint(1, 3)))
    query = f"?id={rng.randint(1, 9999)}" if rng.random() < 0.5 else ""
    return f"{rng.choice(('http', 'https'))}://{host}/{path}{query}"


def _defang(text: str) -> str:
    """Defang as report writers do: hxxp, [at], and dots bracketed in several styles."""
    text = text.replace("http", "hxxp").replace("@", "[at]")
    text = DIGIT_DOT.sub("[.]", text)
    return TLD_DOT.sub(lambda match: DEFANGED_DOTS[len(match.group(1)) % 3] + match.group(1), text)


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.sample(SENTENCES, rng.randint(1, 3)))


def _report(rng: random.Random) -> str:
    lines = [f"Threat report {rng.randint(1000, 9999)}: campaign analysis"]
    for _ in range(rng.randint(4, 8)):
        lines.append(
            f"{_sentence(rng)} The loader reached {_url(rng)} and {_ipv4(rng)}, "
            f"dropped {rng.choice(FILES)} (sha256 {_hex(rng, 64)}) and exploited "
            f"CVE-{rng.randint(2015, 2025)}-{rng.randint(1000, 49999)}. {rng.choice(NOISE)}"
        )
    lines.append("IOCs: " + ", ".join([_domain(rng), _ipv4(rng) + "/24", _hex(rng, 32)]))
    return "\n".join(lines)


def _logs(rng: random.Random) -> str:
    lines = []
    for _ in range(rng.randint(20, 40)):
        kind = rng.randrange(3)
        if kind == 0:
            lines.append(
                f"Nov 12 10:{rng.randint(10, 59)}:02 fw01 DROP SRC={_ipv4(rng)} "
                f"DST=10.0.{rng.randint(0, 9)}.{rng.randint(1, 254)} "
                f"PROTO=TCP DPT={rng.randint(1, 65535)}"
            )
        elif kind == 1:
            lines.append(
                f'{{"ts":"2024-03-01T12:00:{rng.randint(10, 59)}Z","src_ip":"{_ipv4(rng)}",'
                f'"query":"{_domain(rng)}","url":"{_url(rng)}","bytes":{rng.randint(100, 99999)}}}'
            )
        else:
            lines.append(
                f'{_ipv4(rng)} - - [10/Oct/2024:13:55:36 +0000] "GET /{rng.choice(FILES)} '
                f'HTTP/1.1" 200 {rng.randint(100, 9999)} "{_url(rng)}" "Mozilla/5.0"'
            )
    return "\n".join(lines)


def _email(rng: random.Random) -> str:
    sender = f"{rng.choice(NAME_PARTS)}.{rng.choice(NAME_PARTS)}@{_domain(rng)}"
    return (
        f"From: Support <{sender}>\nTo: victim@example.com\nSubject: Action required\n"
        f"Received: from mx.{_domain(rng)} ([{_ipv4(rng)}])\n\n"
        f"{_sentence(rng)} {_sentence(rng)}\nVerify at {_url(rng)} now.\n"
        f"Attachment: {rng.choice(FILES)} md5 {_hex(rng, 32)}\n"
    )


def build_corpus(megabytes: float, seed: int = SEED) -> list[str]:
    """Return documents totalling at least ``megabytes`` MB; every third one defanged."""
    rng = random.Random(seed)
    makers = (_report, _logs, _email)
    documents: list[str] = []
    size = 0
    while size < megabytes * 1_000_000:
        document = rng.choice(makers)(rng)
        if len(documents) % 3 == 2:
            document = _defang(document)
        documents.append(document)
        size += len(document.encode())
    return documents


@dataclass(frozen=True)
class Score:
    """Precision and recall of an extractor over labelled cases, and the cases it got wrong."""

    cases: int
    precision: float
    recall: float
    misses: list[tuple[str, list[tuple[str, str]], list[tuple[str, str]]]]


def load_labelled_cases() -> list[dict]:
    """Return the labelled cases (id, text, expected, and optionally source and note)."""
    return json.loads(LABELLED_CASES_PATH.read_text(encoding="utf-8"))["cases"]


def _pairs(iocs: dict[str, list[str]]) -> set[tuple[str, str]]:
    return {(ioc_type, value) for ioc_type, values in iocs.items() for value in values}


def score_labelled_cases(cases: list[dict]) -> Score:
    """Score ours on ``cases``, counting each (type, value) found or expected once per case.

    A misses entry is (case id, found but not expected, expected but not found).
    """
    true_positives = false_positives = false_negatives = 0
    misses = []
    for case in cases:
        found, expected = _pairs(extract_iocs(case["text"])), _pairs(case["expected"])
        true_positives += len(found & expected)
        false_positives += len(found - expected)
        false_negatives += len(expected - found)
        if found != expected:
            misses.append((case["id"], sorted(found - expected), sorted(expected - found)))
    return Score(
        cases=len(cases),
        precision=true_positives / (true_positives + false_positives),
        recall=true_positives / (true_positives + false_negatives),
        misses=misses,
    )


# Each about 1 MB: long runs of what almost makes a candidate of each kind.
ADVERSARIAL = {
    "dotted words": "a." * 500_000,
    "dotted digits": "1." * 500_000,
    "defanged dots": "a[.]" * 250_000,
    "spaced defanged dots": "a  [  .  ]  " * 80_000,
    "stray brackets in digits": "1[[[[.]]]]" * 100_000,
    "at-signs": "a@" * 500_000,
    "spaced at-signs": "a @ b " * 160_000,
    "colons": "1:" * 500_000,
    "hex run": "a1" * 500_000,
    "open brackets after a scheme": "http://" + "[" * 1_000_000,
    "short bracket tokens in a URL": "http://a.com/" + "[ab]" * 250_000,
    "schemes": "hxxp://" * 150_000,
    "cve prefixes": "cve-2021-" * 110_000,
    "version words": "version 1.2.3" * 80_000,
    "signature platforms": "Win32/a." * 125_000,
}


def time_adversarial() -> list[tuple[str, float]]:
    """Return (name, MB/s) of ours on each adversarial input."""
    rates = []
    for name, text in ADVERSARIAL.items():
        started = time.process_time()
        extract_iocs(text)
        rates.append((name, len(text.encode()) / 1e6 / (time.process_time() - started)))
    return rates


def _ioc_finder() -> Callable[[str], object] | None:
    try:
        from ioc_finder import find_iocs
    except ImportError:
        return None
    return find_iocs


def _iocextract() -> Callable[[str], object] | None:
    try:
        import iocextract
    except ImportError:
        return None
    return lambda text: list(iocextract.extract_iocs(text, refang=True))


def time_extractor(
    extract: Callable[[str], object], documents: list[str], budget: float
) -> tuple[float, int, int]:
    """Run ``extract`` per document until done or ``budget`` seconds.

    Returns (seconds, bytes, documents) of what it got through.
    """
    done = count = 0
    started = time.process_time()
    elapsed = 0.0
    for document in documents:
        extract(document)
        done += len(document.encode())
        count += 1
        elapsed = time.process_time() - started
        if elapsed > budget:
            break
    return elapsed, done, count


def _report_quality() -> Score:
    cases = load_labelled_cases()
    converted = [case for case in cases if "source" in case]
    whole = score_labelled_cases(cases)
    for label, score in (
        ("labelled set", whole),
        (
            "  of it, converted from ioc-finder/iocextract/msticpy tests",
            score_labelled_cases(converted),
        ),
    ):
        print(
            f"{label}: {score.cases} cases, "
            f"precision {score.precision:.3f}, recall {score.recall:.3f}"
        )
    return whole


def _report_speed(documents: list[str], budget: float) -> tuple[float, dict[str, float]]:
    """Print each extractor's MB/s; return ours and ours ÷ each other's on the same documents.

    The others only get through part of the corpus within their budget, so ours is timed
    again on just that part: the documents differ in mix along the corpus.
    """
    total = sum(len(document.encode()) for document in documents)
    seconds, done, _ = time_extractor(extract_iocs, documents, float("inf"))
    ours = done / 1e6 / seconds
    print(f"{'ours (security.modules.extraction)':40} {ours:8.2f} MB/s  (whole corpus)")
    ratios = {}
    for name, loader in (("ioc-finder", _ioc_finder), ("iocextract", _iocextract)):
        extract = loader()
        if extract is None:
            print(f"{name:40} not installed")
            continue
        seconds, done, count = time_extractor(extract, documents, budget)
        rate = done / 1e6 / seconds
        ours_seconds, _, _ = time_extractor(extract_iocs, documents[:count], float("inf"))
        ratios[name] = (done / 1e6 / ours_seconds) / rate
        scope = (
            "whole corpus" if done == total else f"first {done / 1e6:.2f} MB, {budget:.0f} s budget"
        )
        print(
            f"{name:40} {rate:8.2f} MB/s  ({scope}; "
            f"ours is {ratios[name]:.1f}x on the same documents)"
        )
    return ours, ratios


def _report_adversarial(ours: float) -> None:
    slowest_name, slowest = min(time_adversarial(), key=lambda pair: pair[1])
    verdict = "ok" if slowest >= ours / 10 else "TOO SLOW: under a tenth of the corpus rate"
    print(
        f"adversarial inputs: {len(ADVERSARIAL)} of about 1 MB each, slowest "
        f"{slowest:.2f} MB/s ({slowest_name}); {verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=5.0, help="corpus size (default 5)")
    parser.add_argument(
        "--budget", type=float, default=20.0, help="CPU seconds per third-party extractor"
    )
    arguments = parser.parse_args()

    whole = _report_quality()
    documents = build_corpus(arguments.megabytes)
    total = sum(len(document.encode()) for document in documents)
    print(f"corpus: {len(documents)} documents, {total / 1e6:.2f} MB (seed {SEED}), 1/3 defanged")
    ours, ratios = _report_speed(documents, arguments.budget)
    _report_adversarial(ours)
    ratio = f", {ratios['ioc-finder']:.1f}x ioc-finder's MB/s" if "ioc-finder" in ratios else ""
    print(
        f"summary: precision {whole.precision:.3f}, recall {whole.recall:.3f} on "
        f"{whole.cases} labelled cases; {ours:.2f} MB/s{ratio}"
    )


if __name__ == "__main__":
    main()
