"""The database enforces jurisdiction itself: a least-privilege application role and row-level security by street."""

from __future__ import annotations

import math

import psycopg
import pytest
from test_api_support import STREET_A, STREET_B

from api import features, tiles
from gis import pgcluster
from gis.checks.profiles import load_profile
from gis.checks.runner import _around

pytestmark = pytest.mark.db

SECURED = ("streets", "compounds", "buildings", "fire_lanes", "hydrants", "parking", "hazards")


def _connect(role: str = "app") -> psycopg.Connection:
    """A raw connection as the managed cluster's application role (or its owner), with no scope set."""
    state = pgcluster.load_state()
    assert state is not None
    user, password = {"app": (pgcluster.APP, state.app_password),
                      "owner": (pgcluster.OWNER, state.owner_password)}[role]
    return psycopg.connect(host="127.0.0.1", port=state.port, user=user, password=password,
                           dbname=pgcluster.DATABASE, autocommit=True)


def _scope(conn: psycopg.Connection, kind: str, streets: str = "") -> None:
    conn.execute("SELECT set_config('firelane.scope', %s, false), set_config('firelane.streets', %s, false)",
                 (kind, streets))


def _count(conn: psycopg.Connection, table: str, where: str = "true") -> int:
    row = conn.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()
    assert row is not None
    return row[0]


def test_the_application_role_is_no_superuser_and_owns_nothing(engine):
    with _connect() as conn:
        row = conn.execute("SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication FROM pg_roles "
                           "WHERE rolname = current_user").fetchone()
        assert row == (False, False, False, False, False)
        owned = conn.execute("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                             "WHERE n.nspname = 'public' AND pg_get_userbyid(c.relowner) = current_user").fetchone()
        assert owned == (0,)
    with _connect("owner") as conn:
        row = conn.execute("SELECT rolsuper, rolcreaterole, rolbypassrls FROM pg_roles "
                           "WHERE rolname = current_user").fetchone()
        assert row == (False, False, False)
        assert conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'buildings'").fetchone() == (
            "firelane_owner",)


@pytest.mark.parametrize("statement", [
    "CREATE TABLE sneaky (id int)",
    "DROP TABLE buildings",
    "ALTER TABLE buildings ADD COLUMN sneaky int",
    "ALTER TABLE buildings DISABLE ROW LEVEL SECURITY",
    "DROP POLICY firelane_scope ON buildings",
    "TRUNCATE buildings",
    "CREATE INDEX sneaky ON buildings (ref)",
    "CREATE SCHEMA sneaky",
    "SELECT rolpassword FROM pg_authid",
    "CREATE ROLE sneaky",
    "UPDATE audit_log SET changed_by = 'nobody'",
    "DELETE FROM audit_log",
    "SET row_security = off; SELECT count(*) FROM buildings",
])
def test_the_application_role_cannot_change_the_schema_or_read_the_catalogue_of_secrets(engine, statement):
    with _connect() as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        _scope(conn, "all")
        for part in statement.split(";"):
            conn.execute(part)


def test_without_a_scope_the_application_role_sees_nothing(district):
    with _connect() as conn:
        for table in SECURED:
            assert _count(conn, table) == 0, table
        _scope(conn, "")
        assert _count(conn, "buildings") == 0
        _scope(conn, "everything")  # not a scope kind: nothing either
        assert _count(conn, "buildings") == 0


def test_with_the_wrong_street_the_application_role_sees_none_of_another_streets_rows(district):
    with _connect() as conn:
        _scope(conn, "streets", STREET_B)
        for table in SECURED:
            column = "ref" if table == "streets" else "street_code"
            assert _count(conn, table, f"{column} = '{STREET_A}'") == 0, table
            assert _count(conn, table, f"{column} = '{STREET_B}'") > 0 or table in ("fire_lanes", "parking"), table
        assert _count(conn, "buildings") == 1  # BB-0 only
        _scope(conn, "streets", f"{STREET_A},{STREET_B}")
        assert _count(conn, "buildings") == 6
        _scope(conn, "all")
        assert _count(conn, "buildings") == 6


def test_a_compound_bound_scope_sees_its_compounds_only(district):
    with _connect() as conn:
        conn.execute("SELECT set_config('firelane.scope', 'compounds', false), "
                     "set_config('firelane.compounds', %s, false)", ('["CA-1", "no, such"]',))
        assert _count(conn, "compounds") == 1
        assert _count(conn, "buildings") == 5 and _count(conn, "buildings", "compound_ref <> 'CA-1'") == 0
        streets = conn.execute("SELECT array_agg(ref) FROM streets").fetchone()
        assert streets is not None and streets[0] == [STREET_A]
        assert _count(conn, "hazards", f"street_code = '{STREET_B}'") == 0


