"""Perimeter parking (traffic brigade): PARK-ENTRANCE, PARK-HYDRANT and PARK-LANE."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely import STRtree
from shapely.geometry.base import BaseGeometry

from gis.checks import attributes as at
from gis.checks import roads as rd
from gis.checks.findings import Finding, findings_frame, severity
from gis.checks.geometry import union_rows
from gis.checks.profiles import Profile

#: Partitions may hold several compounds (subjects filtered by ownership): see gis.checks.runner.
MULTI_COMPOUND = True

#: Numerical tolerance of the configuration-space tests (metres): a gap exactly as wide as the truck passes.
#: Not a rule value; it only keeps an erosion by exactly half the width from collapsing to nothing.
TOLERANCE_M = 1e-3
#: A stretch of a carriageway drawn as a surface is cut from its centre line grown out to the gate and a truck width
#: beyond, or by this many mean half-widths where that is farther (room for a lay-by across the road), then to the
#: drawn kerbs: its width is the drawn road's where the truck turns, whatever the surface's mean width.
KERB_REACH = 3.0
#: Bisection steps when measuring the clear width (the interval halves each step: mm precision on road widths).
BISECTION_STEPS = 16


def _parking(ctx: Any) -> gpd.GeoDataFrame:
    frame = at.layer(ctx, "parking")
    return frame[at.texts_in(frame, "kind", "", ("stall", "vehicle"))]


def footprints(frame: gpd.GeoDataFrame, profile: Profile) -> np.ndarray:
    """Parking footprints: polygons as drawn, points (observed vehicles) grown to the profile's point size."""
    g = at.geoms(frame)
    sizes = profile.get("LANE-CLEAR", "point_obstruction_size_m")
    size = float(sizes.get("vehicle", sizes["other"]))
    out = g.copy()
    points = shapely.get_dimensions(g) == 0
    out[points] = shapely.buffer(g[points], size / 2.0)  # polygons stay as drawn (and are not buffered at all)
    return out


# --- PARK-HYDRANT ---------------------------------------------------------------------------------------------


def hydrant_findings(ctx: Any, parking: gpd.GeoDataFrame) -> list[Finding]:
    """PARK-HYDRANT: a stall or vehicle within `clear_radius_m` of a hydrant (subject: the parking feature).

    Returns
    -------
    list of Finding
        One ``fail`` per parking feature; other_refs the hydrants, measured the least distance, evidence the
        stall / vehicle.
    """
    rule = "PARK-HYDRANT"
    profile: Profile = ctx.profile
    radius = float(profile.get(rule, "clear_radius_m"))
    hydrants = at.layer(ctx, "hydrants")
    pg, hg = at.geoms(parking), at.geoms(hydrants)
    if len(pg) == 0 or len(hg) == 0:
        return []
    p, h = STRtree(hg).query(pg, predicate="dwithin", distance=radius)
    if not len(p):
        return []
    d = shapely.distance(pg[p], hg[h])
    href = at.refs(hydrants)[h]
    order = np.argsort(p, kind="stable")  # per parking feature, its hydrants in the order found
    p, href, d = p[order], href[order], d[order]
    near, start = np.unique(p, return_index=True)
    stop = np.append(start[1:], len(p))
    those = parking.iloc[near]  # refs, compounds and kinds of the parking found only
    refs, compound = at.refs(those), at.compound_refs(ctx, those)
    kind = at.texts(those, "kind", "vehicle")
    out = []
    for k, (pi, a, b) in enumerate(zip(near.tolist(), start.tolist(), stop.tolist(), strict=True)):
        least = float(d[a:b].min())
        names = sorted(href[a:b].tolist())
        what_zh, what_en = ("车位", "stall") if kind[k] == "stall" else ("车辆", "vehicle")
        out.append(Finding(rule=rule, verdict="fail", subject_ref=refs[k], compound_ref=compound[k],
                           other_refs=list(href[a:b]), measured=round(least, 2), required=radius, unit="m",
                           severity=severity(profile, rule),
                           message=f"{what_zh} {refs[k]} 距消火栓 {'、'.join(names)} {at.m(least)} m，"
                                   f"小于 {at.m(radius)} m",
                           message_en=f"{what_en} {refs[k]} is {at.m(least)} m from hydrant(s) "
                                      f"{', '.join(names)}; keep {at.m(radius)} m clear",
                           geometry=pg[pi]))
    return out


