"""The Changle plan's four focus items (整治重点) and which rules' hazards count under each."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FocusItem:
    """One 整治重点 of the Changle plan (二、整治重点), with the rules whose hazards fall under it."""

    code: str
    no: str
    zh: str
    en: str
    rules: frozenset[str]
    manual_rule: str  # the MANUAL-* rule a failed spot check files when no existing hazard is reopened
    short_zh: str  # a chart's axis label
    short_en: str


#: In the plan's order. A rule appears under one item at most; rules under none count as 其他 (facilities,
#: e-bikes, management: the Yinzhou plan's items beyond Changle's four).
FOCUS_ITEMS: tuple[FocusItem, ...] = (
    FocusItem("evacuation", "（一）", "占用、堵塞、封闭疏散通道、消防连廊、安全出口",
              "Evacuation routes, fire corridors (消防连廊) or exits occupied, blocked or locked",
              frozenset({"MANUAL-EXIT-BLOCKED", "EBIKE-INDOOR", "MANUAL-EBIKE"}), "MANUAL-EXIT-BLOCKED",
              "疏散通道出口", "Exits, routes"),
    FocusItem("vehicles", "（二）", "车辆占用、堵塞消防车通道，妨碍消防车通行",
              "Vehicles occupying or blocking fire lanes",
              frozenset({"LANE-CLEAR", "PARK-ENTRANCE", "PARK-HYDRANT", "PARK-LANE", "HYD-ACCESS",
                         "AERIAL-OBSTRUCTED", "MANUAL-LANE-OCCUPIED", "LANE-HEADROOM", "MANUAL-TREE"}),
              "MANUAL-LANE-OCCUPIED", "车辆占道", "Vehicles on lanes"),
    FocusItem("illegal", "（三）", "违章建筑占用防火间距，影响消防安全",
              "Illegal structures in fire-separation distances",
              frozenset({"SEP-ILLEGAL", "STRUCT-ON-LANE", "STRUCT-SEPARATION", "MANUAL-ILLEGAL-STRUCTURE"}),
              "MANUAL-ILLEGAL-STRUCTURE", "违建占间距", "Illegal structures"),
    FocusItem("design", "（四）", "未按规范设计要求设置消防车通道、消防标识",
              "Fire lanes and signs not as the design codes require",
              frozenset({"LANE-WIDTH", "LANE-TURNAROUND", "LANE-TURN", "LANE-CONNECT", "LANE-SETBACK",
                         "LANE-SLOPE", "AERIAL-SIZE", "AERIAL-DISTANCE", "AERIAL-CONNECTED", "AERIAL-COVERAGE", "AERIAL-SLOPE",
                         "SEP-BUILDINGS", "MANUAL-EVAC-SIGN"}), "MANUAL-OTHER", "车道标识设计",
              "Lane, sign design"),
)
BY_CODE: dict[str, FocusItem] = {f.code: f for f in FOCUS_ITEMS}
ITEM_CODES: tuple[str, ...] = tuple(BY_CODE)
OTHER = ("other", "其他隐患（消防设施、电动自行车、日常管理）", "Other (facilities, e-bikes, management)")

_RULE_ITEM = {rule: f.code for f in FOCUS_ITEMS for rule in f.rules}
assert len(_RULE_ITEM) == sum(len(f.rules) for f in FOCUS_ITEMS), "a rule belongs to one focus item at most"


def focus_of(rule: str | None) -> str:
    """The focus item code of a hazard's rule, or "other"."""
    return _RULE_ITEM.get(rule or "", OTHER[0])


def focus_case_sql(column: str = "t.rule") -> str:
    """SQL CASE mapping a rule column to its focus item code (for GROUP BY in the database)."""
    whens = " ".join(f"WHEN {column} IN ({', '.join(repr(r) for r in sorted(f.rules))}) THEN '{f.code}'"
                     for f in FOCUS_ITEMS)
    return f"(CASE {whens} ELSE '{OTHER[0]}' END)"
