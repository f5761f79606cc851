"""The layer contracts in pyproject.toml (import-linter) hold, and they bite."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

PACKAGES = ("resources", "schemas", "security", "models")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_project_keeps_its_import_contracts(project_root):
    result = lint_imports(project_root)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_engine_module_importing_a_resource_breaks_the_contracts(project_root, tmp_path):
    for package in PACKAGES:
        shutil.copytree(
            project_root / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(project_root / "pyproject.toml", tmp_path)
    lookup = tmp_path / "security" / "modules" / "lookup.py"
    lookup.write_text(lookup.read_text() + "\nimport resources.common  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "security.modules.lookup -> resources.common" in result.stdout
