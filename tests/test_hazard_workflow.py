"""The rectification workflow on the real PostGIS: every step by each role, re-check driven verify and reopen, the
event rows, concurrency, deadlines, the data-gap queue, work lists, exports and the `firelane hazard` CLI."""

from __future__ import annotations

import csv
import json
import re
import threading
from datetime import date, timedelta

import geopandas as gpd
import pyogrio
import pytest
import shapely
from click.testing import CliRunner
from field_support import picture
from openpyxl import load_workbook
from sqlalchemy import text
from test_api_support import STREET_A, STREET_B, make_user

from api.cli import cli
from gis import scope
from gis.campaign import ledger_writer, photos
from gis.campaign import lifecycle as lc
from gis.campaign import workflow as wf
from gis.campaign.deadlines import local_today
from gis.checks.findings import FINDING_COLUMNS
from gis.db import transaction
from gis.exporter import export_layer
from gis.terminal_safety import display_width

pytestmark = pytest.mark.db
FUTURE = (local_today() + timedelta(days=30)).isoformat()
ASSIGN = {"department": "交警/公安", "unit": "甲物业公司", "person": "王五", "deadline": FUTURE}


def events_of(db, hid: int) -> list[tuple]:
    with db.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT by, from_state, to_state, evidence FROM hazard_events WHERE hazard_id = :h ORDER BY id"),
            {"h": hid})]


def photo_of(db, hid: int) -> int:
    """A real picture stored as an after-photo of hazard `hid` (gis.campaign.photos); its id."""
    with transaction(engine=db, user="test") as conn:
        return photos.add_photo(conn, picture("JPEG"), owner=photos.hazard_owner(conn, hid), kind="after",
                                user="test")["id"]


def state(db, hid: int) -> tuple[str, int]:
    with db.connect() as conn:
        return tuple(conn.execute(text("SELECT status, version FROM hazards WHERE id = :h"), {"h": hid}).one())


def test_a_hazard_walks_the_whole_cycle_each_step_by_the_roles_allowed_and_refused_for_the_others(
        api, headers, district, db):
    hid = district.id("hazards", "k-a")  # street A, routed to 交警/公安
    url = f"/hazards/{hid}/transition"

    def move(who: str, to: str, code: int, **body):
        response = api.post(url, json={"to": to, **body}, headers=headers[who])
        assert response.status_code == code, (who, to, response.text)
        return response.json()

    for who, code in (("planner", 403), ("viewer", 403), ("traffic", 403), ("fire", 403), ("street_b", 404)):
        move(who, "assigned", code, **ASSIGN)
    assert move("street_a", "assigned", 200, **ASSIGN)["status_zh"] == "已交办"
    move("demolition", "rectifying", 403)  # not its department
    move("viewer", "rectifying", 403)
    move("traffic", "rectifying", 200)
    move("traffic", "rectified", 400)  # after-photos required
    p1, p2 = photo_of(db, hid), photo_of(db, hid)
    move("traffic", "rectified", 200, photos=[p1], note="车已移走")
    move("traffic", "verified", 403)  # a worker never verifies
    move("street_a", "verified", 403)
    refused = move("fire", "reopened", 400)  # a reason is required
    assert refused["field"] == "note"
    move("fire", "reopened", 200, note="复核仍有车辆 still blocked")
    move("street_a", "assigned", 200, **{**ASSIGN, "unit": "乙物业公司"})
    move("traffic", "rectified", 200, photos=[p2])
    move("fire", "verified", 200)
    move("street_a", "closed", 403)
    move("fire", "closed", 200, note="销号")
    move("fire", "assigned", 409)
    move("street_a", "reopened", 403, note="again")
    move("fire", "reopened", 200, note="群众举报复发")
    move("fire", "dismissed", 200, note="重复 duplicate")
    assert events_of(db, hid) == [
        ("street_a", "open", "assigned", None), ("traffic", "assigned", "rectifying", None),
        ("traffic", "rectifying", "rectified", None), ("fire", "rectified", "reopened", None),
        ("street_a", "reopened", "assigned", None), ("traffic", "assigned", "rectified", None),
        ("fire", "rectified", "verified", "reinspection"), ("fire", "verified", "closed", None),
        ("fire", "closed", "reopened", None), ("fire", "reopened", "dismissed", None)]
    doc = api.get(f"/hazards/{hid}", headers=headers["admin"]).json()
    assert doc["status"] == "dismissed" and doc["responsible_unit"] == "乙物业公司" and doc["closed_at"]
    assert [e["photos"] for e in doc["events"]][2] == [p1]
    assert api.get(f"/hazards/{hid}", headers=headers["street_b"]).status_code == 404
    assert len(api.get(f"/hazards/{hid}/events", headers=headers["street_a"]).json()["events"]) == 10


