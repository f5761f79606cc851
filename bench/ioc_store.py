"""Benchmark the IOC store at 1M IOCs: bulk import rate, check and search latency.

Usage: ``.venv/bin/python bench/ioc_store.py [--total 1000000] [--checks 3000] [--searches 400]``

Loads ``--total`` IOCs (10 % CIDRs, the rest addresses, domains, URLs and hashes) into a
scratch database through ``POST /iocs/bulk`` (10,000 per request, the API's limit), then
times ``GET /iocs/check`` for random values (addresses inside stored networks, stored
addresses, domains and misses) and ``GET /iocs?q=`` for what an analyst searches. All go
through the app in-process (Flask's test client): the times are the server's own, with no
network. The scratch database is dropped at the end, also on Ctrl-C. The server comes
from ``BENCH_DATABASE_URL`` (default: the local PostgreSQL,
``postgresql://postgres@127.0.0.1:5432/``).

Targets (issue 5): bulk import >= 20,000 IOCs/s; check p99 < 10 ms (search has none).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from bench.throwaway_app import throwaway_app

BATCH = 10_000
SHARES = {"cidr": 0.10, "ipv4": 0.40, "ipv6": 0.10, "domain": 0.20, "url": 0.10, "sha256": 0.10}
TLDS = ("com", "net", "org", "io", "ru", "info", "biz", "xyz")


def random_ipv4(rng: random.Random) -> str:
    return str(ipaddress.IPv4Address(rng.randrange(1 << 24, 223 << 24)))


def random_network(rng: random.Random) -> str:
    prefix = rng.choice((16, 20, 22, 24, 24, 24, 26, 28))
    return str(ipaddress.ip_network(f"{random_ipv4(rng)}/{prefix}", strict=False))


def random_domain(rng: random.Random) -> str:
    label = "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=rng.randint(6, 14)))
    return f"{label}.{rng.choice(TLDS)}"


def random_value(ioc_type: str, rng: random.Random) -> str:
    if ioc_type == "cidr":
        return random_network(rng)
    if ioc_type == "ipv4":
        return random_ipv4(rng)
    if ioc_type == "ipv6":
        return str(ipaddress.IPv6Address(rng.getrandbits(128) | (0x2001 << 112)))
    if ioc_type == "domain":
        return random_domain(rng)
    if ioc_type == "url":
        path = f"{rng.getrandbits(40):x}/login.php?id={rng.randint(1, 9999)}"
        return f"https://{random_domain(rng)}/{path}"
    return f"{rng.getrandbits(256):064x}"


def batches(total: int, rng: random.Random, samples: dict[str, list[str]]) -> Iterator[bytes]:
    """JSON bodies for POST /iocs/bulk; keeps a few values of each type for the checks."""
    types = [ioc_type for ioc_type, share in SHARES.items() for _ in range(int(share * 100))]
    for start in range(0, total, BATCH):
        items = []
        for index in range(min(BATCH, total - start)):
            ioc_type = types[(start + index) % len(types)]
            value = random_value(ioc_type, rng)
            if len(samples[ioc_type]) < 2000:
                samples[ioc_type].append(value)
            items.append({"type": ioc_type, "value": value, "confidence": rng.randint(10, 100)})
        yield json.dumps({"items": items, "source": "bench", "tags": ["bench"]}).encode()


def check_values(rng: random.Random, samples: dict[str, list[str]], count: int) -> list[str]:
    """A mix: inside a stored network, a stored address, a stored domain, a random miss."""
    values = []
    for index in range(count):
        kind = index % 4
        if kind == 0:
            network = ipaddress.ip_network(rng.choice(samples["cidr"]))
            values.append(str(network[rng.randrange(network.num_addresses)]))
        elif kind == 1:
            values.append(rng.choice(samples["ipv4"]))
        elif kind == 2:
            values.append(rng.choice(samples["domain"]))
        else:
            values.append(random_ipv4(rng))
    return values


def search_terms(rng: random.Random, samples: dict[str, list[str]], count: int) -> list[str]:
    """What an analyst types into ``q``: a piece of a stored domain, a stored digest's
    beginning, the first two octets of a stored address, and a word stored nowhere."""
    terms = []
    for index in range(count):
        kind = index % 4
        if kind == 0:
            label = rng.choice(samples["domain"]).split(".")[0]
            start = rng.randrange(len(label) - 4)
            terms.append(label[start : start + 5])
        elif kind == 1:
            terms.append(rng.choice(samples["sha256"])[:12])
        elif kind == 2:
            terms.append(".".join(rng.choice(samples["ipv4"]).split(".")[:2]) + ".")
        else:
            terms.append("".join(rng.choices("qwxz", k=7)))
    return terms


def timed_requests(
    client, headers: dict, url: str, parameters: list[dict]
) -> tuple[list[float], list[dict]]:
    """Milliseconds per GET, sorted, and the JSON answers; every answer must be 200."""
    timings, answers = [], []
    for query_string in parameters:
        started = time.perf_counter()
        response = client.get(url, query_string=query_string, headers=headers)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
        answers.append(response.get_json())
    return sorted(timings), answers


def percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def run(server_url: str, total: int, checks: int, searches: int) -> None:
    from auth import issue_token
    from models import db
    from security.modules.users import create_user

    with throwaway_app(server_url) as app:
        with app.app_context():
            user = create_user("bench", "Bench-Password-1234!", "admin")
            token, _ = issue_token(user, "127.0.0.1")
            db.session.commit()
        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        rng = random.Random(5)
        samples: dict[str, list[str]] = {ioc_type: [] for ioc_type in SHARES}

        print(f"load average before: {' '.join(f'{load:.1f}' for load in os.getloadavg())}")
        stored = 0
        import_seconds = import_cpu_seconds = 0.0
        for body in batches(total, rng, samples):
            started, cpu_started = time.perf_counter(), time.process_time()
            response = client.post("/iocs/bulk", data=body, headers=headers)
            import_seconds += time.perf_counter() - started
            import_cpu_seconds += time.process_time() - cpu_started
            assert response.status_code == 200, response.get_data(as_text=True)[:500]
            result = response.get_json()
            stored += result["created"] + result["merged"]
        # The app's own CPU time tells how much of the wall time was spent waiting for
        # PostgreSQL or for a CPU (the machine may be shared).
        print(
            f"bulk import: {stored:,} IOCs in {import_seconds:.1f} s "
            f"= {stored / import_seconds:,.0f} IOCs/s (target >= 20,000); "
            f"app CPU {import_cpu_seconds:.1f} s = {import_cpu_seconds / stored * 1e6:.0f} us/IOC"
        )

        with app.app_context(), db.engine.connect() as connection:
            # Fresh statistics, as autovacuum would have after a real import.
            connection.execution_options(isolation_level="AUTOCOMMIT")
            connection.exec_driver_sql("VACUUM ANALYZE iocs")
        values = check_values(rng, samples, checks)
        for value in values[:200]:
            client.get("/iocs/check", query_string={"value": value}, headers=headers)
        cpu_started = time.process_time()
        timings, answers = timed_requests(
            client, headers, "/iocs/check", [{"value": value} for value in values]
        )
        known = sum(answer["known_bad"] for answer in answers)
        print(
            f"GET /iocs/check x {len(timings):,} ({known:,} known bad): "
            f"p50 {percentile(timings, 0.50):.2f} ms, p99 {percentile(timings, 0.99):.2f} ms, "
            f"mean {statistics.fmean(timings):.2f} ms (target p99 < 10 ms); "
            f"app CPU {(time.process_time() - cpu_started) / len(timings) * 1000:.2f} ms/request"
        )
        terms = search_terms(rng, samples, searches)
        searched, _ = timed_requests(client, headers, "/iocs", [{"q": term} for term in terms])
        print(
            f"GET /iocs?q= x {len(searched):,}: p50 {percentile(searched, 0.50):.2f} ms, "
            f"p99 {percentile(searched, 0.99):.2f} ms (no target; the search indexes are "
            f"what bulk import pays for)"
        )
        print(f"load average after: {' '.join(f'{load:.1f}' for load in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total", type=int, default=1_000_000)
    parser.add_argument("--checks", type=int, default=3_000)
    parser.add_argument("--searches", type=int, default=400)
    arguments = parser.parse_args()
    server = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/")
    run(server, arguments.total, arguments.checks, arguments.searches)


if __name__ == "__main__":
    main()
