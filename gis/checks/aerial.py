"""Aerial operation area rules: AERIAL-SIZE, AERIAL-DISTANCE, AERIAL-OBSTRUCTED, AERIAL-CONNECTED, AERIAL-COVERAGE,
AERIAL-SLOPE."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
import shapely.ops
from shapely import STRtree
from shapely.geometry import LineString

from gis.checks import attributes as at
from gis.checks import geometry as gm
from gis.checks.context import CheckContext
from gis.checks.findings import Finding, findings_frame, severity
from gis.checks.lanes import KIND_ZH, departments, footprints, severity_of

#: Partitions may hold several compounds (lookups are per compound): see gis.checks.runner.
MULTI_COMPOUND = True

#: How far beyond the area-to-wall distance the facing wall reaches when the "between" zone is drawn (metres):
#: the wall stretch within distance + this of the area, so obstacles at the wall's foot in front of it count.
FACING_MARGIN_M = 1.0
#: Intervals of frontage closer than this (metres) are one continuous run (drawing noise).
JOIN_TOL_M = 0.05


@dataclass
class Areas:
    """The partition's aerial areas with their served buildings (index into the buildings frame, -1 if unknown)."""

    frame: gpd.GeoDataFrame
    geoms: np.ndarray
    refs: np.ndarray
    own: np.ndarray
    building_ref: np.ndarray
    building: np.ndarray
    crefs: np.ndarray


def _areas(ctx: CheckContext, buildings: gpd.GeoDataFrame) -> Areas:
    view = ctx.view("aerial_areas")
    areas = view.frame
    bref = at.texts(areas, "building_ref")
    bv = ctx.view("buildings")
    # building refs need not be unique across compounds ("1号楼"): look up in the area's compound first
    first: dict[tuple[str | None, str], int] = {}
    for k, (r, c) in enumerate(zip(bv.refs, bv.compound_refs, strict=True)):
        first.setdefault((c, str(r)), k)
        first.setdefault((None, str(r)), k)
    served = np.array([first.get((c, str(r)), first.get((None, str(r)), -1)) if r is not None else -1
                       for r, c in zip(bref, view.compound_refs, strict=True)], dtype=np.int64)
    return Areas(frame=areas, geoms=view.geoms, refs=view.refs, own=view.own, building_ref=bref,
                 building=served, crefs=view.compound_refs)


def _finding(ctx: CheckContext, a: Areas, i: int, **kw) -> Finding:
    return Finding(subject_ref=str(a.refs[i]), compound_ref=a.crefs[i], **kw)


def _unknown_building(ctx: CheckContext, a: Areas, i: int, rule: str) -> Finding:
    what_zh = f"服务建筑 {a.building_ref[i]} 不存在" if a.building_ref[i] is not None else "缺少服务建筑编号 building_ref"
    what_en = (f"served building {a.building_ref[i]} not found" if a.building_ref[i] is not None
               else "no served building (building_ref)")
    return _finding(ctx, a, i, rule=rule, verdict="cannot_judge", severity=0.0, geometry=a.geoms[i],
                    message=f"登高操作场地 {a.refs[i]} 无法判定: {what_zh}",
                    message_en=f"aerial area {a.refs[i]}: cannot judge, {what_en}")


# --- AERIAL-SIZE -------------------------------------------------------------------------------------------------