def test_nobody_verifies_their_own_rectification_claim(api, headers, district, db):
    hid = district.id("hazards", "k-b")
    url = f"/hazards/{hid}/transition"
    admin = headers["admin"]
    for body in ({"to": "assigned", **ASSIGN, "department": "物业/住建"},
                 {"to": "rectified", "photos": [photo_of(db, hid)]}):
        assert api.post(url, json=body, headers=admin).status_code == 200
    own = api.post(url, json={"to": "verified"}, headers=admin)
    assert own.status_code == 403 and own.json()["field"] == "by"
    assert api.post(url, json={"to": "verified"}, headers=headers["fire"]).status_code == 200


def test_a_refused_step_names_the_allowed_next_states_and_writes_nothing(api, headers, district, db):
    hid = district.id("hazards", "k-a")
    before = state(db, hid)
    refused = api.post(f"/hazards/{hid}/transition", json={"to": "closed"}, headers=headers["admin"])
    assert refused.status_code == 409
    assert refused.json()["current"] == "open" and refused.json()["allowed"] == ["assigned", "dismissed"]
    past = api.post(f"/hazards/{hid}/assign", json={**ASSIGN, "deadline": "2020-01-01"}, headers=headers["street_a"])
    assert past.status_code == 400 and past.json()["field"] == "deadline"
    unknown = api.post(f"/hazards/{hid}/assign", json={**ASSIGN, "department": "月球局"}, headers=headers["street_a"])
    assert unknown.status_code == 400 and unknown.json()["field"] == "department"
    assert api.post(f"/hazards/{hid}/assign", json={**ASSIGN, "unit": " "},
                    headers=headers["street_a"]).json()["field"] == "unit"
    assert state(db, hid) == before and events_of(db, hid) == []


def test_an_assignment_without_a_deadline_gets_the_profiles_default(api, headers, district):
    hid = district.id("hazards", "k-a")  # HYD-ACCESS routed to 交警/公安: 1 day
    body = {k: v for k, v in ASSIGN.items() if k != "deadline"}
    out = api.post(f"/hazards/{hid}/assign", json=body, headers=headers["street_a"]).json()
    assert out["event"]["note"] is None
    doc = api.get(f"/hazards/{hid}", headers=headers["street_a"]).json()
    assert doc["deadline"] == (local_today() + timedelta(days=1)).isoformat()
    # the answer's event is the event as stored: the defaulted deadline, the department and unit it was given
    assert out["event"]["deadline"] == doc["deadline"]
    assert (out["event"]["department"], out["event"]["unit"]) == (body["department"], body["unit"])


def test_two_people_moving_the_same_hazard_at_once_exactly_one_wins(api, headers, district, db):
    hid = district.id("hazards", "k-a")
    _, version = state(db, hid)
    first = api.post(f"/hazards/{hid}/assign", json=ASSIGN, headers={**headers["street_a"], "If-Match": f'"{version}"'})
    second = api.post(f"/hazards/{hid}/transition", json={"to": "dismissed", "note": "误报", "version": version},
                      headers=headers["fire"])
    assert first.status_code == 200 and second.status_code == 412
    assert second.json()["current"] == "assigned" and second.json()["version"] == first.json()["version"]

    # truly at once: the second waits on the first's row lock, then finds the version moved on
    _, version = state(db, hid)
    outcomes: list[str] = []
    holder = db.connect()
    tx = holder.begin()
    wf.transition(holder, hid, "rectifying", actor=wf.Actor("traffic", "traffic_brigade"), expected_version=version)

    def other() -> None:
        scope.enter(scope.SYSTEM)  # a new thread starts with no database scope (row-level security: sees nothing)
        try:
            with transaction(engine=db, user="traffic2") as conn:
                wf.transition(conn, hid, "rectifying", actor=wf.Actor("traffic2", "traffic_brigade"),
                              expected_version=version)
            outcomes.append("won")
        except lc.StaleVersion as exc:
            outcomes.append(f"stale:{exc.current}")

    t = threading.Thread(target=other)
    t.start()
    t.join(timeout=1.0)
    assert t.is_alive()  # blocked on the row lock
    tx.commit()
    holder.close()
    t.join(timeout=30)
    assert outcomes == ["stale:rectifying"]
    assert [e[:3] for e in events_of(db, hid)][-1] == ("traffic", "assigned", "rectifying")
    assert len(events_of(db, hid)) == 2


