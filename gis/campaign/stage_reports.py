"""Stage reports and the district summary: progress per street, matplotlib charts, typical cases, as PDF/HTML/XLSX.

Charts (PNG): hazards found vs closed over time (cumulative, weekly), by focus item, by department, and the ageing
of overdue hazards. Typical cases: the most severe hazards, those with before/after photos first. The due date
is the stage's report date (Changle: 5 days before the stage ends) or the campaign's summary date.
"""

from __future__ import annotations

import base64
import io
import shutil
import tempfile
import textwrap
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from openpyxl import Workbook
from openpyxl.drawing.image import Image as XlImage
from sqlalchemy import Connection, Engine, text

from gis.campaign import charts as ch
from gis.campaign import lifecycle as lc
from gis.campaign.campaigns import Campaign, CampaignError, campaign_streets, get_campaign
from gis.campaign.deadlines import OVERDUE_SQL, local_today
from gis.campaign.departments import DEPARTMENTS
from gis.campaign.dossier import hazard_photos
from gis.campaign.focus import FOCUS_ITEMS, OTHER, focus_case_sql, focus_of
from gis.campaign.forms import DESIGNED_NOTE, table_sheet, write_forms
from gis.campaign.funding import write_plans
from gis.campaign.progress import COUNTS, FOUND_SQL, LABELS, progress
from gis.checks.catalog import RULES
from gis.db import get_engine
from gis.scope import streets_filter
from web.documents import html_to_pdf, render

AGE_BUCKETS: tuple[tuple[int, int, str], ...] = ((1, 7, "1–7天\n1–7 days"), (8, 30, "8–30天\n8–30 days"),
                                                 (31, 90, "31–90天\n31–90 days"),
                                                 (91, 100_000, "90天以上\nover 90 days"))
TYPICAL_CASES = 6
#: A hazard not yet assigned to a department, in the departments chart.
UNASSIGNED = "未指定"
_RESOLVED = lc.sql_list(lc.VERIFIED_OR_LATER)


def chart_data(conn: Connection, streets: Sequence[str], *, today: date, since: date) -> dict[str, Any]:
    """The series behind the four charts, for hazards of `streets`."""
    in_streets, p = streets_filter("hazards", streets)
    p |= {"today": today, "since": since}
    where = f"{in_streets} AND {FOUND_SQL}"
    weekly = conn.execute(text(
        "WITH found AS (SELECT date_trunc('week', coalesce(t.first_seen_at, t.created_at))::date AS wk, count(*) AS n "
        f"FROM hazards t WHERE {where} GROUP BY 1), "
        "closed AS (SELECT date_trunc('week', e.at)::date AS wk, count(DISTINCT e.hazard_id) AS n FROM hazard_events e "
        f"JOIN hazards t ON t.id = e.hazard_id WHERE {where} AND e.to_state IN {_RESOLVED} "
        f"AND t.status IN {_RESOLVED} GROUP BY 1) "
        "SELECT coalesce(f.wk, c.wk) AS wk, coalesce(f.n, 0) AS found, coalesce(c.n, 0) AS closed "
        "FROM found f FULL JOIN closed c ON c.wk = f.wk ORDER BY 1"), p).all()
    focus = conn.execute(text(
        f"SELECT {focus_case_sql()} AS item, count(*) AS found, "
        f"count(*) FILTER (WHERE t.status IN {_RESOLVED}) AS resolved FROM hazards t WHERE {where} GROUP BY 1"),
        p).all()
    dept = conn.execute(text(
        f"SELECT coalesce(nullif(split_part(t.department, ';', 1), ''), '{UNASSIGNED}') AS dept, "
        f"count(*) FILTER (WHERE t.status IN {tuple(sorted(lc.UNRESOLVED))!r}) AS open, "
        f"count(*) FILTER (WHERE t.status IN {_RESOLVED}) AS resolved FROM hazards t WHERE {where} "
        "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 12"), p).all()
    ages = conn.execute(text(
        f"SELECT CAST(:today AS date) - t.deadline AS days FROM hazards t WHERE {where} AND {OVERDUE_SQL}"), p
    ).scalars().all()
    return {"weekly": [(r.wk, r.found, r.closed) for r in weekly],
            "focus": {r.item: (r.found, r.resolved) for r in focus},
            "departments": [(r.dept, r.open, r.resolved) for r in dept],
            "ageing": [sum(1 for d in ages if lo <= d <= hi) for lo, hi, _ in AGE_BUCKETS]}