def aerial_size(ctx: CheckContext, a: Areas, buildings: gpd.GeoDataFrame) -> list[Finding]:
    """AERIAL-SIZE: the largest inscribed rectangle holds `min_length_m` x `min_width_m` (`tall_min_*` when the
    served building is higher than `tall_building_m`); an L-shape is judged by what fits inside, not its bbox."""
    profile = ctx.profile
    sec = profile["AERIAL-SIZE"]
    length, width = float(sec["min_length_m"]), float(sec["min_width_m"])
    tall_length, tall_width = float(sec["tall_min_length_m"]), float(sec["tall_min_width_m"])
    height, from_floors = at.building_heights(buildings, profile)
    own = np.flatnonzero(a.own)
    served_h = np.where(a.building[own] >= 0, height[np.maximum(a.building[own], 0)], np.nan) if len(height) else \
        np.full(len(own), np.nan)
    low = served_h <= float(sec["tall_building_m"])  # NaN (unknown) is not low
    # each test (vectorised, elementwise) asked only of the areas the ones before leave open
    quick = gm.rectangle_fits(a.geoms[own], max(length, tall_length), max(width, tall_width))
    ask = np.flatnonzero(~quick & low)
    quick[ask] = gm.rectangle_fits(a.geoms[own[ask]], length, width)
    # certificates that the rectangles fit: those areas need no search
    ask = np.flatnonzero(~quick)
    sure = gm.rectangles_surely_fit(a.geoms[own[ask]], length, width)
    quick[ask[sure & low[ask]]] = True
    ask = ask[sure & ~low[ask]]
    quick[ask] = gm.rectangles_surely_fit(a.geoms[own[ask]], tall_length, tall_width)
    out = []
    for p in np.flatnonzero(~quick):
        i = own[p]
        g = a.geoms[i]
        # the longest rectangle of the width decides both sizes of that width: a `length` x `width` one fits
        # exactly when it is that long (`fits_rectangle` tries the same orientations and stops at the first that
        # holds it; most areas that get here hold none, and then both searches run every orientation)
        fit = gm.max_length_at_width(g, width)
        small = fit.length < length - gm.SIZE_TOL_M
        if not small and low[p]:
            continue
        b = a.building[i]
        h = height[b] if b >= 0 else np.nan
        need_l, need_w = length, width
        if not small:
            tall_fit = fit if tall_width == width else gm.max_length_at_width(g, tall_width)
            if tall_fit.length >= tall_length - gm.SIZE_TOL_M:
                continue
            if np.isnan(h):
                why_zh = "服务建筑高度和层数均未知" if b >= 0 else "服务建筑未找到"
                why_en = "the served building has neither height nor floors" if b >= 0 else "served building not found"
                out.append(_finding(
                    ctx, a, int(i), rule="AERIAL-SIZE", verdict="cannot_judge", measured=round(fit.length, 2),
                    required=tall_length, severity=0.0, geometry=g,
                    message=f"登高操作场地 {a.refs[i]} 可容 {fit.length:.2f} x {width:g} m, 建筑高于 {sec['tall_building_m']:g} m "
                            f"时需 {tall_length:g} x {tall_width:g} m; 无法判定: {why_zh}",
                    message_en=f"aerial area {a.refs[i]} holds {fit.length:.2f} x {width:g} m; {tall_length:g} x "
                               f"{tall_width:g} m are needed for buildings over {sec['tall_building_m']:g} m; "
                               f"cannot judge: {why_en}",
                ))
                continue
            if h <= float(sec["tall_building_m"]):
                continue
            fit, need_l, need_w = tall_fit, tall_length, tall_width
        est = " (按层数估算高度)" if b >= 0 and from_floors[b] else ""
        out.append(_finding(
            ctx, a, int(i), rule="AERIAL-SIZE", verdict="fail", measured=round(fit.length, 2), required=need_l,
            other_refs=[str(a.building_ref[i])] if b >= 0 else [], severity=severity(profile, "AERIAL-SIZE"),
            geometry=fit.rectangle if fit.rectangle is not None else g,
            message=f"登高操作场地 {a.refs[i]} 最大内接矩形 {fit.length:.2f} x {need_w:g} m, 应不小于 "
                    f"{need_l:g} x {need_w:g} m{est}",
            message_en=f"aerial area {a.refs[i]}: largest inscribed rectangle {fit.length:.2f} x {need_w:g} m, "
                       f"at least {need_l:g} x {need_w:g} m required",
        ))
    return out


# --- AERIAL-DISTANCE ---------------------------------------------------------------------------------------------


