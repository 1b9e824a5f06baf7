"""One scoped query path: the campaign tables are row-secured like the layers, and every reader takes its
jurisdiction filter from gis.scope (so a database that enforces no policies still answers within the scope)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine
from test_api_support import STREET_A, STREET_B

from api import checks_api
from api.auth import Principal
from gis import pgcluster, scope
from gis.db import pyformat
from gis.jurisdiction import SCOPED_TABLES
from gis.store import read_layer
from web import data

pytestmark = pytest.mark.db

#: every campaign table, and how to pick street A's rows in it
CAMPAIGN_TABLES = {
    "campaigns": "jurisdiction ? '{a}'",
    "campaign_stages": "campaign_id IN (SELECT id FROM campaigns WHERE jurisdiction ? '{a}')",
    "campaign_inspections": "street_code = '{a}'",
    "spot_draws": "campaign_id IN (SELECT id FROM campaigns WHERE jurisdiction ? '{a}')",
    "spot_checks": "street_code = '{a}'",
    "spot_check_items": "check_id IN (SELECT id FROM spot_checks WHERE street_code = '{a}')",
    "check_runs": "scope->>'street' = '{a}'",
    "jobs": "params->'scope'->>'street' = '{a}' OR params->>'street' = '{a}' OR params->'streets' ? '{a}'",
}


def _connect(role: str) -> psycopg.Connection:
    state = pgcluster.load_state()
    assert state is not None
    user, password = {"app": (pgcluster.APP, state.app_password), "owner": (pgcluster.OWNER, state.owner_password),
                      "superuser": (pgcluster.SUPERUSER, state.password)}[role]
    return psycopg.connect(host="127.0.0.1", port=state.port, user=user, password=password,
                           dbname=pgcluster.DATABASE, autocommit=True)


def _value(conn: psycopg.Connection, query: str, params: tuple | None = None) -> Any:
    """The first column of the row `query` returns (a count, an aggregate, a RETURNING id: there is one)."""
    row = conn.execute(query, params).fetchone()
    assert row is not None, query
    return row[0]


def _scope(conn: psycopg.Connection, kind: str, streets: str = "", compounds: str = "[]") -> None:
    conn.execute("SELECT set_config('firelane.scope', %s, false), set_config('firelane.streets', %s, false), "
                 "set_config('firelane.compounds', %s, false)", (kind, streets, compounds))


def _campaign_rows(conn: psycopg.Connection, street: str, compound: str) -> None:
    """A campaign over `street` with a stage, an inspection, a draw, a spot check with a result and a check run."""
    cid = _value(conn, "INSERT INTO campaigns (name, jurisdiction) VALUES (%s, jsonb_build_array(%s::text)) "
                       "RETURNING id", (f"行动 {street}", street))
    conn.execute("INSERT INTO campaign_stages (campaign_id, seq, code, name_zh, name_en, starts_on, ends_on) "
                 "VALUES (%s, 1, 'survey', '摸排', 'survey', '2026-01-01', '2026-02-01')", (cid,))
    conn.execute("INSERT INTO campaign_inspections (campaign_id, compound_ref, street_code, kind, on_date) "
                 "VALUES (%s, %s, %s, 'self', '2026-01-05')", (cid, compound, street))
    draw = _value(conn, "INSERT INTO spot_draws (campaign_id, seed, rate, algorithm, candidates, roster, "
                        "roster_sha256) VALUES (%s, 1, 0.1, 'pcg64', '{}', '[]', repeat('0', 64)) RETURNING id",
                        (cid,))
    check = _value(conn, "INSERT INTO spot_checks (draw_id, campaign_id, compound_ref, street_code, inspectors) "
                         "VALUES (%s, %s, %s, %s, '[]') RETURNING id", (draw, cid, compound, street))
    conn.execute("INSERT INTO spot_check_items (check_id, item, result) VALUES (%s, 'lanes', 'pass')", (check,))
    conn.execute("INSERT INTO check_runs (status, profile, profile_version, scope) "
                 "VALUES ('done', 'cn-gb', '1', jsonb_build_object('street', %s::text))", (street,))
    conn.execute("INSERT INTO jobs (kind, params) VALUES ('check_run', jsonb_build_object('scope', "
                 "jsonb_build_object('street', %s::text))), ('check_run', jsonb_build_object('scope', "
                 "jsonb_build_object('compound', %s::text))), ('report', jsonb_build_object('street', %s::text, "
                 "'streets', jsonb_build_array(%s::text)))", (street, compound, street, street))


@pytest.fixture
def campaign_rows(district):
    with _connect("owner") as conn:
        _scope(conn, "all")
        _campaign_rows(conn, STREET_A, "CA-1")
        _campaign_rows(conn, STREET_B, "CB-1")
        conn.execute("INSERT INTO campaigns (name) VALUES ('全区 district-wide')")
        conn.execute("INSERT INTO check_runs (status, profile, profile_version) VALUES ('done', 'cn-gb', '1')")
        conn.execute("INSERT INTO jobs (kind, params) VALUES ('report', '{\"streets\": []}'), "
                     "('check_run', '{\"scope\": {}}')")
    return district


def test_with_the_wrong_street_the_app_role_reads_no_row_of_another_streets_campaign_tables(campaign_rows):
    with _connect("app") as conn:
        for kind, streets, compounds in (("streets", STREET_B, "[]"), ("compounds", "", '["CB-1"]'),
                                         ("", "", "[]")):
            _scope(conn, kind, streets, compounds)
            for table, mine in CAMPAIGN_TABLES.items():
                rows = _value(conn, f"SELECT count(*) FROM {table} WHERE {mine.format(a=STREET_A)}")
                assert rows == 0, (kind, table)
        _scope(conn, "streets", STREET_A)
        for table, mine in CAMPAIGN_TABLES.items():  # the rows are there: the scope, not their absence, hid them
            assert _value(conn, f"SELECT count(*) FROM {table} WHERE {mine.format(a=STREET_A)}") > 0
        # what concerns every street (a district-wide campaign, a district-wide run) is every street's
        _scope(conn, "streets", STREET_B)
        assert _value(conn, "SELECT count(*) FROM campaigns WHERE jurisdiction = '[]'") == 1
        assert _value(conn, "SELECT count(*) FROM check_runs WHERE scope = '{}'") == 1
        assert _value(conn, "SELECT count(*) FROM spot_checks") == 1
        assert _value(conn, "SELECT count(*) FROM jobs") == 3  # B's own, none of the district's


def test_campaign_rows_outside_the_scope_cannot_be_written(campaign_rows):
    with _connect("app") as conn:
        _scope(conn, "streets", STREET_B)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            _campaign_rows(conn, STREET_A, "CA-1")
        assert conn.execute("UPDATE spot_checks SET status = 'failed' WHERE street_code = %s",
                            (STREET_A,)).rowcount == 0
        assert conn.execute("DELETE FROM campaign_inspections WHERE street_code = %s", (STREET_A,)).rowcount == 0


def test_the_application_filters_match_the_policies(campaign_rows):
    """gis.scope.filter_sql, run where no policy applies (the superuser bypasses row-level security), picks the
    very rows the policy lets the application role see, for every secured table and scope."""
    scopes = [scope.for_streets("street_office", [STREET_A]), scope.for_streets("street_office", [STREET_B]),
              scope.for_compounds("property", ["CA-2"]), scope.for_compounds("property", ["CB-1", "nope"])]
    with _connect("superuser") as su, _connect("app") as app:
        for s in scopes:
            scope.apply(app, s)
            for table in SCOPED_TABLES:
                where, params = scope.filter_sql(table, s)
                expected = sorted(r[0] for r in app.execute(f"SELECT id FROM {table}"))
                got = sorted(r[0] for r in su.execute(pyformat(f"SELECT t.id FROM {table} t WHERE {where}"),
                                                      params))
                assert got == expected, (s, table)


def test_every_reader_keeps_to_the_scope_on_a_database_without_policies(campaign_rows, monkeypatch):
    """The page, API and campaign readers connected as a superuser (no row-level security applies): only the
    scope's own rows come back, so none of them bypasses gis.scope with a filter of its own (or none)."""
    state = pgcluster.load_state()
    assert state is not None
    engine = create_engine(state.superuser_url)
    try:
        everything = read_layer("buildings", engine=engine)  # the superuser without a scope filter sees it all
        assert set(everything["street_code"]) == {STREET_A, STREET_B}
        with scope.scoped(scope.for_streets("street_office", [STREET_B])):
            for layer in ("streets", "compounds", "buildings", "hydrants", "hazards", "parking"):
                frame = read_layer(layer, engine=engine)
                column = "ref" if layer == "streets" else "street_code"
                assert set(frame[column]) <= {STREET_B}, layer
            assert set(read_layer("buildings", engine=engine, street=STREET_A)["ref"]) == set()
            with pytest.raises(data.NotInScope):
                data.compound_file("CA-1", engine=engine)
            assert set(data.compound_file("CB-1", engine=engine).layers["buildings"]["ref"]) == {"BB-0"}
            traffic = data.traffic_view(engine=engine)
            assert set(traffic.hydrants["ref"]) == {"HB-1"} and traffic.parking.empty
            assert data.demolition_ranking(engine=engine).empty
            view = data.street_view(STREET_B, engine=engine)
            assert set(view.compounds["ref"]) == {"CB-1"}
        with scope.scoped(scope.for_compounds("property", ["CA-2"])):
            assert set(read_layer("compounds", engine=engine)["ref"]) == {"CA-2"}
            assert set(read_layer("streets", engine=engine)["ref"]) == {STREET_A}
        # the check runs a street office lists: its own and the district's, never another street's
        monkeypatch.setattr(checks_api, "db_engine", lambda: engine)
        monkeypatch.setattr(checks_api.jobs, "reap", lambda **kw: [])
        office_b = Principal(username="b", role="street_office", street_codes=(STREET_B,))
        runs = checks_api.list_runs(office_b)["runs"]
        assert len(runs) == 2 and all(r["scope"].get("street") in (None, STREET_B) for r in runs)
    finally:
        engine.dispose()


def test_no_module_writes_its_own_street_filter():
    """A selection by street (a campaign's streets, `--street`, a street's page) is taken from
    gis.scope.streets_filter, never written again: the filter and the row-level policy stay one rule."""
    root = Path(__file__).resolve().parent.parent
    # a predicate on street_code with a bound value; an assignment (`SET a = :a, street_code = :s`) is no filter
    own = re.compile(r"(?i)(?<![\w.])(\w+\.)?street_code\s*(=\s*(any\s*\(|:)|in\s*\(\s*:)")
    home = {root / "gis" / "scope.py", root / "gis" / "jurisdiction.py"}
    found = [f"{path.relative_to(root)}:{n}" for folder in ("api", "gis", "web")
             for path in sorted((root / folder).rglob("*.py")) if path not in home
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
             for hit in own.finditer(line) if not line[:hit.start()].rstrip().endswith(",")]
    assert found == []
