"""Campaigns: a jurisdiction, pilot streets and a dated stage calendar (Changle 2022 and Yinzhou 2020 presets)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta
from typing import Any, overload

from sqlalchemy import Connection, Engine, text

from gis.db import get_engine
from gis.text_rules import why_refused


class CampaignError(Exception):
    """A campaign request that cannot be served; `field` names the offending input when there is one."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class CalendarError(CampaignError):
    """A stage calendar with overlapping stages, gaps between stages or a stage ending before it starts."""


class CampaignNotFound(CampaignError):
    """No such campaign (or not visible to the caller)."""


class CompoundNotFound(CampaignError):
    """No such compound."""


@dataclass(frozen=True)
class Stage:
    """One dated stage and what it must produce; `report_due`: the stage report's due date (None: none set)."""

    code: str
    name_zh: str
    name_en: str
    starts_on: date
    ends_on: date
    produces: tuple[str, ...] = ()
    report_due: date | None = None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(starts_on=self.starts_on.isoformat(), ends_on=self.ends_on.isoformat(),
                 report_due=self.report_due.isoformat() if self.report_due else None, produces=list(self.produces))
        return d


@dataclass(frozen=True)
class Milestone:
    """A dated deadline inside the calendar (Yinzhou: survey by 9/30, pilot by 12/10, majors within 3 years)."""

    code: str
    name_zh: str
    name_en: str
    due: date

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "due": self.due.isoformat()}


@dataclass(frozen=True)
class Preset:
    """A source plan as a campaign template."""

    key: str
    name: str
    year: int
    district_code: str
    stages: tuple[Stage, ...]
    milestones: tuple[Milestone, ...] = ()
    pilot_street_names: tuple[str, ...] = ()
    summary_due: date | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    #: how the forms (附件1–4, the Changle plan's) name the campaign and the body that files them, in this plan's
    #: words: titles "{form_subject}摸底排查情况统计表" …, 填报单位 "{district}{form_subject}{form_body}"
    form_subject: str = "物业小区消防通道专项整治"
    form_body: str = "工作领导小组"
    survey_title: str = "长乐区物业在管小区消防专项联合整治初步摸底"


#: What the plans share: spot checks at >= 10 % (Changle 四(四)); the Yinzhou cost split 业主筹一点、物业出一点、
#: 政府补一点 with configurable shares; the warranty deposit (维保金) refund ~8 years after completion.
DEFAULT_SETTINGS: dict[str, Any] = {
    "spot_check_rate": 0.10,
    "cost_shares": {"owners": 0.3, "property": 0.3, "government": 0.4},
    "warranty_years": 8,
    "warranty_window_months": 12,
    "renovation_plan": {},
}


def _d(y: int, m: int, d: int) -> date:
    return date(y, m, d)


def _changle(year: int = 2022) -> Preset:
    def stage(code: str, zh: str, en: str, start: tuple[int, int], end: tuple[int, int],
              produces: tuple[str, ...]) -> Stage:
        ends = _d(year, *end)
        # 六(六): 每阶段结束前5日书面报送工作进展情况
        return Stage(code, zh, en, _d(year, *start), ends, produces, report_due=ends - timedelta(days=5))

    return Preset(
        key="changle-2022", name=f"长乐区物业小区消防通道专项联合整治 {year}", year=year, district_code="350112",
        stages=(
            stage("mobilisation", "动员部署阶段", "Mobilisation", (1, 1), (1, 31),
                  ("各乡镇（街道）整治工作方案 street work plans", "责任清单 responsibility lists",
                   "动员部署会议 mobilisation meeting")),
            stage("self_inspection", "自查自纠阶段", "Self-inspection", (2, 1), (3, 15),
                  ("物业企业自查自纠、拍照建档 self-inspection with photos",
                   "附件1 摸底排查情况统计表 (3月15日前报送) survey statistics form")),
            stage("rectification", "整改落实阶段", "Rectification", (3, 16), (7, 15),
                  ("附件2 检查（登记）表 inspection form per compound", "隐患台账、限期整改 ledger with deadlines",
                   "复查合格签字、整改后拍照 re-inspection sign-off and after photos",
                   "一区一档 (7月15日前报送) one file per compound")),
            stage("spot_checks", "抽查核实阶段", "Spot checks", (7, 16), (10, 15),
                  ("不低于10%抽查 spot checks of at least 10 %", "附件3 抽查登记表 spot-check form")),
            stage("consolidation", "巩固验收阶段", "Consolidation", (10, 16), (12, 31),
                  ("总结报告 (12月10日前) summary report with typical cases and before/after photos",
                   "长效机制 long-term mechanism")),
        ),
        summary_due=_d(year, 12, 10),
        settings=dict(DEFAULT_SETTINGS),
    )


