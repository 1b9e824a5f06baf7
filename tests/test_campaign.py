"""Campaigns and stages (presets, calendar checks, year shift, progress) and double-random spot checks."""

from __future__ import annotations

import math
from datetime import date

import pytest
from campaign_support import STREETS, default_roster, load_campaign_district, write_roster
from sqlalchemy import text

from gis.campaign import campaigns as cp
from gis.campaign import spotchecks as sc
from gis.campaign.actors import Actor
from gis.campaign.progress import progress

ADMIN = Actor(username="admin", role="admin")


# --- presets and calendars (no database) ---------------------------------------------------------------------------


def test_the_changle_preset_has_the_plans_five_stages_and_report_dates():
    p = cp.preset("changle-2022")
    assert [(s.code, s.starts_on, s.ends_on) for s in p.stages] == [
        ("mobilisation", date(2022, 1, 1), date(2022, 1, 31)),
        ("self_inspection", date(2022, 2, 1), date(2022, 3, 15)),
        ("rectification", date(2022, 3, 16), date(2022, 7, 15)),
        ("spot_checks", date(2022, 7, 16), date(2022, 10, 15)),
        ("consolidation", date(2022, 10, 16), date(2022, 12, 31)),
    ]
    assert [s.report_due for s in p.stages] == [date(2022, 1, 26), date(2022, 3, 10), date(2022, 7, 10),
                                               date(2022, 10, 10), date(2022, 12, 26)]
    assert p.summary_due == date(2022, 12, 10)
    cp.validate_calendar(p.stages)


def test_the_yinzhou_preset_has_its_survey_pilot_and_three_year_milestones():
    p = cp.preset("yinzhou-2020")
    due = {m.code: m.due for m in p.milestones}
    assert due == {"survey_done": date(2020, 9, 30), "pilot_done": date(2020, 12, 10),
                   "rectification_done": date(2022, 12, 31), "major_hazards_done": date(2023, 9, 30)}
    assert p.pilot_street_names == ("中河街道", "东柳街道")
    cp.validate_calendar(p.stages)


def test_year_shifts_every_date_of_a_preset():
    p = cp.preset("changle-2022", year=2026)
    assert p.stages[0].starts_on == date(2026, 1, 1) and p.stages[-1].ends_on == date(2026, 12, 31)
    assert p.stages[1].report_due == date(2026, 3, 10) and p.summary_due == date(2026, 12, 10)
    y = cp.preset("yinzhou-2020", year=2024)
    assert y.stages[0].starts_on == date(2024, 9, 8) and y.milestones[-1].due == date(2027, 9, 30)
    with pytest.raises(cp.CampaignError, match="unknown preset"):
        cp.preset("atlantis-1999")


def _stage(code: str, a: str, b: str) -> cp.Stage:
    return cp.Stage(code, code, code, date.fromisoformat(a), date.fromisoformat(b))


def test_overlapping_or_gapped_calendars_are_refused_naming_the_stages():
    with pytest.raises(cp.CalendarError) as e:
        cp.validate_calendar([_stage("survey", "2022-01-01", "2022-02-10"), _stage("fix", "2022-02-01", "2022-03-01")])
    assert "survey" in str(e.value) and "fix" in str(e.value) and "overlap" in str(e.value)
    with pytest.raises(cp.CalendarError) as e:
        cp.validate_calendar([_stage("survey", "2022-01-01", "2022-01-31"), _stage("fix", "2022-02-03", "2022-03-01")])
    assert "gap" in str(e.value) and "2022-02-01 to 2022-02-02" in str(e.value)
    with pytest.raises(cp.CalendarError, match="before it starts"):
        cp.validate_calendar([_stage("back", "2022-03-01", "2022-02-01")])
    cp.validate_calendar([_stage("a", "2022-01-01", "2022-01-31"), _stage("b", "2022-02-01", "2022-02-28")])


# --- stored campaigns and progress ---------------------------------------------------------------------------------


@pytest.fixture
def district(db):
    return load_campaign_district(db)


def test_a_preset_campaign_is_stored_with_its_pilot_streets_resolved(db, district):
    cid = cp.create_campaign(preset_key="yinzhou-2020", year=2026, user="admin", engine=db)
    c = cp.get_campaign(cid, engine=db)
    assert c.preset == "yinzhou-2020" and c.year == 2026 and len(c.stages) == 5
    assert [p["code"] for p in c.pilot_streets] == ["330212003", "330212004"]
    stage, due = c.stage_on(date(2026, 9, 20)), c.due_next(date(2026, 9, 20))
    assert stage is not None and stage.code == "survey"
    assert due is not None and due["due"] == date(2026, 9, 30)
    rows = {r["street"]: r["pilot"] for r in progress(cid, today=date(2026, 10, 2), engine=db)["streets"]}
    assert rows == {"330212003": True, "330212004": True, "330212005": False}
    with pytest.raises(cp.CampaignError, match="unknown street codes: 999"):
        cp.create_campaign(preset_key="changle-2022", streets=["999"], engine=db)