# --- PARK-LANE ------------------------------------------------------------------------------------------------


def lane_findings(ctx: Any, parking: gpd.GeoDataFrame) -> list[Finding]:
    """PARK-LANE: a stall (kind stall) inside a compound drawn on a fire lane or an aerial area.

    Returns
    -------
    list of Finding
        One ``fail`` per stall overlapping (not merely touching) a lane or aerial area; other_refs what it
        covers, measured the covered area (m²), evidence the covered part.
    """
    rule = "PARK-LANE"
    profile: Profile = ctx.profile
    stalls = parking[at.texts_in(parking, "kind", "", ("stall",))]
    sg = at.geoms(stalls)
    zones = [(name, at.layer(ctx, name)) for name in ("fire_lanes", "aerial_areas")]
    zg = np.concatenate([at.geoms(f) for _, f in zones])
    zref = np.concatenate([at.refs(f) for _, f in zones])
    zkind = np.concatenate([np.full(len(f), name, dtype=object) for name, f in zones])
    if len(sg) == 0 or len(zg) == 0:
        return []
    s, z = STRtree(zg).query(sg, predicate="intersects")
    keep = ~shapely.touches(sg[s], zg[z])
    s, z = s[keep], z[keep]
    # inside a compound: so recorded, or (asked only of the stalls on a lane or area) standing in an outline
    inside = at.column(stalls, "compound_ref").notna().to_numpy().copy()
    outlines = at.geoms(at.layer(ctx, "compounds"))
    ask = np.unique(s[~inside[s]])
    if len(outlines) and len(ask):
        s_in, _ = STRtree(outlines).query(shapely.point_on_surface(sg[ask]), predicate="within")
        inside[ask[s_in]] = True
    keep = inside[s]
    s, z = s[keep], z[keep]
    if len(s) == 0:
        return []
    order = np.argsort(s, kind="stable")  # per stall, its lanes and areas in the order found
    s, z = s[order], z[order]
    stall, start = np.unique(s, return_index=True)
    stop = np.append(start[1:], len(s))
    covered = union_rows(shapely.intersection(sg[s], zg[z]), np.repeat(np.arange(len(stall)), stop - start),
                         len(stall))
    those = stalls.iloc[stall]  # refs and compounds of the stalls found only
    refs, compound = at.refs(those), at.compound_refs(ctx, those)
    out = []
    for k, (a, b) in enumerate(zip(start.tolist(), stop.tolist(), strict=True)):
        lanes = sorted(zref[z[a:b]][zkind[z[a:b]] == "fire_lanes"])
        areas = sorted(zref[z[a:b]][zkind[z[a:b]] == "aerial_areas"])
        zh = "、".join(x for x in (f"消防车道 {'、'.join(lanes)}" if lanes else "",
                                  f"登高操作场地 {'、'.join(areas)}" if areas else "") if x)
        en = ", ".join(x for x in (f"fire lane {', '.join(lanes)}" if lanes else "",
                                   f"aerial area {', '.join(areas)}" if areas else "") if x)
        area = float(shapely.area(covered[k]))
        out.append(Finding(rule=rule, verdict="fail", subject_ref=refs[k], compound_ref=compound[k],
                           other_refs=lanes + areas, measured=round(area, 2), required=0.0, unit="m²",
                           severity=severity(profile, rule),
                           message=f"车位 {refs[k]} 施划在{zh}上（{at.m(area)} m²），应取消",
                           message_en=f"stall {refs[k]} is drawn on {en} ({at.m(area)} m²)",
                           geometry=covered[k]))
    return out