def test_hazard_events_are_append_only_in_the_database(api, headers, district, db):
    hid = district.id("hazards", "k-a")
    api.post(f"/hazards/{hid}/assign", json=ASSIGN, headers=headers["street_a"])
    for sql in ("UPDATE hazard_events SET note = 'forged'", "DELETE FROM hazard_events"):
        with pytest.raises(Exception, match="append-only"), db.begin() as conn:
            conn.execute(text(sql))
    assert len(events_of(db, hid)) == 1


def test_fix_on_the_spot_is_one_step_with_before_and_after_photos(api, headers, district, db):
    hid = district.id("hazards", "k-a")
    url = f"/hazards/{hid}/fix"
    one, two = photo_of(db, hid), photo_of(db, hid)
    assert api.post(url, json={"before": [one], "after": []}, headers=headers["street_a"]).status_code == 400
    assert api.post(url, json={"before": [one], "after": [two]}, headers=headers["viewer"]).status_code == 403
    other = photo_of(db, district.id("hazards", "k-b"))  # a photo of another hazard is not evidence of this one
    assert api.post(url, json={"before": [one], "after": [other]}, headers=headers["street_a"]).status_code == 400
    out = api.post(url, json={"before": [one], "after": [two], "note": "当场清走"}, headers=headers["street_a"])
    assert out.status_code == 200 and out.json()["status"] == "rectified"
    assert events_of(db, hid) == [("street_a", "open", "rectified", "fixed_on_spot")]
    assert api.post(url, json={"before": [one], "after": [two]}, headers=headers["street_a"]).status_code == 409


# --- re-checks drive the ledger -----------------------------------------------------------------------------------


def findings(*rows: tuple[str, str, str]) -> gpd.GeoDataFrame:
    """Findings of compound CA-1: (key, rule, verdict)."""
    data = []
    for key, rule, verdict in rows:
        data.append({"key": key, "rule": rule, "clause": "7.2.4", "verdict": verdict, "strength": "mandatory",
                     "severity": 3.0, "compound_ref": "CA-1", "subject_layer": "fire_lanes", "subject_ref": "LA-1",
                     "other_refs": [], "measured": 3.0, "required": 4.0, "unit": "m",
                     "message": f"{key} 缺少 height_m" if verdict == "cannot_judge" else key, "message_en": key,
                     "department": "物业/住建"})
    frame = gpd.GeoDataFrame(data, columns=list(FINDING_COLUMNS),
                             geometry=[shapely.Point(121.5025, 29.8025)] * len(data), crs=4490)
    return frame


def record(db, frame, rules=("LANE-WIDTH", "LANE-CLEAR", "LANE-SETBACK")):
    with db.begin() as conn:
        run = conn.execute(text("INSERT INTO check_runs (profile, profile_version) VALUES ('cn-gb', 't') "
                                "RETURNING id")).scalar_one()
    return ledger_writer.record(frame, engine=db, run_id=run, compounds=["CA-1"], rules=list(rules), user="checker"), run