def test_progress_counts_per_street_against_the_current_stage(db, district):
    cid = cp.create_campaign(preset_key="changle-2022", year=2026, user="admin", engine=db)
    first = district["330212003"][0]
    cp.record_inspection(cid, compound=first, kind="self", on_date=date(2026, 2, 10), user="wy", engine=db)
    doc = progress(cid, today=date(2026, 2, 20), engine=db)
    assert doc["campaign"]["current_stage"] == "self_inspection"
    assert doc["campaign"]["due_next"]["due"] == "2026-03-10"  # the stage report, 5 days before 3/15
    rows = {r["street"]: r for r in doc["streets"]}
    a = rows["330212003"]
    assert (a["compounds"], a["self_inspected"], a["found"]) == (12, 1, 24)
    assert a["rectified"] == 11 + 12 and a["verified"] == 12 and a["open"] == 1
    assert a["by_focus"]["vehicles"] == 12 and a["by_focus"]["design"] == 12
    assert a["stage_done"] == round(1 / 12, 4)
    assert doc["total"]["compounds"] == sum(n for _, n, _ in STREETS.values())


# --- spot checks --------------------------------------------------------------------------------------------------


def test_a_draw_takes_at_least_the_rate_of_each_street_and_never_its_own_inspectors(db, district, tmp_path):
    cid = cp.create_campaign(preset_key="changle-2022", year=2026, engine=db)
    roster, sha = sc.read_roster(default_roster(tmp_path / "roster.csv"))
    street_of = {p.name: p.street for p in roster}
    result = sc.draw(cid, roster=roster, roster_sha256=sha, seed=20260716, user="admin", engine=db)
    by_street: dict[str, list] = {}
    for c in result["checks"]:
        by_street.setdefault(c["street"], []).append(c)
        assert len(set(c["inspectors"])) == 2
        assert all(street_of[n] != c["street"] for n in c["inspectors"])  # never the checked street's own staff
    for code, (_, _, rectified) in STREETS.items():
        assert result["candidates"][code] == rectified
        assert len(by_street[code]) == max(1, math.ceil(rectified * 0.10)) >= rectified * 0.10
        assert len({c["compound"] for c in by_street[code]}) == len(by_street[code])
        assert set(c["compound"] for c in by_street[code]) <= set(district[code][:rectified])


def test_a_draw_is_reproduced_from_its_recorded_seed_candidates_and_roster(db, district, tmp_path):
    cid = cp.create_campaign(preset_key="changle-2022", year=2026, engine=db)
    roster, sha = sc.read_roster(default_roster(tmp_path / "roster.csv"))
    first = sc.draw(cid, roster=roster, roster_sha256=sha, seed=7, rate=0.5, engine=db)
    same, again = sc.reproduce(first["draw"], engine=db)
    assert same and [c["compound"] for c in again] == [c["compound"] for c in first["checks"]]
    second = sc.draw(cid, roster=roster, roster_sha256=sha, seed=7, rate=0.5, engine=db)
    assert [(c["compound"], c["inspectors"]) for c in second["checks"]] == [
        (c["compound"], c["inspectors"]) for c in first["checks"]]
    with db.connect() as conn:
        d = conn.execute(text("SELECT seed, roster_sha256, algorithm, candidates FROM spot_draws WHERE id = :i"),
                         {"i": first["draw"]}).one()
    assert d.seed == 7 and d.roster_sha256 == sha and "default_rng(seed)" in d.algorithm
    assert d.candidates["330212004"] == district["330212004"]


