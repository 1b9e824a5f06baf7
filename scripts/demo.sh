#!/usr/bin/env bash
# Set up everything (scripts/setup.sh) and run `firelane demo`: managed PostGIS, sample district, checks, web app.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/firelane demo "$@"
