"""A cluster made before the owner/application role split (tables created and owned by the superuser `firelane`,
no firelane_owner or firelane_app) is upgraded by the managed cluster itself; an external database in that state
is refused with what a superuser must run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from gis import pgcluster

pytestmark = pytest.mark.db

ROOT = Path(__file__).resolve().parents[1]
FIRELANE = [sys.executable, "-c", "from api.cli import main; main()"]

#: What the managed cluster did before the roles existed: the superuser made the database, PostGIS and every table
#: (migrations as the superuser: the grants were skipped, no application role existing), then wrote rows.
OLD_STYLE = """
import psycopg
from sqlalchemy import create_engine
from gis import migrate, pgcluster

state = pgcluster._initdb()
pgcluster._run(pgcluster._run_as() + [state.bindir + "/pg_ctl", "-D", state.datadir, "-l",
               state.datadir + "/server.log", "-w", "-t", "60", "start"])
with psycopg.connect(host="127.0.0.1", port=state.port, user="firelane", password=state.password,
                     dbname="postgres", autocommit=True) as conn:
    conn.execute("CREATE DATABASE firelane")
with psycopg.connect(host="127.0.0.1", port=state.port, user="firelane", password=state.password,
                     dbname="firelane", autocommit=True) as conn:
    conn.execute("CREATE EXTENSION postgis")
engine = create_engine(state.superuser_url)
migrate.upgrade(engine=engine)
with psycopg.connect(host="127.0.0.1", port=state.port, user="firelane", password=state.password,
                     dbname="firelane", autocommit=True) as conn:
    for ref, x in (("330212001", 121.50), ("330212002", 121.51)):
        conn.execute("INSERT INTO streets (ref, name, geom) VALUES (%s, %s, "
                     "ST_Multi(ST_MakeEnvelope(%s, 29.80, %s, 29.81, 4490)))", (ref, "街道" + ref[-1], x, x + 0.01))
engine.dispose()
print(state.port, state.password)
"""


def _run(args: list[str], env: dict[str, str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture
def old_cluster(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIRELANE_")}
    env["FIRELANE_HOME"] = str(tmp_path / "home")
    made = _run([sys.executable, "-c", OLD_STYLE], env)
    assert made.returncode == 0, made.stderr
    port, password = made.stdout.split()
    yield env, int(port), password
    _run([sys.executable, "-c", "from gis import pgcluster; pgcluster.destroy()"], env)


def _superuser(port: int, password: str) -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=port, user="firelane", password=password, dbname="firelane",
                           autocommit=True)


def test_the_old_cluster_is_what_failed_before(old_cluster):
    _, port, password = old_cluster
    with _superuser(port, password) as conn:
        assert conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'alembic_version'").fetchone() == (
            "firelane",)
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'firelane\\_%'").fetchone() == (0,)


def test_an_external_database_in_that_state_is_refused_with_what_to_run(old_cluster):
    env, port, password = old_cluster
    with _superuser(port, password) as conn:  # roles made as docker/initdb does, the tables left as they were
        for role in ("ext_owner", "ext_app"):
            conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'pw-{role}'")
    url = f"postgresql://{{}}:pw-{{}}@127.0.0.1:{port}/firelane"
    external = {**env, "FIRELANE_DATABASE_URL": url.format("ext_app", "ext_app"),
                "FIRELANE_DATABASE_OWNER_URL": url.format("ext_owner", "ext_owner")}
    refused = _run([*FIRELANE, "init"], external)
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr, refused.stderr
    assert "REASSIGN OWNED BY firelane TO ext_owner" in refused.stderr, refused.stderr
    assert "ALTER TABLE public." in refused.stderr and "OWNER TO ext_owner" in refused.stderr
    # running what it says (every object, not only the three it names) makes it work
    with _superuser(port, password) as conn:
        for statement in pgcluster.adopt_statements(pgcluster.owned_by(conn, "firelane"), "ext_owner"):
            conn.execute(statement)
    assert _run([*FIRELANE, "init"], external).returncode == 0


def test_the_managed_cluster_upgrades_itself_and_the_app_starts_on_it(old_cluster, tmp_path):
    env, port, password = old_cluster
    init = _run([*FIRELANE, "init"], env)
    assert init.returncode == 0, init.stderr
    out = tmp_path / "streets.geojson"
    exported = _run([*FIRELANE, "export", "streets", "--format", "geojson", "-o", str(out)], env)
    assert exported.returncode == 0, exported.stderr
    assert sorted(f["properties"]["ref"] for f in json.loads(out.read_text())["features"]) == [
        "330212001", "330212002"]
    with _superuser(port, password) as conn:
        owners: dict[str, str] = dict(conn.execute(
            "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n ON "
            "n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'S')").fetchall())
        assert owners["alembic_version"] == owners["streets"] == owners["hazards"] == "firelane_owner"
        assert owners["spatial_ref_sys"] == "firelane"  # PostGIS's own table stays the extension's
        funcs: dict[str, str] = dict(conn.execute(
            "SELECT p.proname, pg_get_userbyid(p.proowner) FROM pg_proc p JOIN pg_namespace n "
            "ON n.oid = p.pronamespace WHERE p.proname = 'firelane_compounds_no_overlap'"))
        assert funcs == {"firelane_compounds_no_overlap": "firelane_owner"}
    state = json.loads((Path(env["FIRELANE_HOME"]) / "cluster.json").read_text())
    with psycopg.connect(host="127.0.0.1", port=port, user="firelane_app", password=state["app_password"],
                         dbname="firelane", autocommit=True) as app:
        assert app.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user").fetchone() == (
            False, False)
        app.execute("SELECT set_config('firelane.scope', 'streets', false), "
                    "set_config('firelane.streets', '330212002', false)")
        assert app.execute("SELECT array_agg(ref) FROM streets").fetchone() == (["330212002"],)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("DROP TABLE streets")
    # a second start finds nothing to adopt
    again = _run([*FIRELANE, "init"], env)
    assert again.returncode == 0, again.stderr