def aerial_distance(ctx: CheckContext, a: Areas, buildings: gpd.GeoDataFrame) -> list[Finding]:
    """AERIAL-DISTANCE: the area's near edge is `min_distance_m` (advisory) to `max_distance_m` (mandatory) from
    the served building's external wall."""
    profile = ctx.profile
    sec = profile["AERIAL-DISTANCE"]
    lo, hi = float(sec["min_distance_m"]), float(sec["max_distance_m"])
    bg = at.geoms(buildings)
    own = np.flatnonzero(a.own)
    dist = np.full(len(a.geoms), np.nan)
    known = own[a.building[own] >= 0]
    dist[known] = shapely.distance(a.geoms[known], bg[a.building[known]])  # one vectorised call
    out = []
    for i in own:
        b = int(a.building[i])
        if b < 0:
            out.append(_unknown_building(ctx, a, int(i), "AERIAL-DISTANCE"))
            continue
        d = float(dist[i])
        if lo <= d <= hi:
            continue
        near = d < lo
        strength = "advisory" if near else "mandatory"
        need = lo if near else hi
        zh = f"宜不小于 {lo:g} m" if near else f"不应大于 {hi:g} m"
        en = f"should be at least {lo:g} m" if near else f"must not exceed {hi:g} m"
        out.append(_finding(
            ctx, a, int(i), rule="AERIAL-DISTANCE", verdict="fail", measured=round(d, 2), required=need,
            strength=strength, other_refs=[str(a.building_ref[i])],
            severity=severity_of(profile, "AERIAL-DISTANCE", strength),
            geometry=shapely.shortest_line(a.geoms[i], bg[b]),
            message=f"登高操作场地 {a.refs[i]} 距建筑 {a.building_ref[i]} 外墙 {d:.2f} m, {zh}",
            message_en=f"aerial area {a.refs[i]} is {d:.2f} m from the wall of building {a.building_ref[i]}, {en}",
        ))
    return out


# --- AERIAL-OBSTRUCTED -------------------------------------------------------------------------------------------


def operation_zones(areas: np.ndarray, buildings: np.ndarray) -> np.ndarray:
    """Each area plus the ground between it and its served building's facing wall (the wall stretch within the
    area-to-wall distance + FACING_MARGIN_M), the building itself excluded; the area alone where the building
    is unknown (None). Vectorised over the pairs."""
    out = np.asarray(areas, dtype=object).copy()
    known = np.array([b is not None for b in buildings], dtype=bool)
    if known.any():
        a, b = out[known], np.asarray(buildings, dtype=object)[known]
        d = shapely.distance(a, b)
        wall = shapely.intersection(shapely.boundary(b), shapely.buffer(a, d + FACING_MARGIN_M, quad_segs=4))
        zone = shapely.convex_hull(shapely.union(a, wall))
        out[known] = shapely.union(shapely.difference(zone, b), a)
    return out


