"""The forms 附件1–4 as XLSX: opened with openpyxl, titles, headings and counts asserted against the database."""

from __future__ import annotations

from datetime import date

import pytest
from campaign_support import HOSTILE_NAME, STREETS, default_roster, load_campaign_district
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from sqlalchemy import text

from gis.campaign import campaigns as cp
from gis.campaign import forms
from gis.campaign import spotchecks as sc
from gis.campaign.actors import Actor

pytestmark = pytest.mark.db
DAY = date(2026, 3, 10)


@pytest.fixture
def campaign(db, tmp_path):
    refs = load_campaign_district(db)
    cid = cp.create_campaign(preset_key="changle-2022", year=2026, engine=db)
    cp.record_inspection(cid, compound=refs["330212003"][1], kind="self", on_date=date(2026, 2, 5), engine=db)
    cp.record_inspection(cid, compound=refs["330212003"][1], kind="inspection", on_date=date(2026, 4, 2),
                         inspector="王五", engine=db)
    roster, sha = sc.read_roster(default_roster(tmp_path / "roster.csv"))
    draw = sc.draw(cid, roster=roster, roster_sha256=sha, seed=11, engine=db)
    first = draw["checks"][0]
    sc.record(first["id"], compound=first["compound"], item="vehicles", result="fail", note="车辆占道",
              actor=Actor("admin", "admin"), engine=db)
    return cid, refs, draw


def _headings(ws, row: int) -> list[str]:
    return [c.value for c in ws[row] if c.value is not None]


def test_the_four_forms_carry_their_titles_headings_and_the_databases_counts(db, campaign, tmp_path):
    cid, refs, draw = campaign
    # two spawned writers, each reading under this test's scope (row-level security)
    files = forms.write_forms(cid, tmp_path / "out", day=DAY, engine=db, workers=2)
    names = {p.name for p in files}
    assert {forms.FORM_FILES[k] for k in "134"} | {f"附件2_检查登记表_{n}_{c}.xlsx" for c, (n, _, _) in STREETS.items()
                                                  } == names
    with db.connect() as conn:
        found = dict(conn.execute(text(
            "SELECT street_code, count(*) FROM hazards WHERE verdict = 'fail' AND status <> 'dismissed' "
            "GROUP BY 1")).all())
        compounds = dict(conn.execute(text("SELECT street_code, count(*) FROM compounds GROUP BY 1")).all())

    wb = load_workbook(tmp_path / "out" / forms.FORM_FILES["1"])
    ws = wb["汇总"]
    assert ws["A1"].value == "附件1" and ws["A2"].value == forms.FORM_TITLES["1"]
    last = get_column_letter(len(forms.FORM1_SUMMARY_HEADINGS))
    assert {"A1:" + last + "1", "A2:" + last + "2", "A3:" + last + "3"} <= {str(r) for r in ws.merged_cells.ranges}
    assert "填报单位" in ws["A3"].value and "2026年3月10日" in ws["A3"].value
    assert _headings(ws, 4) == forms.FORM1_SUMMARY_HEADINGS
    body = {ws.cell(r, 2).value: [ws.cell(r, c).value for c in range(1, 19)] for r in range(5, 5 + len(STREETS))}
    for code, (name, n, _) in STREETS.items():
        assert body[name][2] == compounds[code] == n and body[name][4] == found[code]
    assert body["中河街道"][3] == 1  # one self-inspected compound
    total = [ws.cell(5 + len(STREETS), c).value for c in range(1, 19)]
    assert total[0] == "合计" and total[4] == sum(found.values())
    assert any("填表人" in str(ws.cell(r, 1).value or "") for r in range(1, ws.max_row + 1))
    assert any("栏目按方案" in str(ws.cell(r, 1).value or "") for r in range(1, ws.max_row + 1))  # the designed note
    street_ws = wb["中河街道"]
    assert _headings(street_ws, 4) == forms.FORM1_HEADINGS
    assert street_ws.max_row >= 4 + 12
    hostile = street_ws.cell(5, 2)
    assert hostile.value == HOSTILE_NAME and hostile.data_type == "s" and hostile.quotePrefix  # text, not a formula

    wb2 = load_workbook(next(p for p in files if "330212004" in p.name))
    assert wb2.sheetnames == refs["330212004"]
    ws2 = wb2[refs["330212004"][0]]
    assert ws2["A2"].value == forms.FORM_TITLES["2"] and "小区名称" in ws2["A4"].value
    assert _headings(ws2, 6) == forms.FORM2_HEADINGS
    rules = [ws2.cell(r, 4).value for r in range(7, 9)]
    assert sorted(r.split()[0] for r in rules) == ["LANE-CLEAR", "SEP-BUILDINGS"]
    assert any("复查验收责任人" in str(ws2.cell(r, 1).value or "") for r in range(1, ws2.max_row + 1))

    wb3 = load_workbook(tmp_path / "out" / forms.FORM_FILES["3"])
    ws3 = wb3["抽查登记"]
    assert ws3["A2"].value == forms.FORM_TITLES["3"] and _headings(ws3, 4) == forms.FORM3_HEADINGS
    rows3 = [[ws3.cell(r, c).value for c in range(1, 14)] for r in range(5, 5 + len(draw["checks"]))]
    assert [r[3] for r in rows3] == [c["compound"] for c in draw["checks"]]
    assert rows3[0][6] == "不合格" and rows3[0][11] == "不合格" and rows3[1][11] == "待抽查"
    rec = wb3["抽签记录"]
    assert rec.cell(5, 2).value == "11"

    wb4 = load_workbook(tmp_path / "out" / forms.FORM_FILES["4"])
    ws4 = wb4["初步摸底"]
    assert ws4["A2"].value == forms.FORM_TITLES["4"] and _headings(ws4, 4) == forms.FORM4_HEADINGS
    total_compounds = sum(compounds.values())
    assert ws4.cell(5 + total_compounds, 1).value == "合计"
    assert ws4.cell(5 + total_compounds, 14).value == sum(found.values())