# --- PARK-ENTRANCE --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Approach:
    """The ground a truck needs to turn from a city road into a vehicle entrance.

    `zone` is the road surface of the approach stretch (entrance width + approach length each side) joined to
    the strip from the road to the gate; `sources` the road just beyond each end of the stretch (where a truck
    arrives from), `target` the strip just inside the gate. Both extend one truck width beyond the zone, so an
    erosion by half the truck width still reaches into them. `outside` is the zone without the part inside the
    gate: parking there is perimeter parking (inside, it is a lane matter: LANE-CLEAR).
    """

    entrance: int
    road: int
    zone: BaseGeometry
    outside: BaseGeometry
    sources: BaseGeometry
    target: BaseGeometry
    upper: float


def _units(v: np.ndarray) -> np.ndarray:
    """Each row of an (n, 2) array scaled to length 1 (zero rows stay zero)."""
    n = np.sqrt((v * v).sum(axis=1))
    return np.divide(v, n[:, None], out=np.zeros_like(v), where=n[:, None] > 0)


def _substrings(lines: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """`shapely.ops.substring(lines[i], start[i], end[i])` of many LineStrings at once (0 <= start < end <=
    length): the points at both distances with the vertices strictly between them."""
    if not len(lines):
        return np.empty(0, dtype=object)
    first = shapely.get_coordinates(shapely.line_interpolate_point(lines, start))
    last = shapely.get_coordinates(shapely.line_interpolate_point(lines, end))
    xy, owner = shapely.get_coordinates(lines, return_index=True)
    d = np.diff(xy, axis=0)
    step = np.r_[0.0, np.sqrt(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1])]
    head = np.r_[True, owner[1:] != owner[:-1]]
    step[head] = 0.0
    along = pd.Series(step).groupby(owner).cumsum().to_numpy()  # per line, summed in vertex order
    tail = np.r_[owner[1:] != owner[:-1], True]
    inside = ~tail & (start[owner] < along) & (along < end[owner])
    n = len(lines)
    pts = np.concatenate([first, xy[inside], last])
    row = np.concatenate([np.arange(n), owner[inside], np.arange(n)])
    rank = np.concatenate([np.full(n, -1), np.flatnonzero(inside), np.full(n, len(xy))])
    order = np.lexsort((rank, row))
    return shapely.linestrings(pts[order], indices=row[order])


def vehicle_entrances(ctx: Any) -> gpd.GeoDataFrame:
    """The partition's vehicle entrances (kind vehicle, or no kind given)."""
    entrances = at.layer(ctx, "entrances")
    return entrances[at.vehicle_entrances(entrances)]


