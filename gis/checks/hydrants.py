"""Hydrants: HYD-COVERAGE (hose-lay cover), HYD-SPACING, HYD-ACCESS, HYD-PLACEMENT and HYD-SERVICE."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely import STRtree
from shapely.ops import substring

from gis.checks import attributes as at
from gis.checks import geometry as gm
from gis.checks import network as nw
from gis.checks import roads as rd
from gis.checks.catalog import rule as rule_of
from gis.checks.context import OWNER_COLUMN
from gis.checks.findings import Finding, findings_frame, severity
from gis.checks.profiles import Profile

#: Partitions may hold several compounds (subjects filtered by ownership, network use decided per owner
#: compound): see gis.checks.runner.
MULTI_COMPOUND = True

#: Hydrant states that take a hydrant out of the hose-lay cover and fail HYD-SERVICE.
UNUSABLE = {"out_of_service": ("停用", "out of service"), "low_pressure": ("水压不足", "low pressure"),
            "damaged": ("损坏", "damaged")}
#: Road kinds a hydrant stands along (walkways carry hoses but not trucks).
VEHICLE_ROADS = ("city", "internal")


def _department(hydrants: pd.DataFrame, default: str) -> np.ndarray:
    """水利 for municipal supply, 物业/住建 for the compound's own network, else the catalogue's routing."""
    supply = at.texts(hydrants, "supply", "unknown")
    return np.select([supply == "municipal", supply == "compound"], ["水利", "物业/住建"], default).astype(object)


def _networked(ctx: Any, buildings: pd.DataFrame, roads: pd.DataFrame) -> np.ndarray:
    """Which buildings are measured along the network: those of a compound with paths of its own (internal
    roads or walkways), per owner compound so that a partition of several compounds decides each separately."""
    paths = ~at.city_roads(roads)
    if OWNER_COLUMN in buildings.columns and OWNER_COLUMN in roads.columns and getattr(ctx, "compounds", None):
        with_paths = roads.loc[paths, OWNER_COLUMN].dropna().unique()
        return at.isin(buildings[OWNER_COLUMN], with_paths)
    return np.full(len(buildings), bool((paths & at.owned(ctx, roads)).any()))


def coverage_findings(ctx: Any, *, network: bool = True) -> list[Finding]:
    """HYD-COVERAGE: every building within the hose-lay distance of an in-service hydrant.

    The hose lay is a straight hop from the hydrant to the nearest network point, along the network (roads of
    every kind, noded into a graph; multi-source Dijkstra from all hydrants at once), and a straight hop to the
    building's nearest wall point. A compound without a network of its own (no internal road or walkway) is
    measured in a straight line; the finding says which.

    Parameters
    ----------
    ctx : CheckContext
        Layers `buildings`, `hydrants`, `roads`; `profile["HYD-COVERAGE"]["max_hose_lay_m"]`.
    network : bool
        False measures every building in a straight line (the fallback path alone; the rule uses the network).

    Returns
    -------
    list of Finding
        One ``fail`` per uncovered building of the partition, severity by its floors; evidence the building.
    """
    rule = "HYD-COVERAGE"
    profile: Profile = ctx.profile
    limit = float(profile.get(rule, "max_hose_lay_m"))
    buildings = at.layer(ctx, "buildings")
    buildings = buildings[at.owned(ctx, buildings)]
    hydrants = at.layer(ctx, "hydrants")
    hydrants = hydrants[~at.texts_in(hydrants, "status", "in_service", UNUSABLE)]
    bg, hg = at.geoms(buildings), at.geoms(hydrants)
    if len(bg) == 0:
        return []
    roads = at.layer(ctx, "roads") if network else None
    networked = _networked(ctx, buildings, roads) if network else np.zeros(len(bg), dtype=bool)
    # straight line (buildings not measured along a network): which have a hydrant within the limit (one query
    # from the hydrants' side); the exact nearest distance is measured below for the buildings that fail (the
    # only ones it is reported for)
    within = np.zeros(len(bg), dtype=bool)
    off = np.flatnonzero(~networked)
    if len(hg) and len(off):
        within[off[STRtree(bg[off]).query(hg, predicate="dwithin", distance=limit)[1]]] = True
    dist = np.where(within, 0.0, np.inf)  # 0 stands for "within the limit"
    if networked.any():
        net = nw.build_network(rd.network_lines(roads))
        on = np.flatnonzero(networked)
        # bounds of the shortest hose lay from above: within the limit, the building is covered and needs no
        # finding (only failures are reported; 0 stands for covered). A lay through landings `attach` offers is
        # one of the lays the shortest is taken over: from each hydrant's nearest landing through a walkway drawn
        # to the wall (bounded without measuring it), else through the building's nearest landing; the others get
        # every landing of the hydrants and of the building and their exact distance
        nearest = nw.point_landing(net, hg, max_hop=limit)
        nodes = nw.node_distances(net, nearest)
        covered = nw.touch_bound(net, bg[on], nodes) <= limit
        dist[on[covered]] = 0.0
        on = on[~covered]
        dist[on] = nw.target_distances(net, nearest, nw.nearest_landing(net, bg[on], max_hop=limit), len(on),
                                       nodes=nodes)
        unsure = on[dist[on] > limit]
        if len(unsure):
            sources = nw.attach(net, hg, max_hop=limit)
            dist[unsure] = nw.target_distances(net, sources, nw.attach(net, bg[unsure], max_hop=limit),
                                               len(unsure), nodes=nw.node_distances(net, sources))
    fail = dist > limit
    straight = np.full(len(bg), np.inf)
    need = np.flatnonzero(fail)
    if len(hg) and len(need):
        (b, _), d = STRtree(hg).query_nearest(bg[need], return_distance=True, all_matches=False)
        straight[need[b]] = d
    dist[fail & ~networked] = straight[fail & ~networked]
    # refs, compounds and floors of the failing buildings only (a few of thousands)
    failed = np.flatnonzero(fail)
    those = buildings.iloc[failed]
    refs, compound = np.empty(len(bg), dtype=object), np.empty(len(bg), dtype=object)
    floors = np.zeros(len(bg), dtype=int)
    refs[failed], compound[failed] = at.refs(those), at.compound_refs(ctx, those)
    floors[failed] = at.floors_of(those, profile)
    out = []
    for k in failed:
        d = dist[k]
        how_zh, how_en = ("沿道路", "along the network") if networked[k] else ("直线", "straight line")
        if np.isfinite(d):
            msg = (f"建筑 {refs[k]} 距最近可用消火栓{how_zh} {at.m(d)} m（{how_en}），"
                   f"超过保护半径 {at.m(limit)} m")
            msg_en = (f"building {refs[k]} is {at.m(d)} m from the nearest in-service hydrant ({how_en}); "
                      f"beyond the {at.m(limit)} m hose lay")
        elif len(hg) == 0:
            msg = f"建筑 {refs[k]} 周边无可用消火栓（保护半径 {at.m(limit)} m）"
            msg_en = f"building {refs[k]}: no in-service hydrant in the area ({at.m(limit)} m hose lay)"
        else:
            msg = (f"建筑 {refs[k]} {at.m(limit)} m 内无{how_zh}可达的可用消火栓（{how_en}；"
                   f"直线最近 {at.m(straight[k])} m）")
            msg_en = (f"building {refs[k]}: no in-service hydrant within {at.m(limit)} m {how_en} "
                      f"(nearest {at.m(straight[k])} m in a straight line)")
        out.append(Finding(rule=rule, verdict="fail", subject_ref=refs[k], compound_ref=compound[k],
                           measured=round(float(d), 2) if np.isfinite(d) else None, required=limit, unit="m",
                           severity=severity(profile, rule, buildings=1, floors=int(floors[k])),
                           message=msg, message_en=msg_en, geometry=bg[k]))
    return out


def _road_lines(ctx: Any) -> np.ndarray:
    """Continuous vehicle-road lines: parts of the same road (kind + name, else ref) merged end to end."""
    roads = at.layer(ctx, "roads")
    roads = roads[at.texts_in(roads, "kind", "city", VEHICLE_ROADS)]
    if len(roads) == 0:
        return np.empty(0, dtype=object)
    key = np.where(pd.isna(at.column(roads, "name")).to_numpy(), at.refs(roads),
                   at.texts(roads, "name", "")).astype(str)
    key = np.char.add(np.char.add(at.texts(roads, "kind", "city").astype(str), "|"), key)
    # one union per road, in key order and feature order within a road (as a groupby would), in one call; a road
    # of one simple line (no crossing of itself) is what its union is, and needs none
    uniq, inverse = np.unique(key, return_inverse=True)
    lines = rd.mergeable_lines(roads)
    alone = np.bincount(inverse, minlength=len(uniq)) == 1
    one = alone[inverse] & (shapely.get_num_geometries(lines) <= 1) & shapely.is_simple(lines)
    merged = np.empty(len(uniq), dtype=object)
    merged[inverse[one]] = lines[one]
    rest = np.ones(len(uniq), dtype=bool)
    rest[inverse[one]] = False
    if rest.any():
        slot = np.cumsum(rest) - 1  # the union's row of each road that needs one
        pick = rest[inverse]
        merged[rest] = gm.union_rows(lines[pick], slot[inverse[pick]], int(rest.sum()))
    return shapely.get_parts(shapely.line_merge(merged))


def spacing_findings(ctx: Any) -> list[Finding]:
    """HYD-SPACING: consecutive hydrants along the same road or lane no farther apart than `max_spacing_m`.

    Each hydrant is projected onto its nearest vehicle-road line (`line_locate_point`); hydrants are sorted
    along each line and consecutive positions differenced (on a ring road the last and the first hydrant are
    consecutive too). All hydrants count, whatever their status (spacing is
    a property of the layout; an unusable hydrant fails HYD-SERVICE).

    Returns
    -------
    list of Finding
        One ``fail`` per gap, on the hydrant of the pair with the smaller ref (other_refs the other), evidence
        the stretch of road between them.
    """
    rule = "HYD-SPACING"
    profile: Profile = ctx.profile
    limit = float(profile.get(rule, "max_spacing_m"))
    hydrants = at.layer(ctx, "hydrants")
    lines = _road_lines(ctx)
    hg = at.geoms(hydrants)
    if len(hg) < 2 or len(lines) == 0:
        return []
    h, line = STRtree(lines).query_nearest(hg, all_matches=False)
    pos = shapely.line_locate_point(lines[line], hg[h])
    order = np.lexsort((pos, line))
    h, line, pos = h[order], line[order], pos[order]
    same = np.flatnonzero(line[1:] == line[:-1])
    pairs = pd.DataFrame({"a": h[same], "b": h[same + 1], "line": line[same], "start": pos[same],
                          "end": pos[same + 1], "gap": pos[same + 1] - pos[same]})
    # on a ring road the last hydrant is followed by the first one again
    length = shapely.length(lines)
    on_line, first, count = np.unique(line, return_index=True, return_counts=True)  # sorted by line, then pos
    last = first + count - 1
    ring = (count > 1) & shapely.is_closed(lines[on_line])
    first, last, ln = first[ring], last[ring], on_line[ring]
    wrap = pd.DataFrame({"a": h[last], "b": h[first], "line": ln, "start": pos[last], "end": pos[first],
                         "gap": length[ln] - pos[last] + pos[first]})
    pairs = pd.concat([pairs, wrap], ignore_index=True)
    # two hydrants on a ring are consecutive both ways round: the longer arc is their spacing
    pairs["lo"], pairs["hi"] = np.minimum(pairs["a"], pairs["b"]), np.maximum(pairs["a"], pairs["b"])
    pairs = pairs.sort_values("gap", ascending=False).drop_duplicates(["lo", "hi"]).sort_index()
    pairs = pairs.loc[pairs["gap"] > limit, ["a", "b", "line", "start", "end", "gap"]]
    refs, mine, compound = at.refs(hydrants), at.owned(ctx, hydrants), at.compound_refs(ctx, hydrants)
    rank = at.ranks(hydrants)
    out = []
    for a, b, ln, start, end, gap in pairs.itertuples(index=False):
        subject, other = (a, b) if rank[a] < rank[b] else (b, a)
        if not mine[subject]:
            continue
        road = lines[ln]
        stretch = (substring(road, start, end) if start <= end else
                   shapely.line_merge(shapely.union(substring(road, start, road.length), substring(road, 0, end))))
        out.append(Finding(
            rule=rule, verdict="fail", subject_ref=refs[subject], compound_ref=compound[subject],
            other_refs=[refs[other]], measured=round(float(gap), 2), required=limit, unit="m",
            severity=severity(profile, rule),
            message=f"消火栓 {refs[a]} 与 {refs[b]} 沿道路间距 {at.m(gap)} m，超过 {at.m(limit)} m",
            message_en=f"hydrants {refs[a]} and {refs[b]} are {at.m(gap)} m apart along the road; max {at.m(limit)} m",
            geometry=stretch))
    return out


def _ground_obstructions(ctx: Any, near: np.ndarray | None = None) -> gpd.GeoDataFrame:
    """Obstructions standing on the ground, as footprints (points grown to their size).

    With `near` (hydrant points), only the obstructions whose footprint may touch one of them: a point's disc
    (its buffer lies inside the circle of its radius) only when the point is within the largest radius any
    point may have (the profile's sizes, the recorded ones) of a hydrant, so the thousands of far-away bollards
    and trees are never sized nor buffered; the caller's intersects test decides exactly.
    """
    obs = at.layer(ctx, "obstructions")
    g = at.geoms(obs)
    dims = shapely.get_dimensions(g)
    keep = (np.nan_to_num(at.numbers(obs, "bottom_m")) <= 0) & (dims != 1)
    sizes = ctx.profile.get("LANE-CLEAR", "point_obstruction_size_m")
    if near is not None:
        pi = np.flatnonzero(keep & (dims == 0))
        keep &= dims != 0
        if len(pi) and len(near):
            recorded = at.numbers(obs, "size_m")[pi]
            largest = max([float(v) for v in sizes.values()]
                          + ([float(np.nanmax(recorded))] if (~np.isnan(recorded)).any() else []))
            hit, _ = STRtree(np.asarray(near, dtype=object)).query(g[pi], predicate="dwithin",
                                                                   distance=max(largest, 0.0) / 2.0)
            keep[pi[hit]] = True
    obs = obs[keep]
    g = g[keep]
    kind = at.texts(obs, "kind", "other")
    default = pd.Series(kind, dtype=object).map({k: float(v) for k, v in sizes.items()}).fillna(
        float(sizes["other"])).to_numpy(dtype=float)
    size = at.numbers(obs, "size_m")
    size = np.where(np.isnan(size), default, size)
    points = shapely.get_dimensions(g) == 0
    footprint = g.copy()
    footprint[points] = shapely.buffer(g[points], size[points] / 2.0)
    return obs.set_geometry(gpd.GeoSeries(footprint, index=obs.index, crs=ctx.crs))


def access_findings(ctx: Any) -> list[Finding]:
    """HYD-ACCESS: no parking (stall or vehicle) within `clear_radius_m` of a hydrant and no obstruction on it.

    Returns
    -------
    list of Finding
        One ``fail`` per blocked hydrant; other_refs the parking and obstruction refs, measured the least
        distance to them, evidence their footprints.
    """
    rule = "HYD-ACCESS"
    profile: Profile = ctx.profile
    radius = float(profile.get(rule, "clear_radius_m"))
    hydrants = at.layer(ctx, "hydrants")
    hydrants = hydrants[at.owned(ctx, hydrants)]
    hg = at.geoms(hydrants)
    parking = at.layer(ctx, "parking")
    parking = parking[at.texts_in(parking, "kind", "", ("stall", "vehicle"))]
    obs = _ground_obstructions(ctx, near=hg)
    pg, og = at.geoms(parking), at.geoms(obs)
    if len(hg) == 0 or (len(pg) == 0 and len(og) == 0):
        return []
    hp, p = STRtree(pg).query(hg, predicate="dwithin", distance=radius) if len(pg) else (np.empty(0, int),) * 2
    ho, o = STRtree(og).query(hg, predicate="intersects") if len(og) else (np.empty(0, int),) * 2
    refs, compound = at.refs(hydrants), at.compound_refs(ctx, hydrants)
    h = np.concatenate([hp, ho])
    if not len(h):
        return []
    ref = np.concatenate([at.refs(parking.iloc[p]), at.refs(obs.iloc[o])])  # of the hits only
    is_park = np.concatenate([np.ones(len(hp), dtype=bool), np.zeros(len(ho), dtype=bool)])
    d = np.concatenate([shapely.distance(hg[hp], pg[p]), np.zeros(len(ho))])
    geom = np.concatenate([pg[p], og[o]])
    # per hydrant, its hits in the order found (parking first, then obstructions), as a stable groupby gives them
    order = np.argsort(h, kind="stable")
    h, ref, is_park, d, geom = h[order], ref[order], is_park[order], d[order], geom[order]
    blocked, start = np.unique(h, return_index=True)
    stop = np.append(start[1:], len(h))
    evidence = gm.union_rows(geom, np.repeat(np.arange(len(blocked)), stop - start), len(blocked))
    catalogue = rule_of(rule).department
    out = []
    for k, (hi, a, b) in enumerate(zip(blocked.tolist(), start.tolist(), stop.tolist(), strict=True)):
        park = sorted(ref[a:b][is_park[a:b]])
        block = sorted(ref[a:b][~is_park[a:b]])
        zh, en = [], []
        if park:
            zh.append(f"{at.m(radius)} m 内停车 {'、'.join(park)}")
            en.append(f"parking within {at.m(radius)} m: {', '.join(park)}")
        if block:
            zh.append(f"被 {'、'.join(block)} 遮挡/占压")
            en.append(f"obstructed by {', '.join(block)}")
        dept = "交警/公安" if not block else ("综合执法" if not park else catalogue)
        out.append(Finding(rule=rule, verdict="fail", subject_ref=refs[hi], compound_ref=compound[hi],
                           other_refs=list(ref[a:b]), measured=round(float(d[a:b].min()), 2), required=radius,
                           unit="m", severity=severity(profile, rule), department=dept,
                           message=f"消火栓 {refs[hi]} " + "，".join(zh),
                           message_en=f"hydrant {refs[hi]}: " + "; ".join(en), geometry=evidence[k]))
    return out


def placement_findings(ctx: Any) -> list[Finding]:
    """HYD-PLACEMENT (advisory): distance to the nearest vehicle-road edge within [min, max]_to_road_edge_m
    (road surface = centre line buffered by half its width, flat caps; a fire lane's polygon is a road surface
    too, so a hydrant inside a compound is measured to the lane it stands beside) and at least `min_to_wall_m`
    from a building wall (wall-mounted hydrants exempt from the wall distance).

    Returns
    -------
    list of Finding
        ``fail`` when a distance is out of range; ``cannot_judge`` when the nearest road has no width (or there
        is no road) and the wall distance is fine.
    """
    rule = "HYD-PLACEMENT"
    profile: Profile = ctx.profile
    p = profile[rule]
    hydrants = at.layer(ctx, "hydrants")
    hydrants = hydrants[at.owned(ctx, hydrants)]
    hg = at.geoms(hydrants)
    if len(hg) == 0:
        return []
    roads = at.layer(ctx, "roads")
    roads = roads[at.texts_in(roads, "kind", "city", VEHICLE_ROADS)]
    n = len(hg)
    edge_d = np.full(n, np.nan)
    edge_line = np.full(n, None, dtype=object)
    known = rd.widths_known(roads)
    centre = at.geoms(roads)
    # what a hydrant stands beside: city and internal road surfaces, and the fire lanes (inside a compound the
    # lane polygon is the carriageway, drawn or not as an internal road)
    lanes = at.geoms(at.layer(ctx, "fire_lanes"))
    lanes = lanes[np.isin(shapely.get_type_id(lanes), (3, 6))] if len(lanes) else lanes
    if known.any() or len(lanes):
        surfaces = np.concatenate([rd.surfaces(roads[known]), lanes])
        tree = STRtree(surfaces)
        # the nearest kerb of most hydrants is within the range: the least distance to the kerbs within its far
        # end is then exact and nothing more is needed; the others get the nearest query (whose pick among
        # equally near surfaces is the evidence)
        hh, rr = tree.query(hg, predicate="dwithin", distance=p["max_to_road_edge_m"])
        near = np.full(n, np.inf)
        np.minimum.at(near, hh, shapely.distance(hg[hh], surfaces[rr]))
        fine = (near >= p["min_to_road_edge_m"]) & (near <= p["max_to_road_edge_m"])
        edge_d[fine] = near[fine]
        rest = np.flatnonzero(~fine)
        (h, r), d = tree.query_nearest(hg[rest], all_matches=False, return_distance=True)
        h = rest[h]
        edge_d[h] = d
        # a hydrant standing on the carriageway: the evidence is the hop to the kerb
        edge_line[h] = shapely.shortest_line(hg[h], np.where(d > 0, surfaces[r], shapely.boundary(surfaces[r])))
    if (~known).any():
        # a road of unknown width whose centre line is nearer than the nearest known kerb: cannot judge
        (h, _), d = STRtree(centre[~known]).query_nearest(hg, all_matches=False, return_distance=True)
        edge_d[h[d < np.nan_to_num(edge_d[h], nan=np.inf)]] = np.nan
    buildings = at.layer(ctx, "buildings")
    wall_d = np.full(n, np.inf)
    wall_line = np.full(n, None, dtype=object)
    wall_mounted = at.texts_in(hydrants, "kind", "above_ground", ("wall",))
    if len(buildings):
        bg = at.geoms(buildings)
        tree = at.tree(ctx, "buildings")
        # only a wall nearer than the minimum is reported: the nearest is looked for where one is that near
        close = np.unique(tree.query(hg, predicate="dwithin", distance=p["min_to_wall_m"])[0])
        h, b = tree.query_nearest(hg[close], all_matches=False)
        h = close[h]
        wall_d[h] = shapely.distance(hg[h], bg[b])
        wall_line[h] = shapely.shortest_line(hg[h], bg[b])
    too_near_road = edge_d < p["min_to_road_edge_m"]
    too_far_road = edge_d > p["max_to_road_edge_m"]
    near_wall = (wall_d < p["min_to_wall_m"]) & ~wall_mounted
    unknown_road = np.isnan(edge_d)
    fail = too_near_road | too_far_road | near_wall
    judge = unknown_road & ~fail
    refs, compound = at.refs(hydrants), at.compound_refs(ctx, hydrants)
    sev = severity(profile, rule)
    out = []
    for k in np.flatnonzero(fail | judge):
        zh, en = [], []
        measured = required = None
        geometry = hg[k]
        if too_near_road[k] or too_far_road[k]:
            required = p["min_to_road_edge_m"] if too_near_road[k] else p["max_to_road_edge_m"]
            measured, geometry = edge_d[k], edge_line[k]
            zh.append(f"距道路(消防车道)边缘 {at.m(edge_d[k])} m，宜在 {at.m(p['min_to_road_edge_m'])}–{at.m(p['max_to_road_edge_m'])} m")
            en.append(f"{at.m(edge_d[k])} m from the road (or fire lane) edge, should be "
                      f"{at.m(p['min_to_road_edge_m'])}-{at.m(p['max_to_road_edge_m'])} m")
        if near_wall[k]:
            if measured is None:
                measured, required, geometry = wall_d[k], p["min_to_wall_m"], wall_line[k]
            zh.append(f"距建筑外墙 {at.m(wall_d[k])} m，宜不小于 {at.m(p['min_to_wall_m'])} m")
            en.append(f"{at.m(wall_d[k])} m from a building wall, should be >= {at.m(p['min_to_wall_m'])} m")
        if judge[k]:
            zh.append("无法判定距道路边缘：最近道路缺少路面宽度 roads.width_m" if len(roads) else "无法判定：无道路数据 roads")
            en.append("cannot judge the road-edge distance: the nearest road has no width_m" if len(roads)
                      else "cannot judge: no roads in the area")
        out.append(Finding(rule=rule, verdict="fail" if fail[k] else "cannot_judge", subject_ref=refs[k],
                           compound_ref=compound[k],
                           measured=None if measured is None else round(float(measured), 2),
                           required=required, unit="m", severity=sev,
                           message=f"消火栓 {refs[k]} " + "；".join(zh),
                           message_en=f"hydrant {refs[k]}: " + "; ".join(en), geometry=geometry))
    return out


def service_findings(ctx: Any) -> list[Finding]:
    """HYD-SERVICE: hydrants marked out of service, low pressure or damaged (routed to 水利 when municipal).

    Returns
    -------
    list of Finding
        One ``fail`` per unusable hydrant; evidence the hydrant.
    """
    rule = "HYD-SERVICE"
    profile: Profile = ctx.profile
    hydrants = at.layer(ctx, "hydrants")
    hydrants = hydrants[at.owned(ctx, hydrants)]
    status = at.texts(hydrants, "status", "in_service")
    bad = np.isin(status, list(UNUSABLE))
    refs, compound, hg = at.refs(hydrants), at.compound_refs(ctx, hydrants), at.geoms(hydrants)
    dept = _department(hydrants, rule_of(rule).department)
    return [Finding(rule=rule, verdict="fail", subject_ref=refs[k], compound_ref=compound[k], unit="",
                    severity=severity(profile, rule), department=dept[k],
                    message=f"消火栓 {refs[k]} {UNUSABLE[status[k]][0]}，应修复",
                    message_en=f"hydrant {refs[k]} is {UNUSABLE[status[k]][1]}", geometry=hg[k])
            for k in np.flatnonzero(bad)]


def check(ctx: Any) -> gpd.GeoDataFrame:
    """All hydrant rules for the partition.

    Parameters
    ----------
    ctx : CheckContext
        Layers `hydrants`, `buildings`, `roads`, `parking`, `obstructions` in the metric CRS `ctx.crs`.

    Returns
    -------
    GeoDataFrame
        HYD-COVERAGE, HYD-SPACING, HYD-ACCESS, HYD-PLACEMENT and HYD-SERVICE findings.
    """
    return findings_frame([*coverage_findings(ctx), *spacing_findings(ctx), *access_findings(ctx),
                           *placement_findings(ctx), *service_findings(ctx)], crs=ctx.crs)
