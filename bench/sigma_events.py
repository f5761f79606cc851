"""Throughput of in-process Sigma evaluation: 100 rules over a batch of 10,000 events.

Run from the repository root: ``.venv/bin/python -m bench.sigma_events``.

The rules are the first 100 SigmaHQ regression rules (tests/data/sigma-regression),
the events are those rules' own regression events (118 Windows events, evtx_dump
JSON) repeated with distinct record ids up to 10,000, so every batch holds both
matches and the far more common non-matches. The figure is events per second for
``evaluate`` (flattening included) on one process, median of three rounds.
"""

import copy
import statistics
import time

from security.modules.sigma import compile_sigma_rule, evaluate
from tests.unit.sigma_support import REGRESSION_DATA, load_events

RULE_COUNT = 100
EVENT_COUNT = 10_000
ROUNDS = 3


def build_rules():
    """Compile the first RULE_COUNT regression rules; returns (rules, seconds taken)."""
    paths = sorted(REGRESSION_DATA.glob("*/rule.yml"))[:RULE_COUNT]
    started = time.perf_counter()
    rules = [compile_sigma_rule(path.read_text(encoding="utf-8")) for path in paths]
    return rules, time.perf_counter() - started


def build_events():
    """EVENT_COUNT events: the regression events, cycled, each with its own record id."""
    samples = [
        event for path in sorted(REGRESSION_DATA.glob("*/*.json")) for event in load_events(path)
    ]
    events = []
    for number in range(EVENT_COUNT):
        event = copy.deepcopy(samples[number % len(samples)])
        event["Event"]["System"]["EventRecordID"] = number
        events.append(event)
    return events


def main() -> None:
    rules, compile_seconds = build_rules()
    events = build_events()
    timings = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        matches = evaluate(rules, events)
        timings.append(time.perf_counter() - started)
    seconds = statistics.median(timings)
    print(f"rules: {len(rules)} (compiled in {compile_seconds:.2f} s)")
    print(f"events: {len(events)}, matches: {len(matches)}")
    print(f"rounds: {', '.join(f'{timing:.2f} s' for timing in timings)}")
    print(f"events/s: {len(events) / seconds:,.0f} (median of {ROUNDS} rounds)")


if __name__ == "__main__":
    main()