def test_rechecks_verify_what_is_gone_and_reopen_what_was_claimed_fixed(api, headers, district, db):
    first, run1 = record(db, findings(("W", "LANE-WIDTH", "fail"), ("C", "LANE-CLEAR", "fail"),
                                      ("G", "LANE-SETBACK", "cannot_judge")))
    assert (first.inserted, first.gaps) == (3, 1)
    with db.connect() as conn:
        ids = dict(conn.execute(text("SELECT key, id FROM hazards WHERE key IN ('W', 'C', 'G')")).all())
    assert events_of(db, ids["W"]) == [("checker", None, "open", "found")]
    assert state(db, ids["G"])[0] is None and events_of(db, ids["G"]) == []  # a data gap is not in the cycle

    # W is claimed fixed; C is left alone
    for to, body in (("assigned", {**ASSIGN, "department": "物业/住建"}),
                     ("rectified", {"photos": [photo_of(db, ids["W"])]})):
        assert api.post(f"/hazards/{ids['W']}/transition", json={"to": to, **body},
                        headers=headers["street_a"]).status_code == 200
    # the re-check no longer finds W nor C: both verified by the run, with passed_recheck evidence
    second, run2 = record(db, findings(("G", "LANE-SETBACK", "cannot_judge")))
    assert second.verified == 2 and second.reopened == 0
    assert events_of(db, ids["W"])[-1] == ("checker", "rectified", "verified", "passed_recheck")
    assert events_of(db, ids["C"])[-1] == ("checker", "open", "verified", "passed_recheck")  # never claimed
    with db.connect() as conn:
        assert conn.execute(text("SELECT run_id FROM hazard_events WHERE hazard_id = :h ORDER BY id DESC LIMIT 1"),
                            {"h": ids["W"]}).scalar() == run2
    # the fire brigade closes W; the next run finds W again: reopened, recheck_failed
    assert api.post(f"/hazards/{ids['W']}/transition", json={"to": "closed"}, headers=headers["fire"]).status_code == 200
    third, _ = record(db, findings(("W", "LANE-WIDTH", "fail"), ("G", "LANE-SETBACK", "fail")))
    assert third.reopened == 1
    assert events_of(db, ids["W"])[-1] == ("checker", "closed", "reopened", "recheck_failed")
    assert state(db, ids["W"])[0] == "reopened"
    # the gap's data were completed and it fails: it enters the cycle as open
    assert events_of(db, ids["G"]) == [("checker", None, "open", "found")]
    # a dismissed hazard found again stays dismissed
    api.post(f"/hazards/{ids['G']}/transition", json={"to": "dismissed", "note": "误报"}, headers=headers["fire"])
    record(db, findings(("W", "LANE-WIDTH", "fail"), ("G", "LANE-SETBACK", "fail")))
    assert state(db, ids["G"])[0] == "dismissed"


def test_a_run_that_only_sees_a_hazard_again_logs_no_audit_row_and_one_that_changes_it_does(district, db):
    def audited(hid: int) -> list[tuple]:
        with db.connect() as conn:
            return [tuple(r) for r in conn.execute(text(
                "SELECT action, changed_by, after->>'measured' FROM audit_log WHERE layer = 'hazards' "
                "AND feature_id = :h ORDER BY id"), {"h": hid})]

    record(db, findings(("S", "LANE-WIDTH", "fail")))
    with db.connect() as conn:
        hid = conn.execute(text("SELECT id FROM hazards WHERE key = 'S'")).scalar_one()
    logged, (_, version) = audited(hid), state(db, hid)
    with db.connect() as conn:
        stamped = conn.execute(text("SELECT updated_at FROM hazards WHERE id = :h"), {"h": hid}).scalar()
    # seen again, unchanged: the sighting (last seen, last run) moves; the version, the stamps and the audit log do
    # not (a form opened before the run still holds the current version)
    _, run2 = record(db, findings(("S", "LANE-WIDTH", "fail")))
    with db.connect() as conn:
        seen = conn.execute(text("SELECT last_run_id, version, updated_at FROM hazards WHERE id = :h"),
                            {"h": hid}).one()
    assert tuple(seen) == (run2, version, stamped)
    assert audited(hid) == logged
    # found again measured otherwise: an edit of the hazard, logged with who ran the check, a new version
    changed = findings(("S", "LANE-WIDTH", "fail"))
    changed["measured"] = 3.2
    record(db, changed)
    assert audited(hid) == [*logged, ("update", "checker", "3.2")]
    assert state(db, hid)[1] == version + 1


def test_a_check_run_between_reading_a_hazard_and_acting_on_it_does_not_make_the_action_stale(api, headers,
                                                                                            district, db):
    """A street office opens a hazard (its version), the nightly run sees it again, the office assigns it with the
    version it read: accepted, since nothing the office saw has changed."""
    record(db, findings(("N", "LANE-WIDTH", "fail")))
    with db.connect() as conn:
        hid = conn.execute(text("SELECT id FROM hazards WHERE key = 'N'")).scalar_one()
    _, version = state(db, hid)
    record(db, findings(("N", "LANE-WIDTH", "fail")))
    done = api.post(f"/hazards/{hid}/assign", json=ASSIGN, headers={**headers["street_a"], "If-Match": f'"{version}"'})
    assert done.status_code == 200, done.text
    assert done.json()["version"] == version + 1


