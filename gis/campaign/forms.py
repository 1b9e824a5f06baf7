"""The Changle plan's forms 附件1–4 as XLSX (openpyxl): merged titles, headings, unit, date and signature lines.

The plan names the forms but gives no columns; the columns here are designed from its four focus items (二、整治
重点), the self-inspection/inspection/spot-check steps (五、工作步骤) and the Yinzhou plan's items, and each file
says so in its notes row. Every text cell is written as text (data type 's', quote prefix on formula-leading
values): a compound named ``=HYPERLINK(...)`` stays a string in Excel and WPS.
"""

from __future__ import annotations

import multiprocessing
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, NamedStyle, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.merge import MergedCellRange
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy import Connection, Engine, text

from gis import scope as db_scope
from gis.campaign import lifecycle as lc
from gis.campaign.campaigns import (
    PRESETS,
    Campaign,
    CampaignError,
    Preset,
    campaign_streets,
    get_campaign,
    preset,
)
from gis.campaign.deadlines import local_today
from gis.campaign.focus import FOCUS_ITEMS, OTHER, focus_case_sql, focus_of
from gis.campaign.progress import FOUND_SQL, street_counts
from gis.checks.catalog import RULES
from gis.db import get_engine
from gis.scope import Scope


def form_titles(plan: Preset) -> dict[str, str]:
    """The four forms' titles in a plan's words (the Changle plan names them; another plan's campaign files the
    same forms under its own subject)."""
    return {"1": f"{plan.form_subject}摸底排查情况统计表", "2": f"{plan.form_subject}检查（登记）表",
            "3": f"{plan.form_subject}抽查登记表", "4": plan.survey_title}


def _plan(campaign: Campaign) -> Preset:
    """The plan a campaign was made from (a campaign of no known preset files the Changle plan's forms as named)."""
    return preset(campaign.preset if campaign.preset in PRESETS else "changle-2022")


#: The titles as the Changle plan names its forms.
FORM_TITLES: dict[str, str] = form_titles(preset("changle-2022"))
FORM_FILES: dict[str, str] = {
    "1": "附件1_摸底排查情况统计表.xlsx",
    "2": "附件2_检查登记表.xlsx",
    "3": "附件3_抽查登记表.xlsx",
    "4": "附件4_初步摸底.xlsx",
}
DESIGNED_NOTE = ("说明：方案未给出本表栏目，本表栏目按方案“二、整治重点”四项及“五、工作步骤”设计（firelane）。"
                 "The plan gives no column list for this form; its columns are designed from the plan's four focus "
                 "items and steps.")
FOCUS_HEADINGS = [f"{f.no}{f.zh}" for f in FOCUS_ITEMS] + [OTHER[1]]
#: Residential high-rise: building height above 27 m (GB 50016-2014(2018) 5.1.1).
HIGH_RISE_M = 27.0

_FORMULA_LEAD = ("=", "+", "-", "@", "\t", "\r")
_THIN = Side(style="thin", color="000000")
_BOX = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_HEAD_FILL = PatternFill("solid", fgColor="DDEBF7")
_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")


class FormError(CampaignError):
    """A form that cannot be produced (unknown form, street outside the campaign)."""


def _named_style(wb: Workbook, *, bold: bool, size: int, align: str, wrap: bool, box: bool, head: bool) -> str:
    """The workbook's shared named style for this look, registered on first use. A cell takes a named style by
    name (a copy of its ids); setting font, alignment and border per cell hashes each style object into the
    workbook's lists, which was most of a form's time."""
    name = f"fl-{'b' if bold else 'n'}{size}-{align}{'-w' if wrap else ''}{'-box' if box else ''}{'-head' if head else ''}"
    if name not in wb.named_styles:
        wb.add_named_style(NamedStyle(
            name=name, font=Font(name="SimSun", bold=bold, size=size),
            alignment=Alignment(horizontal=align, vertical="center", wrap_text=wrap),
            border=_BOX if box else Border(), fill=_HEAD_FILL if head else PatternFill()))
    return name