def test_the_owner_is_filtered_too_unless_it_says_so(district):
    with _connect("owner") as conn:
        assert _count(conn, "buildings") == 0
        _scope(conn, "all")
        assert _count(conn, "buildings") == 6


def test_rows_outside_the_scope_can_be_neither_written_nor_changed(district):
    with _connect() as conn:
        _scope(conn, "streets", STREET_A)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO hydrants (ref, street_code, geom) VALUES ('X', %s, "
                         "ST_SetSRID(ST_MakePoint(121.513, 29.803), 4490))", (STREET_B,))
        moved = conn.execute("UPDATE buildings SET name = 'x' WHERE street_code = %s", (STREET_B,))
        assert moved.rowcount == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE buildings SET street_code = %s WHERE ref = 'BA-0'", (STREET_B,))
        assert conn.execute("DELETE FROM hazards WHERE street_code = %s", (STREET_B,)).rowcount == 0
        _scope(conn, "all")
        assert _count(conn, "hazards", f"street_code = '{STREET_B}'") == 1


def _tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return int((lon + 180) / 360 * n), int(y)


def test_a_forgotten_application_filter_still_leaks_nothing(api, headers, district, monkeypatch):
    monkeypatch.setattr(features, "scope_sql", lambda layer, principal, alias="t": (None, {}))
    monkeypatch.setattr(tiles, "scope_sql", lambda layer, principal, alias="t": (None, {}))
    items = api.get("/collections/buildings/items?limit=100", headers=headers["street_a"]).json()
    assert {f["properties"]["street_code"] for f in items["features"]} == {STREET_A}
    hazards = api.get("/collections/hazards/items", headers=headers["street_b"]).json()
    assert {f["properties"]["street_code"] for f in hazards["features"]} == {STREET_B}
    everything = api.get("/collections/buildings/items?limit=100", headers=headers["admin"]).json()
    assert len(everything["features"]) == 6
    fid = district.id("buildings", "BB-0")
    assert api.get(f"/collections/buildings/items/{fid}", headers=headers["street_a"]).status_code == 404
    # the tile over street B's only building: B sees it, A gets an empty one (and the cache keeps them apart)
    x, y = _tile(121.5123, 29.8013, 17)
    url = f"/tiles/buildings/17/{x}/{y}.mvt"
    assert api.get(url, headers=headers["street_b"]).content != b""
    assert api.get(url, headers=headers["street_a"]).content == b""
    assert api.get(url, headers=headers["street_b"]).content != b""


def test_the_spatial_index_still_serves_bbox_reads_under_row_level_security(district):
    with _connect() as conn:
        conn.execute("SET enable_seqscan = off")  # a 6-row table: make the index the only good plan, if allowed
        for kind, streets in (("all", ""), ("streets", STREET_A)):
            _scope(conn, kind, streets)
            plan = "\n".join(r[0] for r in conn.execute(
                "EXPLAIN SELECT id FROM buildings t WHERE t.geom && ST_MakeEnvelope(121.5, 29.8, 121.51, 29.81, 4490)"))
            # && is LEAKPROOF, so it may be an index condition ahead of the policy; scoped, the street_code
            # index is as good
            assert "ix_buildings_geom" in plan if kind == "all" else "Seq Scan" not in plan, plan


def test_a_check_groups_read_uses_the_indexes_under_row_level_security(district):
    """A check run's group reads each layer by place or by compound (`geom && ANY(boxes) OR compound_ref =
    ANY(…)`): with && LEAKPROOF and an index on compound_ref both arms are index conditions (a bitmap OR), not a
    scan of the layer per group, for every scope; the array of boxes is one condition of the geometry index."""
    boxes = [(121.5, 29.8, 121.501, 29.801), (121.509, 29.809, 121.51, 29.81)]
    where, params = _around(["CA-1", "CB-1"], boxes, load_profile())
    sql = where["buildings"]
    for key, value in params.items():
        literal = "ARRAY[" + ",".join(f"'{v}'" for v in value) + "]" if isinstance(value, list) else repr(value)
        sql = sql.replace(f":{key}", literal)
    with _connect() as conn:
        conn.execute("SET enable_seqscan = off")  # a small table: make the indexes the only good plan, if allowed
        for kind, streets in (("all", ""), ("streets", STREET_A)):
            _scope(conn, kind, streets)
            plan = "\n".join(r[0] for r in conn.execute(f"EXPLAIN SELECT id FROM buildings t WHERE {sql}"))
            assert "Seq Scan" not in plan, plan
            if kind == "all":
                assert "ix_buildings_geom" in plan and "ix_buildings_compound_ref" in plan, plan