def aerial_obstructed(ctx: CheckContext, a: Areas, buildings: gpd.GeoDataFrame) -> list[Finding]:
    """AERIAL-OBSTRUCTED: no obstruction of the profile's kinds (trees, overhead lines, vehicles, goods, stalls,
    gates...), parked vehicle or illegal structure inside the area or between it and the building."""
    profile = ctx.profile
    own = np.flatnonzero(a.own)
    if not len(own):
        return []
    kinds_ok = set(profile.get("AERIAL-OBSTRUCTED", "kinds"))
    obs = ctx.view("obstructions")
    # of the profile's kinds (selected by position: one take of the layer's frame, below)
    pick = np.flatnonzero(at.texts_in(obs.frame, "kind", "other", kinds_ok)) if len(obs) else \
        np.empty(0, dtype=np.int64)
    bg = at.geoms(buildings)
    served = np.array([bg[a.building[i]] if a.building[i] >= 0 else None for i in own], dtype=object)
    # the vehicles of the parking layer (the rows a view of it holds); their refs are taken for the hits only
    park = at.layer(ctx, "parking")
    vehicles = np.flatnonzero(at.texts_in(park, "kind", "stall", ("vehicle",))) if len(park) else \
        np.empty(0, dtype=np.int64)
    park_geoms = at.geoms(park)[vehicles]
    ill = ctx.view("illegal_structures")
    if len(ill):
        ill = ill.take(~at.texts_in(ill.frame, "status", "reported", ("demolished",)))
    # points grow into footprints by at most their size
    sizes = profile.get("LANE-CLEAR", "point_obstruction_size_m")
    size_m = np.nan_to_num(at.numbers(obs.frame, "size_m")[pick])
    grow = max([*map(float, sizes.values()), float(size_m.max(initial=0))])
    # a zone lies in the convex hull of its area and building: only areas whose hull something stands near (an
    # obstruction within its growth, a vehicle or a structure) get their zone drawn
    known = np.flatnonzero(~shapely.is_missing(served))
    members = np.concatenate([np.arange(len(own)), known])
    order = np.argsort(members, kind="stable")
    hulls = shapely.convex_hull(shapely.geometrycollections(
        np.concatenate([a.geoms[own], served[known]])[order], indices=members[order]))
    raw = np.concatenate([obs.geoms[pick], park_geoms, ill.geoms])
    reach = np.concatenate([np.full(len(pick), grow), np.zeros(len(park_geoms) + len(ill))])
    hit, near = STRtree(hulls).query(raw, predicate="dwithin", distance=reach) if len(raw) else \
        (np.empty(0, dtype=np.int64),) * 2
    near = np.unique(near)
    pick = pick[np.unique(hit[hit < len(pick)])]  # obstructions near no such hull are near no zone
    own, served = own[near], served[near]
    if not len(own):
        return []
    zones = operation_zones(a.geoms[own], served)
    if len(pick):
        # footprints only for what stands near an operation zone
        pick = pick[np.unique(STRtree(zones).query(obs.geoms[pick], predicate="dwithin", distance=grow)[0])]
    obs = obs.take(pick)
    g = np.concatenate([footprints(obs.frame, profile), park_geoms, ill.geoms])
    if not len(g):
        return []
    refs = np.concatenate([obs.refs, np.full(len(park_geoms), None, dtype=object), ill.refs])
    kinds = np.concatenate([at.texts(obs.frame, "kind", "other"), np.full(len(park_geoms), "vehicle", dtype=object),
                            np.full(len(ill), "illegal_structure", dtype=object)])
    zi, oi = STRtree(g).query(zones, predicate="intersects")
    inside = ~shapely.touches(zones[zi], g[oi])
    zi, oi = zi[inside], oi[inside]
    cars = np.unique(oi[(oi >= len(obs)) & (oi < len(obs) + len(park_geoms))])
    refs[cars] = at.refs(park.iloc[vehicles[cars - len(obs)]])
    out = []
    for z in np.unique(zi):
        i = int(own[z])
        hit = oi[zi == z]
        ks = sorted(set(kinds[hit]))
        rs = [str(x) for x in refs[hit]]
        out.append(_finding(
            ctx, a, i, rule="AERIAL-OBSTRUCTED", verdict="fail", measured=float(len(hit)), required=0.0,
            unit="count", other_refs=rs, department=departments(ks, profile),
            severity=severity(profile, "AERIAL-OBSTRUCTED"),
            geometry=shapely.intersection(zones[z], shapely.union_all(g[hit])),
            message=f"登高操作场地 {a.refs[i]} 或其与建筑之间有障碍物: "
                    f"{'、'.join(KIND_ZH.get(k, k) for k in ks)} ({', '.join(rs)})",
            message_en=f"aerial area {a.refs[i]} (or the ground between it and the building) is obstructed by "
                       f"{', '.join(k.replace('_', ' ') for k in ks)} ({', '.join(rs)})",
        ))
    return out


# --- AERIAL-CONNECTED --------------------------------------------------------------------------------------------


def aerial_connected(ctx: CheckContext, a: Areas) -> list[Finding]:
    """AERIAL-CONNECTED: the area touches a fire lane (gap at most `touch_tolerance_m`)."""
    profile = ctx.profile
    tol = float(profile.get("AERIAL-CONNECTED", "touch_tolerance_m"))
    own = np.flatnonzero(a.own)
    if not len(own):
        return []
    lanes = ctx.view("fire_lanes").geoms
    dist = np.full(len(own), np.inf)
    nearest_lane = np.full(len(own), -1)
    if len(lanes):
        tree = STRtree(lanes)
        # most areas touch a lane: only the others are measured (their nearest lane and its distance)
        apart = np.ones(len(own), dtype=bool)
        apart[tree.query(a.geoms[own], predicate="dwithin", distance=tol)[0]] = False
        far = np.flatnonzero(apart)
        (p, lane), d = tree.query_nearest(a.geoms[own[far]], return_distance=True, all_matches=False)
        dist[far[p]] = d
        nearest_lane[far[p]] = lane
        dist[~apart] = 0.0  # within the tolerance: connected (the value is not reported)
    out = []
    for p in np.flatnonzero(dist > tol):
        i = int(own[p])
        has = nearest_lane[p] >= 0
        out.append(_finding(
            ctx, a, i, rule="AERIAL-CONNECTED", verdict="fail",
            measured=round(float(dist[p]), 2) if has else None, required=tol,
            severity=severity(profile, "AERIAL-CONNECTED"),
            geometry=shapely.shortest_line(a.geoms[i], lanes[nearest_lane[p]]) if has else a.geoms[i],
            message=(f"登高操作场地 {a.refs[i]} 与最近消防车道相距 {dist[p]:.2f} m, 未连通" if has
                     else f"登高操作场地 {a.refs[i]} 附近没有消防车道"),
            message_en=(f"aerial area {a.refs[i]} is {dist[p]:.2f} m from the nearest fire lane, not connected" if has
                        else f"aerial area {a.refs[i]}: no fire lane nearby"),
        ))
    return out


