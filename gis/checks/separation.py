"""SEP-BUILDINGS: fire separation between every pair of buildings (GB 50016 table 5.2.2), across compound borders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from gis.checks import attributes as at
from gis.checks.findings import Finding, findings_frame, severity
from gis.checks.profiles import Profile

#: Partitions may hold several compounds (subjects filtered by ownership): see gis.checks.runner.
MULTI_COMPOUND = True

RULE = "SEP-BUILDINGS"


@dataclass(frozen=True)
class Hypotheses:
    """What a feature's separation class may be: three hypotheses per feature (identical when the height is known).

    `cls` indexes `attributes.CLASSES`; `over` marks heights above `no_reduction_above_m`; `lo`/`hi` bound the
    height under each hypothesis (used to tell which building of a pair is the taller one).
    """

    cls: np.ndarray
    over: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


def building_hypotheses(buildings: gpd.GeoDataFrame, profile: Profile) -> tuple[Hypotheses, np.ndarray, np.ndarray]:
    """Separation-class hypotheses of buildings.

    Parameters
    ----------
    buildings : GeoDataFrame
        Buildings with `height_m`, `floors`, `use`, `fire_resistance_grade` (any may be missing).
    profile : Profile

    Returns
    -------
    (Hypotheses, height, from_floors)
        A known height (or floors x metres_per_floor) gives one class; an unknown height leaves three:
        not high-rise (class from the grade, unknown grade → the profile default), high-rise up to
        `no_reduction_above_m`, high-rise above it.
    """
    sep = profile["SEPARATION"]
    height, from_floors = at.building_heights(buildings, profile)
    limit = at.high_rise_limit(buildings, profile)
    grade = at.grade_class(at.column(buildings, "fire_resistance_grade").to_numpy(), sep["default_building_grade"])
    tall = float(sep["no_reduction_above_m"])
    known = ~np.isnan(height)
    h = np.nan_to_num(height)
    cls_known = np.where(h > limit, 0, grade)
    cls = np.where(known[:, None], cls_known[:, None], np.column_stack([grade, np.zeros_like(grade),
                                                                         np.zeros_like(grade)]))
    over = np.where(known[:, None], (h > tall)[:, None], np.array([False, False, True])[None, :])
    lo = np.where(known[:, None], h[:, None], np.column_stack([np.zeros_like(h), limit, np.full_like(h, tall)]))
    hi = np.where(known[:, None], h[:, None], np.column_stack([limit, np.full_like(h, tall), np.full_like(h, np.inf)]))
    return Hypotheses(cls=cls, over=over, lo=lo, hi=hi), height, from_floors


def structure_hypotheses(structures: gpd.GeoDataFrame, profile: Profile) -> Hypotheses:
    """Illegal structures: one class each, from their grade (missing → the profile's structure default, 四)."""
    sep = profile["SEPARATION"]
    grade = at.grade_class(at.column(structures, "fire_resistance_grade").to_numpy(), sep["default_structure_grade"])
    h = np.nan_to_num(at.numbers(structures, "height_m"))
    tile = np.ones((1, 3))
    return Hypotheses(cls=grade[:, None] * tile.astype(int), over=np.zeros((len(grade), 3), bool),
                      lo=h[:, None] * tile, hi=h[:, None] * tile)


def required_range(a: Hypotheses, ia: np.ndarray, b: Hypotheses, ib: np.ndarray, profile: Profile, *,
                   reduce: np.ndarray | None = None, firewall_a: np.ndarray | None = None,
                   firewall_b: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The least and the greatest required separation of each pair over all class hypotheses.

    Parameters
    ----------
    a, b : Hypotheses
        Hypotheses of the two sides; `ia`, `ib` index the pairs into them.
    profile : Profile
    reduce : bool array, optional
        Per pair: both facing walls non-combustible (−`noncombustible_reduction` unless a side is over
        `no_reduction_above_m`).
    firewall_a, firewall_b : bool array, optional
        Per pair: that side's facing wall is a firewall (no limit when that side is the taller, or as tall).

    Returns
    -------
    (low, high)
        Equal when both heights are known; ``low < high`` when the verdict depends on a missing height.
    """
    n = len(ia)
    table = at.separation_table(profile)
    false = np.zeros(n, dtype=bool)
    reduce = false if reduce is None else reduce
    fa = false if firewall_a is None else firewall_a
    fb = false if firewall_b is None else firewall_b
    req = table[a.cls[ia][:, :, None], b.cls[ib][:, None, :]]
    over = a.over[ia][:, :, None] | b.over[ib][:, None, :]
    cut = float(profile.get("SEPARATION", "noncombustible_reduction"))
    req = np.where(reduce[:, None, None] & ~over, req * (1.0 - cut), req)
    lo_a, hi_a = a.lo[ia][:, :, None], a.hi[ia][:, :, None]
    lo_b, hi_b = b.lo[ib][:, None, :], b.hi[ib][:, None, :]
    fa, fb = fa[:, None, None], fb[:, None, None]
    exempt_possible = (fa & (hi_a >= lo_b)) | (fb & (hi_b >= lo_a))
    exempt_certain = (fa & (lo_a >= hi_b)) | (fb & (lo_b >= hi_a))
    low = np.where(exempt_possible, 0.0, req).reshape(n, -1).min(axis=1) if n else np.empty(0)
    high = np.where(exempt_certain, 0.0, req).reshape(n, -1).max(axis=1) if n else np.empty(0)
    return low, high


def verdicts(distance: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """fail below the least requirement, cannot_judge between least and greatest, pass from the greatest up."""
    return np.select([distance < low, distance < high], ["fail", "cannot_judge"], "pass").astype(object)


def _class_label(h: Hypotheses, i: int, known: bool, lang: str) -> str:
    labels = at.CLASS_ZH if lang == "zh" else at.CLASS_EN
    if not known:
        return "高度未知" if lang == "zh" else "height unknown"
    return labels[at.CLASSES[int(h.cls[i, 0])]]


def check(ctx: Any) -> gpd.GeoDataFrame:
    """SEP-BUILDINGS for the partition's buildings.

    Parameters
    ----------
    ctx : CheckContext
        `layers["buildings"]` (the compound and its surroundings) in the metric CRS `ctx.crs`, the `profile`.

    Returns
    -------
    GeoDataFrame
        One finding per pair closer than table 5.2.2 (``fail``) or whose verdict hangs on a missing height
        (``cannot_judge``); a pair is reported once, on the building with the smaller ref, by the partition that
        owns that building; the evidence is the shortest connecting line.
    """
    profile: Profile = ctx.profile
    sep = profile["SEPARATION"]
    buildings = at.layer(ctx, "buildings")
    g = at.geoms(buildings)
    if len(g) < 2:
        return findings_frame([], crs=ctx.crs)
    refs = at.refs(buildings)
    reach = float(at.separation_table(profile).max())
    # pairs whose subject (the smaller ref) this partition owns: only owned buildings query the tree
    own = np.flatnonzero(at.owned(ctx, buildings))
    rank = at.ranks(buildings)
    # candidates by envelope; the exact distance decides (a pair farther apart than the largest requirement
    # passes whatever the classes, so the distance filter below drops it like a dwithin query would)
    bounds = shapely.bounds(g[own])
    boxes = shapely.box(bounds[:, 0] - reach, bounds[:, 1] - reach, bounds[:, 2] + reach, bounds[:, 3] + reach)
    q, j = at.tree(ctx, "buildings").query(boxes)
    i = own[q]
    keep = rank[i] < rank[j]
    i, j = i[keep], j[keep]
    distance = shapely.distance(g[i], g[j])
    near = distance <= reach
    i, j, distance = i[near], j[near], distance[near]
    # touching / overlapping footprints are one building complex (parts of a block): not a separation pair
    apart = distance > 0
    i, j, distance = i[apart], j[apart], distance[apart]

    hyp, height, from_floors = building_hypotheses(buildings, profile)
    nonc = at.flags(buildings, "noncombustible_walls")
    wall = at.flags(buildings, "firewall")
    low, high = required_range(hyp, i, hyp, j, profile, reduce=nonc[i] & nonc[j],
                               firewall_a=wall[i], firewall_b=wall[j])
    verdict = verdicts(distance, low, high)
    wanted = verdict != "pass"
    i, j, distance, low, high, verdict = (x[wanted] for x in (i, j, distance, low, high, verdict))

    line = shapely.shortest_line(g[i], g[j])
    compound = at.compound_refs(ctx, buildings)
    known = ~np.isnan(height)
    per_floor = sep["metres_per_floor"]
    cut = int(round(float(sep["noncombustible_reduction"]) * 100))
    tall = float(sep["no_reduction_above_m"])
    sev = severity(profile, RULE)
    out = []
    for k, (a, b, d, lo_, hi_, v) in enumerate(zip(i, j, distance, low, high, verdict, strict=True)):
        ca, cb = (_class_label(hyp, x, known[x], "zh") for x in (a, b))
        ea, eb = (_class_label(hyp, x, known[x], "en") for x in (a, b))
        notes_zh, notes_en = [], []
        est = [refs[x] for x in (a, b) if from_floors[x]]
        if est:
            notes_zh.append(f"{'、'.join(est)} 高度按层数×{at.m(per_floor)} m 估算")
            notes_en.append(f"height of {', '.join(est)} estimated as floors x {at.m(per_floor)} m")
        if nonc[a] and nonc[b] and known[a] and known[b]:
            if hyp.over[a, 0] or hyp.over[b, 0]:
                notes_zh.append(f"建筑高度超过{at.m(tall)} m，不燃外墙不减少间距")
                notes_en.append(f"a building is over {at.m(tall)} m: no reduction for non-combustible walls")
            else:
                notes_zh.append(f"两侧外墙不燃，间距减少{cut}%")
                notes_en.append(f"non-combustible facing walls: -{cut} %")
        missing = [refs[x] for x in (a, b) if not known[x]]
        if v == "cannot_judge":
            msg = (f"无法判定 {refs[a]} 与 {refs[b]} 的防火间距（{at.m(d)} m，要求 {at.m(lo_)}–{at.m(hi_)} m）："
                   f"缺少建筑高度和层数 height_m/floors（{'、'.join(missing)}）")
            msg_en = (f"cannot judge the separation of {refs[a]} and {refs[b]} ({at.m(d)} m, required "
                      f"{at.m(lo_)}-{at.m(hi_)} m): height_m and floors missing for {', '.join(missing)}")
            required = hi_
        else:
            msg = f"{refs[a]}（{ca}）与 {refs[b]}（{cb}）防火间距 {at.m(d)} m，小于规定的 {at.m(lo_)} m"
            msg_en = (f"fire separation {refs[a]} ({ea}) to {refs[b]} ({eb}) is {at.m(d)} m; "
                      f"required {at.m(lo_)} m")
            if missing:
                msg += f"（{'、'.join(missing)} 高度未知，按任何高度均不足）"
                msg_en += f" (height of {', '.join(missing)} unknown: too close for any height)"
            required = lo_
        if notes_zh:
            msg += "；" + "；".join(notes_zh)
            msg_en += "; " + "; ".join(notes_en)
        out.append(Finding(rule=RULE, verdict=v, subject_ref=refs[a], compound_ref=compound[a],
                           other_refs=[refs[b]], measured=round(float(d), 3), required=round(float(required), 3),
                           unit="m", severity=sev, message=msg, message_en=msg_en,
                           geometry=line[k]))
    return findings_frame(out, crs=ctx.crs)
