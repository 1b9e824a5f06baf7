"""`firelane db …` and `firelane init`: the managed PostGIS is created on first use, and FIRELANE_DATABASE_URL wins."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.db

FIRELANE = [sys.executable, "-m", "api.cli"]


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(FIRELANE + args, env=env, capture_output=True, text=True, timeout=180,
                          cwd=Path(__file__).resolve().parents[1])


def test_managed_cluster_lifecycle_needs_no_manual_step(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "FIRELANE_DATABASE_URL"}
    env["FIRELANE_HOME"] = str(tmp_path / "home")
    try:
        assert _run(["db", "status"], env).stdout.strip() == "absent"
        started = _run(["db", "start"], env)
        assert started.returncode == 0, started.stderr
        status = _run(["db", "status"], env)
        assert (status.returncode, status.stdout.strip()) == (0, "running")
        init = _run(["init"], env)
        assert init.returncode == 0 and "0001" in init.stdout, init.stderr
        url = _run(["db", "url"], env).stdout.strip()
        assert url.startswith("postgresql+psycopg://firelane_app:") and "@127.0.0.1:" in url  # least privilege
        assert _run(["db", "url", "--owner"], env).stdout.startswith("postgresql+psycopg://firelane_owner:")
        assert _run(["db", "stop"], env).returncode == 0
        stopped = _run(["db", "status"], env)
        assert (stopped.returncode, stopped.stdout.strip()) == (3, "stopped")
        # a command that needs the database starts the managed one again by itself
        again = _run(["init"], env)
        assert again.returncode == 0, again.stderr
        assert _run(["db", "status"], env).stdout.strip() == "running"
    finally:
        _run(["db", "stop"], env)
        _remove_cluster(tmp_path / "home")


def _remove_cluster(home: Path) -> None:
    """Delete a stopped test cluster's data directory (as root it lives under /var/lib/firelane, not in tmp_path)."""
    state = home / "cluster.json"
    if state.exists():
        shutil.rmtree(json.loads(state.read_text())["datadir"], ignore_errors=True)


def test_database_url_points_at_an_existing_postgis(engine, tmp_path):
    env = dict(os.environ)
    env["FIRELANE_HOME"] = str(tmp_path / "unused-home")
    url = engine.url.render_as_string(hide_password=False).replace("postgresql+psycopg://", "postgresql://")
    env["FIRELANE_DATABASE_URL"] = url
    out = _run(["db", "url"], env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == url.replace("postgresql://", "postgresql+psycopg://")
    assert not (tmp_path / "unused-home" / "cluster.json").exists()
    assert _run(["init"], env).returncode == 0
