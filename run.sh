#!/usr/bin/env bash
# Install and start the API: ./run.sh [serve | create-admin USERNAME [--password-stdin]
#                                      | flask COMMAND...]
# Makes .venv (Python >= 3.11) and installs requirements.txt; launcher.py does the rest
# (embedded PostgreSQL when DATABASE_URL is unset, gunicorn on 127.0.0.1:8000).
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
exec .venv/bin/python launcher.py "${@:-serve}"
