"""ARCHITECTURE.md stays a true map: every file it names exists, and every area module of
the code is in its table (a new area that skips the checklist fails here)."""

from __future__ import annotations

import re
from pathlib import Path

from resources import AREAS

ROOT = Path(__file__).resolve().parent.parent
MAP = (ROOT / "ARCHITECTURE.md").read_text()
# Backticked repository paths: a folder, a .py file or a glob of test files.
CITED_PATH = re.compile(r"`((?:[a-z_]+/)+(?:[\w*]+\.py)?|[a-z_]+\.py)`")
# Modules every area shares rather than areas themselves (listed under the table).
SHARED_MODULES = {"__init__", "base", "common", "vocabulary", "responding"}


def _cited_paths() -> set[str]:
    return {match.group(1) for match in CITED_PATH.finditer(MAP)}


def _area_table() -> str:
    start = MAP.index("| Area |")
    return MAP[start : MAP.index("\n\n", start)]


def test_every_path_the_map_names_exists():
    missing = [path for path in sorted(_cited_paths()) if not any(ROOT.glob(path))]
    assert missing == []


def test_every_area_module_is_in_the_area_table():
    table = _area_table()
    modules = [f"resources/{area.__name__.split('.')[-1]}.py" for area in AREAS]
    for folder in ("models", "schemas"):
        modules += [
            f"{folder}/{path.name}"
            for path in sorted((ROOT / folder).glob("*.py"))
            if path.stem not in SHARED_MODULES
        ]
    assert [module for module in modules if f"`{module}`" not in table] == []