def put(ws: Worksheet, row: int, col: int, value: Any, *, bold: bool = False, box: bool = True,
        wrap: bool = True, align: str = "center", size: int = 11, head: bool = False) -> None:
    """One cell: strings always as text (never a formula), numbers as numbers, dates as dates."""
    cell = ws.cell(row=row, column=col)
    cell.style = _named_style(ws.parent, bold=bold, size=size, align=align, wrap=wrap, box=box, head=head)
    if isinstance(value, str):
        cell.value = value
        cell.data_type = "s"
        if value.startswith(_FORMULA_LEAD):
            cell.quotePrefix = True
    else:
        cell.value = value


def merged(ws: Worksheet, row: int, first: int, last: int, value: str, *, bold: bool = False, size: int = 11,
           align: str = "left", height: float | None = None) -> None:
    put(ws, row, first, value, bold=bold, box=False, align=align, size=size)
    if last > first:
        # the range itself, without Worksheet.merge_cells' clean-up: that creates a MergedCell per covered cell and
        # copies borders and protection onto each (these rows have no borders and no other cells)
        ws.merged_cells.add(MergedCellRange(ws, f"{get_column_letter(first)}{row}:{get_column_letter(last)}{row}"))
    if height:
        ws.row_dimensions[row].height = height


def cn_date(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


@dataclass
class Sheet:
    """Where a form's table starts and ends (tests and readers find the headings row here)."""

    title_row: int
    heading_row: int
    first_data_row: int
    last_data_row: int


def table_sheet(ws: Worksheet, *, annex: str, title: str, unit: str, day: date, headings: Sequence[str],
                rows: Iterable[Sequence[Any]], total: Sequence[Any] | None = None,
                widths: Sequence[float] | None = None, signatures: str | None = None,
                notes: Sequence[str] = (), preamble: Sequence[str] = ()) -> Sheet:
    """The government-form layout: 附件N, merged title, unit and date line, `preamble` lines (a compound's facts),
    boxed headings and rows, an optional total row, signature line and notes; landscape A4 fitting the width,
    headings repeated on every page."""
    n = len(headings)
    merged(ws, 1, 1, n, f"附件{annex}", bold=True, size=12)
    merged(ws, 2, 1, n, title, bold=True, size=16, align="center", height=32)
    merged(ws, 3, 1, n, f"填报单位（盖章）：{unit}        填报日期：{cn_date(day)}", size=11)
    for j, line in enumerate(preamble):
        merged(ws, 4 + j, 1, n, line)
    head = 4 + len(preamble)
    for i, h in enumerate(headings, start=1):
        put(ws, head, i, h, bold=True, head=True)
    ws.row_dimensions[head].height = 48
    r = head
    for r_values in rows:
        r += 1
        for i, v in enumerate(r_values, start=1):
            put(ws, r, i, v, align="left" if isinstance(v, str) and len(v) > 8 else "center")
    last = r
    if total is not None:
        r += 1
        for i, v in enumerate(total, start=1):
            put(ws, r, i, v, bold=True)
    r += 2
    merged(ws, r, 1, n, signatures or "填表人：              审核人：              联系电话：")
    for note in notes:
        r += 1
        merged(ws, r, 1, n, note, size=9, height=30)
    for i in range(1, n + 1):
        ws.column_dimensions[get_column_letter(i)].width = (widths[i - 1] if widths and i <= len(widths) else 12)
    ws.freeze_panes = f"A{head + 1}"
    ws.print_title_rows = f"{head}:{head}"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    return Sheet(title_row=2, heading_row=head, first_data_row=head + 1, last_data_row=last)


def sheet_name(name: str, used: set[str]) -> str:
    base = _SHEET_BAD.sub("_", name).strip("'") or "sheet"
    base = base[:28]
    out, i = base, 1
    while out in used:
        i += 1
        out = f"{base[:25]}_{i}"
    used.add(out)
    return out


# --- data ---------------------------------------------------------------------------------------------------------


def _compounds(conn: Connection, streets: Sequence[str]) -> Sequence[Any]:
    """The streets' compounds with their feature counts (one grouped pass per layer, joined by compound id)."""
    counts = " ".join(
        f"LEFT JOIN (SELECT compound_id, count(*) AS n{extra} FROM {table} WHERE compound_id = ANY(SELECT id FROM c) "
        f"GROUP BY 1) {alias} ON {alias}.compound_id = c.id"
        for table, alias, extra in (
            ("buildings", "b", f", count(*) FILTER (WHERE height_m > {HIGH_RISE_M}) AS high"),
            ("fire_lanes", "l", ""), ("hydrants", "h", ""), ("aerial_areas", "a", "")))
    in_streets, params = db_scope.streets_filter("compounds", streets, alias="cc")
    return conn.execute(text(
        "WITH c AS (SELECT cc.id, cc.ref, cc.name, cc.address, cc.property_company, cc.built_year, cc.households, "
        f"cc.street_code FROM compounds cc WHERE {in_streets}) "
        "SELECT c.ref, c.name, c.address, c.property_company, c.built_year, c.households, c.street_code, "
        "coalesce(b.n, 0) AS buildings, coalesce(b.high, 0) AS high, coalesce(l.n, 0) AS lanes, "
        f"coalesce(h.n, 0) AS hydrants, coalesce(a.n, 0) AS aerial FROM c {counts} "
        "ORDER BY c.street_code, c.ref"), params).all()


def compound_counts(conn: Connection, streets: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per compound: found, by focus item, fixed on the spot, registered, photos, first self-inspection date."""
    out: dict[str, dict[str, Any]] = {}
    in_streets, params = db_scope.streets_filter("hazards", streets)
    for r in conn.execute(text(
        f"SELECT t.compound_ref, {focus_case_sql()} AS focus, count(*) AS n, count(*) FILTER (WHERE EXISTS ("
        "SELECT 1 FROM hazard_events e WHERE e.hazard_id = t.id AND e.evidence = 'fixed_on_spot')) AS fos "
        f"FROM hazards t WHERE {in_streets} AND {FOUND_SQL} GROUP BY 1, 2"), params):
        row = out.setdefault(r.compound_ref, {"found": 0, "fixed_on_spot": 0, "photos": 0, "by_focus": {}})
        row["found"] += r.n
        row["fixed_on_spot"] += r.fos
        row["by_focus"][r.focus] = r.n
    for r in conn.execute(text(
        "SELECT t.compound_ref, count(DISTINCT p.photo) AS n FROM hazards t JOIN hazard_events e "
        f"ON e.hazard_id = t.id CROSS JOIN LATERAL unnest(e.photos) AS p(photo) WHERE {in_streets} "
        "GROUP BY 1"), params):
        out.setdefault(r.compound_ref, {"found": 0, "fixed_on_spot": 0, "photos": 0, "by_focus": {}})["photos"] = r.n
    return out


def _focus_cells(by_focus: dict[str, int]) -> list[int]:
    return [by_focus.get(f.code, 0) for f in FOCUS_ITEMS] + [by_focus.get(OTHER[0], 0)]


# --- 附件1 ---------------------------------------------------------------------------------------------------------

FORM1_SUMMARY_HEADINGS = ["序号", "乡镇（街道）", "小区数", "已自查小区", "隐患总数", *FOCUS_HEADINGS, "当场整改",
                          "登记整改", "拍照建档（张）", "备注"]
FORM1_HEADINGS = ["序号", "小区名称", "小区编号", "物业服务企业", "隐患总数", *FOCUS_HEADINGS, "当场整改", "登记整改",
                  "拍照建档（张）", "备注"]


def form1(conn: Connection, campaign: Campaign, *, streets: Sequence[str] | None = None, day: date,
          unit: str) -> Workbook:
    """附件1: a summary sheet (one row per street) and one sheet per street (one row per compound)."""
    rows = campaign_streets(conn, campaign, only=streets)
    codes = [r.ref for r in rows]
    per_street = street_counts(conn, campaign, codes, today=day)
    per_compound = compound_counts(conn, codes)
    compounds = _compounds(conn, codes)
    wb = Workbook()
    ws = wb.active
    ws.title = "汇总"
    used = {"汇总"}
    body, tot = [], [0] * (len(FORM1_SUMMARY_HEADINGS) - 3)
    for i, r in enumerate(rows, start=1):
        c = per_street[r.ref]
        nums = [c["compounds"], c["self_inspected"], c["found"], *_focus_cells(c["by_focus"]), c["fixed_on_spot"],
                c["registered"], c["photos"]]
        tot = [a + b for a, b in zip(tot, nums, strict=True)]
        body.append([i, r.name, *nums, ""])
    titles = form_titles(_plan(campaign))
    table_sheet(ws, annex="1", title=titles["1"], unit=unit, day=day, headings=FORM1_SUMMARY_HEADINGS,
                rows=body, total=["合计", "", *tot, ""], widths=[6, 16, 8, 10, 9, *([14] * 5), 9, 9, 10, 12],
                notes=[DESIGNED_NOTE, "隐患按整治重点归类（一）至（四），其余（消防设施、电动自行车、日常管理）计入“其他”。"
                                      "登记整改 = 隐患总数 − 当场整改。"])
    for r in rows:
        ws_s = wb.create_sheet(sheet_name(r.name or r.ref, used))
        items = [c for c in compounds if c.street_code == r.ref]
        body = []
        tot = [0] * 9
        for i, c in enumerate(items, start=1):
            k = per_compound.get(c.ref, {"found": 0, "fixed_on_spot": 0, "photos": 0, "by_focus": {}})
            nums = [k["found"], *_focus_cells(k["by_focus"]), k["fixed_on_spot"], k["found"] - k["fixed_on_spot"],
                    k["photos"]]
            tot = [a + b for a, b in zip(tot, nums, strict=True)]
            body.append([i, c.name or "", c.ref, c.property_company or "", *nums, ""])
        table_sheet(ws_s, annex="1", title=f"{r.name}{titles['1']}", unit=r.name or r.ref, day=day,
                    headings=FORM1_HEADINGS, rows=body, total=["合计", "", "", "", *tot, ""],
                    widths=[6, 22, 12, 16, 9, *([14] * 5), 9, 9, 10, 12], notes=[DESIGNED_NOTE])
    return wb


# --- 附件2 ---------------------------------------------------------------------------------------------------------

FORM2_HEADINGS = ["序号", "检查项目", "隐患编号", "规则", "条款", "实测值", "要求值", "单位", "问题描述", "责任部门",
                  "整改期限", "整改情况"]


def _hazards(conn: Connection, compound_refs: Sequence[str]) -> Sequence[Any]:
    return conn.execute(text(
        "SELECT t.id, t.compound_ref, t.rule, t.clause, t.measured, t.required_value, t.unit, t.message_zh, "
        "t.department, t.deadline, t.status, t.severity FROM hazards t "
        f"WHERE t.compound_ref = ANY(:c) AND {FOUND_SQL} "
        "ORDER BY t.compound_ref, t.severity DESC NULLS LAST, t.id"),
        {"c": list(compound_refs)}).all()


def _num(v: float | None) -> float | str:
    return "" if v is None else round(float(v), 2)


def form2(conn: Connection, campaign: Campaign, *, street: str, day: date) -> Workbook:
    """附件2: one sheet per compound of a street: compound facts, hazards by focus item, signature lines."""
    srow = campaign_streets(conn, campaign, only=[street])
    if not srow:
        raise FormError(f"街道不在整治范围 street {street!r} is not in campaign {campaign.id}")
    name = srow[0].name or street
    title = form_titles(_plan(campaign))["2"]
    compounds = _compounds(conn, [street])
    hazards = _hazards(conn, [c.ref for c in compounds])
    in_street, params = db_scope.streets_filter("campaign_inspections", [street], alias="i")
    inspections = {r.compound_ref: r for r in conn.execute(text(
        "SELECT DISTINCT ON (i.compound_ref) i.compound_ref, i.on_date, i.inspector, i.unit "
        f"FROM campaign_inspections i WHERE i.campaign_id = :c AND i.kind IN ('inspection', 'recheck') AND {in_street} "
        "ORDER BY i.compound_ref, i.on_date DESC"), params | {"c": campaign.id})}
    by_compound: dict[str, list[Any]] = {}
    for h in hazards:
        by_compound.setdefault(h.compound_ref, []).append(h)
    order = {f.code: i for i, f in enumerate(FOCUS_ITEMS)}
    wb = Workbook()
    used: set[str] = set()
    first = True
    for c in compounds:
        ws = wb.active if first else wb.create_sheet()
        first = False
        ws.title = sheet_name(c.ref, used)
        ins = inspections.get(c.ref)
        rows = []
        mine = by_compound.get(c.ref, [])
        mine.sort(key=lambda h: (order.get(focus_of(h.rule), 9), -(h.severity or 0), h.id))
        for i, h in enumerate(mine, start=1):
            fc = focus_of(h.rule)
            item = next((f"{f.no}{f.zh}" for f in FOCUS_ITEMS if f.code == fc), OTHER[1])
            rule = RULES.get(h.rule)
            rows.append([i, item, h.id, f"{h.rule} {rule.title_zh}" if rule else h.rule, h.clause or "",
                         _num(h.measured), _num(h.required_value), h.unit or "", h.message_zh or "",
                         h.department or "", h.deadline.isoformat() if h.deadline else "", lc.label(h.status)])
        table_sheet(
            ws, annex="2", title=title, unit=name, day=day, headings=FORM2_HEADINGS, rows=rows,
            widths=[6, 22, 9, 22, 18, 8, 8, 6, 30, 14, 11, 12],
            signatures="检查人员（签字）：            物业服务企业负责人（签字）：            复查验收责任人（签字）：",
            notes=[DESIGNED_NOTE],
            preamble=[f"小区名称：{c.name or ''}    小区编号：{c.ref}    地址：{c.address or ''}",
                      f"物业服务企业：{c.property_company or ''}    检查日期："
                      f"{cn_date(ins.on_date) if ins else '        '}    检查人员："
                      f"{(ins.inspector or '') if ins else ''}    隐患共 {len(mine)} 项"])
    if first:  # a street without compounds: a valid, empty form
        table_sheet(wb.active, annex="2", title=title, unit=name, day=day, headings=FORM2_HEADINGS,
                    rows=[], notes=[DESIGNED_NOTE, "本街道无在册小区 this street has no compounds."])
        wb.active.title = "空表"
    return wb


# --- 附件3 ---------------------------------------------------------------------------------------------------------

FORM3_HEADINGS = ["序号", "乡镇（街道）", "小区名称", "小区编号", "抽查人员", *[f"{f.no}{f.zh}" for f in FOCUS_ITEMS],
                  "发现问题", "处理（重新打开/新增隐患）", "抽查结论", "抽查时间"]
_RESULT = {"pass": "合格", "fail": "不合格", None: "未查"}
_STATUS = {"pending": "待抽查", "passed": "合格", "failed": "不合格"}


def form3(conn: Connection, campaign: Campaign, *, day: date, unit: str,
          streets: Sequence[str] | None = None) -> Workbook:
    """附件3: one row per spot check (every draw of the campaign) and the draw record (seed, roster, rate)."""
    codes = [r.ref for r in campaign_streets(conn, campaign, only=streets)]
    in_streets, params = db_scope.streets_filter("spot_checks", codes, alias="s")
    checks = conn.execute(text(
        "SELECT s.id, s.compound_ref, s.street_code, s.inspectors, s.status, s.checked_at, c.name, st.name AS sname "
        "FROM spot_checks s LEFT JOIN compounds c ON c.ref = s.compound_ref LEFT JOIN streets st "
        f"ON st.ref = s.street_code WHERE s.campaign_id = :c AND {in_streets} ORDER BY s.id"),
        params | {"c": campaign.id}).all()
    items: dict[int, dict[str, Any]] = {}
    for r in conn.execute(text("SELECT check_id, item, result, note, hazard_ids FROM spot_check_items "
                               "WHERE check_id = ANY(:ids)"), {"ids": [c.id for c in checks]}):
        items.setdefault(r.check_id, {})[r.item] = r
    rows = []
    for i, c in enumerate(checks, start=1):
        got = items.get(c.id, {})
        notes = "；".join(f"{r.item}: {r.note}" for r in got.values() if r.note)
        hz = [h for r in got.values() for h in r.hazard_ids]
        rows.append([i, c.sname or c.street_code, c.name or "", c.compound_ref, "、".join(c.inspectors),
                     *[_RESULT[got[f.code].result if f.code in got else None] for f in FOCUS_ITEMS], notes,
                     "、".join(f"#{h}" for h in hz), _STATUS[c.status],
                     c.checked_at.date().isoformat() if c.checked_at else ""])
    wb = Workbook()
    table_sheet(wb.active, annex="3", title=form_titles(_plan(campaign))["3"], unit=unit, day=day,
                headings=FORM3_HEADINGS, rows=rows,
                widths=[6, 14, 20, 12, 18, 12, 12, 12, 12, 28, 16, 10, 12],
                signatures="抽查人员（签字）：                    被抽查单位负责人（签字）：",
                notes=[DESIGNED_NOTE, "抽查比例不低于10%，向上取整，每个乡镇（街道）至少1个；检查人员不抽本街道人员（双随机）。"])
    wb.active.title = "抽查登记"
    ws = wb.create_sheet("抽签记录")
    draws = conn.execute(text("SELECT id, seed, rate, roster_sha256, drawn_by, drawn_at, candidates, roster "
                              "FROM spot_draws WHERE campaign_id = :c ORDER BY id"), {"c": campaign.id}).all()
    body = [[d.id, str(d.seed), f"{d.rate:.0%}", d.roster_sha256, len(d.roster),
             "；".join(f"{k}: {len(v)}" for k, v in sorted(d.candidates.items())), d.drawn_by or "",
             d.drawn_at.isoformat(timespec="seconds")] for d in draws]
    table_sheet(ws, annex="3", title="双随机抽查抽签记录", unit=unit, day=day,
                headings=["抽签编号", "随机种子", "抽查比例", "名册SHA-256", "名册人数", "各街道候选小区数", "抽签人",
                          "抽签时间"], rows=body, widths=[9, 22, 9, 66, 9, 40, 12, 22],
                notes=["复核: firelane spotcheck draw 以相同种子、名册和比例重新抽签可得相同结果（numpy PCG64）。"])
    return wb


# --- 附件4 ---------------------------------------------------------------------------------------------------------

FORM4_HEADINGS = ["序号", "乡镇（街道）", "小区名称", "小区编号", "地址", "物业服务企业", "建成年份", "户数", "楼栋数",
                  "其中高层", "消防车道（条）", "消火栓（个）", "登高操作场地（处）", "隐患数", "备注"]


def form4(conn: Connection, campaign: Campaign, *, day: date, unit: str,
          streets: Sequence[str] | None = None) -> Workbook:
    """附件4: every compound under management (with a property company) and its counts."""
    srows = campaign_streets(conn, campaign, only=streets)
    names = {r.ref: r.name for r in srows}
    compounds = _compounds(conn, list(names))
    found = compound_counts(conn, list(names))
    rows = []
    managed = [c for c in compounds if c.property_company]
    for i, c in enumerate(managed, start=1):
        rows.append([i, names.get(c.street_code) or c.street_code, c.name or "", c.ref, c.address or "",
                     c.property_company, c.built_year if c.built_year is not None else "",
                     c.households if c.households is not None else "", c.buildings, c.high, c.lanes, c.hydrants,
                     c.aerial, found.get(c.ref, {}).get("found", 0), ""])
    tot = ["合计", "", f"{len(managed)}个小区", "", "", "", "", sum(c.households or 0 for c in managed),
           sum(c.buildings for c in managed), sum(c.high for c in managed), sum(c.lanes for c in managed),
           sum(c.hydrants for c in managed), sum(c.aerial for c in managed),
           sum(found.get(c.ref, {}).get("found", 0) for c in managed), ""]
    wb = Workbook()
    table_sheet(wb.active, annex="4", title=form_titles(_plan(campaign))["4"], unit=unit, day=day,
                headings=FORM4_HEADINGS, rows=rows,
                total=tot, widths=[6, 14, 20, 12, 24, 18, 9, 8, 8, 8, 10, 10, 12, 8, 10],
                notes=[DESIGNED_NOTE, f"在管小区：有物业服务企业的小区（共 {len(compounds)} 个小区，其中在管 "
                                      f"{len(managed)} 个）；高层：建筑高度大于{HIGH_RISE_M:.0f}米的住宅。"])
    wb.active.title = "初步摸底"
    return wb


# --- writing ------------------------------------------------------------------------------------------------------


def write_forms(campaign_id: int, out_dir: Path, *, day: date | None = None, streets: Sequence[str] | None = None,
                unit: str | None = None, engine: Engine | None = None, workers: int = 1) -> list[Path]:
    """Write 附件1, 附件3, 附件4 and one 附件2 per street into `out_dir`; returns the files written.

    With `workers` > 1 the files are written by that many spawned processes (each file is independent; a
    district's 附件2 is hundreds of sheets, and openpyxl spends most of it serialising them). The processes
    read the database of the environment (gis.db.get_engine) under the caller's scope."""
    day = day or local_today()
    out_dir.mkdir(parents=True, exist_ok=True)
    engine = engine or get_engine()
    with engine.connect() as conn:
        campaign = get_campaign(campaign_id, conn=conn)
        owner = unit or _district_unit(conn, campaign)
        tasks: list[tuple[str, str | None, str]] = [(k, None, FORM_FILES[k]) for k in "134"]
        tasks += [("2", r.ref, f"附件2_检查登记表_{_file_part(r.name or r.ref)}_{r.ref}.xlsx")
                  for r in campaign_streets(conn, campaign, only=streets)]
        if workers <= 1 or len(tasks) <= 4:
            return [_write_one(conn, campaign, task, out_dir, day=day, unit=owner, streets=streets)
                    for task in tasks]
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no inherited database connections
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        # the district files first (the longest), then the streets' 附件2 as workers come free
        futures = [pool.submit(_write_task, campaign_id, task, out_dir, day, owner, streets, db_scope.current())
                   for task in tasks]
        return [f.result() for f in futures]


def _write_one(conn: Connection, campaign: Campaign, task: tuple[str, str | None, str], out_dir: Path, *,
               day: date, unit: str, streets: Sequence[str] | None) -> Path:
    key, street, name = task
    path = out_dir / name
    if key == "2":
        form2(conn, campaign, street=street or "", day=day).save(path)
    else:
        {"1": form1, "3": form3, "4": form4}[key](conn, campaign, day=day, unit=unit, streets=streets).save(path)
    return path


def _write_task(campaign_id: int, task: tuple[str, str | None, str], out_dir: Path, day: date, unit: str,
                streets: Sequence[str] | None, scope: Scope) -> Path:
    """A pool worker: one form file, read under the caller's scope (a spawned process starts with none)."""
    db_scope.enter(scope)
    with get_engine().connect() as conn:
        return _write_one(conn, get_campaign(campaign_id, conn=conn), task, out_dir, day=day, unit=unit,
                          streets=streets)


def _file_part(name: str) -> str:
    return re.sub(r"[^\w\u4e00-\u9fff-]", "_", name)[:40]


def _district_unit(conn: Connection, campaign: Campaign) -> str:
    name = conn.execute(text("SELECT district_name FROM streets WHERE district_name IS NOT NULL LIMIT 1")).scalar()
    plan = _plan(campaign)
    return f"{name or ''}{plan.form_subject}{plan.form_body}".strip()
