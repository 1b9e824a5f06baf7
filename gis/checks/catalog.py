"""The rule catalogue: every rule id of the rule book with its clause, strength, subject layer and department."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Strength = Literal["mandatory", "advisory"]


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One rule of the rule book (shared/RULES.md). `subject_layer` is the layer whose feature a finding is about."""

    id: str
    family: str
    clause: str
    strength: Strength
    subject_layer: str
    department: str
    title_zh: str
    title_en: str
    unit: str = "m"
    note: str = ""


_R = Rule
RULES: dict[str, Rule] = {r.id: r for r in (
    # fire lanes: the lane is the subject (other_refs name obstructions, buildings, entrances)
    _R(id="LANE-WIDTH", family="lanes", clause="GB 50016-2014(2018) 7.1.8", strength="mandatory",
       subject_layer="fire_lanes", department="物业/住建", title_zh="消防车道净宽不足", title_en="Fire lane too narrow"),
    _R(id="LANE-CLEAR", family="lanes", clause="GB 50016-2014(2018) 7.1.8; 消防法第二十八条", strength="mandatory",
       subject_layer="fire_lanes", department="交警/公安; 综合执法/城管",
       title_zh="消防车道被占用堵塞", title_en="Fire lane blocked",
       note="department follows the blocking obstructions' kinds"),
    _R(id="LANE-HEADROOM", family="lanes", clause="GB 50016-2014(2018) 7.1.8", strength="mandatory",
       subject_layer="obstructions", department="综合执法(绿化)/物业",
       title_zh="消防车道净空高度不足", title_en="Insufficient headroom over fire lane",
       note="subject is the low obstruction (canopy, line, arch); other_refs the lane"),
    _R(id="LANE-TURNAROUND", family="lanes", clause="GB 50016-2014(2018) 7.1.9", strength="mandatory",
       subject_layer="fire_lanes", department="物业/住建",
       title_zh="尽头式消防车道无回车场", title_en="Dead-end lane without turnaround"),
    _R(id="LANE-CONNECT", family="lanes", clause="GB 50016-2014(2018) 7.1.9", strength="mandatory",
       subject_layer="fire_lanes", department="物业/住建",
       title_zh="消防车道未与道路连通", title_en="Fire lane not connected", unit="count"),
    _R(id="LANE-TURN", family="lanes", clause="GB 50016-2014(2018) 7.1.9; GB 55037-2022 3.4.5", strength="mandatory",
       subject_layer="fire_lanes", department="物业/住建",
       title_zh="消防车道转弯半径不足", title_en="Fire truck cannot make the turn",
       note="inner turning radii 9 m / 12 m (ladder trucks) / 16-20 m (heavy) are unconfirmed profile values; "
            "subject is the lane, or the vehicle entrance for the turn from the city road"),
    _R(id="LANE-SETBACK", family="lanes", clause="GB 50016-2014(2018) 7.1.8", strength="advisory",
       subject_layer="fire_lanes", department="物业/住建",
       title_zh="消防车道距高层外墙过近", title_en="Fire lane too close to high-rise wall"),
    _R(id="LANE-SLOPE", family="lanes", clause="GB 50016-2014(2018) 7.1.8", strength="advisory",
       subject_layer="fire_lanes", department="物业/住建", title_zh="消防车道坡度过大", title_en="Fire lane too steep",
       unit="%"),
    # aerial operation areas
    _R(id="AERIAL-SIZE", family="aerial", clause="GB 50016-2014(2018) 7.2.2", strength="mandatory",
       subject_layer="aerial_areas", department="物业/住建",
       title_zh="登高操作场地尺寸不足", title_en="Aerial operation area too small"),
    _R(id="AERIAL-DISTANCE", family="aerial", clause="GB 50016-2014(2018) 7.2.2", strength="mandatory",
       subject_layer="aerial_areas", department="物业/住建",
       title_zh="登高操作场地与外墙距离不符", title_en="Aerial area distance to wall out of range",
       note="< 5 m is advisory (宜), > 10 m mandatory (不应)"),
    _R(id="AERIAL-OBSTRUCTED", family="aerial", clause="GB 50016-2014(2018) 7.2.2", strength="mandatory",
       subject_layer="aerial_areas", department="物业/住建; 综合执法",
       title_zh="登高操作场地有障碍物", title_en="Aerial operation area obstructed"),
    _R(id="AERIAL-CONNECTED", family="aerial", clause="GB 50016-2014(2018) 7.2.2", strength="mandatory",
       subject_layer="aerial_areas", department="物业/住建",
       title_zh="登高操作场地未与消防车道连通", title_en="Aerial area not connected to a fire lane"),
    _R(id="AERIAL-COVERAGE", family="aerial", clause="GB 50016-2014(2018) 7.2.1", strength="mandatory",
       subject_layer="buildings", department="物业/住建",
       title_zh="高层建筑登高操作面不足", title_en="High-rise lacks aerial operation frontage"),
    _R(id="AERIAL-SLOPE", family="aerial", clause="GB 50016-2014(2018) 7.2.2", strength="advisory",
       subject_layer="aerial_areas", department="物业/住建",
       title_zh="登高操作场地坡度过大", title_en="Aerial operation area too steep", unit="%"),
    # fire separation
    _R(id="SEP-BUILDINGS", family="separation", clause="GB 50016-2014(2018) 5.2.2", strength="mandatory",
       subject_layer="buildings", department="资源规划/住建",
       title_zh="建筑防火间距不足", title_en="Insufficient fire separation between buildings",
       note="subject is the building with the smaller ref of the pair; other_refs the other"),
    _R(id="SEP-ILLEGAL", family="separation", clause="GB 50016-2014(2018) 5.2.2", strength="mandatory",
       subject_layer="illegal_structures", department="三改一拆办/综合执法",
       title_zh="违建与建筑防火间距不足", title_en="Illegal structure within fire separation of a building"),
    # illegal structures
    _R(id="STRUCT-ON-LANE", family="structures", clause="GB 50016-2014(2018) 7.1.8, 7.2.2; 消防法第二十八条",
       strength="mandatory", subject_layer="illegal_structures", department="三改一拆办/综合执法",
       title_zh="违建占用消防车道/登高场地/出入口", title_en="Illegal structure on lane, aerial area or entrance"),
    _R(id="STRUCT-SEPARATION", family="structures", clause="GB 50016-2014(2018) 5.2.2", strength="mandatory",
       subject_layer="illegal_structures", department="三改一拆办/综合执法",
       title_zh="违建防火间距不足(拆违清单)", title_en="Illegal structure too close to a building (demolition list)",
       note="reported together with SEP-ILLEGAL on the same structure, so demolition teams get one list"),
    # hydrants
    _R(id="HYD-COVERAGE", family="hydrants", clause="GB 50974-2014 7.2.5, 7.3", strength="mandatory",
       subject_layer="buildings", department="物业/住建; 水利",
       title_zh="建筑不在消火栓保护半径内", title_en="Building outside hydrant cover"),
    _R(id="HYD-SPACING", family="hydrants", clause="GB 50974-2014 7.2.5", strength="mandatory",
       subject_layer="hydrants", department="物业/住建; 水利",
       title_zh="消火栓间距过大", title_en="Hydrant spacing too large"),
    _R(id="HYD-ACCESS", family="hydrants", clause="GB 55037-2022 12.0.1", strength="mandatory",
       subject_layer="hydrants", department="交警/公安; 综合执法",
       title_zh="消火栓周边被占用", title_en="Hydrant access blocked"),
    _R(id="HYD-PLACEMENT", family="hydrants", clause="GB 50974-2014 7.2.6 (条款号待核实)", strength="advisory",
       subject_layer="hydrants", department="物业/住建",
       title_zh="消火栓位置不当", title_en="Hydrant placement out of range"),
    _R(id="HYD-SERVICE", family="hydrants", clause="巡查数据 inspection data", strength="mandatory",
       subject_layer="hydrants", department="物业/住建; 水利",
       title_zh="消火栓不可用", title_en="Hydrant out of service", unit=""),
    # perimeter parking
    _R(id="PARK-ENTRANCE", family="parking", clause="GB 50016-2014(2018) 7.1.8; 整治方案(交警)", strength="mandatory",
       subject_layer="parking", department="交警/公安",
       title_zh="停车堵塞小区车行出入口", title_en="Parking blocks a compound vehicle entrance"),
    _R(id="PARK-HYDRANT", family="parking", clause="GB 55037-2022 12.0.1", strength="mandatory",
       subject_layer="parking", department="交警/公安",
       title_zh="消火栓5米内停车", title_en="Parking within 5 m of a hydrant"),
    _R(id="PARK-LANE", family="parking", clause="GB 50016-2014(2018) 7.1.8, 7.2.2", strength="mandatory",
       subject_layer="parking", department="交警/公安; 物业",
       title_zh="车位施划在消防车道/登高场地上", title_en="Stall drawn on a fire lane or aerial area"),
    # e-bikes
    _R(id="EBIKE-INDOOR", family="ebikes", clause="高层民用建筑消防安全管理规定(应急管理部令第5号) 第三十七条",
       strength="mandatory", subject_layer="ebike_sites", department="街道; 物业",
       title_zh="电动自行车室内停放充电", title_en="E-bike parked or charged indoors", unit=""),
    _R(id="EBIKE-SITE", family="ebikes", clause="高层民用建筑消防安全管理规定 第三十七条; 城市配置", strength="mandatory",
       subject_layer="ebike_sites", department="街道; 物业",
       title_zh="电动自行车集中停放场所位置不当", title_en="E-bike site misplaced",
       note="separation default 6 m (unconfirmed; per-city parameter)"),
)}

#: The rule families in the rule book's order, each a module gis.checks.<family> exposing `check(ctx)`.
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(r.family for r in RULES.values()))


def rule(rule_id: str) -> Rule:
    try:
        return RULES[rule_id]
    except KeyError:
        raise KeyError(f"unknown rule id {rule_id!r}") from None