def approaches(ctx: Any, *, near: STRtree | None = None) -> tuple[list[Approach], pd.DataFrame]:
    """Approach zones of the partition's vehicle entrances facing a city road.

    Parameters
    ----------
    ctx : CheckContext
    near : STRtree, optional
        Of obstacles (parking footprints): only the zones whose `outside` part (road and mouth) may hold one of
        them are drawn (perimeter parking is what an entrance's finding is about). A zone lies within half the
        entrance width + the approach length + the truck width (along the road) + the road's reach across it
        (half its width; a drawn surface's reach, see KERB_REACH) and the gate's distance + half the entrance
        width + the truck width (the strip) of the point where the entrance faces the road's centre line.

    Returns
    -------
    (approaches, unmeasurable)
        The zones, and the entrances whose nearest city road has no width (columns: entrance, radius) — their
        approach cannot be drawn.
    """
    p = ctx.profile["PARK-ENTRANCE"]
    truck, length = float(p["truck_width_m"]), float(p["approach_length_m"])
    entrances = vehicle_entrances(ctx)
    roads = at.layer(ctx, "roads")
    roads = roads[at.city_roads(roads)]
    eg = at.geoms(entrances)
    if len(eg) == 0 or len(roads) == 0:
        return [], pd.DataFrame({"entrance": [], "radius": []})
    parts, owner = shapely.get_parts(shapely.line_merge(at.geoms(roads)), return_index=True)
    half = at.numbers(roads, "width_m")[owner] / 2.0
    e, r = STRtree(parts).query_nearest(eg, all_matches=False)
    line, hw = parts[r], half[r]
    width = at.numbers(entrances, "width_m")[e]
    width = np.where(np.isnan(width) | (width <= 0), truck, width)
    gap = shapely.distance(eg[e], line) - np.nan_to_num(hw)
    # a carriageway drawn as a surface has its own kerbs: measured and cut to them, not to the mean width
    kerbs = rd.drawn_surfaces(roads)[owner][r]
    drawn = ~pd.isna(kerbs)
    gap[drawn] = shapely.distance(eg[e[drawn]], kerbs[drawn])
    facing = gap <= length
    unknown = facing & np.isnan(hw)
    unmeasurable = pd.DataFrame({"entrance": e[unknown], "radius": width[unknown] / 2.0 + length})
    ok = np.flatnonzero(facing & ~np.isnan(hw) & (hw > 0))
    s = shapely.line_locate_point(line[ok], eg[e[ok]])
    foot = shapely.get_coordinates(shapely.line_interpolate_point(line[ok], s))
    gate = shapely.get_coordinates(eg[e[ok]])
    to_gate = np.hypot(*(gate - foot).T)
    # the road's half-width each side of the centre line: a line's own width; a drawn stretch reaches the gate
    # (a forecourt or a bay drawn into the road surface is road however deep it is) and is cut to its kerbs below
    grow = np.where(drawn[ok], np.maximum(KERB_REACH * hw[ok], to_gate + truck), hw[ok])
    if near is not None and len(ok):
        reach = (width[ok] / 2.0 + length + truck + grow + to_gate + truck + 1.0)
        hit = np.unique(near.query(shapely.points(foot), predicate="dwithin", distance=reach)[0])
        ok, s, foot, gate, grow = ok[hit], s[hit], foot[hit], gate[hit], grow[hit]
    lines, hw, w, length_of = line[ok], hw[ok], width[ok], shapely.length(line[ok])
    kerbs, drawn = kerbs[ok], drawn[ok]
    ahead = shapely.get_coordinates(shapely.line_interpolate_point(lines, s + truck))
    behind = shapely.get_coordinates(shapely.line_interpolate_point(lines, s - truck))
    tangent = _units(ahead - behind)
    normal = _units(gate - foot)
    flat = ~normal.any(axis=1)
    normal[flat] = np.stack([-tangent[flat, 1], tangent[flat, 0]], axis=1)
    side = np.stack([-normal[:, 1], normal[:, 0]], axis=1) * (w / 2.0)[:, None]
    a, b = s - w / 2.0 - length, s + w / 2.0 + length
    stretch = _substrings(lines, np.maximum(a - truck, 0.0), np.minimum(b + truck, length_of))
    mouth = shapely.polygons(np.stack([foot + side, gate + side, gate - side, foot - side], axis=1))
    road = shapely.buffer(stretch, grow, cap_style="flat")
    if near is not None and len(ok):
        # the zone's outside part is its road and mouth: only the approaches with an obstacle on the grown road
        # (a drawn road is cut from it) or in the mouth are drawn further (a few dozen of ~800 per group)
        hit = np.unique(np.concatenate([near.query(road, predicate="intersects")[0],
                                        near.query(mouth, predicate="intersects")[0]]))
        ok, s, foot, gate, grow, lines, hw, w, length_of, kerbs, drawn, side, normal, a, b, road, mouth = (
            v[hit] for v in (ok, s, foot, gate, grow, lines, hw, w, length_of, kerbs, drawn, side, normal, a, b,
                             road, mouth))
    deep = normal * truck
    inner = gate + deep
    road[drawn] = shapely.intersection(road[drawn], kerbs[drawn])
    strip = shapely.polygons(np.stack([foot + side, gate + side + deep, gate - side + deep, foot - side], axis=1))
    target = shapely.polygons(np.stack([gate + side, inner + side, inner - side, gate - side], axis=1))
    # the road beyond each end of the stretch (none where the road itself ends within it)
    before, after = np.flatnonzero(a > 0), np.flatnonzero(b < length_of)
    ends = np.concatenate([
        shapely.buffer(_substrings(lines[before], np.maximum(a[before] - truck, 0.0), a[before]), grow[before],
                       cap_style="flat"),
        shapely.buffer(_substrings(lines[after], b[after], np.minimum(b[after] + truck, length_of[after])),
                       grow[after], cap_style="flat"),
    ])
    end_of = np.concatenate([before, after])
    cut = drawn[end_of]
    ends[cut] = shapely.intersection(ends[cut], kerbs[end_of[cut]])
    sources = union_rows(ends, end_of, len(ok))
    zone, outside = shapely.union(road, strip), shapely.union(road, mouth)
    out = [Approach(entrance=int(e[i]), road=int(r[i]), zone=zone[k], outside=outside[k], sources=sources[k],
                    target=target[k], upper=max(float(w[k]), 2 * float(hw[k])))
           for k, i in enumerate(ok)]
    return out, unmeasurable