# --- AERIAL-COVERAGE ---------------------------------------------------------------------------------------------


def frontage_runs(building: object, areas: np.ndarray, *, reach: float) -> tuple[np.ndarray, float, np.ndarray]:
    """Where aerial areas front a building: covered intervals along the perimeter of its minimum rotated rectangle.

    Each side is extruded outward by `reach`; the part of an area inside that strip, projected on the side, is the
    side's covered stretch.

    Returns
    -------
    (runs, perimeter, corners)
        `runs`: (n, 2) sorted, merged [start, end] positions along the perimeter (metres from the first corner);
        `perimeter`; `corners`: the rectangle's corner coordinates (closed ring, counter-clockwise).
    """
    areas = np.asarray(areas, dtype=object).reshape(-1)
    pairs = np.zeros(len(areas), dtype=np.int64), np.arange(len(areas))
    return frontages(np.array([building], dtype=object), areas, *pairs, reach=reach)[0]


def frontages(buildings: np.ndarray, areas: np.ndarray, pair_building: np.ndarray, pair_area: np.ndarray, *,
              reach: float) -> list[tuple[np.ndarray, float, np.ndarray]]:
    """`frontage_runs` of many buildings at once: building `pair_building[k]` is fronted by area `pair_area[k]`.

    The rectangles, side strips and area-strip intersections of every building are made in single vectorised
    calls; only the merge of each building's few intervals is per building.

    Returns
    -------
    list of (runs, perimeter, corners)
        One per building, as `frontage_runs` returns them.
    """
    buildings = np.asarray(buildings, dtype=object)
    n = len(buildings)
    xy, owner = shapely.get_coordinates(shapely.oriented_envelope(buildings), return_index=True)
    count = np.bincount(owner, minlength=n)
    box = np.flatnonzero(count >= 5)  # a degenerate rectangle (a line or a point) has no sides
    starts = np.cumsum(count) - count
    out: list[tuple[np.ndarray, float, np.ndarray]] = [
        (np.empty((0, 2)), 0.0, xy[starts[k]:starts[k] + count[k]]) for k in range(n)]
    if not len(box):
        return out
    ring = xy[starts[box][:, None] + np.arange(5)]
    turn = ~shapely.is_ccw(shapely.linearrings(ring))
    ring[turn] = ring[turn, ::-1]
    c0, c1 = ring[:, :4], ring[:, 1:5]
    edge = c1 - c0
    length = np.hypot(edge[..., 0], edge[..., 1])
    offsets = np.concatenate([np.zeros((len(box), 1)), np.cumsum(np.where(length < 1e-9, 0.0, length), axis=1)],
                             axis=1)
    intervals: list[list[tuple[float, float]]] = [[] for _ in range(len(box))]
    slot = np.full(n, -1)
    slot[box] = np.arange(len(box))
    pb, pa = slot[np.asarray(pair_building, dtype=np.int64)], np.asarray(pair_area, dtype=np.int64)
    pa, pb = pa[pb >= 0], pb[pb >= 0]
    # every (pair, side) with a side of non-zero length
    pk, side = np.nonzero(length[pb] >= 1e-9)
    if len(pk):
        b = pb[pk]
        u = edge[b, side] / length[b, side][:, None]
        normal = np.stack([u[:, 1], -u[:, 0]], axis=1) * reach  # outward for a counter-clockwise ring
        s0, s1 = c0[b, side], c1[b, side]
        corners = np.stack([s0, s1, s1 + normal, s0 + normal], axis=1)
        # a strip whose box is apart from the area's box holds none of it (the intersection is empty)
        area_box = shapely.bounds(np.asarray(areas, dtype=object))[pa[pk]]
        lo_xy, hi_xy = corners.min(axis=1), corners.max(axis=1)
        meet = np.flatnonzero((area_box[:, 0] <= hi_xy[:, 0]) & (lo_xy[:, 0] <= area_box[:, 2])
                              & (area_box[:, 1] <= hi_xy[:, 1]) & (lo_xy[:, 1] <= area_box[:, 3]))
        cut = shapely.intersection(np.asarray(areas, dtype=object)[pa[pk[meet]]], shapely.polygons(corners[meet]))
        hit = meet[~shapely.is_empty(cut)]
        cut = cut[~shapely.is_empty(cut)]
        if len(hit):
            cxy, piece = shapely.get_coordinates(cut, return_index=True)
            t = ((cxy - s0[hit][piece]) * u[hit][piece]).sum(axis=1)
            first = np.flatnonzero(np.r_[True, piece[1:] != piece[:-1]])  # every piece has coordinates
            lo = np.maximum(np.minimum.reduceat(t, first), 0.0)
            hi = np.minimum(np.maximum.reduceat(t, first), length[b[hit], side[hit]])
            good = hi > lo
            at_ = offsets[b[hit], side[hit]]
            for k, s_, e_ in zip(b[hit][good].tolist(), (at_ + lo)[good].tolist(), (at_ + hi)[good].tolist(),
                                 strict=True):
                intervals[k].append((s_, e_))
    for k, j in enumerate(box.tolist()):
        out[j] = (_merge(intervals[k], JOIN_TOL_M), float(offsets[k, -1]), ring[k])
    return out


