"""一小区一策 (measures, cost split, priority, 3-year schedule), the 维保金 gate, renovation routing."""

from __future__ import annotations

from datetime import date

import pytest
from campaign_support import load_campaign_district
from openpyxl import load_workbook
from sqlalchemy import text

from gis.campaign import campaigns as cp
from gis.campaign import funding
from gis.campaign.actors import Actor

pytestmark = pytest.mark.db


@pytest.fixture
def campaign(db):
    refs = load_campaign_district(db)
    cid = cp.create_campaign(preset_key="yinzhou-2020", year=2024, engine=db,
                             settings={"cost_shares": {"owners": 0.2, "property": 0.3, "government": 0.5}})
    return cid, refs


def test_compounds_with_major_hazards_get_a_plan_with_the_cost_split_and_a_year(db, campaign):
    cid, refs = campaign
    with db.connect() as conn:
        plans = funding.compound_plans(conn, cp.get_campaign(cid, conn=conn))
    # the open LANE-CLEAR hazards (severity 6: major) are the only unresolved ones
    open_refs = {r for code, rs in refs.items() for r in rs[{"330212003": 11, "330212004": 5, "330212005": 1}[code]:]}
    assert {p["compound"] for p in plans} == open_refs
    p = plans[0]
    assert p["priority"] == 1 and p["major"] and p["year"] == 2025  # the first rectification year
    assert p["cost"] == funding.RULE_MEASURES["LANE-CLEAR"][1]
    assert p["split"] == {"owners": 600, "property": 900, "government": 1500}
    assert sum(p["split"].values()) == p["cost"]
    assert funding.schedule_years(cp.get_campaign(cid, engine=db)) == [2025, 2026, 2027]


def test_the_warranty_refund_is_blocked_while_hazards_are_open(db, campaign):
    cid, refs = campaign
    open_ref, clear_ref = refs["330212005"][1], refs["330212005"][0]
    with db.begin() as conn:
        conn.execute(text("UPDATE compounds SET built_year = 2016 WHERE ref = :r"), {"r": open_ref})
        conn.execute(text("UPDATE compounds SET built_year = 2000, extra = '{\"completed_on\": \"2016-11-30\"}' "
                          "WHERE ref = :r"), {"r": clear_ref})
        gate = {g["compound"]: g for g in funding.warranty_gate(conn, cp.get_campaign(cid, conn=conn),
                                                                  today=date(2024, 6, 1))}
    assert gate[open_ref]["refund_due"] == "2024-12-31" and gate[open_ref]["refund_blocked"]
    assert gate[open_ref]["open_rules"] == ["LANE-CLEAR"]
    # its hazard is claimed rectified but not yet verified: still blocked, until the verification
    assert gate[clear_ref]["refund_due"] == "2024-11-30" and gate[clear_ref]["refund_blocked"]
    with db.begin() as conn:
        conn.execute(text("UPDATE hazards SET status = 'verified' WHERE compound_ref = :r"), {"r": clear_ref})
        gate = {g["compound"]: g for g in funding.warranty_gate(conn, cp.get_campaign(cid, conn=conn),
                                                                  today=date(2024, 6, 1))}
    assert not gate[clear_ref]["refund_blocked"] and gate[open_ref]["refund_blocked"]
    assert all(g["refund_due"] >= "2023-06-02" for g in gate.values())


def test_renovation_compounds_lane_hazards_are_assigned_to_the_project(db, campaign, tmp_path):
    cid, refs = campaign
    target = refs["330212005"][2]
    funding.set_renovation(cid, year=2025, compounds=[target], engine=db)
    moved = funding.route_renovation(cid, actor=Actor("admin", "admin"), today=date(2024, 10, 1), engine=db)
    assert [m["compound"] for m in moved] == [target] and moved[0]["rule"] == "LANE-CLEAR"
    with db.connect() as conn:
        h = conn.execute(text("SELECT status, responsible_unit, deadline FROM hazards WHERE id = :i"),
                         {"i": moved[0]["hazard"]}).one()
    assert (h.status, h.responsible_unit, h.deadline) == ("assigned", "老旧小区改造项目（2025年度）", date(2025, 12, 31))
    assert funding.route_renovation(cid, actor=Actor("admin", "admin"), today=date(2024, 10, 1), engine=db) == []
    with pytest.raises(cp.CampaignError, match="unknown compounds"):
        funding.set_renovation(cid, year=2025, compounds=["nope"], engine=db)
    out = funding.write_plans(cid, tmp_path / "plans.xlsx", today=date(2024, 10, 1), engine=db)
    wb = load_workbook(out)
    assert wb.sheetnames == ["一小区一策", "维保金", "老旧小区改造"]
    assert wb["老旧小区改造"].cell(5, 2).value == target