def test_data_gaps_are_their_own_queue_and_never_count_as_open(api, headers, district, db):
    record(db, findings(("G1", "LANE-SETBACK", "cannot_judge"), ("W", "LANE-WIDTH", "fail")))
    gaps = api.get("/hazards/data-gaps", headers=headers["street_a"]).json()["gaps"]
    assert [(g["rule"], g["subject_layer"], g["subject_ref"]) for g in gaps] == [("LANE-SETBACK", "fire_lanes", "LA-1")]
    assert "height_m" in gaps[0]["message_zh"]  # which datum is missing
    listed = api.get("/hazards/worklist", headers=headers["admin"]).json()
    assert "G1" not in {h["key"] for h in listed["hazards"]} and listed["numberMatched"] == 3
    load = api.get("/hazards/workload?by=street", headers=headers["admin"]).json()["rows"]
    assert sum(r["open"] for r in load) == 3
    assert api.get("/hazards?status=open", headers=headers["admin"]).json()["numberReturned"] == 3
    # the gap disappears once a run no longer finds it
    gone, _ = record(db, findings(("W", "LANE-WIDTH", "fail")))
    assert gone.gaps_resolved == 1 and api.get("/hazards/data-gaps", headers=headers["admin"]).json()["gaps"] == []


# --- work lists, deadlines ------------------------------------------------------------------------------------------


def test_work_lists_filter_and_count_overdue_and_due_this_week(api, headers, district, db):
    a, b = district.id("hazards", "k-a"), district.id("hazards", "k-b")
    soon = (local_today() + timedelta(days=2)).isoformat()
    api.post(f"/hazards/{a}/assign", json={**ASSIGN, "deadline": soon}, headers=headers["street_a"])
    api.post(f"/hazards/{b}/assign", json={**ASSIGN, "department": "物业/住建"}, headers=headers["street_b"])
    with db.begin() as conn:  # time passes: b's deadline lies three days back
        conn.execute(text("UPDATE hazards SET deadline = CAST(:d AS date) WHERE id = :h"),
                     {"d": local_today() - timedelta(days=3), "h": b})
    h = headers["admin"]
    overdue = api.get("/hazards/worklist?overdue=true", headers=h).json()["hazards"]
    assert [(x["id"], x["overdue"], x["days_overdue"]) for x in overdue] == [(b, True, 3)]
    assert [x["id"] for x in api.get("/hazards/worklist?department=交警/公安", headers=h).json()["hazards"]] == [a]
    assert [x["id"] for x in api.get(f"/hazards/worklist?street={STREET_B}", headers=h).json()["hazards"]] == [b]
    assert [x["id"] for x in api.get("/hazards/worklist?family=hydrants", headers=h).json()["hazards"]] == [a]
    assert api.get("/hazards/worklist?family=moon", headers=h).json()["field"] == "family"
    assert api.get("/hazards/worklist?status=flying", headers=h).status_code == 400
    assert [x["id"] for x in api.get("/hazards/worklist?severity_min=4", headers=h).json()["hazards"]] == [b]
    assert [x["id"] for x in api.get("/hazards/worklist", headers=headers["street_a"]).json()["hazards"]] == [a]
    rows = {r["name"]: r for r in api.get("/hazards/workload?by=department", headers=h).json()["rows"]}
    assert (rows["物业/住建"]["open"], rows["物业/住建"]["overdue"], rows["物业/住建"]["due_soon"]) == (1, 1, 0)
    assert (rows["交警/公安"]["open"], rows["交警/公安"]["overdue"], rows["交警/公安"]["due_soon"]) == (1, 0, 1)
    streets = api.get("/hazards/workload?by=street", headers=headers["street_a"]).json()["rows"]
    assert [r["name"] for r in streets] == [STREET_A]
    body = api.get("/hazards/worklist?f=csv", headers=h).text
    assert body.startswith("\ufeffid,status,status_zh") and "已交办" in body


