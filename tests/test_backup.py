"""`firelane backup` / `firelane restore`: a restore into a fresh FIRELANE_HOME holds the same layers, ledger and
files; a corrupt backup is refused by its checksums before anything is touched."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest
import shapely
from sqlalchemy import create_engine, text

from gis.db import owner_engine
from gis.layers import LAYERS
from gis.ops.backup import BackupError, backup, read_manifest, verify
from gis.store import read_layer

pytestmark = pytest.mark.db

FIRELANE = [sys.executable, "-m", "api.cli"]
ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(FIRELANE + args, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)


def _layer(engine, name: str) -> pd.DataFrame:
    frame = read_layer(name, engine=engine).sort_values("id").reset_index(drop=True)
    frame["wkb"] = shapely.to_wkb(frame.geometry.to_numpy(), hex=True)
    return pd.DataFrame(frame.drop(columns=frame.geometry.name))


def test_backup_then_restore_into_a_fresh_home_is_identical(db, district, firelane_home, tmp_path):
    photos = firelane_home / "photos" / "2026" / "12"
    photos.mkdir(parents=True, exist_ok=True)
    (photos / "h1-before.jpg").write_bytes(b"\xff\xd8\xff" + os.urandom(2000))
    (firelane_home / "pg.log").write_text("not backed up")
    out = tmp_path / "b.tar"
    env = dict(os.environ)
    made = _run(["backup", "-o", str(out)], env)
    assert made.returncode == 0, made.stderr
    manifest = read_manifest(out)
    assert manifest.counts["buildings"] == 6 and manifest.counts["hazards"] == 2
    assert "home/photos/2026/12/h1-before.jpg" in manifest.files and "home/pg.log" not in manifest.files
    assert manifest.server_version and manifest.pg_dump_version.startswith("pg_dump")

    fresh = {k: v for k, v in os.environ.items() if k != "FIRELANE_DATABASE_URL"}
    fresh["FIRELANE_HOME"] = str(tmp_path / "fresh-home")
    try:
        restored = _run(["restore", str(out)], fresh)
        assert restored.returncode == 0, restored.stderr
        assert "row counts match" in restored.stdout
        url = _run(["db", "url"], fresh).stdout.strip()
        # row-level security: all rows, and the admin paths' (users, tokens)
        other = create_engine(url, connect_args={"options": "-c firelane.scope=all -c firelane.role=system"})
        try:
            for name in LAYERS:
                pd.testing.assert_frame_equal(_layer(db, name), _layer(other, name), obj=name)
            with db.connect() as a, other.connect() as b:
                for table in ("audit_log", "users", "api_tokens"):
                    q = text(f"SELECT * FROM {table} ORDER BY id")
                    assert [tuple(r) for r in a.execute(q)] == [tuple(r) for r in b.execute(q)], table
        finally:
            other.dispose()
        copied = tmp_path / "fresh-home" / "photos" / "2026" / "12" / "h1-before.jpg"
        assert copied.read_bytes() == (photos / "h1-before.jpg").read_bytes()
        status = _run(["db", "status"], fresh)
        assert status.stdout.strip() == "running" and "data directory" in status.stderr
    finally:
        _run(["db", "stop"], fresh)
        state = tmp_path / "fresh-home" / "cluster.json"
        if state.exists():
            shutil.rmtree(json.loads(state.read_text())["datadir"], ignore_errors=True)


def test_a_corrupt_backup_is_refused_by_its_checksums(db, district, tmp_path):
    out = tmp_path / "b.tar"
    backup(out, engine=owner_engine())
    corrupt = tmp_path / "corrupt.tar"
    with tarfile.open(out) as src, tarfile.open(corrupt, "w") as dst:
        for member in src:
            file = src.extractfile(member)
            assert file is not None
            data = file.read()
            if member.name == "database.dump":
                data = data[:-10] + bytes(b ^ 0xFF for b in data[-10:])
            dst.addfile(member, io.BytesIO(data))
    with pytest.raises(BackupError, match="checksum mismatch .*database.dump"):
        verify(corrupt, tmp_path / "x")
    with pytest.raises(BackupError, match="not a firelane backup"):
        read_manifest(tmp_path / "x" / "database.dump")