def _yinzhou(year: int = 2020) -> Preset:
    y = year
    return Preset(
        key="yinzhou-2020", name=f"鄞州区住宅小区消防安全隐患专项整治 {year}", year=year, district_code="330212",
        stages=(
            Stage("survey", "全面排查、边查边改", "Full survey, fix as you go", _d(y, 9, 8), _d(y, 9, 30),
                  ("全面排查 full survey of every compound", "一小区一档 one file per compound",
                   "小隐患边查边改、其他逐一登记逐级上报 fix small hazards on the spot, register the rest")),
            Stage("pilot", "整治试点（中河街道、东柳街道）", "Pilot (Zhonghe, Dongliu)", _d(y, 10, 1), _d(y, 12, 10),
                  ("试点街道排查、整治和验收 pilot streets surveyed, rectified and accepted",
                   "试点经验总结报区政府 pilot report to the district government")),
            Stage("rectification_1", f"集中整治（{y + 1}年度）", f"Rectification {y + 1}", _d(y, 12, 11),
                  _d(y + 1, 12, 31),
                  ("整改清单、对症施策、跟踪销号 rectification list, measures, close-out",
                   "老旧小区改造年度计划 old-compound renovation plan of the year",
                   "一小区一策 plans for compounds that cannot fund their fixes")),
            Stage("rectification_2", f"集中整治（{y + 2}年度）", f"Rectification {y + 2}", _d(y + 2, 1, 1),
                  _d(y + 2, 12, 31),
                  ("整改清单、跟踪销号 rectification list, close-out", "老旧小区改造年度计划 renovation plan of the year",
                   "维保金退还前排除隐患 hazards cleared before warranty deposits are refunded")),
            Stage("major_hazards", "重大隐患先急后缓分类分批整改", "Major hazards, most urgent first",
                  _d(y + 3, 1, 1), _d(y + 3, 9, 30),
                  ("重大消防安全隐患小区三年内整改完毕 major-hazard compounds cleared within 3 years",
                   "督查验收 acceptance")),
        ),
        milestones=(
            Milestone("survey_done", "全面排查完成", "Full survey complete", _d(y, 9, 30)),
            Milestone("pilot_done", "试点工作完成", "Pilot complete", _d(y, 12, 10)),
            Milestone("rectification_done", "分年度整治完成", "Yearly rectification complete", _d(y + 2, 12, 31)),
            Milestone("major_hazards_done", "重大隐患三年内整改完成", "Major hazards cleared (3 years)",
                      _d(y + 3, 9, 30)),
        ),
        pilot_street_names=("中河街道", "东柳街道"),
        settings=dict(DEFAULT_SETTINGS),
        # 五(一): 区安委办牵头成立专项整治工作专班
        form_subject="住宅小区消防安全隐患专项整治", form_body="工作专班",
        survey_title="鄞州区住宅小区消防安全隐患专项整治初步摸底",
    )


PRESETS = {"changle-2022": _changle, "yinzhou-2020": _yinzhou}
PRESET_YEARS = {"changle-2022": 2022, "yinzhou-2020": 2020}


@overload
def _shift(d: date, years: int) -> date: ...


@overload
def _shift(d: None, years: int) -> None: ...


@overload
def _shift(d: date | None, years: int) -> date | None: ...


