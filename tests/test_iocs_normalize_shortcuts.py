"""normalize_ioc's shortcut for already-canonical values gives what the full path gives."""

from __future__ import annotations

import random

from security.modules import ioc_values
from security.modules.ioc_values import InvalidIoc, normalize_ioc


def full_path(ioc_type: str, value: str) -> tuple[str, str]:
    """The normalisation without the shortcut: prepare (strip, refang, limits), then parse."""
    try:
        return "ok", ioc_values._NORMALIZERS[ioc_type](ioc_values._prepare(value))
    except InvalidIoc as error:
        return "invalid", str(error)


def with_shortcut(ioc_type: str, value: str) -> tuple[str, str]:
    try:
        return "ok", normalize_ioc(ioc_type, value)
    except InvalidIoc as error:
        return "invalid", str(error)


def ipv4_candidates(rng: random.Random, count: int) -> list[str]:
    octets = ["0", "1", "9", "10", "99", "100", "199", "200", "249", "250", "255", "256", "300"]
    octets += ["00", "01", "010", "0255", "1000", "-1", "", "٣", "1 "]
    values = [".".join(rng.choice(octets) for _ in range(4)) for _ in range(count)]
    values += [f"{a}.{b}.{c}" for a, b, c in zip(octets, octets[1:], octets[2:], strict=False)]
    values += ["1.2.3.4.5", " 1.2.3.4", "1.2.3.4\n", "1[.]2.3.4", "1.2.3.4/32", "::ffff:1.2.3.4"]
    return values


def hash_candidates(rng: random.Random, count: int) -> list[str]:
    values = []
    for _ in range(count):
        length = rng.choice([31, 32, 33, 40, 64, 127, 128])
        values.append("".join(rng.choice("0123456789abcdefABCDEFgx ") for _ in range(length)))
        values.append(f"{rng.getrandbits(length * 4):0{length}x}")
    return values


def test_ipv4_shortcut_agrees_with_the_full_path():
    values = ipv4_candidates(random.Random(4), 5_000)
    assert [v for v in values if with_shortcut("ipv4", v) != full_path("ipv4", v)] == []
    assert sum(with_shortcut("ipv4", v)[0] == "ok" for v in values) > 200


def test_hash_shortcut_agrees_with_the_full_path_for_every_hash_type():
    values = hash_candidates(random.Random(5), 2_000)
    for ioc_type in ("md5", "sha1", "sha256", "sha512"):
        disagreements = [v for v in values if with_shortcut(ioc_type, v) != full_path(ioc_type, v)]
        assert disagreements == [], ioc_type
        assert sum(with_shortcut(ioc_type, v)[0] == "ok" for v in values) > 100, ioc_type


def test_non_canonical_forms_still_take_the_full_path():
    assert normalize_ioc("ipv4", " 10.1.2.3 ") == "10.1.2.3"
    assert normalize_ioc("ipv4", "10[.]1.2.3") == "10.1.2.3"
    assert normalize_ioc("md5", "D41D8CD98F00B204E9800998ECF8427E") == (
        "d41d8cd98f00b204e9800998ecf8427e"
    )
