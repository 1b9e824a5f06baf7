"""一小区一策 and the money (Yinzhou plan 三(二)): measures, cost estimates and their split, priority and a 3-year
schedule; the warranty deposit (维保金) gate; hazards routed to the old-compound renovation project (老旧小区改造).

Cost estimates are planning figures (CNY per hazard, by rule family with rule overrides, campaign setting
`unit_costs` overrides both); the plan gives none, so they are stated as estimates in every output.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from sqlalchemy import Connection, Engine, text

from gis.campaign import lifecycle as lc
from gis.campaign import workflow
from gis.campaign.actors import Actor
from gis.campaign.campaigns import Campaign, CampaignError, campaign_streets, get_campaign
from gis.campaign.deadlines import family_of, local_today
from gis.campaign.forms import table_sheet
from gis.db import get_engine, transaction
from gis.scope import streets_filter

#: Measure and planning cost (CNY) per hazard, by rule family; RULE_MEASURES overrides per rule.
FAMILY_MEASURES: dict[str, tuple[str, int]] = {
    "lanes": ("疏通/改造消防车道，施划标线和禁停标志", 20_000),
    "aerial": ("清理并整改登高操作场地，设置标识", 30_000),
    "separation": ("拆除或改造占用防火间距的建（构）筑物", 50_000),
    "structures": ("依法拆除违章建（构）筑物", 40_000),
    "hydrants": ("修缮消防管网、增设或维修消火栓", 25_000),
    "parking": ("调整停车位，清理占道车辆", 5_000),
    "ebikes": ("建设电动自行车集中停放充电场所", 60_000),
    "manual": ("维修更换消防设施器材", 8_000),
    "other": ("按隐患制定整改措施", 10_000),
}
RULE_MEASURES: dict[str, tuple[str, int]] = {
    "LANE-CLEAR": ("清理占用消防车道的车辆和杂物，施划禁停标线", 3_000),
    "LANE-WIDTH": ("拓宽消防车道至4米以上", 80_000),
    "LANE-TURNAROUND": ("增设回车场", 60_000),
    "LANE-TURN": ("拓宽转弯处内侧（切角或圆弧加宽），满足消防车转弯半径", 50_000),
    "LANE-HEADROOM": ("修剪树木、抬升或拆除低矮构筑物", 6_000),
    "HYD-SERVICE": ("维修消火栓并恢复供水", 8_000),
    "HYD-COVERAGE": ("增设室外消火栓", 30_000),
    "MANUAL-ALARM": ("维修火灾自动报警系统", 40_000),
    "MANUAL-SPRINKLER": ("维修自动喷水灭火系统", 50_000),
    "MANUAL-SMOKE-CONTROL": ("维修防排烟系统", 40_000),
    "MANUAL-EXTINGUISHER": ("配齐更换灭火器", 2_000),
    "MANUAL-FIRE-DOOR": ("维修防火门及闭门器", 3_000),
    "MANUAL-EVAC-SIGN": ("更换疏散指示标志和应急照明", 3_000),
    "MANUAL-CONTROL-ROOM": ("落实消控室24小时双人值班", 0),
    "MANUAL-EMERGENCY-PLAN": ("制定预案并组织演练", 0),
    "MANUAL-SAFETY-LEDGER": ("建立消防安全管理台账", 0),
    "MANUAL-BUILDING-CAPTAIN": ("落实高层住宅楼长", 0),
}
#: Families whose hazards a renovation project takes over (Yinzhou: 消防车通道畅通、消防管网修缮、消防设施配备).
RENOVATION_FAMILIES = frozenset({"lanes", "aerial", "hydrants"})
RENOVATION_RULES = frozenset({"MANUAL-HYDRANT", "MANUAL-ALARM", "MANUAL-SPRINKLER", "MANUAL-SMOKE-CONTROL",
                              "MANUAL-EXTINGUISHER", "MANUAL-FIRE-DOOR", "MANUAL-EVAC-SIGN",
                              "MANUAL-LANE-OCCUPIED"})
RENOVATION_DEPARTMENT = "物业/住建"
#: A compound needs its own plan (一小区一策) when its open hazards cost at least this or one is this severe.
PLAN_COST_CNY = 50_000
MAJOR_SEVERITY = 6.0
#: Not yet shown fixed (a claimed rectification awaiting verification still blocks a refund).
_OPEN = lc.sql_list(lc.UNRESOLVED)
#: Still needing work (what a plan must fund and a renovation project must take over).
_WORK = lc.sql_list(lc.NEEDS_WORK)


def measure(rule: str, overrides: dict[str, Any] | None = None) -> tuple[str, int]:
    if overrides and rule in overrides:
        m = overrides[rule]
        return str(m[0]), int(m[1])
    if rule in RULE_MEASURES:
        return RULE_MEASURES[rule]
    return FAMILY_MEASURES.get(family_of(rule), FAMILY_MEASURES["other"])


def split(cost: float, shares: dict[str, float]) -> dict[str, int]:
    """业主筹一点、物业出一点、政府补一点: the cost by share, rounded to yuan, the remainder to the government."""
    owners = int(round(cost * shares["owners"]))
    prop = int(round(cost * shares["property"]))
    return {"owners": owners, "property": prop, "government": int(round(cost)) - owners - prop}


def schedule_years(campaign: Campaign) -> list[int]:
    """The three years of the schedule: the rectification stages' years (Yinzhou), else the campaign's first three."""
    years = sorted({s.ends_on.year for s in campaign.stages if s.code.startswith(("rectification", "major"))})
    start = years[0] if years else campaign.starts_on.year
    return [start, start + 1, start + 2]


def compound_plans(conn: Connection, campaign: Campaign, *, streets: Sequence[str] | None = None) -> list[dict]:
    """一小区一策 for compounds whose open hazards cost >= PLAN_COST_CNY or include a major one: measures, cost,
    split, priority (先急后缓: most severe first, then total severity, then cost) and the year of the schedule."""
    settings = campaign.settings
    codes = [r.ref for r in campaign_streets(conn, campaign, only=streets)]
    in_streets, params = streets_filter("hazards", codes)
    rows = conn.execute(text(
        "SELECT t.compound_ref, c.name, c.street_code, c.property_company, t.id, t.rule, t.severity "
        f"FROM hazards t JOIN compounds c ON c.ref = t.compound_ref WHERE {in_streets} "
        f"AND t.verdict = 'fail' AND t.status IN {_WORK} ORDER BY t.compound_ref, t.id"), params).all()
    threshold = float(settings.get("plan_cost_cny", PLAN_COST_CNY))
    major = float(settings.get("major_severity", MAJOR_SEVERITY))
    overrides = settings.get("unit_costs") or {}
    by: dict[str, dict[str, Any]] = {}
    for r in rows:
        p = by.setdefault(r.compound_ref, {"compound": r.compound_ref, "name": r.name or "", "street": r.street_code,
                                           "property_company": r.property_company or "", "hazards": 0, "cost": 0,
                                           "max_severity": 0.0, "sum_severity": 0.0, "measures": {}})
        text_, cost = measure(r.rule, overrides)
        p["hazards"] += 1
        p["cost"] += cost
        p["max_severity"] = max(p["max_severity"], float(r.severity or 0))
        p["sum_severity"] += float(r.severity or 0)
        m = p["measures"].setdefault(text_, {"measure": text_, "rules": set(), "n": 0, "cost": 0})
        m["rules"].add(r.rule)
        m["n"] += 1
        m["cost"] += cost
    plans = [p for p in by.values() if p["cost"] >= threshold or p["max_severity"] >= major]
    plans.sort(key=lambda p: (-p["max_severity"], -p["sum_severity"], -p["cost"], p["compound"]))
    years = schedule_years(campaign)
    per_year = math.ceil(len(plans) / 3) if plans else 0
    for i, p in enumerate(plans, start=1):
        p["priority"] = i
        p["major"] = p["max_severity"] >= major
        p["year"] = years[0] if p["major"] else years[min(2, (i - 1) // max(per_year, 1))]
        p["split"] = split(p["cost"], settings["cost_shares"])
        p["measures"] = [{**m, "rules": sorted(m["rules"])} for m in p["measures"].values()]
    return plans


def completion_date(built_year: int | None, completed_on: str | None) -> date | None:
    """A compound's completion: its recorded completion date (extra.completed_on), else 31 December of built_year
    (the latest the year allows: a refund is never flagged due early)."""
    if completed_on:
        try:
            return date.fromisoformat(str(completed_on)[:10])
        except ValueError:
            pass
    return date(built_year, 12, 31) if built_year else None


def _add_years(d: date, n: int) -> date:
    try:
        return d.replace(year=d.year + n)
    except ValueError:
        return d.replace(year=d.year + n, day=28)


def warranty_gate(conn: Connection, campaign: Campaign, *, today: date,
                  streets: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """维保金: compounds whose warranty deposit refund (completion + warranty_years) falls due from a year ago to
    `warranty_window_months` ahead, with their open hazards; the refund is blocked while any is open."""
    years = int(campaign.settings.get("warranty_years", 8))
    window = int(campaign.settings.get("warranty_window_months", 12))
    codes = [r.ref for r in campaign_streets(conn, campaign, only=streets)]
    in_streets, params = streets_filter("compounds", codes, alias="c")
    out = []
    rows = conn.execute(text(
        "SELECT c.ref, c.name, c.street_code, c.built_year, c.extra->>'completed_on' AS completed_on, "
        "c.property_company, coalesce(array_agg(t.id ORDER BY t.severity DESC NULLS LAST, t.id) FILTER "
        "(WHERE t.id IS NOT NULL), '{}') AS open_ids, "
        "coalesce(array_agg(t.rule ORDER BY t.severity DESC NULLS LAST, t.id) FILTER (WHERE t.id IS NOT NULL), '{}') "
        "AS open_rules FROM compounds c LEFT JOIN hazards t ON t.compound_ref = c.ref AND t.verdict = 'fail' "
        f"AND t.status IN {_OPEN} WHERE {in_streets} GROUP BY c.ref, c.name, c.street_code, c.built_year, "
        "c.extra, c.property_company ORDER BY c.ref"), params).all()
    for r in rows:
        done = completion_date(r.built_year, r.completed_on)
        if done is None:
            continue
        due = _add_years(done, years)
        if not (today - timedelta(days=365) <= due <= today + timedelta(days=round(window * 30.44))):
            continue
        out.append({"compound": r.ref, "name": r.name or "", "street": r.street_code,
                    "property_company": r.property_company or "", "completed_on": done.isoformat(),
                    "refund_due": due.isoformat(), "open_hazards": len(r.open_ids), "open_ids": list(r.open_ids),
                    "open_rules": sorted(set(r.open_rules)), "refund_blocked": bool(r.open_ids)})
    return out


def _routable(rule: str) -> bool:
    return family_of(rule) in RENOVATION_FAMILIES or rule in RENOVATION_RULES


def set_renovation(campaign_id: int, *, year: int, compounds: Sequence[str], engine: Engine | None = None) -> None:
    """Put compounds in the old-compound renovation plan of `year` (stored in the campaign's settings)."""
    if not 2000 <= year <= 2100:
        raise CampaignError(f"年份超出范围 year {year} outside 2000-2100", field="year")
    with (engine or get_engine()).begin() as conn:
        campaign = get_campaign(campaign_id, conn=conn)
        known = set(conn.execute(text("SELECT ref FROM compounds WHERE ref = ANY(:r)"),
                                 {"r": list(compounds)}).scalars())
        unknown = [c for c in compounds if c not in known]
        if unknown:
            raise CampaignError(f"没有小区 unknown compounds: {', '.join(unknown[:10])}", field="compound")
        plan = {k: list(v) for k, v in (campaign.settings.get("renovation_plan") or {}).items()}
        plan[str(year)] = sorted(set(plan.get(str(year), [])) | set(compounds))
        conn.execute(text("UPDATE campaigns SET settings = jsonb_set(settings, '{renovation_plan}', "
                          "CAST(:p AS jsonb)) WHERE id = :id"), {"p": _json(plan), "id": campaign_id})


def _json(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False)


def renovation_routes(conn: Connection, campaign: Campaign) -> list[dict[str, Any]]:
    """The lane, hydrant and facility hazards of compounds in the renovation plan, per year, with their state."""
    out = []
    for year, refs in sorted((campaign.settings.get("renovation_plan") or {}).items()):
        rows = conn.execute(text(
            "SELECT t.id, t.compound_ref, t.rule, t.status, t.department, t.responsible_unit, t.deadline "
            f"FROM hazards t WHERE t.compound_ref = ANY(:r) AND t.verdict = 'fail' AND t.status IN {_WORK} "
            "ORDER BY t.compound_ref, t.id"), {"r": list(refs)}).all()
        for r in rows:
            if _routable(r.rule):
                out.append({"year": int(year), "hazard": r.id, "compound": r.compound_ref, "rule": r.rule,
                            "status": r.status, "unit": r.responsible_unit or "", "department": r.department or "",
                            "deadline": r.deadline.isoformat() if r.deadline else "",
                            "routed": (r.responsible_unit or "").startswith(project_unit(int(year))[:6])})
    return out


def project_unit(year: int) -> str:
    return f"老旧小区改造项目（{year}年度）"


def route_renovation(campaign_id: int, *, actor: Actor, today: date | None = None,
                     engine: Engine | None = None) -> list[dict[str, Any]]:
    """Assign (交办) the routable open hazards of the plan's compounds to the renovation project of their year
    (department 物业/住建, unit 老旧小区改造项目（YYYY年度）, deadline the end of that year), through the life cycle.
    Hazards already assigned elsewhere are re-assigned only from `open`/`reopened`/`assigned`."""
    today = today or local_today()
    moved = []
    with transaction(user=actor.username, engine=engine or get_engine()) as conn:
        campaign = get_campaign(campaign_id, conn=conn)
        for r in renovation_routes(conn, campaign):
            if r["routed"] or r["status"] not in lc.NEEDS_WORK - {lc.State.RECTIFYING}:  # work not yet started
                continue
            deadline = max(date(r["year"], 12, 31), today)
            workflow.assign(conn, r["hazard"], actor=actor, department=RENOVATION_DEPARTMENT,
                            unit=project_unit(r["year"]), deadline=deadline, today=today,
                            note=f"纳入老旧小区改造项目 routed to the {r['year']} old-compound renovation project")
            moved.append({**r, "unit": project_unit(r["year"]), "deadline": deadline.isoformat(), "routed": True})
    return moved


def write_plans(campaign_id: int, out: Path, *, today: date | None = None, engine: Engine | None = None) -> Path:
    """一小区一策, the 维保金 gate and the renovation routing as one XLSX."""

    if out.suffix.lower() != ".xlsx":
        raise CampaignError(f"输出应为 .xlsx output must end in .xlsx, not {out.suffix!r}", field="output")
    today = today or local_today()
    with (engine or get_engine()).connect() as conn:
        campaign = get_campaign(campaign_id, conn=conn)
        plans = compound_plans(conn, campaign)
        gate = warranty_gate(conn, campaign, today=today)
        routes = renovation_routes(conn, campaign)
    shares = campaign.settings["cost_shares"]
    wb = Workbook()
    ws = wb.active
    ws.title = "一小区一策"
    table_sheet(ws, annex="", title="住宅小区消防安全隐患整治“一小区一策”", unit=campaign.name, day=today,
                headings=["优先级", "小区名称", "小区编号", "物业服务企业", "未完成隐患", "最高严重度", "整改措施",
                          "估算费用（元）", "业主筹（元）", "物业出（元）", "政府补（元）", "计划年度"],
                rows=[[p["priority"], p["name"], p["compound"], p["property_company"], p["hazards"],
                       p["max_severity"], "；".join(f"{m['measure']}×{m['n']}" for m in p["measures"]), p["cost"],
                       p["split"]["owners"], p["split"]["property"], p["split"]["government"], p["year"]]
                      for p in plans],
                total=["合计", f"{len(plans)}个小区", "", "", sum(p["hazards"] for p in plans), "", "",
                       sum(p["cost"] for p in plans), sum(p["split"]["owners"] for p in plans),
                       sum(p["split"]["property"] for p in plans), sum(p["split"]["government"] for p in plans), ""],
                widths=[7, 20, 12, 16, 9, 9, 44, 12, 11, 11, 11, 9],
                notes=[f"费用为规划估算（按规则/类别单价），分担比例：业主 {shares['owners']:.0%}、物业 "
                       f"{shares['property']:.0%}、政府 {shares['government']:.0%}（可在整治行动设置中调整）。",
                       "先急后缓：重大隐患（严重度≥6）列入第一年度，其余按优先级分三年。"])
    ws2 = wb.create_sheet("维保金")
    table_sheet(ws2, annex="", title="物业保修金（维保金）退还前消防隐患排除情况", unit=campaign.name, day=today,
                headings=["小区名称", "小区编号", "物业服务企业", "竣工日期", "保修金退还日期", "未完成隐患",
                          "隐患规则", "退还"],
                rows=[[g["name"], g["compound"], g["property_company"], g["completed_on"], g["refund_due"],
                       g["open_hazards"], "、".join(g["open_rules"]), "暂缓退还" if g["refund_blocked"] else "可退还"]
                      for g in gate], widths=[20, 12, 16, 12, 14, 10, 36, 10],
                notes=["竣工日期缺失时按建成年份12月31日计；保修期8年（可调整）。"])
    ws3 = wb.create_sheet("老旧小区改造")
    table_sheet(ws3, annex="", title="纳入老旧小区改造项目的消防隐患", unit=campaign.name, day=today,
                headings=["年度", "小区编号", "隐患编号", "规则", "状态", "责任单位", "整改期限"],
                rows=[[r["year"], r["compound"], r["hazard"], r["rule"], lc.label(r["status"]), r["unit"],
                       r["deadline"]] for r in routes], widths=[8, 12, 9, 20, 12, 26, 12])
    out.parent.mkdir(parents=True, exist_ok=True)
    wb.save(out)
    return out