def _shift(d: date | None, years: int) -> date | None:
    if d is None:
        return None
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February in a year without one
        return d.replace(year=d.year + years, day=28)


def preset(key: str, *, year: int | None = None) -> Preset:
    """A preset, shifted to `year` (every date moves by the same number of years)."""
    if key not in PRESETS:
        raise CampaignError(f"未知预设 unknown preset {key!r}; presets: {', '.join(PRESETS)}", field="preset")
    base = PRESETS[key]()
    if year is None or year == base.year:
        return base
    if not 2000 <= year <= 2100:
        raise CampaignError(f"年份超出范围 year {year} outside 2000-2100", field="year")
    n = year - base.year
    return replace(
        PRESETS[key](year), year=year,
        stages=tuple(replace(s, starts_on=_shift(s.starts_on, n), ends_on=_shift(s.ends_on, n),
                             report_due=_shift(s.report_due, n)) for s in base.stages),
        milestones=tuple(replace(m, due=_shift(m.due, n)) for m in base.milestones),
        summary_due=_shift(base.summary_due, n))


def validate_calendar(stages: Sequence[Stage]) -> None:
    """Stages must follow one another day by day: no overlap, no gap, none ending before it starts.

    Raises CalendarError naming every offending stage (all problems at once)."""
    problems = []
    if not stages:
        raise CalendarError("阶段为空 a campaign needs at least one stage", field="stages")
    codes = [s.code for s in stages]
    for code in sorted({c for c in codes if codes.count(c) > 1}):
        problems.append(f"阶段编号重复 stage code {code!r} used twice")
    for s in stages:
        if s.ends_on < s.starts_on:
            problems.append(f"阶段 {s.code} ({s.name_zh}) 结束早于开始 ends {s.ends_on} before it starts {s.starts_on}")
    ordered = sorted(stages, key=lambda s: (s.starts_on, s.ends_on))
    for a, b in zip(ordered, ordered[1:], strict=False):
        if b.starts_on <= a.ends_on:
            problems.append(f"阶段重叠 stages {a.code} ({a.name_zh}) and {b.code} ({b.name_zh}) overlap: "
                            f"{a.code} ends {a.ends_on}, {b.code} starts {b.starts_on}")
        elif b.starts_on > a.ends_on + timedelta(days=1):
            problems.append(f"阶段间断 gap between stages {a.code} ({a.name_zh}) and {b.code} ({b.name_zh}): "
                            f"{a.ends_on + timedelta(days=1)} to {b.starts_on - timedelta(days=1)} belong to no stage")
    if problems:
        raise CalendarError("; ".join(problems), field="stages")


def parse_stages(items: Sequence[dict[str, Any]]) -> list[Stage]:
    """Stages from JSON-like dicts (API bodies, a --stages file): code, name_zh, name_en, starts_on, ends_on,
    produces, report_due; raises CampaignError naming the item and field."""
    if len(items) > 50:
        raise CampaignError("阶段过多 at most 50 stages", field="stages")
    out = []
    for i, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise CampaignError(f"第{i}个阶段应为对象 stage {i} must be an object", field="stages")

        def get_date(name: str, i: int = i, item: dict[str, Any] = item) -> date:
            v = item.get(name)
            try:
                return date.fromisoformat(str(v))
            except ValueError:
                raise CampaignError(f"第{i}个阶段 {name}: 日期应为 YYYY-MM-DD stage {i} {name}: not a date ({v!r})",
                                    field=f"stages[{i}].{name}") from None

        code = str(item.get("code") or "").strip()
        if not code or len(code) > 40:
            raise CampaignError(f"第{i}个阶段 code: 必填且不超过40字符 stage {i} needs a code (≤ 40 characters)",
                                field=f"stages[{i}].code")
        for name, value, identifier in (("code", code, True), ("name_zh", item.get("name_zh"), False),
                                        ("name_en", item.get("name_en"), False)):
            why = why_refused(str(value) if value is not None else None, identifier=identifier)
            if why is not None:
                raise CampaignError(f"第{i}个阶段 {name}: {why}", field=f"stages[{i}].{name}")
        produces = item.get("produces") or []
        if not isinstance(produces, list) or len(produces) > 20:
            raise CampaignError(f"第{i}个阶段 produces 应为列表 stage {i} produces must be a list (≤ 20)",
                                field=f"stages[{i}].produces")
        out.append(Stage(code=code, name_zh=str(item.get("name_zh") or code)[:100],
                         name_en=str(item.get("name_en") or code)[:100],
                         starts_on=get_date("starts_on"), ends_on=get_date("ends_on"),
                         produces=tuple(str(p)[:300] for p in produces),
                         report_due=None if item.get("report_due") is None else get_date("report_due")))
    return out