def _merge(intervals: list[tuple[float, float]], gap: float) -> np.ndarray:
    if not intervals:
        return np.empty((0, 2))
    iv = np.array(sorted(intervals))
    out = [list(iv[0])]
    for s, e in iv[1:]:
        if s <= out[-1][1] + gap:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return np.array(out)


def best_frontage(runs: np.ndarray, perimeter: float, *, max_gap: float | None) -> float:
    """The longest continuous run (max_gap None), or the largest total length of runs chained with gaps of at
    most `max_gap`; runs wrap around the building's corners."""
    if not len(runs):
        return 0.0
    runs = runs.copy()
    if len(runs) > 1 and runs[0, 0] <= JOIN_TOL_M and runs[-1, 1] >= perimeter - JOIN_TOL_M:
        # the run through the first corner: join the last and the first
        runs[0, 0] = runs[-1, 0] - perimeter
        runs = runs[:-1]
    if max_gap is None:
        return float(min((runs[:, 1] - runs[:, 0]).max(), perimeter))
    n = len(runs)
    # chain around the ring: walk from every start through gaps <= max_gap (n is tiny)
    best = 0.0
    ext = np.vstack([runs, runs + perimeter])
    for s in range(n):
        total = ext[s, 1] - ext[s, 0]
        for k in range(s + 1, s + n):
            if ext[k, 0] - ext[k - 1, 1] > max_gap:
                break
            total += ext[k, 1] - ext[k, 0]
        best = max(best, total)
    return float(min(best, perimeter))


