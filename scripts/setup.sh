#!/usr/bin/env bash
# Set up firelane on a fresh Debian/Ubuntu machine: system packages (only those missing) and the Python venv.
# Idempotent: a second run installs nothing new. Usage: bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(postgresql postgresql-postgis gdal-bin chromium fonts-noto-cjk libpango-1.0-0 libpangoft2-1.0-0 poppler-utils
  qgis python3-qgis wrk)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "安装系统软件包 installing system packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  # Ubuntu names the browser chromium-browser; take whichever this distribution has
  if ! apt-cache show chromium >/dev/null 2>&1; then
    missing=("${missing[@]/chromium/chromium-browser}")
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The distribution's cluster is not used (firelane manages its own); keep the Debian service from holding ports.
if command -v pg_lsclusters >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
  pg_lsclusters -h 2>/dev/null | awk '$4=="online"{print $1, $2}' | while read -r v c; do pg_ctlcluster "$v" "$c" stop || true; done
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "创建 Python 虚拟环境 creating the Python virtual environment (.venv)"
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -e ".[test]" 2>&1 | grep -v -E "^(WARNING: Location|  WARNING)" || true
# the project's own modules compiled now (an editable install leaves them to the first run, and a shell with
# PYTHONDONTWRITEBYTECODE would compile them again on every command)
.venv/bin/python -m compileall -q -j 0 api gis >/dev/null
.venv/bin/firelane --version >/dev/null
echo "环境就绪 setup complete: .venv/bin/firelane"