# --- storage ------------------------------------------------------------------------------------------------------


@dataclass
class Campaign:
    """A stored campaign with its stages."""

    id: int
    name: str
    preset: str | None
    year: int | None
    district_code: str | None
    jurisdiction: list[str]
    pilot_streets: list[dict[str, Any]]
    milestones: list[Milestone]
    settings: dict[str, Any]
    summary_due: date | None
    stages: list[Stage]
    created_by: str | None = None

    @property
    def starts_on(self) -> date:
        return min(s.starts_on for s in self.stages)

    @property
    def ends_on(self) -> date:
        return max(s.ends_on for s in self.stages)

    def stage_on(self, day: date) -> Stage | None:
        return next((s for s in self.stages if s.starts_on <= day <= s.ends_on), None)

    def stage(self, code: str) -> Stage:
        for s in self.stages:
            if s.code == code:
                return s
        raise CampaignError(f"没有阶段 no stage {code!r}; stages: {', '.join(s.code for s in self.stages)}",
                            field="stage")

    def deadlines(self) -> list[dict[str, Any]]:
        """Every dated obligation: stage reports, stage ends, milestones and the summary, in date order."""
        out = []
        for s in self.stages:
            if s.report_due:
                out.append({"due": s.report_due, "what_zh": f"{s.name_zh}工作进展报告",
                            "what_en": f"{s.name_en} stage report", "stage": s.code})
            out.append({"due": s.ends_on, "what_zh": f"{s.name_zh}结束: " + "；".join(p.split(" ")[0]
                                                                                   for p in s.produces),
                        "what_en": f"end of {s.name_en}", "stage": s.code})
        for m in self.milestones:
            out.append({"due": m.due, "what_zh": m.name_zh, "what_en": m.name_en, "stage": None})
        if self.summary_due:
            out.append({"due": self.summary_due, "what_zh": "专项整治工作总结报告", "what_en": "summary report",
                        "stage": None})
        return sorted(out, key=lambda d: d["due"])

    def due_next(self, today: date) -> dict[str, Any] | None:
        return next((d for d in self.deadlines() if d["due"] >= today), None)

    def as_dict(self, today: date | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": self.id, "name": self.name, "preset": self.preset, "year": self.year,
            "district_code": self.district_code, "jurisdiction": self.jurisdiction,
            "pilot_streets": self.pilot_streets, "settings": self.settings,
            "summary_due": self.summary_due.isoformat() if self.summary_due else None,
            "starts_on": self.starts_on.isoformat(), "ends_on": self.ends_on.isoformat(),
            "stages": [s.as_dict() for s in self.stages], "milestones": [m.as_dict() for m in self.milestones],
            "created_by": self.created_by,
        }
        if today is not None:
            cur = self.stage_on(today)
            nxt = self.due_next(today)
            doc["today"] = today.isoformat()
            doc["current_stage"] = cur.code if cur else None
            doc["due_next"] = {**nxt, "due": nxt["due"].isoformat()} if nxt else None
        return doc


def _engine(engine: Engine | None) -> Engine:
    return engine or get_engine()