def test_a_work_list_page_counts_and_keeps_each_callers_jurisdiction(api, headers, district):
    a, b = district.id("hazards", "k-a"), district.id("hazards", "k-b")
    page = api.get("/hazards/worklist?limit=1&count=true", headers=headers["admin"]).json()
    assert (page["numberReturned"], page["numberMatched"]) == (1, 2)  # the count: one more query, same filters
    assert api.get("/hazards/worklist?limit=1", headers=headers["admin"]).json()["numberMatched"] is None
    assert api.get("/hazards/worklist?street=" + STREET_B, headers=headers["street_a"]).json()["hazards"] == []
    # callers in turns on the same pooled connections: each page and each count is the caller's own streets
    for _ in range(3):
        for key, own in (("street_a", a), ("street_b", b), ("admin", None)):
            page = api.get("/hazards/worklist?limit=1&count=true", headers=headers[key]).json()
            if own is None:
                assert (page["numberReturned"], page["numberMatched"]) == (1, 2)
            else:
                assert [h["id"] for h in page["hazards"]] == [own] and page["numberMatched"] == 1


# --- exports and the CLI --------------------------------------------------------------------------------------------


def test_a_hazards_export_carries_the_history_as_its_own_table(api, headers, district, db, tmp_path):
    hid = district.id("hazards", "k-a")
    api.post(f"/hazards/{hid}/assign", json={**ASSIGN, "note": "=cmd|' /C calc'!A0"}, headers=headers["street_a"])
    export_layer("hazards", fmt="xlsx", path=tmp_path / "h.xlsx", engine=db)
    wb = load_workbook(tmp_path / "h.xlsx")
    assert wb.sheetnames == ["hazards", "hazard_events"]
    sheet = list(wb["hazard_events"].values)
    assert sheet[0][:8] == ("hazard_id", "hazard_ref", "at", "by", "from_state", "from_zh", "to_state", "to_zh")
    assert sheet[1][0] == hid and sheet[1][7] == "已交办"
    assert wb["hazard_events"].cell(row=2, column=9).data_type == "s"  # the hostile note stays text
    assert "events" not in [c for c in sheet[0]]
    export_layer("hazards", fmt="gpkg", path=tmp_path / "h.gpkg", engine=db)
    assert [name for name, _ in pyogrio.list_layers(tmp_path / "h.gpkg")] == ["hazards", "hazard_events"]
    assert len(pyogrio.read_dataframe(tmp_path / "h.gpkg", layer="hazard_events")) == 1
    export_layer("hazards", fmt="csv", path=tmp_path / "h.csv", engine=db)
    rows = list(csv.DictReader((tmp_path / "h_events.csv").open(encoding="utf-8-sig")))
    assert len(rows) == 1 and rows[0]["to_state"] == "assigned" and rows[0]["note"].startswith("'=")


def test_the_hazard_cli_lists_shows_assigns_and_refuses_in_one_line(district, db, tmp_path):
    make_user(db, "jie", "street_office", (STREET_A,))
    make_user(db, "huo", "fire_brigade")
    hid = district.id("hazards", "k-a")
    runner = CliRunner()
    listed = runner.invoke(cli, ["hazard", "list", "--format", "json", "--as", "jie"])
    assert listed.exit_code == 0, listed.output
    assert [h["id"] for h in json.loads(listed.output)] == [hid]  # street A only
    assigned = runner.invoke(cli, ["hazard", "assign", str(hid), "--department", "交警/公安", "--unit", "甲物业",
                                   "--deadline", FUTURE, "--as", "jie"])
    assert assigned.exit_code == 0, assigned.output
    assert "open → assigned" in assigned.output and assigned.output.rstrip().endswith(f"deadline 期限 {FUTURE}")
    past = runner.invoke(cli, ["hazard", "assign", str(hid), "--department", "交警/公安", "--unit", "甲物业",
                               "--deadline", "2001-01-01", "--as", "jie"])
    assert past.exit_code != 0 and "deadline" in past.output and len(past.output.strip().splitlines()) == 1
    refused = runner.invoke(cli, ["hazard", "transition", str(hid), "--to", "closed", "--as", "huo"])
    assert refused.exit_code != 0 and "from assigned: assigned, rectifying, rectified" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    pid = photo_of(db, hid)
    moved = runner.invoke(cli, ["hazard", "transition", str(hid), "--to", "rectified", "--photo-id", str(pid),
                                "--as", "jie"])
    assert moved.exit_code == 0, moved.output
    shown = json.loads(runner.invoke(cli, ["hazard", "show", str(hid), "--format", "json", "--as", "jie"]).output)
    assert [(e["by"], e["from"], e["to"]) for e in shown["events"]] == [
        ("jie", "open", "assigned"), ("jie", "assigned", "rectified")]
    assert shown["events"][1]["photos"] == [pid] and set(shown["events"][0]) >= {"at", "by", "from", "to", "note",
                                                                               "photos"}
    other = runner.invoke(cli, ["hazard", "show", str(district.id("hazards", "k-b")), "--as", "jie"])
    assert other.exit_code != 0 and "no hazard" in other.output
    out = tmp_path / "list.xlsx"
    assert runner.invoke(cli, ["hazard", "list", "--format", "xlsx", "-o", str(out), "--status", "rectified"]
                         ).exit_code == 0

    assert [r[0] for r in load_workbook(out)["hazards"].values][1:] == [hid]
    with db.connect() as conn:
        who = conn.execute(text("SELECT changed_by FROM audit_log WHERE layer = 'hazards' AND feature_id = :h "
                                "AND action = 'update' ORDER BY id"), {"h": hid}).scalars().all()
    assert who == ["jie", "jie"]
    assert date.fromisoformat(shown["deadline"]) > local_today()


