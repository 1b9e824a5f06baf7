"""`firelane validate`: stored features are checked against today's import rules, and the ledger's typed text against
the workflow's (rows stored before a rule tightened, or written by SQL), listed by layer, id, ref and field; nothing
is changed."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner
from db_support import table_counts
from sqlalchemy import text
from test_api_support import STREET_A, STREET_B

from api.cli import cli
from gis.campaign import lifecycle as lc
from gis.db import owner_engine
from gis.revalidate import revalidate

pytestmark = pytest.mark.db


def _validate(*args: str):
    return CliRunner().invoke(cli, ["validate", *args])


def _stored_by_sql(district) -> None:
    """What no import or edit lets in today, written past them (as data of an older version would be)."""
    with owner_engine().begin() as conn:
        conn.execute(text("UPDATE buildings SET ref = 'BA-1' || chr(8203) WHERE ref = 'BA-1'"))  # zero-width space
        conn.execute(text("UPDATE buildings SET name = '楼' || chr(8238) || '9' WHERE ref = 'BA-2'"))  # U+202E
        conn.execute(text("UPDATE buildings SET extra = CAST(:e AS jsonb) WHERE ref = 'BA-3'"),
                     {"e": json.dumps({"备注": {"detail": ["ok", "esc\x1b[31m"]}})})
        conn.execute(text("UPDATE buildings SET ref = '=HYPERLINK(\"http://x\")', name = 'x' || chr(7) "
                          "WHERE ref = 'BB-0'"))
        conn.execute(text("UPDATE hydrants SET geom = ST_SetSRID(ST_MakePoint(116.4, 39.9), 4490) WHERE ref = 'HA-1'"))


def test_a_district_loaded_through_the_rules_has_nothing_to_report(district):
    result = _validate()
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert ": 0 problems" in result.stderr and "in 14 tables" in result.stderr  # 12 layers, hazards and events


def test_rows_stored_past_the_rules_are_listed_by_layer_id_ref_and_field(district, db):
    _stored_by_sql(district)
    before = table_counts(db)
    result = _validate("--format", "json")
    assert result.exit_code == 1, result.output
    found = {(p["layer"], p["ref"], p["field"]): p for p in json.loads(result.stdout)}
    assert set(found) == {("buildings", "BA-1\u200b", "ref"), ("buildings", "BA-2", "name"),
                          ("buildings", "BA-3", "extra"), ("buildings", '=HYPERLINK("http://x")', "name"),
                          ("hydrants", "HA-1", "geometry")}
    assert found[("buildings", "BA-1\u200b", "ref")]["id"] == district.id("buildings", "BA-1")
    assert found[("buildings", "BA-2", "name")]["message"].endswith("(U+202E)")
    assert found[("buildings", "BA-3", "extra")]["message"] == (
        "备注.detail[1]: 含控制字符 contains a control character (U+001B)")
    assert "超出预期范围" in found[("hydrants", "HA-1", "geometry")]["message"]
    assert "checked" in result.stderr and ": 5 problems" in result.stderr
    assert table_counts(db) == before  # nothing changed


def test_the_table_and_the_csv_show_hostile_values_as_text(district, tmp_path):
    _stored_by_sql(district)
    table = _validate("--layer", "buildings")
    assert table.exit_code == 1
    assert "BA-1\u200b" not in table.stdout and "\x07" not in table.stdout and "\u202e" not in table.stdout
    assert table.stdout.splitlines()[0].split() == ["layer", "id", "ref", "field", "message"]
    assert "BA-1\\u200b" in table.stdout  # the ref that looks like BA-1, shown for what it is
    out = tmp_path / "problems.csv"
    result = _validate("--layer", "buildings", "--format", "csv", "-o", str(out))
    assert result.exit_code == 1 and result.stdout == ""
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert len(rows) == 4
    assert {r["ref"] for r in rows} >= {"'=HYPERLINK(\"http://x\")"}  # a formula stays text in a spreadsheet


def test_a_street_or_a_layer_narrows_the_check(district):
    _stored_by_sql(district)
    street_b = json.loads(_validate("--street", STREET_B, "--format", "json").stdout)
    assert {(p["layer"], p["ref"]) for p in street_b} == {("buildings", '=HYPERLINK("http://x")')}
    hydrants = json.loads(_validate("--layer", "hydrants", "--format", "json").stdout)
    assert [(p["layer"], p["ref"], p["field"]) for p in hydrants] == [("hydrants", "HA-1", "geometry")]


def test_features_are_read_in_batches_of_ids_with_the_same_problems(district, db):
    _stored_by_sql(district)
    whole = sorted((p.layer, p.id, p.field) for p in revalidate(db))
    counts: dict[str, int] = {}
    batched = sorted((p.layer, p.id, p.field) for p in revalidate(db, batch=2, counts=counts))
    assert batched == whole and len(whole) == 5
    assert counts["buildings"] == 6


def test_the_ledgers_typed_text_is_checked_as_the_workflow_checks_it(district, db):
    hid = district.id("hazards", "k-b")
    with owner_engine().begin() as conn:
        conn.execute(text("UPDATE hazards SET responsible_unit = '甲' || chr(8238) || '物业' WHERE id = :h"), {"h": hid})
        event = conn.execute(text("INSERT INTO hazard_events (hazard_id, to_state, note, person) VALUES "
                                  "(:h, 'assigned', '第一行' || chr(10) || '第二行' || chr(27) || '[31m', '王五') "
                                  "RETURNING id"), {"h": hid}).scalar_one()
    result = _validate("--layer", "hazards", "--format", "json")
    assert result.exit_code == 1, result.output
    found = [(p["layer"], p["id"], p["ref"], p["field"], p["message"][-8:]) for p in json.loads(result.stdout)]
    assert found == [("hazards", hid, "BB-0", "responsible_unit", "(U+202E)"),
                     ("hazard_events", event, f"隐患 hazard {hid}", "note", "(U+001B)")]  # line breaks are kept
    assert _validate("--layer", "hazards", "--street", STREET_B, "--format", "json").stdout == result.stdout
    assert json.loads(_validate("--layer", "hazards", "--street", STREET_A, "--format", "json").stdout) == []
    assert json.loads(_validate("--layer", "buildings", "--format", "json").stdout) == []


def test_an_event_note_longer_than_the_workflow_allows_is_listed(district, db):
    # (the other typed columns are as long as the workflow allows at most: the database refuses more)
    hid = district.id("hazards", "k-b")
    insert = text("INSERT INTO hazard_events (hazard_id, to_state, note) VALUES (:h, 'assigned', repeat('记', :n)) "
                  "RETURNING id")
    with owner_engine().begin() as conn:
        conn.execute(text("UPDATE hazards SET person = repeat('张', :n) WHERE id = :h"),
                     {"h": hid, "n": lc.MAX_PERSON})
        conn.execute(insert, {"h": hid, "n": lc.MAX_NOTE})  # as long as a note may be
        too_long = conn.execute(insert, {"h": hid, "n": lc.MAX_NOTE + 1}).scalar_one()
    result = _validate("--layer", "hazards", "--format", "json")
    assert result.exit_code == 1, result.output
    found = [(p["layer"], p["id"], p["field"], p["message"]) for p in json.loads(result.stdout)]
    assert found == [("hazard_events", too_long, "note",
                      f"过长 too long: {lc.MAX_NOTE + 1} 个字符 characters, 最多 at most {lc.MAX_NOTE}")]
