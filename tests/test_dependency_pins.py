"""Every dependency is pinned to an exact version (OWASP A06: known, reviewable components)."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXACT_PIN = re.compile(r"^[A-Za-z0-9_.\-]+(\[[A-Za-z0-9_,\-]+\])?==[A-Za-z0-9_.+\-]+$")


def requirement_lines(name: str) -> list[str]:
    lines = (ROOT / name).read_text(encoding="utf-8").splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def test_every_python_requirement_is_pinned_exactly():
    loose = [
        line
        for name in ("requirements.txt", "requirements-dev.txt")
        for line in requirement_lines(name)
        if not EXACT_PIN.match(line)
    ]
    assert loose == []


def test_newman_is_pinned_exactly_and_locked():
    package = json.loads((ROOT / "postman" / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((ROOT / "postman" / "package-lock.json").read_text(encoding="utf-8"))
    version = package["devDependencies"]["newman"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    assert lock["packages"]["node_modules/newman"]["version"] == version