def passable(approach: Approach, obstacles: np.ndarray, radius: float) -> bool:
    """Whether a truck of half-width `radius` can go from the road beyond the zone into the gate.

    Configuration space: the zone eroded by `radius` minus the obstacles grown by `radius`; passable iff one of
    its parts touches both a source and the target.
    """
    block = shapely.union_all(obstacles) if len(obstacles) else None
    return bool(_passable([approach.zone], [approach.sources], [approach.target], [block], radius)[0])


def _passable(zones: Any, sources: Any, targets: Any, blocks: Any, radius: Any) -> np.ndarray:
    """`passable` of many zones at once: `blocks` the union of each zone's obstacles (None: none), `radius` one
    half-width or one per zone."""
    zones, blocks = np.asarray(zones, dtype=object), np.asarray(blocks, dtype=object)
    radius = np.broadcast_to(np.asarray(radius, dtype=float), zones.shape)
    free = shapely.buffer(zones, -radius)
    has = ~shapely.is_missing(blocks)
    free[has] = shapely.difference(free[has], shapely.buffer(blocks[has], radius[has]))
    parts, row = shapely.get_parts(free, return_index=True)
    ok = (shapely.intersects(parts, np.asarray(sources, dtype=object)[row])
          & shapely.intersects(parts, np.asarray(targets, dtype=object)[row]))
    out = np.zeros(len(zones), dtype=bool)
    out[row[ok]] = True
    return out


def clear_width(approach: Approach, obstacles: np.ndarray) -> float:
    """The widest truck that can still turn in (twice the largest passable half-width), by bisection."""
    return float(_clear_widths([approach], [shapely.union_all(obstacles) if len(obstacles) else None])[0])