def _short(english: str, width: int = 34) -> str:
    """An English axis label no wider than `width` characters (a department's full name can run to 48)."""
    return textwrap.shorten(english, width, placeholder="…")


def _png(fig: Figure) -> bytes:
    return ch.image(fig, dpi=110, tight=True)


def charts(data: dict[str, Any]) -> dict[str, bytes]:
    """The four charts of `chart_figures` as PNG."""
    return {name: _png(fig) for name, fig in chart_figures(data).items()}


def chart_figures(data: dict[str, Any]) -> dict[str, Figure]:
    """Four charts of `chart_data`'s series: trend, focus, departments, ageing; titles, legends and axis labels in
    Chinese, then English."""
    out: dict[str, Figure] = {}
    fig = ch.figure(7.2, 3.0)
    ax = fig.subplots()
    if data["weekly"]:
        weeks = [w for w, _, _ in data["weekly"]]
        found, closed, f_sum, c_sum = [], [], 0, 0
        for _, f, c in data["weekly"]:
            f_sum += f
            c_sum += c
            found.append(f_sum)
            closed.append(c_sum)
        ax.step(weeks, found, where="post", color="#c0392b", label="累计发现 found")
        ax.step(weeks, closed, where="post", color="#1e8449", label="累计销号/复核 closed")
        ax.legend(fontsize=8)
        fig.autofmt_xdate()
    else:
        ax.text(0.5, 0.5, "暂无数据 no data", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("隐患发现与销号（累计，按周） found vs closed over time", fontsize=10)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts of hazards
    out["trend"] = fig

    fig = ch.figure(7.2, 3.0)
    ax = fig.subplots()
    labels = [f"{f.no}{f.short_zh}\n{f.short_en}" for f in FOCUS_ITEMS] + ["其他\nOther"]
    codes = [f.code for f in FOCUS_ITEMS] + [OTHER[0]]
    found = [data["focus"].get(c, (0, 0))[0] for c in codes]
    resolved = [data["focus"].get(c, (0, 0))[1] for c in codes]
    xs = range(len(codes))
    ax.bar([x - 0.2 for x in xs], found, width=0.4, color="#c0392b", label="发现 found")
    ax.bar([x + 0.2 for x in xs], resolved, width=0.4, color="#1e8449", label="已复核/销号 resolved")
    ax.set_xticks(list(xs), labels, fontsize=7)
    ax.legend(fontsize=8)
    ax.set_title("按整治重点 by focus item", fontsize=10)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts of hazards
    out["focus"] = fig

    fig = ch.figure(7.2, 3.0)
    ax = fig.subplots()
    depts = data["departments"]
    if depts:
        names = [f"{d}\n{_short(DEPARTMENTS.get(d, 'unassigned' if d == UNASSIGNED else ''))}".rstrip()
                 for d, _, _ in depts]
        ax.barh(names, [o for _, o, _ in depts], color="#c0392b", label="未完成 open")
        ax.barh(names, [r for _, _, r in depts], left=[o for _, o, _ in depts], color="#1e8449",
                label="已复核/销号 resolved")
        ax.invert_yaxis()
        ax.legend(fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    else:
        ax.text(0.5, 0.5, "暂无数据 no data", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("按责任部门 by department", fontsize=10)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    out["departments"] = fig

    fig = ch.figure(7.2, 2.6)
    ax = fig.subplots()
    ax.bar([b for _, _, b in AGE_BUCKETS], data["ageing"], color="#b03a2e")
    for i, n in enumerate(data["ageing"]):
        ax.annotate(str(n), (i, n), ha="center", va="bottom", fontsize=8)
    ax.set_title("逾期隐患账龄 overdue ageing (days past deadline)", fontsize=10)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts of hazards
    out["ageing"] = fig
    return out


def typical_cases(conn: Connection, streets: Sequence[str], *, n: int = TYPICAL_CASES) -> list[dict[str, Any]]:
    """The most severe hazards of the scope, those with both before and after photos first."""
    in_streets, params = streets_filter("hazards", streets)
    has_photos = conn.execute(text("SELECT to_regclass('photos')")).scalar() is not None
    photo_rank = ("(SELECT count(DISTINCT kind) FROM photos p WHERE p.hazard_id = t.id AND p.kind IN "
                  "('before', 'after'))") if has_photos else "0"
    rows = conn.execute(text(
        "SELECT t.id, t.rule, t.clause, t.severity, t.status, t.compound_ref, c.name AS compound_name, t.message_zh, "
        f"t.measured, t.required_value, t.unit, t.department, {photo_rank} AS kinds FROM hazards t "
        f"LEFT JOIN compounds c ON c.ref = t.compound_ref WHERE {in_streets} AND {FOUND_SQL} "
        "ORDER BY 13 DESC, t.severity DESC NULLS LAST, t.id LIMIT :n"), params | {"n": n}).all()
    pics = hazard_photos(conn, [r.id for r in rows])
    out = []
    for r in rows:
        rule = RULES.get(r.rule)
        photos = pics.get(r.id, {"before": [], "after": []})
        out.append({"id": r.id, "rule": r.rule, "title_zh": rule.title_zh if rule else r.rule, "clause": r.clause or "",
                    "severity": r.severity, "status_zh": lc.label(r.status), "compound": r.compound_ref,
                    "compound_name": r.compound_name or "", "message_zh": r.message_zh or "",
                    "measured": r.measured, "required": r.required_value, "unit": r.unit or "",
                    "department": r.department or "", "focus": focus_of(r.rule),
                    "before": [base64.b64encode(p["jpeg"]).decode() for p in photos["before"]],
                    "after": [base64.b64encode(p["jpeg"]).decode() for p in photos["after"]]})
    return out


def report_data(campaign_id: int, *, kind: str, street: str | None = None, stage: str | None = None,
                today: date | None = None, engine: Engine | None = None) -> dict[str, Any]:
    """Everything a stage report (kind="stage") or the summary (kind="summary") shows."""
    if kind not in ("stage", "summary"):
        raise CampaignError(f"未知报告 unknown report kind {kind!r}: stage or summary", field="kind")
    today = today or local_today()
    eng = engine or get_engine()
    with eng.connect() as conn:
        campaign = get_campaign(campaign_id, conn=conn)
        rows = campaign_streets(conn, campaign, only=[street] if street else None)
        if street and not rows:
            raise CampaignError(f"街道不在整治范围 street {street!r} is not in campaign {campaign_id}", field="street")
        codes = [r.ref for r in rows]
        the_stage = _stage(campaign, stage, today) if kind == "stage" else None
        data = chart_data(conn, codes, today=today, since=campaign.starts_on)
        cases = typical_cases(conn, codes)
    prog = progress(campaign_id, today=today, streets=codes, engine=eng)
    due = (the_stage.report_due or the_stage.ends_on) if the_stage else campaign.summary_due
    title = (f"{campaign.name} {the_stage.name_zh}工作进展报告" if the_stage else f"{campaign.name} 专项整治工作总结报告")
    return {
        "kind": kind, "title": title, "campaign": campaign.as_dict(today=today), "today": today.isoformat(),
        "scope": rows[0].name if street else "全区 district", "street": street,
        "stage": the_stage.as_dict() if the_stage else None, "due": due.isoformat() if due else None,
        "progress": prog, "charts": charts(data), "cases": cases,
        "counts": [(k, *LABELS[k]) for k in COUNTS],
        "focus_labels": {f.code: f"{f.no}{f.zh}" for f in FOCUS_ITEMS} | {OTHER[0]: OTHER[1]},
    }


def _stage(campaign: Campaign, code: str | None, today: date) -> Any:
    if code:
        return campaign.stage(code)
    cur = campaign.stage_on(today)
    if cur is not None:
        return cur
    # outside the calendar: the last stage that has begun, else the first
    begun = [s for s in campaign.stages if s.starts_on <= today]
    return begun[-1] if begun else campaign.stages[0]


def write_report(campaign_id: int, out: Path, *, kind: str, street: str | None = None, stage: str | None = None,
                 today: date | None = None, engine: Engine | None = None) -> Path:
    """Write a stage report or the summary as .pdf, .html or .xlsx (by suffix)."""
    suffix = out.suffix.lower()
    if suffix not in (".pdf", ".html", ".htm", ".xlsx"):
        raise CampaignError(f"输出应为 .pdf/.html/.xlsx output must end in .pdf, .html or .xlsx, not {suffix!r}",
                            field="output")
    doc = report_data(campaign_id, kind=kind, street=street, stage=stage, today=today, engine=engine)
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".xlsx":
        report_xlsx(doc).save(out)
        return out

    html = render("documents/report.html", r=doc,
                  charts={k: base64.b64encode(v).decode() for k, v in doc["charts"].items()})
    if suffix == ".pdf":
        html_to_pdf(html, out)
    else:
        out.write_text(html, encoding="utf-8")
    return out


def report_xlsx(doc: dict[str, Any]) -> Any:
    """The report as a workbook: progress per street, by focus item, typical cases, the charts as images."""
    day = date.fromisoformat(doc["today"])
    wb = Workbook()
    ws = wb.active
    ws.title = "进度"
    heads = ["乡镇（街道）", *[zh for _, zh, _ in doc["counts"]], "阶段完成"]
    keys = [k for k, _, _ in doc["counts"]]
    rows = [[r["name"] or r["street"], *[r[k] for k in keys],
             "" if r["stage_done"] is None else f"{r['stage_done']:.0%}"] for r in doc["progress"]["streets"]]
    total = doc["progress"]["total"]
    due = f"报送截止 due {doc['due']}" if doc["due"] else ""
    table_sheet(ws, annex="", title=doc["title"], unit=doc["scope"], day=day, headings=heads, rows=rows,
                total=["合计", *[total[k] for k in keys],
                       "" if total["stage_done"] is None else f"{total['stage_done']:.0%}"],
                widths=[16] + [9] * (len(heads) - 1), notes=[due, DESIGNED_NOTE])
    ws["A1"].value = "阶段报告" if doc["kind"] == "stage" else "总结报告"
    ws2 = wb.create_sheet("典型案例")
    table_sheet(ws2, annex="", title="典型案例 typical cases", unit=doc["scope"], day=day,
                headings=["隐患编号", "小区", "规则", "条款", "严重度", "实测", "要求", "单位", "状态", "说明"],
                rows=[[c["id"], c["compound_name"] or c["compound"], f"{c['rule']} {c['title_zh']}", c["clause"],
                       c["severity"] if c["severity"] is not None else "", c["measured"] if c["measured"] is not None
                       else "", c["required"] if c["required"] is not None else "", c["unit"], c["status_zh"],
                       c["message_zh"]] for c in doc["cases"]],
                widths=[9, 20, 24, 20, 8, 8, 8, 6, 10, 36])
    ws2["A1"].value = "典型案例"
    ws3 = wb.create_sheet("图表")
    row = 1
    for png in doc["charts"].values():
        img = XlImage(io.BytesIO(png))
        ws3.add_image(img, f"A{row}")
        row += int(img.height / 20) + 2
    return wb


def report_handler(ctx: Any) -> dict[str, Any]:
    """The `report` job: params {campaign, kind: forms|stage|summary|plans, street, stage, date, path}."""
    p = ctx.params
    day = date.fromisoformat(p["date"]) if p.get("date") else None
    out = Path(p["path"])
    out.parent.mkdir(parents=True, exist_ok=True)
    if p["kind"] == "forms":
        with tempfile.TemporaryDirectory(prefix="firelane-forms-") as tmp:
            write_forms(int(p["campaign"]), Path(tmp), day=day, streets=p.get("streets") or None, engine=ctx.engine)
            ctx.progress(0.8)
            shutil.make_archive(str(out.with_suffix("")), "zip", tmp)
    elif p["kind"] == "plans":
        write_plans(int(p["campaign"]), out, today=day, engine=ctx.engine)
    else:
        write_report(int(p["campaign"]), out, kind=p["kind"], street=p.get("street"), stage=p.get("stage"),
                     today=day, engine=ctx.engine)
    return {"path": str(out), "bytes": out.stat().st_size}


__all__ = ["AGE_BUCKETS", "chart_data", "chart_figures", "charts", "report_data", "report_handler", "report_xlsx",
           "typical_cases", "write_report"]