def test_a_street_without_compounds_gets_a_valid_empty_form(db, campaign, tmp_path):
    cid, _, _ = campaign
    with db.begin() as conn:
        conn.execute(text("INSERT INTO streets (ref, name, geom) VALUES ('330212099', '空街道', "
                          "ST_Multi(ST_MakeEnvelope(121.0, 29.0, 121.001, 29.001, 4490)))"))
    files = forms.write_forms(cid, tmp_path / "empty", day=DAY, streets=["330212099"], engine=db)
    wb = load_workbook(next(p for p in files if "330212099" in p.name))
    ws = wb.active
    assert ws["A2"].value == forms.FORM_TITLES["2"] and _headings(ws, 4) == forms.FORM2_HEADINGS
    wb1 = load_workbook(tmp_path / "empty" / forms.FORM_FILES["1"])
    s = wb1["空街道"]
    assert s.cell(5, 1).value == "合计" and s.cell(5, 5).value == 0


def test_another_plans_campaign_files_the_forms_under_its_own_subject_and_body(db, tmp_path):
    load_campaign_district(db)
    cid = cp.create_campaign(preset_key="yinzhou-2020", year=2026, engine=db)
    files = forms.write_forms(cid, tmp_path / "out", day=DAY, engine=db)
    titles = {}
    for path in files:
        wb = load_workbook(path)
        cells = [str(c.value) for ws in wb.worksheets for row in ws.iter_rows() for c in row if c.value is not None]
        assert not [c for c in cells if "长乐" in c or "物业小区消防通道" in c], path.name  # the Changle plan's words
        titles[path.name[:3]] = wb.worksheets[0]["A2"].value
        unit = wb.worksheets[0]["A3"].value
    assert titles == {"附件1": "住宅小区消防安全隐患专项整治摸底排查情况统计表",
                      "附件2": "住宅小区消防安全隐患专项整治检查（登记）表",
                      "附件3": "住宅小区消防安全隐患专项整治抽查登记表",
                      "附件4": "鄞州区住宅小区消防安全隐患专项整治初步摸底"}
    district = load_workbook(tmp_path / "out" / forms.FORM_FILES["1"])["汇总"]["A3"].value
    assert "住宅小区消防安全隐患专项整治工作专班" in district and unit
