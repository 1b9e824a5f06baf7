"""E-bikes: EBIKE-INDOOR (parking or charging indoors) and EBIKE-SITE (a centralised site misplaced)."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely import STRtree

from gis.checks import attributes as at
from gis.checks.findings import Finding, findings_frame, severity
from gis.checks.geometry import union_rows
from gis.checks.profiles import Profile

#: Partitions may hold several compounds (subjects filtered by ownership): see gis.checks.runner.
MULTI_COMPOUND = True

#: Indoor locations where e-bikes may not be parked or charged, with their zh/en names.
INDOOR = {"lobby": ("门厅", "lobby"), "stairwell": ("楼梯间", "stairwell"), "corridor": ("走道", "corridor"),
          "exit": ("安全出口", "exit")}


def indoor_findings(ctx: Any, sites: gpd.GeoDataFrame) -> list[Finding]:
    """EBIKE-INDOOR: an indoor report located in a lobby, stairwell, corridor or exit.

    Returns
    -------
    list of Finding
        One ``fail`` per report; other_refs the building named by the report, evidence the report point.
    """
    rule = "EBIKE-INDOOR"
    profile: Profile = ctx.profile
    kind = at.texts(sites, "kind", "")
    location = at.texts(sites, "location", "outdoor")
    bad = (kind == "indoor_report") & np.isin(location, list(INDOOR))
    refs, compound, g = at.refs(sites), at.compound_refs(ctx, sites), at.geoms(sites)
    building = at.texts(sites, "building_ref", None)
    charging = at.flags(sites, "charging")
    out = []
    for k in np.flatnonzero(bad):
        zh, en = INDOOR[location[k]]
        act_zh, act_en = ("停放充电", "parked and charged") if charging[k] else ("停放", "parked")
        where_zh = f"{building[k]} " if building[k] else ""
        where_en = f" of {building[k]}" if building[k] else ""
        out.append(Finding(rule=rule, verdict="fail", subject_ref=refs[k], compound_ref=compound[k],
                           other_refs=[building[k]] if building[k] else [], unit="",
                           severity=severity(profile, rule),
                           message=f"电动自行车在{where_zh}{zh}{act_zh}（{refs[k]}），应清理",
                           message_en=f"e-bikes {act_en} in the {en}{where_en} ({refs[k]})", geometry=g[k]))
    return out


def site_findings(ctx: Any, sites: gpd.GeoDataFrame) -> list[Finding]:
    """EBIKE-SITE: a centralised site overlapping a fire lane or aerial area, or closer than
    `min_separation_m` to a residential building (use residential or not given).

    Returns
    -------
    list of Finding
        One ``fail`` per misplaced site; other_refs the lanes, areas and buildings involved, measured the least
        distance to a residential building when that fails (else the area covered on lanes/aerial areas),
        evidence the covered part or the shortest line to the building.
    """
    rule = "EBIKE-SITE"
    profile: Profile = ctx.profile
    limit = float(profile.get(rule, "min_separation_m"))
    central = sites[at.texts_in(sites, "kind", "", ("centralised_site",))]
    sg = at.geoms(central)
    if len(sg) == 0:
        return []
    n = len(sg)
    # on a lane or an aerial area
    zones = [at.layer(ctx, name) for name in ("fire_lanes", "aerial_areas")]
    zg = np.concatenate([at.geoms(f) for f in zones])
    zref = np.concatenate([at.refs(f) for f in zones])
    zname = np.concatenate([np.full(len(f), name, dtype=object) for name, f in zip(("lane", "aerial"), zones,
                                                                                   strict=True)])
    s, z = (STRtree(zg).query(sg, predicate="intersects") if len(zg) else (np.empty(0, int),) * 2)
    keep = ~shapely.touches(sg[s], zg[z])
    s, z = s[keep], z[keep]
    # per site the ground it covers (one vectorised union) and what it stands on
    on_sites, row = np.unique(s, return_inverse=True)
    covered = dict(zip(on_sites.tolist(), union_rows(shapely.intersection(sg[s], zg[z]), row, len(on_sites)),
                       strict=True))
    named: dict[int, dict[str, list[str]]] = {}
    for k, ref, what in zip(s.tolist(), zref[z].tolist(), zname[z].tolist(), strict=True):
        named.setdefault(k, {"lane": [], "aerial": [], "home": []})[what].append(ref)
    # near a residential building
    buildings = at.layer(ctx, "buildings")
    buildings = buildings[at.texts_in(buildings, "use", "residential", ("residential",))]
    bg = at.geoms(buildings)
    near_d = np.full(n, np.inf)
    near_line = np.full(n, None, dtype=object)
    if len(bg):
        ns, nb = STRtree(bg).query(sg, predicate="dwithin", distance=limit)
        d = shapely.distance(sg[ns], bg[nb])
        close = d < limit
        ns, nb, d = ns[close], nb[close], d[close]
        for k, ref in zip(ns.tolist(), at.refs(buildings)[nb].tolist(), strict=True):
            named.setdefault(k, {"lane": [], "aerial": [], "home": []})["home"].append(ref)
        np.minimum.at(near_d, ns, d)
        best = pd.DataFrame({"s": ns, "b": nb, "d": d}).sort_values("d").drop_duplicates("s")
        near_line[best["s"].to_numpy()] = shapely.shortest_line(sg[best["s"].to_numpy()], bg[best["b"].to_numpy()])
    refs, compound = at.refs(central), at.compound_refs(ctx, central)
    out = []
    for k in sorted(named):
        lanes, areas, homes = (sorted(named[k][what]) for what in ("lane", "aerial", "home"))
        zh, en = [], []
        if lanes:
            zh.append(f"占用消防车道 {'、'.join(lanes)}")
            en.append(f"occupies fire lane {', '.join(lanes)}")
        if areas:
            zh.append(f"占用登高操作场地 {'、'.join(areas)}")
            en.append(f"occupies aerial area {', '.join(areas)}")
        if homes:
            zh.append(f"距住宅 {'、'.join(homes)} {at.m(near_d[k])} m，小于 {at.m(limit)} m")
            en.append(f"{at.m(near_d[k])} m from residential building {', '.join(homes)} (min {at.m(limit)} m)")
            measured, required, unit, geometry = round(float(near_d[k]), 2), limit, "m", near_line[k]
        else:
            area = float(shapely.area(covered[k]))
            measured, required, unit, geometry = round(area, 2), 0.0, "m²", covered[k]
        out.append(Finding(rule=rule, verdict="fail", subject_ref=refs[k], compound_ref=compound[k],
                           other_refs=lanes + areas + homes, measured=measured, required=required, unit=unit,
                           severity=severity(profile, rule),
                           message=f"电动自行车集中停放场所 {refs[k]} " + "；".join(zh),
                           message_en=f"e-bike site {refs[k]} " + "; ".join(en), geometry=geometry))
    return out


def check(ctx: Any) -> gpd.GeoDataFrame:
    """EBIKE-INDOOR and EBIKE-SITE for the partition's own e-bike sites.

    Parameters
    ----------
    ctx : CheckContext
        Layers `ebike_sites`, `fire_lanes`, `aerial_areas`, `buildings` in the metric CRS `ctx.crs`.

    Returns
    -------
    GeoDataFrame
        The findings.
    """
    sites = at.layer(ctx, "ebike_sites")
    sites = sites[at.owned(ctx, sites)]
    return findings_frame([*indoor_findings(ctx, sites), *site_findings(ctx, sites)], crs=ctx.crs)