def test_bad_rates_and_small_rosters_are_refused(db, district, tmp_path):
    cid = cp.create_campaign(preset_key="changle-2022", year=2026, engine=db)
    roster, sha = sc.read_roster(default_roster(tmp_path / "roster.csv"))
    for rate in (1.5, -0.1, float("nan")):
        with pytest.raises(sc.SpotCheckError, match="rate must be between 0 and 1"):
            sc.draw(cid, roster=roster, roster_sha256=sha, rate=rate, engine=db)
    # only the street's own people and one outsider: no two inspectors for 中河街道's checks
    small, sha2 = sc.read_roster(write_roster(tmp_path / "small.csv", [
        ("甲", "中河办", "330212003"), ("乙", "中河办", "中河街道"), ("丙", "东柳办", "330212004")]))
    with pytest.raises(sc.SpotCheckError, match="roster too small: checks in street 330212003") as e:
        sc.draw(cid, roster=small, roster_sha256=sha2, engine=db)
    assert "中河街道" in str(e.value)
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM spot_draws")).scalar_one() == 0
    with pytest.raises(sc.SpotCheckError, match="row 3"):
        sc.parse_roster([["name", "unit"], ["a", "x"], ["", "y"]])
    # a name with a zero-width space would be a second inspector who looks like the first
    with pytest.raises(sc.SpotCheckError, match=r"roster row 3.*U\+200B|U\+200B.*roster row 3"):
        sc.parse_roster([["name", "unit"], ["张三", "x"], ["张三\u200b", "y"]])


def test_a_campaign_name_or_stage_that_would_reorder_its_text_is_refused(db, district):
    with pytest.raises(cp.CampaignError, match="U\\+202E") as named:
        cp.create_campaign(preset_key="changle-2022", year=2026, name="整治\u202e行动", engine=db)
    assert named.value.field == "name"
    stage = {"code": "S\t1", "starts_on": "2026-01-01", "ends_on": "2026-02-01"}
    with pytest.raises(cp.CampaignError, match="U\\+0009") as coded:
        cp.parse_stages([stage])
    assert coded.value.field == "stages[1].code"


def test_a_failed_item_reopens_the_compounds_rectified_hazards_and_counts_against_its_street(db, district, tmp_path):
    cid = cp.create_campaign(preset_key="changle-2022", year=2026, engine=db)
    roster, sha = sc.read_roster(default_roster(tmp_path / "roster.csv"))
    checks = sc.draw(cid, roster=roster, roster_sha256=sha, seed=3, engine=db)["checks"]
    check = next(c for c in checks if c["street"] == "330212004")
    for item in ("evacuation", "illegal", "design"):
        sc.record(check["id"], compound=check["compound"], item=item, result="pass", actor=ADMIN, engine=db)
    out = sc.record(check["id"], compound=check["compound"], item="vehicles", result="fail",
                    note="3 辆车停在消防车道上", actor=ADMIN, engine=db)
    assert out["status"] == "failed" and len(out["hazards"]) == 1
    with db.connect() as conn:
        h = conn.execute(text("SELECT rule, status FROM hazards WHERE id = :i"), {"i": out["hazards"][0]}).one()
        ev = conn.execute(text("SELECT from_state, to_state, note FROM hazard_events WHERE hazard_id = :i"),
                          {"i": out["hazards"][0]}).one()
    assert (h.rule, h.status) == ("LANE-CLEAR", "reopened")
    assert (ev.from_state, ev.to_state) == ("rectified", "reopened") and "抽查" in ev.note
    # an item with nothing reported of its kind files a new hazard of that focus item
    other = next(c for c in checks if c["street"] == "330212003")
    made = sc.record(other["id"], compound=other["compound"], item="illegal", result="fail",
                     note="新搭彩钢棚占用防火间距", actor=ADMIN, engine=db)
    with db.connect() as conn:
        h = conn.execute(text("SELECT rule, status, compound_ref FROM hazards WHERE id = :i"),
                         {"i": made["hazards"][0]}).one()
    assert (h.rule, h.status, h.compound_ref) == ("MANUAL-ILLEGAL-STRUCTURE", "open", other["compound"])
    rows = {r["street"]: r for r in progress(cid, today=date(2026, 8, 1), engine=db)["streets"]}
    assert rows["330212004"]["spot_failed"] == 1 and rows["330212005"]["spot_failed"] == 0
    with pytest.raises(sc.SpotCheckError, match="already recorded"):
        sc.record(check["id"], compound=check["compound"], item="vehicles", result="pass", actor=ADMIN, engine=db)
    with pytest.raises(sc.SpotCheckError, match="drew compound"):
        sc.record(check["id"], compound="C9-99", item="design", result="pass", actor=ADMIN, engine=db)
    with pytest.raises(sc.SpotCheckError, match="unknown item"):
        sc.record(check["id"], compound=check["compound"], item="vibes", result="pass", actor=ADMIN, engine=db)
    with pytest.raises(sc.SpotCheckError, match=r"note: .*\(U\+202E\)"):  # a note that would reorder its text
        sc.record(other["id"], compound=other["compound"], item="design", result="fail", note="占用\u202e防火间距",
                  actor=ADMIN, engine=db)
