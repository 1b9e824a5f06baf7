"""A database made from other migration files than this build's (0001 is regenerated until the schema is released)
is refused with what to do, not half-used; the demo backs up its managed database and rebuilds it."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import psycopg
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from gis import audit, jurisdiction, migrate, schema_version

pytestmark = pytest.mark.db

ROOT = Path(__file__).resolve().parents[1]
FIRELANE = [sys.executable, "-c", "from api.cli import main; main()"]
#: What an earlier development build left: its own fingerprint in the stamp, one street of data
EARLIER_BUILD = """
import json, os, psycopg
from gis import pgcluster
state = pgcluster.load_state()
with psycopg.connect(state.owner_url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
    conn.execute("COMMENT ON TABLE alembic_version IS 'firelane migrations sha256:" + "0" * 64 + "'")
    conn.execute("SELECT set_config('firelane.scope', 'all', false), set_config('firelane.role', 'system', false)")
    conn.execute("INSERT INTO streets (ref, name, geom) VALUES ('330212001', '街道1', "
                 "ST_Multi(ST_MakeEnvelope(121.50, 29.80, 121.51, 29.81, 4490)))")
"""
MIGRATE_LIKE_THE_DEMO = """
from gis import scope
from api.demo import _migrate
print(_migrate(print))
scope.enter(scope.SYSTEM)
from sqlalchemy import text
from gis.db import get_engine
with get_engine().connect() as conn:
    print("streets", conn.execute(text("SELECT count(*) FROM streets")).scalar())
"""


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture
def earlier_build(tmp_path):
    """A managed cluster in its own FIRELANE_HOME whose schema an earlier development build made."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIRELANE_")}
    env["FIRELANE_HOME"] = str(tmp_path / "home")
    made = _run([*FIRELANE, "init"], env)
    assert made.returncode == 0, made.stderr
    tampered = _run([sys.executable, "-c", EARLIER_BUILD], env)
    assert tampered.returncode == 0, tampered.stderr
    yield env
    _run([sys.executable, "-c", "from gis import pgcluster; pgcluster.destroy()"], env)


def test_a_database_made_by_this_build_records_its_migrations(engine):
    with engine.connect() as conn:
        comment = conn.execute(text("SELECT obj_description('alembic_version'::regclass, 'pg_class')")).scalar()
        assert comment == schema_version.STAMP_PREFIX + schema_version.fingerprint()
        schema_version.check_drift(conn)  # nothing to say
    assert migrate.upgrade() == migrate.current()  # and a second upgrade is a no-op, not a drift


def test_the_fingerprint_covers_every_migration_file():
    fp = schema_version.fingerprint()
    assert len(fp) == 64 and fp == schema_version.fingerprint()
    assert list((schema_version.MIGRATIONS / "versions").glob("*.py")), "no migration files found"


def test_the_fingerprint_covers_the_sql_the_migrations_take_from_the_package(monkeypatch):
    fp = schema_version.fingerprint()
    files = (schema_version.MIGRATIONS / "versions").glob("*.py")
    taken = {name for path in files for name, _ in schema_version.generated_sql(path)}
    assert {"gis.audit.all_triggers_sql", "gis.jurisdiction.jurisdiction_sql"} <= taken
    # a trigger more (as the sign-in tables' change notifications once were) is another schema
    made = audit.all_triggers_sql()
    monkeypatch.setattr(audit, "all_triggers_sql", lambda: made + "-- one more")
    assert schema_version.fingerprint() != fp
    monkeypatch.undo()
    monkeypatch.setattr(jurisdiction, "jurisdiction_sql", lambda: "-- other policies")
    assert schema_version.fingerprint() != fp


def test_the_head_read_from_the_files_is_alembics():
    assert schema_version.head() == ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()


def test_a_command_on_a_current_database_does_not_load_alembic(engine):
    probe = ("import sys; from api.cli_schema import ensure_schema; ensure_schema(); "
             "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))")
    done = _run([sys.executable, "-c", probe], dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_migration_import_the_fingerprint_cannot_read_is_refused(tmp_path):
    path = tmp_path / "0002_more.py"
    path.write_text("from gis.audit import (\n    all_triggers_sql,\n)\n", encoding="utf-8")
    with pytest.raises(ValueError, match="one line"):
        schema_version.generated_sql(path)


def test_a_database_of_an_earlier_build_is_refused_with_what_to_do(earlier_build):
    refused = _run([*FIRELANE, "init"], earlier_build)
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    assert "firelane backup" in refused.stderr and "other migration files" in refused.stderr
    assert "000000000000" in refused.stderr  # the recorded fingerprint, beside this build's
    for command in (["export", "streets", "--format", "geojson", "-o", os.devnull], ["check"]):
        other = _run([*FIRELANE, *command], earlier_build)
        assert other.returncode == 1 and "firelane backup" in other.stderr, (command, other.stderr[-400:])


def test_the_demo_backs_up_its_managed_database_and_rebuilds_it(earlier_build):
    home = Path(earlier_build["FIRELANE_HOME"])
    rebuilt = _run([sys.executable, "-c", MIGRATE_LIKE_THE_DEMO], earlier_build)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "backed up to" in rebuilt.stdout and "streets 0" in rebuilt.stdout
    kept = sorted((home / "backups").glob("before-rebuild-*.tar"))
    assert len(kept) == 1
    with tarfile.open(kept[0]) as tar:
        assert {"manifest.json", "database.dump"} <= set(tar.getnames())
    # the earlier build's street is in the backup, not in the rebuilt database
    restored = _run([*FIRELANE, "restore", str(kept[0])], earlier_build)
    assert restored.returncode == 1 and "other migration files" in restored.stderr
    assert _run([*FIRELANE, "init"], earlier_build).returncode == 1  # the restore put the earlier schema back


def test_an_external_database_of_an_earlier_build_is_not_touched(earlier_build):
    state = _run([*FIRELANE, "db", "url", "--owner"], earlier_build)
    assert state.returncode == 0, state.stderr
    external = dict(earlier_build, FIRELANE_DATABASE_URL=state.stdout.strip())
    refused = _run([sys.executable, "-c", MIGRATE_LIKE_THE_DEMO], external)
    assert refused.returncode != 0 and "SchemaDrift" in refused.stderr
    assert not (Path(earlier_build["FIRELANE_HOME"]) / "backups").exists()
    with psycopg.connect(state.stdout.strip().replace("postgresql+psycopg", "postgresql")) as conn:
        conn.execute("SELECT set_config('firelane.scope', 'all', false)")  # row-level security binds the owner too
        assert conn.execute("SELECT count(*) FROM streets").fetchone() == (1,)