def test_with_the_wrong_street_the_application_role_reads_none_of_another_streets_audit_rows(district):
    """The audit log's snapshots carry street codes: a street office reads its streets' history only (a move
    between streets is both streets' history), a property user its compounds', admin paths all of it."""
    with _connect("owner") as conn:
        _scope(conn, "all")
        conn.execute("UPDATE buildings SET name = 'edited' WHERE ref IN ('BA-1', 'BB-0')")
        conn.execute("DELETE FROM buildings WHERE ref = 'BA-2'")
        conn.execute("UPDATE hydrants SET street_code = %s WHERE ref = 'HA-1'", (STREET_B,))  # a move A -> B
        everything = _count(conn, "audit_log")
    a_text = f"(street_codes @> ARRAY['{STREET_A}'] OR before::text LIKE '%{STREET_A}%' " \
             f"OR after::text LIKE '%{STREET_A}%')"
    with _connect() as conn:
        for kind, streets, compounds in (("streets", STREET_B, "[]"), ("compounds", "", '["CB-1"]'), ("", "", "[]")):
            conn.execute("SELECT set_config('firelane.scope', %s, false), set_config('firelane.streets', %s, false), "
                         "set_config('firelane.compounds', %s, false)", (kind, streets, compounds))
            assert _count(conn, "audit_log", f"{a_text} AND layer <> 'hydrants'") == 0, kind
        _scope(conn, "streets", STREET_B)
        assert _count(conn, "audit_log", "layer = 'buildings' AND action = 'update'") == 1  # BB-0's edit
        assert _count(conn, "audit_log", "layer = 'buildings' AND action = 'delete'") == 0  # A's delete
        assert _count(conn, "audit_log", "layer = 'hydrants' AND action = 'update'") == 1  # the move into B
        _scope(conn, "streets", STREET_A)
        assert _count(conn, "audit_log", "layer = 'buildings' AND action IN ('update', 'delete')") == 2
        assert _count(conn, "audit_log", "layer = 'hydrants' AND action = 'update'") == 1  # the move out of A
        assert _count(conn, "audit_log", f"layer = 'buildings' AND after::text LIKE '%{STREET_B}%'") == 0
        _scope(conn, "all")
        assert _count(conn, "audit_log") == everything
        # the history is appended only within the scope, and never rewritten
        _scope(conn, "streets", STREET_B)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO audit_log (layer, feature_id, action, street_codes) "
                         "VALUES ('buildings', 1, 'update', ARRAY[%s])", (STREET_A,))


@pytest.mark.parametrize("table", ["users", "api_tokens"])
def test_the_sign_in_tables_are_read_by_admin_paths_only(api, headers, table):
    """Users and tokens: admin paths (scope all, role admin or system) only; any other scope reads zero rows, and
    signing in still works (through the owner's functions, before any scope exists)."""
    with _connect() as conn:
        for kind, role, streets in (("streets", "street_office", STREET_A), ("all", "viewer", ""),
                                    ("all", "planner", ""), ("", "", "")):
            _scope(conn, kind, streets)
            conn.execute("SELECT set_config('firelane.role', %s, false)", (role,))
            assert _count(conn, table) == 0, (kind, role)
        for role in ("admin", "system"):
            _scope(conn, "all")
            conn.execute("SELECT set_config('firelane.role', %s, false)", (role,))
            assert _count(conn, table) > 0, role
    assert api.get("/collections/buildings/items", headers=headers["street_a"]).status_code == 200
    assert api.get("/users", headers=headers["admin"]).status_code == 200
    assert api.get("/users", headers=headers["street_a"]).status_code == 403


@pytest.mark.parametrize("table", ["login_attempts", "complaint_hits"])
def test_the_application_role_may_not_read_or_write_the_attempt_counters(api, headers, table):
    """Who tried which account from where: the application role has no privilege at all (it counts through the
    owner's function), and row-level security filters the owner too."""
    assert api.post("/auth/login", json={"username": "nobody", "password": "wrong-one"}).status_code == 401
    for statement in (f"SELECT count(*) FROM {table}", f"DELETE FROM {table}",
                      f"INSERT INTO {table} DEFAULT VALUES"):
        with _connect() as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            _scope(conn, "all")
            conn.execute("SELECT set_config('firelane.role', 'admin', false)")
            conn.execute(statement)
    with _connect("owner") as conn:
        _scope(conn, "streets", STREET_A)
        assert _count(conn, table) == 0
    if table == "login_attempts":
        with _connect("owner") as conn:
            _scope(conn, "all")
            conn.execute("SELECT set_config('firelane.role', 'system', false)")
            assert _count(conn, table, "key = 'user:nobody'") == 1