def _clear_widths(approaches: list[Approach], blocks: Any) -> np.ndarray:
    """`clear_width` of many approaches at once (`blocks`: the union of each one's obstacles): the bisections run
    side by side, one vectorised configuration-space test per step for all of them."""
    n = len(approaches)
    if not n:
        return np.empty(0)
    zones = np.array([a.zone for a in approaches], dtype=object)
    sources = np.array([a.sources for a in approaches], dtype=object)
    targets = np.array([a.target for a in approaches], dtype=object)
    blocks = np.asarray(blocks, dtype=object)
    lo, hi = np.zeros(n), np.array([a.upper for a in approaches], dtype=float) / 2.0
    some = _passable(zones, sources, targets, blocks, TOLERANCE_M)
    for _ in range(BISECTION_STEPS):
        mid = (lo + hi) / 2.0
        ok = _passable(zones[some], sources[some], targets[some], blocks[some], mid[some])
        lo[some] = np.where(ok, mid[some], lo[some])
        hi[some] = np.where(ok, hi[some], mid[some])
    return np.array([round(2.0 * v, 2) if s else 0.0 for v, s in zip(lo.tolist(), some.tolist(), strict=True)])


def _named(ctx: Any, frame: pd.DataFrame, rows: list[int]) -> tuple[dict[int, str], dict[int, Any]]:
    """The refs and compounds of some rows of `frame` (by position), converted for those rows only."""
    rows = sorted(set(rows))
    those = frame.iloc[rows]
    return (dict(zip(rows, at.refs(those).tolist(), strict=True)),
            dict(zip(rows, at.compound_refs(ctx, those).tolist(), strict=True)))


