"""Write the Postman collections and the local environment as v2.1 JSON.

    .venv/bin/python postman/build_collections.py

The requests are listed in ``functional.py`` and ``owasp.py``; edit them there, run this,
and commit the JSON files too (Postman users import those). ``tests/test_postman.py``
fails when the committed files differ from what this writes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import functional  # noqa: E402 - the sibling modules are found through the path set above
import owasp  # noqa: E402
from collection_builder import environment  # noqa: E402

OUTPUTS = {
    "soc-incidents-api.postman_collection.json": functional.build,
    "soc-incidents-api-owasp-tests.postman_collection.json": owasp.build,
    "local.postman_environment.json": environment,
}


def render(document: dict) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    for name, build in OUTPUTS.items():
        (HERE / name).write_text(render(build()), encoding="utf-8")
        print(f"wrote postman/{name}")


if __name__ == "__main__":
    main()