def aerial_coverage(ctx: CheckContext, a: Areas, buildings: gpd.GeoDataFrame) -> list[Finding]:
    """AERIAL-COVERAGE: a high-rise has aerial areas continuously along at least one long side, or along at least
    `perimeter_share` of its perimeter and not less than one long side; up to `tall_building_m` high, runs with
    gaps up to `max_gap_m` count by their total length. Sides are those of the minimum rotated rectangle; an area
    serves a side within `reach_m` of it. Subject: the building."""
    profile = ctx.profile
    sec = profile["AERIAL-COVERAGE"]
    reach, share = float(sec["reach_m"]), float(sec["perimeter_share"])
    if not len(buildings):
        return []
    bv = ctx.view("buildings")
    own = bv.own
    height, from_floors = at.building_heights(buildings, profile)
    limit = at.high_rise_limit(buildings, profile)
    brefs, crefs, bg = bv.refs, bv.compound_refs, bv.geoms
    out = []
    for j in np.flatnonzero(own & np.isnan(height)):
        out.append(Finding(
            rule="AERIAL-COVERAGE", verdict="cannot_judge", subject_ref=str(brefs[j]), compound_ref=crefs[j],
            severity=0.0, geometry=bg[j],
            message=f"建筑 {brefs[j]} 无法判定是否为高层建筑: 缺少高度和层数",
            message_en=f"building {brefs[j]}: cannot tell whether it is a high-rise, it has neither height nor floors",
        ))
    tall = np.flatnonzero(own & ~np.isnan(height) & (np.nan_to_num(height) > limit))
    # an area naming no building may serve any of them
    anyone = np.array([r is None for r in a.building_ref], dtype=bool)
    slot = np.full(len(bg), -1)
    slot[tall] = np.arange(len(tall))
    named = np.flatnonzero(~anyone & (a.building >= 0))
    named = named[slot[a.building[named]] >= 0]
    free = np.flatnonzero(anyone)
    pair_building = np.concatenate([slot[a.building[named]], np.repeat(np.arange(len(tall)), len(free))])
    pair_area = np.concatenate([named, np.tile(free, len(tall))])
    fronts = frontages(bg[tall], a.geoms, pair_building, pair_area, reach=reach)
    for j, (runs, perimeter, ring) in zip(tall, fronts, strict=True):
        if perimeter <= 0:
            continue
        (x0, y0), (x1, y1), (x2, y2) = ring[:3].tolist()
        long_side = float(max(np.hypot(x1 - x0, y1 - y0), np.hypot(x2 - x1, y2 - y1)))
        required = max(long_side, share * perimeter)
        gap = None if height[j] > float(sec["tall_building_m"]) else float(sec["max_gap_m"])
        got = best_frontage(runs, perimeter, max_gap=gap)
        if got >= required - JOIN_TOL_M:
            continue
        serving = (a.building == j) | anyone
        outline = LineString(ring)
        covered = [shapely.ops.substring(outline, s % perimeter, min(e, perimeter)) for s, e in runs]
        uncovered = (shapely.difference(outline, shapely.buffer(shapely.union_all(covered), 0.01))
                     if covered else outline)
        est_zh = "(按层数估算高度)" if from_floors[j] else ""
        gap_zh = f", 间隔不大于 {gap:g} m 的场地合计" if gap is not None else ", 连续布置"
        gap_en = f" (areas with gaps up to {gap:g} m counted together)" if gap is not None else " (continuous)"
        out.append(Finding(
            rule="AERIAL-COVERAGE", verdict="fail", subject_ref=str(brefs[j]), compound_ref=crefs[j],
            measured=round(got, 2), required=round(required, 2),
            other_refs=[str(x) for x in a.refs[serving]], severity=severity(profile, "AERIAL-COVERAGE"),
            geometry=uncovered,
            message=f"高层建筑 {brefs[j]} 登高操作面长度 {got:.2f} m{gap_zh}, 应不小于一个长边 {required:.2f} m{est_zh}",
            message_en=f"high-rise {brefs[j]} has {got:.2f} m of aerial operation frontage{gap_en}, at least one long "
                       f"side ({required:.2f} m) required",
        ))
    return out


# --- AERIAL-SLOPE ------------------------------------------------------------------------------------------------


def aerial_slope(ctx: CheckContext, a: Areas) -> list[Finding]:
    """AERIAL-SLOPE (advisory): recorded slope at most `max_slope_pct`; no slope, no finding."""
    profile = ctx.profile
    need = float(profile.get("AERIAL-SLOPE", "max_slope_pct"))
    slope = at.numbers(a.frame, "slope_pct") if len(a.geoms) else np.empty(0)
    return [_finding(
        ctx, a, int(i), rule="AERIAL-SLOPE", verdict="fail", measured=float(slope[i]), required=need,
        severity=severity(profile, "AERIAL-SLOPE"), geometry=a.geoms[i],
        message=f"登高操作场地 {a.refs[i]} 坡度 {slope[i]:.1f}%, 宜不大于 {need:g}%",
        message_en=f"aerial area {a.refs[i]} has a {slope[i]:.1f} % slope, should be at most {need:g} %",
    ) for i in np.flatnonzero(a.own & (slope > need))]


def check(ctx: CheckContext) -> gpd.GeoDataFrame:
    """All aerial-area rules for one partition.

    Parameters
    ----------
    ctx : CheckContext
        Aerial areas, buildings, fire lanes, obstructions, parking and illegal structures in `ctx.crs`.

    Returns
    -------
    GeoDataFrame
        Findings (``fail`` and ``cannot_judge``) with evidence geometry in `ctx.crs`.
    """
    buildings = ctx.view("buildings").frame
    a = _areas(ctx, buildings)
    found: list[Finding] = []
    found += aerial_size(ctx, a, buildings)
    found += aerial_distance(ctx, a, buildings)
    found += aerial_obstructed(ctx, a, buildings)
    found += aerial_connected(ctx, a)
    found += aerial_coverage(ctx, a, buildings)
    found += aerial_slope(ctx, a)
    return findings_frame(found, crs=ctx.crs)