def test_the_hazard_cli_shows_a_note_and_unit_as_text_on_their_line(district, db):
    # a note or a unit with line breaks, a carriage return and a bidirectional override (what the workflow refuses
    # or normalises today, but a database written by psql or an earlier build may hold) reaches whoever reads the
    # hazard in a terminal as text, on its own line
    make_user(db, "jie", "street_office", (STREET_A,))
    hid = district.id("hazards", "k-a")
    runner = CliRunner()
    tricky = "甲物业\r\u202eevil\n第\t二行"
    assigned = runner.invoke(cli, ["hazard", "assign", str(hid), "--department", "交警/公安", "--unit", "甲物业",
                                   "--deadline", FUTURE, "--note", "see", "--as", "jie"])
    assert assigned.exit_code == 0, assigned.output
    with db.begin() as conn:
        conn.execute(text("UPDATE hazards SET responsible_unit = :t WHERE id = :h"), {"t": tricky, "h": hid})
        conn.execute(text("INSERT INTO hazard_events (hazard_id, from_state, to_state, note, unit) SELECT id, status, "
                          "status, :n, :t FROM hazards WHERE id = :h"), {"n": f"see {tricky}", "t": tricky, "h": hid})
    for argv in (["hazard", "show", str(hid), "--as", "jie"], ["hazard", "list", "--as", "jie"]):
        shown = runner.invoke(cli, argv)
        assert shown.exit_code == 0, shown.output
        assert "甲物业\\r\\u202eevil\\n第\\t二行" in shown.output
        assert not re.search("[\r\t\u202a-\u202e]", shown.output)
    # the list's columns line up in terminal columns (a Chinese status or unit takes two per character)
    head, row = runner.invoke(cli, ["hazard", "list", "--as", "jie"]).output.splitlines()[:2]
    assert display_width(head[:head.index("deadline")]) == display_width(row[:row.index(FUTURE)])
    as_json = json.loads(runner.invoke(cli, ["hazard", "show", str(hid), "--format", "json", "--as", "jie"]).output)
    assert f"see {tricky}" in [e["note"] for e in as_json["events"]]  # the data itself is shown as it was written


def test_the_workflow_keeps_a_notes_line_breaks_and_refuses_what_would_reorder_or_hide_text(district, db):
    make_user(db, "jie", "street_office", (STREET_A,))
    hid = district.id("hazards", "k-a")
    runner = CliRunner()
    assign = ["hazard", "assign", str(hid), "--department", "交警/公安", "--deadline", FUTURE, "--as", "jie"]
    for bad in ("甲\u202e物业", "甲\u2066物业", "甲\x1b[31m物业", "甲\x85物业"):
        refused = runner.invoke(cli, [*assign, "--unit", bad])
        assert refused.exit_code != 0 and f"U+{ord(bad[1]):04X}" in refused.output, refused.output
    done = runner.invoke(cli, [*assign, "--unit", "甲物业", "--note", "第一行\r\n第二行\r第三行\t完"])
    assert done.exit_code == 0, done.output
    with db.connect() as conn:
        note = conn.execute(text("SELECT note FROM hazard_events WHERE hazard_id = :h ORDER BY id DESC LIMIT 1"),
                            {"h": hid}).scalar_one()
    assert note == "第一行\n第二行\n第三行\t完"  # a browser's CRLF (and a lone CR) stored as LF
