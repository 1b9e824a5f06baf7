#!/usr/bin/env bash
# Set up everything (scripts/setup.sh) and run the whole test suite against a throwaway managed PostGIS.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy
exec .venv/bin/python -m pytest -q "$@"