def resolve_streets(conn: Connection, names_or_codes: Sequence[str]) -> list[dict[str, Any]]:
    """Streets by code or name (中河街道 → its code when the database has it; else code None, kept by name)."""
    out = []
    for v in names_or_codes:
        row = conn.execute(text("SELECT ref, name FROM streets WHERE ref = :v OR name = :v ORDER BY ref LIMIT 1"),
                           {"v": v}).first()
        out.append({"code": row.ref, "name": row.name} if row else {"code": None, "name": v})
    return out


def create_campaign(*, preset_key: str | None = None, year: int | None = None, name: str | None = None,
                    stages: Sequence[Stage] | None = None, streets: Sequence[str] = (),
                    pilot_streets: Sequence[str] | None = None, settings: dict[str, Any] | None = None,
                    summary_due: date | None = None, user: str | None = None,
                    engine: Engine | None = None) -> int:
    """Store a campaign from a preset (optionally shifted to `year`) or from explicit stages; returns its id.

    `streets`: the jurisdiction (street codes; empty: every street). Unknown street codes are refused."""
    base = preset(preset_key, year=year) if preset_key else None
    if stages:
        stage_list = list(stages)
    elif base is not None:
        stage_list = list(base.stages)
    else:
        raise CampaignError("需要预设或阶段 give a preset or stages", field="preset")
    validate_calendar(stage_list)
    merged = {**DEFAULT_SETTINGS, **(base.settings if base else {}), **(settings or {})}
    _check_settings(merged)
    title = (name or (base.name if base else "")).strip()
    if not title or len(title) > 200:
        raise CampaignError("名称必填且不超过200字符 a name of at most 200 characters is required", field="name")
    why = why_refused(title)
    if why is not None:
        raise CampaignError(f"名称 name: {why}", field="name")
    with _engine(engine).begin() as conn:
        codes = list(dict.fromkeys(streets))
        if codes:
            known = set(conn.execute(text("SELECT ref FROM streets WHERE ref = ANY(:c)"), {"c": codes}).scalars())
            unknown = [c for c in codes if c not in known]
            if unknown:
                raise CampaignError(f"没有街道 unknown street codes: {', '.join(unknown)}", field="streets")
        pilots = resolve_streets(conn, list(pilot_streets) if pilot_streets is not None
                                 else list(base.pilot_street_names if base else ()))
        campaign_id = conn.execute(text(
            "INSERT INTO campaigns (name, preset, year, district_code, jurisdiction, pilot_streets, milestones, "
            "settings, summary_due, created_by) VALUES (:n, :p, :y, :d, CAST(:j AS jsonb), CAST(:ps AS jsonb), "
            "CAST(:m AS jsonb), CAST(:s AS jsonb), :sd, :u) RETURNING id"),
            {"n": title, "p": base.key if base else None, "y": base.year if base else stage_list[0].starts_on.year,
             "d": base.district_code if base else None, "j": json.dumps(codes),
             "ps": json.dumps(pilots, ensure_ascii=False),
             "m": json.dumps([m.as_dict() for m in (base.milestones if base else ())], ensure_ascii=False),
             "s": json.dumps(merged, ensure_ascii=False),
             "sd": summary_due or (base.summary_due if base else None), "u": user}).scalar_one()
        for i, s in enumerate(sorted(stage_list, key=lambda s: s.starts_on), start=1):
            conn.execute(text(
                "INSERT INTO campaign_stages (campaign_id, seq, code, name_zh, name_en, starts_on, ends_on, "
                "report_due, produces) VALUES (:c, :i, :code, :zh, :en, :s, :e, :r, CAST(:p AS jsonb))"),
                {"c": campaign_id, "i": i, "code": s.code, "zh": s.name_zh, "en": s.name_en, "s": s.starts_on,
                 "e": s.ends_on, "r": s.report_due, "p": json.dumps(list(s.produces), ensure_ascii=False)})
    return int(campaign_id)