def entrance_findings(ctx: Any, parking: gpd.GeoDataFrame, owned: np.ndarray) -> list[Finding]:
    """PARK-ENTRANCE: parking in the approach zone of a vehicle entrance that leaves a truck of `truck_width_m`
    unable to turn from the city road into the gate (configuration-space reasoning as LANE-CLEAR).

    The zone is the city-road surface in front of the entrance (entrance width + `approach_length_m` each
    side) plus the strip from the road to the gate. An entrance the truck cannot reach even without parking
    (a narrow road or gate) is a design matter, not a parking finding.

    Parameters
    ----------
    ctx : CheckContext
    parking : GeoDataFrame
        Every stall and vehicle of the partition (a neighbour's entrance can be blocked by parking this
        partition reports).
    owned : bool array
        Which of `parking` this partition reports on.

    Returns
    -------
    list of Finding
        ``fail`` per blocking parking feature (the ones that block on their own, else every one in the zone
        when only together they block); measured the clear width left, evidence the stall / vehicle.
        ``cannot_judge`` for parking near an entrance whose road has no width.
    """
    rule = "PARK-ENTRANCE"
    profile: Profile = ctx.profile
    truck = float(profile.get(rule, "truck_width_m"))
    pg = footprints(parking, profile)
    if len(pg) == 0:
        return []
    entrances = vehicle_entrances(ctx)  # the frame `approaches` numbers its zones' entrances in
    erefs = at.refs(entrances)
    drawn = at.geoms(parking)
    tree = STRtree(pg)
    zones, unknown = approaches(ctx, near=tree)  # zones no parking can reach are not drawn: they find nothing
    radius = truck / 2.0 - TOLERANCE_M
    out: list[Finding] = []
    blamed: dict[int, tuple[list[str], float]] = {}
    # the parking in each zone (what each zone's own query finds, in its order)
    zi, pj = tree.query(np.array([ap.outside for ap in zones], dtype=object), predicate="intersects") \
        if zones else (np.empty(0, dtype=int),) * 2
    keep = ~shapely.touches(pg[pj], np.array([zones[k].outside for k in zi], dtype=object))
    zi, pj = zi[keep], pj[keep]
    holds, start = np.unique(zi, return_index=True)
    stop = np.append(start[1:], len(zi))[:len(start)]
    inside = [pj[a:b] for a, b in zip(start.tolist(), stop.tolist(), strict=True)]
    held = [zones[k] for k in holds.tolist()]
    # blocked with all of its parking, open without any (else the entrance is a design matter)
    blocks = union_rows(pg[pj], np.repeat(np.arange(len(holds)), stop - start), len(holds))
    zone_g = np.array([ap.zone for ap in held], dtype=object)
    src = np.array([ap.sources for ap in held], dtype=object)
    tgt = np.array([ap.target for ap in held], dtype=object)
    blocked = (~_passable(zone_g, src, tgt, blocks, radius)
               & _passable(zone_g, src, tgt, np.full(len(held), None, dtype=object), radius))
    # which parking blocks on its own
    row = np.repeat(np.arange(len(holds)), stop - start)
    pick = blocked[row]
    alone = np.zeros(len(pj), dtype=bool)
    if pick.any():
        alone[pick] = ~_passable(zone_g[row[pick]], src[row[pick]], tgt[row[pick]],
                                 shapely.union_all(pg[pj[pick]][:, None], axis=1), radius)
    hit = np.flatnonzero(blocked)
    clear = _clear_widths([held[k] for k in hit], blocks[hit])
    for k, width in zip(hit.tolist(), clear.tolist(), strict=True):
        lone = alone[start[k]:stop[k]]
        culprits = inside[k][lone] if lone.any() else inside[k]
        for j in culprits.tolist():
            names, worst = blamed.get(j, ([], np.inf))
            blamed[j] = (names + [erefs[held[k].entrance]], min(worst, width))
    prefs, compound = _named(ctx, parking, [j for j in blamed if owned[j]])
    for j, (names, narrowest) in sorted(blamed.items()):
        if not owned[j]:
            continue
        out.append(Finding(
            rule=rule, verdict="fail", subject_ref=prefs[j], compound_ref=compound[j], other_refs=names,
            measured=narrowest, required=truck, unit="m", severity=severity(profile, rule),
            message=f"{prefs[j]} 停放在出入口 {'、'.join(names)} 前，消防车转入净宽仅 {at.m(narrowest)} m（应≥{at.m(truck)} m）",
            message_en=f"{prefs[j]} parked in front of entrance {', '.join(names)}: a fire truck turning in has "
                       f"{at.m(narrowest)} m clear (needs {at.m(truck)} m)",
            geometry=drawn[j]))
    if len(unknown):
        eg = at.geoms(entrances)
        e_idx = unknown["entrance"].to_numpy(dtype=int)
        ei, pj = tree.query(eg[e_idx], predicate="dwithin", distance=unknown["radius"].to_numpy())
        near = pd.DataFrame({"p": pj, "e": erefs[e_idx[ei]]})
        near = near[~near["p"].isin(list(blamed)) & owned[near["p"].to_numpy()]]
        prefs, compound = _named(ctx, parking, near["p"].tolist())
        for j, group in near.groupby("p", sort=True):
            names = sorted(set(group["e"]))
            out.append(Finding(
                rule=rule, verdict="cannot_judge", subject_ref=prefs[j], compound_ref=compound[j],
                other_refs=names, required=truck, unit="m", severity=severity(profile, rule),
                message=f"无法判定 {prefs[j]} 是否堵塞出入口 {'、'.join(names)}：城市道路缺少路面宽度 roads.width_m",
                message_en=f"cannot judge whether {prefs[j]} blocks entrance {', '.join(names)}: the city road "
                           f"has no width_m",
                geometry=drawn[j]))
    return out


def check(ctx: Any) -> gpd.GeoDataFrame:
    """PARK-ENTRANCE, PARK-HYDRANT and PARK-LANE for the partition's parking stalls and observed vehicles.

    Parameters
    ----------
    ctx : CheckContext
        Layers `parking`, `hydrants`, `entrances`, `roads`, `fire_lanes`, `aerial_areas`, `compounds` in the
        metric CRS `ctx.crs`; the `profile`.

    Returns
    -------
    GeoDataFrame
        The findings, each on a parking feature owned by this partition.
    """
    parking = _parking(ctx)
    owned = at.owned(ctx, parking)
    mine = parking[owned]
    return findings_frame([*entrance_findings(ctx, parking, owned), *hydrant_findings(ctx, mine),
                           *lane_findings(ctx, mine)], crs=ctx.crs)
