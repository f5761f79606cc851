#!/usr/bin/env bash
# Install and run the tests: ./test.sh [pytest arguments]
# Makes .venv (Python >= 3.11) and installs requirements.txt + requirements-dev.txt. The tests
# use TEST_DATABASE_URL's server, or the embedded PostgreSQL (instance/pgdata-test) without it.
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
    -r requirements.txt -r requirements-dev.txt
exec .venv/bin/python -m pytest "$@"
