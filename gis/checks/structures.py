"""Illegal structures: SEP-ILLEGAL / STRUCT-SEPARATION (too close to a building) and STRUCT-ON-LANE (occupation)."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely import STRtree

from gis.checks import attributes as at
from gis.checks import roads as rd
from gis.checks.findings import Finding, findings_frame, severity
from gis.checks.geometry import union_rows
from gis.checks.profiles import Profile
from gis.checks.separation import building_hypotheses, required_range, structure_hypotheses, verdicts

#: Partitions may hold several compounds (subjects filtered by ownership): see gis.checks.runner.
MULTI_COMPOUND = True

SEPARATION_RULES = ("SEP-ILLEGAL", "STRUCT-SEPARATION")
ON_LANE = "STRUCT-ON-LANE"
_GRADE_ZH = {"1": "一", "2": "二", "3": "三", "4": "四"}

#: What a structure may not occupy, with the zh/en names used in messages.
_ZONES = {
    "fire_lanes": ("消防车道", "fire lane"),
    "aerial_areas": ("登高操作场地", "aerial operation area"),
    "entrances": ("出入口", "entrance"),
    "walkways": ("疏散通道", "evacuation route"),
}


def _structures(ctx: Any) -> gpd.GeoDataFrame:
    frame = at.layer(ctx, "illegal_structures")
    standing = ~at.texts_in(frame, "status", "reported", ("demolished",))
    return frame[standing & at.owned(ctx, frame)]


def separation_findings(ctx: Any, structures: gpd.GeoDataFrame) -> list[Finding]:
    """SEP-ILLEGAL and STRUCT-SEPARATION: a structure (grade from its field, default 四) within the table 5.2.2
    separation of any building.

    Parameters
    ----------
    ctx : CheckContext
    structures : GeoDataFrame
        The partition's own standing illegal structures.

    Returns
    -------
    list of Finding
        Two findings per structure (one per rule, same content) that fails against at least one building
        (``fail``) or whose verdict hangs on a building's missing height (``cannot_judge``); other_refs name
        those buildings, measured is the least distance, the evidence the shortest lines to them.
    """
    profile: Profile = ctx.profile
    buildings = at.layer(ctx, "buildings")
    sg, bg = at.geoms(structures), at.geoms(buildings)
    if len(sg) == 0 or len(bg) == 0:
        return []
    reach = float(at.separation_table(profile).max())
    s, b = at.tree(ctx, "buildings").query(sg, predicate="dwithin", distance=reach)
    distance = shapely.distance(sg[s], bg[b])
    bh, height, _ = building_hypotheses(buildings, profile)
    low, high = required_range(structure_hypotheses(structures, profile), s, bh, b, profile)
    pairs = pd.DataFrame({"s": s, "b": b, "d": distance, "low": low, "high": high,
                          "verdict": verdicts(distance, low, high)})
    pairs = pairs[pairs["verdict"] != "pass"]
    if pairs.empty:
        return []
    # the structure's verdict is its worst pair's; only the pairs of that verdict are named and drawn
    failing = pairs.loc[pairs["verdict"] == "fail", "s"].unique()
    pairs["worst"] = np.where(pairs["s"].isin(failing).to_numpy(), "fail", "cannot_judge").astype(object)
    pairs = pairs[pairs["verdict"] == pairs["worst"]]
    ps, pb, dist, plow, phigh, pv = (pairs[c].to_numpy() for c in ("s", "b", "d", "low", "high", "verdict"))
    order = np.lexsort((dist, ps))  # per structure, nearest building first (stable, as sort_values)
    ps, pb, dist, plow, phigh, pv = ps[order], pb[order], dist[order], plow[order], phigh[order], pv[order]
    subjects, start = np.unique(ps, return_index=True)
    stop = np.append(start[1:], len(ps))
    lines = shapely.multilinestrings(shapely.shortest_line(sg[ps], bg[pb]),
                                     indices=np.repeat(np.arange(len(subjects)), stop - start))
    brefs, srefs = at.refs(buildings), at.refs(structures)
    compound = at.compound_refs(ctx, structures)
    grade = at.texts(structures, "fire_resistance_grade", profile.get("SEPARATION", "default_structure_grade"))
    grade_zh = np.vectorize(_GRADE_ZH.get, otypes=[object])(grade) if len(grade) else grade
    unknown_height = np.isnan(height)
    out = []
    for k, (si, f, e) in enumerate(zip(subjects.tolist(), start.tolist(), stop.tolist(), strict=True)):
        names = brefs[pb[f:e]].tolist()
        d = dist[f]
        if pv[f] == "fail":
            required = plow[f]
            msg = (f"违建 {srefs[si]}（{grade_zh[si]}级）距建筑 {'、'.join(names)} 最近 {at.m(d)} m，"
                   f"小于防火间距 {at.m(required)} m，应拆除或整改")
            msg_en = (f"illegal structure {srefs[si]} (grade {grade[si]}) is {at.m(d)} m from building(s) "
                      f"{', '.join(names)}, within the {at.m(required)} m fire separation")
        else:
            required = phigh[f]
            missing = [brefs[x] for x in pb[f:e].tolist() if unknown_height[x]]
            msg = (f"无法判定违建 {srefs[si]} 与建筑 {'、'.join(names)} 的防火间距（{at.m(d)} m）："
                   f"缺少建筑高度和层数 height_m/floors（{'、'.join(missing)}）")
            msg_en = (f"cannot judge the separation of illegal structure {srefs[si]} from {', '.join(names)} "
                      f"({at.m(d)} m): height_m and floors missing for {', '.join(missing)}")
        for rule in SEPARATION_RULES:
            out.append(Finding(rule=rule, verdict=pv[f], subject_ref=srefs[si], compound_ref=compound[si],
                               other_refs=names, measured=round(float(d), 3),
                               required=round(float(required), 3), unit="m", severity=severity(profile, rule),
                               message=msg, message_en=msg_en, geometry=lines[k]))
    return out


def _zones(ctx: Any, structures: gpd.GeoDataFrame | None = None) -> gpd.GeoDataFrame:
    """Everything a structure may not occupy, as polygons/lines with their layer key and ref (with `structures`,
    of the walkways only those these structures may occupy)."""
    parts = []
    for name in ("fire_lanes", "aerial_areas"):
        frame = at.layer(ctx, name)
        parts.append(pd.DataFrame({"zone": name, "ref": at.refs(frame), "geometry": at.geoms(frame)}))
    entrances = at.layer(ctx, "entrances")
    radius = np.nan_to_num(at.numbers(entrances, "width_m")) / 2.0
    points = at.geoms(entrances)
    grow = radius > 0
    if structures is not None and grow.any():
        # only the entrances a structure comes within their radius of are grown: the rest are kept as points,
        # which no structure reaches either (the disk lies within the radius of its point)
        near = np.zeros(len(points), dtype=bool)
        near[STRtree(points).query(at.geoms(structures), predicate="dwithin", distance=radius.max())[1]] = True
        grow &= near
    disks = points.copy()
    disks[grow] = shapely.buffer(points[grow], radius[grow])
    parts.append(pd.DataFrame({"zone": "entrances", "ref": at.refs(entrances), "geometry": disks}))
    roads = at.layer(ctx, "roads")
    walk = roads[at.texts_in(roads, "kind", "city", ("walkway",))]
    if structures is not None and len(walk):
        # only the walkways a structure can occupy: a drawn surface, else the centre line grown by half its width
        # (a flat-capped buffer lies within that distance of the line), so thousands of others are never grown
        drawn = ~pd.isna(rd.drawn_surfaces(walk))
        half = np.where(drawn, 0.0, np.maximum(np.nan_to_num(at.numbers(walk, "width_m")), 0.0) / 2.0)
        near = drawn.copy()
        near[STRtree(at.geoms(structures)).query(at.geoms(walk), predicate="dwithin", distance=half)[0]] = True
        walk = walk[near]
    surface = rd.surfaces(walk)  # drawn walkway surfaces, else centre lines grown by half their width
    parts.append(pd.DataFrame({"zone": "walkways", "ref": at.refs(walk), "geometry": surface}))
    frame = pd.concat(parts, ignore_index=True)
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=ctx.crs)


def on_lane_findings(ctx: Any, structures: gpd.GeoDataFrame) -> list[Finding]:
    """STRUCT-ON-LANE: a structure occupying a fire lane, an aerial area, a compound entrance (within half the
    entrance width of its point; the point itself when the width is unknown) or an evacuation route (walkways
    buffered by half their width; the centre line when the width is unknown).

    Returns
    -------
    list of Finding
        One ``fail`` per occupying structure; other_refs name what it occupies, measured is the occupied area
        (m²), the evidence the occupied part.
    """
    profile: Profile = ctx.profile
    zones = _zones(ctx, structures)
    sg, zg = at.geoms(structures), at.geoms(zones)
    if len(sg) == 0 or len(zg) == 0:
        return []
    s, z = STRtree(zg).query(sg, predicate="intersects")
    occupies = ~shapely.touches(sg[s], zg[z])
    s, z = s[occupies], z[occupies]
    if len(s) == 0:
        return []
    order = np.argsort(s, kind="stable")  # per structure, what it occupies in the order found
    s, z = s[order], z[order]
    zone, zref = zones["zone"].to_numpy()[z], zones["ref"].to_numpy()[z]
    occupied, start = np.unique(s, return_index=True)
    stop = np.append(start[1:], len(s))
    # overlapping zones (a lane under an aerial area) must not count the same ground twice
    evidence = union_rows(shapely.intersection(sg[s], zg[z]), np.repeat(np.arange(len(occupied)), stop - start),
                          len(occupied))
    area = shapely.area(evidence)
    srefs, compound = at.refs(structures), at.compound_refs(ctx, structures)
    rule = ON_LANE
    out = []
    for k, (si, a, b) in enumerate(zip(occupied.tolist(), start.tolist(), stop.tolist(), strict=True)):
        named: dict[str, list[str]] = {}
        for key, ref in zip(zone[a:b].tolist(), zref[a:b].tolist(), strict=True):
            named.setdefault(key, []).append(ref)
        what_zh = "、".join(f"{_ZONES[key][0]} {'、'.join(sorted(named[key]))}" for key in sorted(named))
        what_en = ", ".join(f"{_ZONES[key][1]} {', '.join(sorted(named[key]))}" for key in sorted(named))
        occupied_m2 = float(area[k])
        out.append(Finding(
            rule=rule, verdict="fail", subject_ref=srefs[si], compound_ref=compound[si],
            other_refs=list(zref[a:b]), measured=round(occupied_m2, 2), required=0.0, unit="m²",
            severity=severity(profile, rule),
            message=f"违建 {srefs[si]} 占用{what_zh}（占用面积 {at.m(occupied_m2)} m²），应拆除",
            message_en=f"illegal structure {srefs[si]} occupies {what_en} ({at.m(occupied_m2)} m² occupied)",
            geometry=evidence[k]))
    return out


def check(ctx: Any) -> gpd.GeoDataFrame:
    """SEP-ILLEGAL, STRUCT-SEPARATION and STRUCT-ON-LANE for the partition's own illegal structures.

    Parameters
    ----------
    ctx : CheckContext
        Layers `illegal_structures`, `buildings`, `fire_lanes`, `aerial_areas`, `entrances`, `roads` in the
        metric CRS `ctx.crs`; the `profile`.

    Returns
    -------
    GeoDataFrame
        The findings (structures with status ``demolished`` are skipped).
    """
    structures = _structures(ctx)
    return findings_frame([*separation_findings(ctx, structures), *on_lane_findings(ctx, structures)], crs=ctx.crs)
