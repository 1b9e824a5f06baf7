"""MANUAL-* rules: hazards no check can compute, reported by inspectors, property companies, the public and checklists.

The catalogue beside gis.checks.catalog's RULES (same Rule shape, family "manual"), kept apart on purpose: a check
run closes the unresolved hazards of the rules it ran, and no check run can see a wedged-open fire door.
"""

from __future__ import annotations

from dataclasses import dataclass

from gis.checks.catalog import RULES, Rule


@dataclass(frozen=True, kw_only=True)
class ManualRule(Rule):
    """A reportable category: its CLI/API name, the MANUAL-* rule id, routing and default deadline (days)."""

    category: str
    deadline_days: int


_LAW = "消防法第二十八条"
_FAC = "消防法第十六条; 整治方案 二(二)"
_MGMT = "整治方案 二(四)"


def _m(category: str, rid: str, *, clause: str, department: str, zh: str, en: str, days: int,
       note: str = "") -> ManualRule:
    return ManualRule(id=rid, family="manual", clause=clause, strength="mandatory", subject_layer="compounds",
                      department=department, title_zh=zh, title_en=en, unit="", note=note, category=category,
                      deadline_days=days)


#: category → rule. Deadlines follow the plans' urgency: a blocked lane or exit is cleared within a day, a
#: broken system repaired within a month, an illegal structure demolished within one (三改一拆 procedure).
MANUAL_RULES: dict[str, ManualRule] = {r.category: r for r in (
    _m("lane_occupied", "MANUAL-LANE-OCCUPIED", clause=f"GB 50016-2014(2018) 7.1.8; {_LAW}",
       department="交警/公安; 综合执法/城管", zh="消防车道被占用堵塞", en="Fire lane occupied", days=1),
    _m("exit_blocked", "MANUAL-EXIT-BLOCKED", clause=f"{_LAW}; 长乐方案 二(一)",
       department="物业; 综合执法", zh="疏散通道、消防连廊或安全出口堵塞/封闭", days=1,
       en="Evacuation route, fire corridor (消防连廊) or exit blocked or locked"),
    _m("hydrant_defective", "MANUAL-HYDRANT", clause=_FAC, department="物业/住建; 水利",
       zh="消火栓系统损坏、遮挡或停用", en="Hydrant system defective, hidden or out of service", days=15),
    _m("alarm_defective", "MANUAL-ALARM", clause=_FAC, department="物业/住建",
       zh="火灾自动报警系统故障", en="Fire alarm system defective", days=15),
    _m("sprinkler_defective", "MANUAL-SPRINKLER", clause=_FAC, department="物业/住建",
       zh="自动喷水灭火系统故障", en="Sprinkler system defective", days=15),
    _m("smoke_control_defective", "MANUAL-SMOKE-CONTROL", clause=_FAC, department="物业/住建",
       zh="防排烟系统故障", en="Smoke control system defective", days=15),
    _m("evacuation_sign_defective", "MANUAL-EVAC-SIGN", clause=_FAC, department="物业/住建",
       zh="疏散指示标志/应急照明损坏", en="Evacuation sign or emergency lighting defective", days=7),
    _m("fire_door_defective", "MANUAL-FIRE-DOOR", clause=_FAC, department="物业/住建",
       zh="防火门损坏或常闭防火门常开", en="Fire door defective or wedged open", days=3),
    _m("extinguisher_defective", "MANUAL-EXTINGUISHER", clause=_FAC, department="物业/住建",
       zh="灭火器缺失、过期或失效", en="Extinguisher missing, expired or empty", days=3),
    _m("control_room_unstaffed", "MANUAL-CONTROL-ROOM", clause=f"GB 25506-2010 4.2.1; {_MGMT}",
       department="物业/住建", zh="消防控制室未落实24小时双人值班", en="Control room not staffed 24 h by two people",
       days=3),
    _m("ebike_indoor", "MANUAL-EBIKE", clause="高层民用建筑消防安全管理规定 第三十七条; 整治方案 二(三)",
       department="街道; 物业", zh="电动自行车室内停放或飞线充电", en="E-bike parked or charged indoors or by flying wire",
       days=1),
    _m("illegal_structure", "MANUAL-ILLEGAL-STRUCTURE", clause="GB 50016-2014(2018) 5.2.2; 整治方案 二(一)",
       department="三改一拆办/综合执法", zh="违章建(构)筑物占用防火间距/通道", en="Illegal structure", days=30,
       note="资源规划 confirms illegality before demolition"),
    _m("tree_branches", "MANUAL-TREE", clause="整治方案 二(一)", department="综合执法(绿化)/物业",
       zh="树枝影响消防通道或消防设施", en="Tree branches over a fire lane or facility", days=7),
    _m("maintenance_contract", "MANUAL-MAINTENANCE", clause=f"消防法第十六条; {_MGMT}", department="物业/住建",
       zh="未签订消防设施维保合同", en="No fire-system maintenance contract", days=30),
    _m("building_captain", "MANUAL-BUILDING-CAPTAIN", clause=f"高层民用建筑消防安全管理规定; {_MGMT}",
       department="街道; 物业", zh="高层住宅未落实消防安全楼长", en="High-rise without a named building captain (楼长)",
       days=15),
    _m("emergency_plan", "MANUAL-EMERGENCY-PLAN", clause=_MGMT, department="物业/住建",
       zh="未制定灭火和应急疏散预案或未定期演练", en="No emergency plan or no recent drill", days=30),
    _m("safety_ledger", "MANUAL-SAFETY-LEDGER", clause=_MGMT, department="物业/住建",
       zh="未建立消防安全管理台账", en="No fire-safety management ledger (台账)", days=30),
    _m("other", "MANUAL-OTHER", clause="消防法", department="街道", zh="其他消防安全隐患", en="Other fire hazard",
       days=7),
)}

#: rule id → rule
BY_ID: dict[str, ManualRule] = {r.id: r for r in MANUAL_RULES.values()}
#: the categories a report (and a public complaint) may name, in catalogue order
CATEGORIES: tuple[str, ...] = tuple(MANUAL_RULES)

assert not set(BY_ID) & set(RULES), "MANUAL-* ids must not collide with check rule ids"


def any_rule(rule_id: str) -> Rule | None:
    """A check rule or a MANUAL-* rule by id (pages and exports name every hazard's rule the same way)."""
    return RULES.get(rule_id) or BY_ID.get(rule_id)