def _check_settings(s: dict[str, Any]) -> None:
    rate = s.get("spot_check_rate")
    if not isinstance(rate, int | float) or not 0 < float(rate) <= 1:
        raise CampaignError(f"抽查比例应在0-100%之间 spot_check_rate must be in (0, 1], got {rate!r}",
                            field="settings.spot_check_rate")
    shares = s.get("cost_shares")
    if not isinstance(shares, dict) or set(shares) != {"owners", "property", "government"} or any(
            not isinstance(v, int | float) or v < 0 for v in shares.values()) or abs(sum(shares.values()) - 1) > 1e-6:
        raise CampaignError("费用分担比例 cost_shares needs owners, property and government shares ≥ 0 summing to 1",
                            field="settings.cost_shares")


def get_campaign(campaign_id: int, *, engine: Engine | None = None, conn: Connection | None = None) -> Campaign:
    if conn is None:
        with _engine(engine).connect() as c:
            return get_campaign(campaign_id, conn=c)
    row = conn.execute(text("SELECT * FROM campaigns WHERE id = :id"), {"id": campaign_id}).first()
    if row is None:
        raise CampaignNotFound(f"没有整治行动 no campaign {campaign_id}")
    stages = [Stage(r.code, r.name_zh, r.name_en, r.starts_on, r.ends_on, tuple(r.produces), r.report_due)
              for r in conn.execute(text("SELECT * FROM campaign_stages WHERE campaign_id = :id ORDER BY seq"),
                                    {"id": campaign_id})]
    return Campaign(id=row.id, name=row.name, preset=row.preset, year=row.year, district_code=row.district_code,
                    jurisdiction=list(row.jurisdiction), pilot_streets=list(row.pilot_streets),
                    milestones=[Milestone(m["code"], m["name_zh"], m["name_en"], date.fromisoformat(m["due"]))
                                for m in row.milestones],
                    settings={**DEFAULT_SETTINGS, **row.settings}, summary_due=row.summary_due, stages=stages,
                    created_by=row.created_by)


def list_campaigns(*, engine: Engine | None = None) -> list[Campaign]:
    with _engine(engine).connect() as conn:
        ids = conn.execute(text("SELECT id FROM campaigns ORDER BY id")).scalars().all()
        return [get_campaign(i, conn=conn) for i in ids]


def campaign_streets(conn: Connection, campaign: Campaign, *, only: Sequence[str] | None = None) -> Sequence[Any]:
    """The streets (ref, name) of a campaign's jurisdiction, in code order (`only`: a subset of them)."""
    where, params = [], {}
    if campaign.jurisdiction:
        where.append("ref = ANY(:j)")
        params["j"] = campaign.jurisdiction
    if only is not None:
        where.append("ref = ANY(:only)")
        params["only"] = list(only)
    sql = "SELECT ref, name FROM streets" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY ref"
    return conn.execute(text(sql), params).all()


def record_inspection(campaign_id: int, *, compound: str, kind: str, on_date: date, unit: str | None = None,
                      inspector: str | None = None, note: str | None = None, user: str | None = None,
                      engine: Engine | None = None) -> int:
    """Record a property company's self-inspection (自查), a street-led inspection (检查) or a re-inspection."""
    if kind not in ("self", "inspection", "recheck"):
        raise CampaignError(f"未知检查类型 unknown kind {kind!r}: self, inspection or recheck", field="kind")
    with _engine(engine).begin() as conn:
        get_campaign(campaign_id, conn=conn)
        street = conn.execute(text("SELECT street_code FROM compounds WHERE ref = :r"), {"r": compound}).first()
        if street is None:
            raise CampaignError(f"没有小区 no compound {compound!r}", field="compound")
        return int(conn.execute(text(
            "INSERT INTO campaign_inspections (campaign_id, compound_ref, street_code, kind, on_date, unit, inspector, "
            "note, recorded_by) VALUES (:c, :r, :s, :k, :d, :u, :i, :n, :by) RETURNING id"),
            {"c": campaign_id, "r": compound, "s": street.street_code, "k": kind, "d": on_date,
             "u": (unit or None) and unit[:200], "i": (inspector or None) and inspector[:200],
             "n": (note or None) and note[:2000], "by": user}).scalar_one())
