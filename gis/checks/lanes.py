"""Fire-lane rules: LANE-WIDTH, LANE-CLEAR, LANE-HEADROOM, LANE-TURNAROUND, LANE-CONNECT, LANE-TURN (gis.checks.turns),
LANE-SETBACK, LANE-SLOPE, on one lane network whose kinds come from its topology."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from shapely import STRtree

from gis.checks import attributes as at
from gis.checks import geometry as gm
from gis.checks.catalog import rule as rule_of
from gis.checks.context import CheckContext
from gis.checks.findings import Finding, findings_frame, severity
from gis.checks.profiles import Profile
from gis.checks.turns import lane_turn

#: Partitions may hold several compounds (per-compound parts group by owner): see gis.checks.runner.
MULTI_COMPOUND = True

#: A lane's entry is where it comes within this distance of a city-road surface, a vehicle entrance or another
#: lane (data-model convention; drawing tolerance, not a rule value).
ENTRY_TOL_M = 1.0
#: Lanes whose edges meet within this distance (floating point after reprojection) are one surface (metres).
SEAM_M = 0.005
#: How much farther than half the truck width an entry may lie from the eroded lane (flat or oblique lane ends).
REACH_TOL_M = 0.5
#: Margin (metres) around an obstruction cluster's dilation inside which its local effect on passage is judged.
WINDOW_M = 2.0
#: Thickness given to ground lines (chains, fences) without a size.
LINE_FOOTPRINT_M = 0.1

#: Default responsible departments per obstruction kind (a profile may override them in a [DEPARTMENTS] table).
DEPARTMENTS: dict[str, str] = {
    "vehicle": "交警/公安",
    "stacked_goods": "综合执法/城管",
    "stall": "综合执法/城管",
    "shed": "综合执法/城管",
    "other": "综合执法/城管",
    "illegal_structure": "三改一拆办/综合执法",
    "tree": "综合执法(绿化)",
    "bollard": "物业/住建",
    "ground_lock": "物业/住建",
    "gate": "物业/住建",
    "arch": "物业/住建",
    "overhead_line": "物业/住建",
}
KIND_ZH: dict[str, str] = {
    "vehicle": "车辆", "stacked_goods": "堆放物", "stall": "摊位", "shed": "棚", "other": "其他障碍物",
    "illegal_structure": "违章建筑", "tree": "树木", "bollard": "隔离桩", "ground_lock": "地锁", "gate": "门闸",
    "arch": "拱门", "overhead_line": "架空线",
}


def departments(kinds: Iterable[str], profile: Profile) -> str:
    """The departments responsible for obstructions of `kinds` (profile [DEPARTMENTS] overrides the defaults)."""
    table = {**DEPARTMENTS, **profile.values.get("DEPARTMENTS", {})}
    out = dict.fromkeys(table.get(k, table["other"]) for k in kinds)
    return "; ".join(out)


def severity_of(profile: Profile, rule_id: str, strength: str, *, buildings: int = 0, floors: int = 0) -> float:
    """`findings.severity`, but for a finding whose strength differs from its rule's (advisory sub-checks)."""
    if strength == rule_of(rule_id).strength:
        return severity(profile, rule_id, buildings=buildings, floors=floors)
    s = profile["SEVERITY"]
    return round(s[strength] + s["per_building"] * buildings + s["per_floor"] * floors, 3)


def footprints(obstructions: gpd.GeoDataFrame, profile: Profile) -> np.ndarray:
    """Ground footprints of obstructions: polygons as drawn, points as discs of size_m (or the profile's size
    for the kind), lines as thin strips."""
    g = at.geoms(obstructions)
    if not len(g):
        return g
    size = at.numbers(obstructions, "size_m")
    kinds = at.texts(obstructions, "kind", "other")
    table = profile.get("LANE-CLEAR", "point_obstruction_size_m")
    default = np.array([float(table.get(k, table["other"])) for k in kinds])
    size = np.where(np.isnan(size), np.nan, size)
    tid = shapely.get_type_id(g)
    points = np.isin(tid, (0, 4))
    lines = np.isin(tid, (1, 2, 5))
    radius = np.where(points, np.where(np.isnan(size), default, size) / 2.0,
                      np.where(np.isnan(size), LINE_FOOTPRINT_M, size) / 2.0)
    out = g.copy()
    grow = points | lines
    if grow.any():
        out[grow] = shapely.buffer(g[grow], radius[grow], quad_segs=4)
    return out


# --- the lane network of a partition ---------------------------------------------------------------------------


@dataclass
class LaneNetwork:
    """The context's lanes with their entry zones and contacts.

    `ext_lane`/`ext_zone`: zones where a lane meets a city-road surface or a vehicle entrance (ENTRY_TOL_M;
    `ext_gate` tells which are vehicle entrances);
    `adj_i`/`adj_j`/`adj_zone`: where lane i meets lane j (zone inside lane i; each drawn on first use by
    `contact_zones`, since LANE-CLEAR needs only which lanes meet and the kinds need no ring's zones).
    """

    frame: gpd.GeoDataFrame
    geoms: np.ndarray
    refs: np.ndarray
    kinds: np.ndarray
    own: np.ndarray
    ext_lane: np.ndarray
    ext_zone: np.ndarray
    adj_i: np.ndarray
    adj_j: np.ndarray
    adj_zone: np.ndarray | None
    ext_gate: np.ndarray
    crefs: np.ndarray
    #: the `kind` each lane's data claims (None where untagged); `kinds` are derived from the geometry
    claims: np.ndarray | None = None
    #: the city road surfaces the entry zones were found on (`attributes.city_surfaces`; LANE-TURN turns off them too)
    city: np.ndarray | None = None
    _far: np.ndarray | None = None  # `dead_end_at`, once found
    _grown: np.ndarray | None = None  # lanes grown by ENTRY_TOL_M, for `contact_zones`
    _seam: np.ndarray | None = None  # lanes grown by SEAM_M, for `unions`
    _eroded: dict[float, np.ndarray] = field(default_factory=dict)  # `eroded`, per radius

    @property
    def n(self) -> int:
        return len(self.geoms)

    @property
    def dead_end_at(self) -> np.ndarray:
        """Per lane the point farthest from its only connection (dead ends; None elsewhere), found on first use."""
        if self._far is None:
            far = derive_kinds(self.geoms, np.concatenate([self.ext_lane, self.adj_i]).astype(np.int64),
                               np.concatenate([self.ext_zone, self.contact_zones()]))[1]
            far[self.kinds != "dead_end"] = None  # (rings drawn as several lanes included)
            self._far = far
        return self._far

    def eroded(self, radius: float, idx: np.ndarray) -> np.ndarray:
        """Lanes `idx` eroded by `radius` (`gm.configuration_space`: LANE-WIDTH and LANE-CLEAR erode the same
        lanes by the same half width), each lane eroded once per radius."""
        got = self._eroded.setdefault(radius, np.full(self.n, None, dtype=object))
        todo = np.unique(idx[shapely.is_missing(got[idx])])
        if len(todo):
            got[todo] = gm.configuration_space(self.geoms[todo], radius)
        return got[idx]

    def claim_note(self, i: int) -> tuple[str, str]:
        """(zh, en) sentence when lane i's claimed kind contradicts the kind its geometry gives, else ("", "")."""
        if self.claims is None:
            return "", ""
        claim, derived = self.claims[i], self.kinds[i]
        if claim not in CLAIMED_KINDS or claim == derived:
            return "", ""
        return (f"; 数据标注为{KIND_NAMES_ZH[claim]}, 但按几何连通关系为{KIND_NAMES_ZH[derived]}",
                f"; tagged {claim.replace('_', ' ')} in the data, but its connections make it "
                f"{derived.replace('_', ' ')}")

    def contact_zones(self, which: np.ndarray | None = None) -> np.ndarray:
        """`adj_zone` of the contacts `which` (all by default): per contact (i, j) the part of lane i within
        ENTRY_TOL_M of lane j, each drawn once, on first use."""
        g, ai, aj = self.geoms, self.adj_i, self.adj_j
        if self.adj_zone is None or self._grown is None:
            self.adj_zone = np.full(len(ai), None, dtype=object)
            self._grown = np.full(len(g), None, dtype=object)
        idx = np.arange(len(ai)) if which is None else np.asarray(which, dtype=np.int64)
        todo = np.unique(idx[shapely.is_missing(self.adj_zone[idx])])
        if len(todo):
            grown = self._grown
            used = np.unique(aj[todo])
            used = used[shapely.is_missing(grown[used])]
            grown[used] = shapely.buffer(g[used], ENTRY_TOL_M, quad_segs=4)  # once per lane, not per pair
            self.adj_zone[todo] = shapely.intersection(g[ai[todo]], grown[aj[todo]])
        return self.adj_zone[idx]

    def grown(self) -> np.ndarray:
        """Per lane its polygon grown by ENTRY_TOL_M where `contact_zones` drew it (None elsewhere): it holds every
        point within 0.9 x ENTRY_TOL_M of the lane (its arcs' chords and GEOS's 1 % input simplification stay
        closer to the exact offset than that)."""
        if self._grown is None:
            return np.full(self.n, None, dtype=object)
        return self._grown

    def has_entry(self) -> np.ndarray:
        out = np.zeros(self.n, dtype=bool)
        out[self.ext_lane] = True
        return out

    def component_labels(self) -> np.ndarray:
        graph = coo_matrix((np.ones(len(self.adj_i)), (self.adj_i, self.adj_j)), shape=(self.n, self.n))
        return connected_components(graph, directed=False)[1]

    def reaches_entry(self) -> np.ndarray:
        """Lanes connected (directly or through other lanes) to a city road or vehicle entrance."""
        label = self.component_labels()
        good = np.unique(label[self.has_entry()])
        return np.isin(label, good)

    def union(self, idx: np.ndarray) -> object:
        """The lanes `idx` as one surface: seams below SEAM_M closed (edges that meet only up to floating point
        after reprojection), gaps up to ENTRY_TOL_M between touching lanes bridged by the hull of their
        contact zones (lanes within that distance are one network by the data-model convention)."""
        idx = np.asarray(idx, dtype=np.int64)
        parts = [shapely.buffer(self.geoms[idx], SEAM_M, join_style="mitre", quad_segs=1)]
        gap = np.isin(self.adj_i, idx) & np.isin(self.adj_j, idx) & (self.adj_i < self.adj_j)
        if gap.any():
            far = shapely.distance(self.geoms[self.adj_i[gap]], self.geoms[self.adj_j[gap]]) > SEAM_M
            if far.any():
                a, b = self.adj_i[gap][far], self.adj_j[gap][far]
                back = {(int(i), int(j)): z
                        for i, j, z in zip(self.adj_i, self.adj_j, self.contact_zones(), strict=True)}
                bridges = [shapely.convex_hull(shapely.union(back[(int(i), int(j))], back[(int(j), int(i))]))
                           for i, j in zip(a, b, strict=True)]
                parts.append(np.asarray(bridges, dtype=object))
        return shapely.union_all(np.concatenate(parts))

    def unions(self, groups: list[np.ndarray]) -> np.ndarray:
        """`union(idx)` for every group of lanes in `groups` at once (groups may share lanes): the same parts in
        the same order per group, merged by one vectorised overlay call."""
        n_g = len(groups)
        if not n_g:
            return np.empty(0, dtype=object)
        sizes = np.array([len(x) for x in groups], dtype=np.int64)
        g_of = np.repeat(np.arange(n_g), sizes)
        lane = np.concatenate([np.asarray(x, dtype=np.int64) for x in groups]) if sizes.sum() else \
            np.empty(0, dtype=np.int64)
        seam = self._seams(lane)
        items, rows = [seam[lane]], [g_of]
        # contacts (i < j) with both lanes in the group, in the order of the contact arrays
        ai, aj = self.adj_i, self.adj_j
        fwd = np.flatnonzero(ai < aj)
        if len(fwd) and len(lane):
            member = np.unique(g_of * self.n + lane)
            order = np.argsort(ai[fwd], kind="stable")
            starts = np.searchsorted(ai[fwd][order], np.arange(self.n + 1))
            count = starts[lane + 1] - starts[lane]
            pg = np.repeat(g_of, count)
            pc = fwd[order[gm.ranges(starts[lane], starts[lane + 1])]]
            both = np.isin(pg * self.n + aj[pc], member)
            pg, pc = pg[both], pc[both]
            key = np.lexsort((pc, pg))
            pg, pc = pg[key], pc[key]
            far = shapely.distance(self.geoms[ai[pc]], self.geoms[aj[pc]]) > SEAM_M
            pg, pc = pg[far], pc[far]
            if len(pc):
                codes = ai * self.n + aj
                by_code = np.argsort(codes, kind="stable")
                back = by_code[np.searchsorted(codes[by_code], aj[pc] * self.n + ai[pc])]
                zones = self.contact_zones()
                items.append(shapely.convex_hull(shapely.union(zones[pc], zones[back])))
                rows.append(pg)
        return gm.union_rows(np.concatenate(items), np.concatenate(rows), n_g)

    def _seams(self, lanes: np.ndarray) -> np.ndarray:
        """Per lane its polygon grown by SEAM_M (mitred), drawn once for `lanes` (None where not drawn yet)."""
        if self._seam is None:
            self._seam = np.full(self.n, None, dtype=object)
        used = np.unique(lanes)
        used = used[shapely.is_missing(self._seam[used])]
        self._seam[used] = shapely.buffer(self.geoms[used], SEAM_M, join_style="mitre", quad_segs=1)
        return self._seam

    def terminals_of(self, lanes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The terminals of `lanes`: per lane the pieces of its entry zones, then of its contact zones (the
        non-empty zones themselves when none has a piece), and per terminal its lane's position in `lanes`."""
        lanes = np.asarray(lanes, dtype=np.int64)
        pos = np.full(self.n, -1, dtype=np.int64)
        pos[lanes] = np.arange(len(lanes))
        t_lane = np.concatenate([self.ext_lane, self.adj_i]).astype(np.int64)
        sel = np.flatnonzero(pos[t_lane] >= 0)
        if not len(sel):
            return np.empty(0, dtype=object), np.empty(0, dtype=np.int64)
        t_zone = np.concatenate([self.ext_zone, self.contact_zones()])
        sel = sel[np.argsort(pos[t_lane[sel]], kind="stable")]  # by lane; entries before contacts, each in order
        zones, owner = t_zone[sel], pos[t_lane[sel]]
        parts, zi = gm.pieces_of(zones)
        has = np.zeros(len(lanes), dtype=bool)
        has[owner[zi]] = True
        bare = ~has[owner]
        bare[bare] = ~shapely.is_empty(zones[bare])
        terms = np.concatenate([parts, zones[bare]])
        term_of = np.concatenate([owner[zi], owner[bare]])
        order = np.argsort(term_of, kind="stable")
        return terms[order], term_of[order]


#: Kinds a lane's `kind` attribute may claim (compared with the derived kind) and their Chinese names.
CLAIMED_KINDS: frozenset[str] = frozenset({"ring", "through", "dead_end"})
KIND_NAMES_ZH: dict[str, str] = {"ring": "环形车道", "through": "贯通式车道", "dead_end": "尽头式车道",
                                 "isolated": "孤立车道"}
#: A hole of at least this area (m²) in a lane polygon makes it a ring (a courtyard, not a drawing slip).
RING_HOLE_M2 = 50.0


def holed(geoms: np.ndarray) -> np.ndarray:
    """Which lane polygons enclose a courtyard (a hole of at least RING_HOLE_M2): rings by their own shape."""
    out = np.zeros(len(geoms), dtype=bool)
    if not len(geoms):
        return out
    parts, idx = shapely.get_parts(geoms, return_index=True)
    holes = shapely.area(shapely.polygons(shapely.get_exterior_ring(parts))) - shapely.area(parts)
    out[idx[holes >= RING_HOLE_M2]] = True
    return out


def derive_kinds(geoms: np.ndarray, conn_lane: np.ndarray, conn_zone: np.ndarray, *,
                 far: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Lane kinds from the network's topology, and where each dead end ends.

    Parameters
    ----------
    geoms : numpy.ndarray
        Lane polygons.
    conn_lane, conn_zone : numpy.ndarray
        Per connection (a city road, a vehicle entrance or another lane met within ENTRY_TOL_M) the lane and the
        part of it where the connection is.
    far : bool
        Whether to find the dead ends' far points (else `dead_end_at` is all None).

    Returns
    -------
    kinds : numpy.ndarray of str
        ``ring`` (the polygon encloses a courtyard of at least RING_HOLE_M2), else by the number of separate
        connection places: ``through`` (2 or more), ``dead_end`` (1), ``isolated`` (none).
    dead_end_at : numpy.ndarray of Point or None
        For dead ends the lane's point farthest from its connection (where the turnaround belongs).
    """
    n = len(geoms)
    kinds = np.full(n, "isolated", dtype=object)
    far_at = np.full(n, None, dtype=object)
    if not n:
        return kinds, far_at
    ring = holed(geoms)
    places = np.zeros(n, dtype=np.int64)
    zones = np.full(n, None, dtype=object)
    real = ~shapely.is_empty(conn_zone) if len(conn_zone) else np.zeros(0, dtype=bool)
    if not far:  # a ring's connections are not counted
        real &= ~ring[conn_lane]
    if real.any():
        zone, owner = conn_zone[real], conn_lane[real]
        count = np.bincount(owner, minlength=n)
        alone = count[owner] == 1  # a lane's only connection is its own union (most dead ends): no overlay
        # one polygon is one place however far it is grown: grown only where a dead end's far point needs it
        one = alone & (shapely.get_type_id(zone) == 3) if not far else np.zeros(len(zone), dtype=bool)
        several = np.flatnonzero(count > 1)
        row = np.flatnonzero(~alone)
        grow = ~one
        if far:
            grown = _grown_zones(zone, grow)
            zones[several] = gm.union_rows(grown[row], np.searchsorted(several, owner[row]), len(several))
        elif len(row):
            # the places of a lane with several connections: its zones whose grown boxes meet (directly or through
            # others) are merged, the others lie apart and count their parts (a polygon grows into one); the boxes
            # are the zones' boxes grown by a hair more than the zones grow, so zones apart are surely apart
            box = shapely.bounds(zone[row]) + np.array([-1.0, -1.0, 1.0, 1.0]) * (ENTRY_TOL_M + 1e-6)
            bi, bj = STRtree(shapely.box(*box.T)).query(shapely.box(*box.T))
            keep = (owner[row[bi]] == owner[row[bj]]) & (bi < bj)
            label = connected_components(coo_matrix((np.ones(int(keep.sum())), (bi[keep], bj[keep])),
                                                    shape=(len(row), len(row))), directed=False)[1]
            size = np.bincount(label)
            lone = size[label] == 1
            simple = lone & (shapely.get_type_id(zone[row]) == 3)
            grow[row[simple]] = False
            grown = _grown_zones(zone, grow)
            comps = np.flatnonzero(size > 1)
            merged = gm.union_rows(grown[row[~lone]], np.searchsorted(comps, label[~lone]), len(comps))
            comp_owner = np.zeros(len(size), dtype=np.int64)
            comp_owner[label] = owner[row]
            parts = np.where(simple, 1, shapely.get_num_geometries(grown[row]))
            places += np.bincount(owner[row[lone]], weights=parts[lone], minlength=n).astype(np.int64)
            places += np.bincount(comp_owner[comps], weights=shapely.get_num_geometries(merged),
                                  minlength=n).astype(np.int64)
        else:
            grown = _grown_zones(zone, grow)
        zones[owner[alone & ~one]] = grown[alone & ~one]
        present = ~shapely.is_missing(zones)
        present[present] = ~shapely.is_empty(zones[present])
        places[present] = shapely.get_num_geometries(zones[present])
        places[owner[one]] = 1
    kinds[places >= 2] = "through"
    kinds[places == 1] = "dead_end"
    kinds[ring] = "ring"
    dead = np.flatnonzero(kinds == "dead_end") if far else np.empty(0, dtype=np.int64)
    if len(dead):
        xy, owner = shapely.get_coordinates(geoms[dead], return_index=True)
        d = shapely.distance(shapely.points(xy), zones[dead][owner])
        best = pd.Series(d).groupby(owner).idxmax().to_numpy()
        far_at[dead] = shapely.points(xy[best])
    return kinds, far_at


def _grown_zones(zone: np.ndarray, which: np.ndarray) -> np.ndarray:
    """Connection zones `which` grown by ENTRY_TOL_M (None elsewhere): one place per piece of their union."""
    grown = np.full(len(zone), None, dtype=object)
    grown[which] = shapely.buffer(zone[which], ENTRY_TOL_M, quad_segs=2)
    return grown


def lane_network(ctx: CheckContext) -> LaneNetwork:
    """Index the context's lanes: entry zones (city roads, vehicle entrances) and lane-to-lane contacts."""
    view = ctx.view("fire_lanes")
    lanes, g = view.frame, view.geoms
    surfaces = at.city_surfaces(at.layer(ctx, "roads"))  # the view's rows (refs and owners of roads are not needed)
    entrances = ctx.view("entrances").frame
    gates = at.geoms(entrances[at.vehicle_entrances(entrances)])
    ext = np.concatenate([surfaces, gates])
    is_gate = np.arange(len(ext)) >= len(surfaces)
    if len(ext) and len(g):
        # (the surfaces and gates query the lanes: the simple side is the prepared one of each distance test)
        xi, li = STRtree(g).query(ext, predicate="dwithin", distance=ENTRY_TOL_M)
        order = np.lexsort((xi, li))
        li, xi = li[order], xi[order]
        grown = np.full(len(ext), None, dtype=object)
        used = np.unique(xi)
        grown[used] = shapely.buffer(ext[used], ENTRY_TOL_M, quad_segs=4)  # once per surface, not per pair
        zones = shapely.intersection(g[li], grown[xi])
        keep = ~shapely.is_empty(zones)
        ext_lane, ext_zone, ext_gate = li[keep], zones[keep], is_gate[xi[keep]]
    else:
        ext_lane, ext_zone = np.empty(0, dtype=np.int64), np.empty(0, dtype=object)
        ext_gate = np.empty(0, dtype=bool)
    if len(g) > 1:
        ai, aj = STRtree(g).query(g, predicate="dwithin", distance=ENTRY_TOL_M)
        keep = ai != aj
        ai, aj = ai[keep], aj[keep]
    else:
        ai = aj = np.empty(0, dtype=np.int64)
    net = LaneNetwork(frame=lanes, geoms=g, refs=view.refs, kinds=np.empty(0, dtype=object),
                      own=view.own, ext_lane=ext_lane, ext_zone=ext_zone, adj_i=ai, adj_j=aj,
                      adj_zone=None, ext_gate=ext_gate, crefs=view.compound_refs,
                      claims=at.texts(lanes, "kind", None) if len(g) else np.empty(0, dtype=object),
                      city=surfaces)
    # one derived network for LANE-TURNAROUND, LANE-CONNECT, LANE-CLEAR and LANE-TURN: kinds from topology (a
    # courtyard lane's connections are not counted: only the others' contact zones are drawn)
    counted = ~holed(g)
    pairs = np.flatnonzero(counted[ai])
    net.kinds = derive_kinds(g, np.concatenate([ext_lane, ai[pairs]]).astype(np.int64),
                             np.concatenate([ext_zone, net.contact_zones(pairs)]), far=False)[0]
    net.kinds[ring_of_lanes(net)] = "ring"
    return net


def ring_of_lanes(net: LaneNetwork) -> np.ndarray:
    """Lanes that make a ring together: a ring drawn as several lanes whose ends meet.

    The lane graph's 2-core (leaves pruned until none is left: what remains lies on a cycle or between cycles) is
    split into its connected groups; a group whose lanes, joined as `LaneNetwork.union` joins them, enclose a
    courtyard of at least RING_HOLE_M2 makes ring lanes of those that border the courtyard for more than
    ENTRY_TOL_M. Lanes meeting at one crossing form a cycle of the graph but enclose nothing; a spur into the
    courtyard is pruned as a leaf; a link between two rings borders neither courtyard.
    """
    n = net.n
    out = np.zeros(n, dtype=bool)
    if n < 3 or not len(net.adj_i):
        return out
    fwd = net.adj_i < net.adj_j
    a, b = net.adj_i[fwd], net.adj_j[fwd]
    alive = np.ones(n, dtype=bool)
    while True:  # one round per layer of leaves (a handful), each vectorised over the pairs
        live = alive[a] & alive[b]
        degree = np.bincount(a[live], minlength=n) + np.bincount(b[live], minlength=n)
        leaves = alive & (degree < 2)
        if not leaves.any():
            break
        alive &= ~leaves
    if alive.sum() < 3:
        return out
    live = alive[a] & alive[b]
    label = connected_components(coo_matrix((np.ones(int(live.sum())), (a[live], b[live])), shape=(n, n)),
                                 directed=False)[1]
    groups = [np.flatnonzero(alive & (label == k)) for k in np.unique(label[alive])]
    groups = [x for x in groups if len(x) >= 3]
    if not groups:
        return out
    joined = net.unions(groups)
    parts, gi = shapely.get_parts(joined, return_index=True)
    rings, ri = shapely.get_rings(parts, return_index=True)
    inner = np.ones(len(rings), dtype=bool)
    inner[np.searchsorted(ri, np.arange(len(parts)))] = False  # each polygon's first ring is its exterior
    yard = shapely.polygons(rings[inner])
    big = shapely.area(yard) >= RING_HOLE_M2
    courtyards, yard_group = rings[inner][big], gi[ri[inner]][big]
    if not len(courtyards):
        return out
    member = np.concatenate(groups)
    member_group = np.repeat(np.arange(len(groups)), [len(x) for x in groups])
    ci, mi = STRtree(net.geoms[member]).query(courtyards, predicate="dwithin", distance=SEAM_M * 2)
    same = yard_group[ci] == member_group[mi]
    ci, mi = ci[same], mi[same]
    border = shapely.length(shapely.intersection(courtyards[ci],
                                                 shapely.buffer(net.geoms[member[mi]], SEAM_M * 2, quad_segs=1)))
    out[member[mi[border > ENTRY_TOL_M]]] = True
    return out


def _finding(ctx: CheckContext, net: LaneNetwork, i: int, **kw) -> Finding:
    return Finding(subject_ref=str(net.refs[i]), compound_ref=net.crefs[i], **kw)


# --- LANE-WIDTH ------------------------------------------------------------------------------------------------


def lane_width(ctx: CheckContext, net: LaneNetwork) -> list[Finding]:
    """LANE-WIDTH: each own lane's own clear width, between its entries, is at least `min_width_m`.

    The lane eroded by half the width must stay one piece reaching every entry zone; a lane that does not is
    measured (bisection on the erosion distance) and its neck located.
    """
    profile = ctx.profile
    required = float(profile.get("LANE-WIDTH", "min_width_m"))
    own = np.flatnonzero(net.own)
    if not len(own):
        return []
    r = required / 2.0 - gm.SIZE_TOL_M / 2.0  # exactly the required width passes
    eroded = net.eroded(r, own)
    parts, idx = shapely.get_parts(eroded, return_index=True)
    big = shapely.area(parts) > gm.SLIVER_M2
    n_parts = np.bincount(idx[big], minlength=len(own))
    suspect = n_parts != 1
    # entry zones the eroded lane must reach
    pos = np.full(net.n, -1, dtype=np.int64)
    pos[own] = np.arange(len(own))
    t_lane = np.concatenate([net.ext_lane, net.adj_i]).astype(np.int64)
    t_zone = np.concatenate([net.ext_zone, net.contact_zones()])
    mine = pos[t_lane] >= 0
    if mine.any():
        p = pos[t_lane[mine]]
        reach = shapely.dwithin(eroded[p], t_zone[mine], r + REACH_TOL_M)
        suspect[np.unique(p[~reach])] = True
    out = []
    check = np.flatnonzero(suspect)
    terms, term_of = net.terminals_of(own[check])
    necks = gm.bottleneck_widths(net.geoms[own[check]], terms, term_of, required=required, reach_tol=REACH_TOL_M,
                                 eroded=eroded[check])
    for c, neck in zip(check, necks, strict=True):
        i = int(own[c])
        if neck is None:
            continue
        out.append(_finding(
            ctx, net, i, rule="LANE-WIDTH", verdict="fail", measured=neck.width, required=required,
            severity=severity(profile, "LANE-WIDTH"), geometry=neck.neck,
            message=f"消防车道 {net.refs[i]} 最窄处净宽 {neck.width:.2f} m, 小于 {required:g} m",
            message_en=f"fire lane {net.refs[i]} narrows to {neck.width:.2f} m clear width, less than {required:g} m",
        ))
    return out


# --- LANE-CLEAR ------------------------------------------------------------------------------------------------


@dataclass
class Obstacles:
    """Ground obstacles on the lanes: footprints, refs, kinds (illegal structures as kind illegal_structure)."""

    geoms: np.ndarray
    refs: np.ndarray
    kinds: np.ndarray


def ground_obstacles(ctx: CheckContext, areas: np.ndarray, covers: np.ndarray | None = None,
                     cover_m: float = 0.0) -> Obstacles:
    """Obstructions standing on the ground (bottom_m empty or 0) and illegal structures that overlap one of
    `areas` (more than touching it). `covers` (optional): per area a polygon holding every point within `cover_m`
    of it (None where not known), to find the obstructions near the areas by point-in-polygon tests."""
    areas = np.asarray(areas, dtype=object)
    # the layer's arrays, not its shared view: refs and owners of the few obstructions near the lanes are all
    # that is needed (the same rows, in the same order, as the view would give)
    frame = ctx.layer("obstructions")
    og = np.asarray(frame.geometry.values, dtype=object)
    valid = ~shapely.is_missing(og)
    valid[valid] = ~shapely.is_empty(og[valid])
    bottom = at.numbers(frame, "bottom_m")
    ground = np.flatnonzero(valid & (np.isnan(bottom) | (bottom <= 0)))
    if len(ground) and len(areas):
        # only what stands near the areas gets a footprint (points grow by at most their size)
        profile_sizes = ctx.profile.get("LANE-CLEAR", "point_obstruction_size_m")
        size = at.numbers(frame, "size_m")[ground]
        grow = max([LINE_FOOTPRINT_M, *map(float, profile_sizes.values()),
                    float(np.nan_to_num(size).max(initial=0.0))]) / 2.0
        use = covers if covers is not None and grow <= cover_m else None
        ground = ground[_near(og[ground], areas, grow, use)]
    obs = frame.iloc[ground]
    ill = ctx.view("illegal_structures")
    if len(ill):
        ill = ill.take(at.texts(ill.frame, "status", "reported") != "demolished")
    g = np.concatenate([footprints(obs, ctx.profile), ill.geoms])
    refs = np.concatenate([at.refs(obs), ill.refs]) if len(g) else np.empty(0, dtype=object)
    kinds = np.concatenate([at.texts(obs, "kind", "other"),
                            np.full(len(ill), "illegal_structure", dtype=object)])
    if not len(g) or not len(areas):
        return Obstacles(g[:0], refs[:0], kinds[:0])
    gi, ai = STRtree(areas).query(g, predicate="intersects")
    real = ~shapely.touches(g[gi], areas[ai])
    hit = np.zeros(len(g), dtype=bool)
    hit[gi[real]] = True
    return Obstacles(g[hit], refs[hit], kinds[hit])


def _near(geoms: np.ndarray, areas: np.ndarray, distance: float, covers: np.ndarray | None = None) -> np.ndarray:
    """Sorted indices of `geoms` within `distance` of one of `areas`: an envelope test against the areas' grown
    envelopes first (cheap for many small geometries), the exact distance test only on the pairs it leaves.

    `covers` (optional): per area a polygon holding every point within `distance` of it (None where not known);
    a pair with one is kept when the geometry meets it (a prepared point-in-polygon test, cheaper than the
    distance), so a few geometries a little farther away may be kept too: callers filter exactly afterwards.
    """
    box = shapely.bounds(areas)
    grown = shapely.box(box[:, 0] - distance, box[:, 1] - distance, box[:, 2] + distance, box[:, 3] + distance)
    gi, ai = STRtree(grown).query(geoms)
    close = np.zeros(len(gi), dtype=bool)
    exact = np.ones(len(gi), dtype=bool)
    if covers is not None and len(gi):
        covers = np.asarray(covers, dtype=object)
        has = ~shapely.is_missing(covers)
        shapely.prepare(covers[has])
        exact = ~has[ai]
        close[~exact] = shapely.intersects(covers[ai[~exact]], geoms[gi[~exact]])
    shapely.prepare(areas)  # (the few areas are the prepared side of the many distance tests)
    close[exact] = shapely.dwithin(areas[ai[exact]], geoms[gi[exact]], distance)
    return np.unique(gi[close])


def _window_lanes(windows: np.ndarray, rest: np.ndarray, ci: np.ndarray, lj: np.ndarray, lanes: np.ndarray,
                  r: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reach of the windows `rest` (a window grown by r + 1 m) and their (window, lane) pairs of lanes meeting
    it, from the (cluster, lane) pairs `ci`, `lj` of lanes within WINDOW_M + r + 1 m of each cluster.

    A buffer's arcs are chords inside the true offset, so a lane meeting a reach lies that near the cluster:
    windows with one lane that near (the lane under the cluster, which its reach always meets) are settled by the
    distance test alone; the reach is drawn only where several (or, should the data allow it, no) lanes are that
    near (None elsewhere).
    """
    n = len(windows)
    count = np.bincount(ci, minlength=n)
    several = rest[count[rest] != 1]
    reach = np.full(n, None, dtype=object)
    reach[several] = shapely.buffer(windows[several], r + 1.0, quad_segs=4)
    # the exact test where several lanes are near; the one lane near the others
    wk, li = STRtree(lanes).query(reach[several], predicate="intersects")
    lone = np.isin(ci, rest) & (count[ci] == 1)
    wl = np.concatenate([ci[lone], several[wk]])
    li = np.concatenate([lj[lone], li])
    order = np.argsort(wl, kind="stable")
    return reach, wl[order], li[order]


def lane_clear(ctx: CheckContext, net: LaneNetwork) -> list[Finding]:
    """LANE-CLEAR: obstructions and illegal structures leave a truck of `truck_width_m` a way through.

    Configuration space: the own lane network eroded by half the truck width. Obstacles are grouped into clusters
    (their dilations by half the truck width overlap); a cluster blocks when, in a window around it, removing its
    dilation disconnects places the lane connected (including the lane's entry zones). Only the window is eroded,
    never the whole network; a window on one lane with no entry zone and no other cluster, where the (convex)
    dilation comes near only one edge of the lane's configuration space, needs no overlay at all: the cluster
    provably only bites into the space (`gm.only_bites`). A blockage is measured (widest truck that still passes,
    by bisection), attributed to the lane it overlaps most, routed by the obstacles' kinds and ranked by the
    buildings (and floors) served only through the blocked part.
    """
    profile = ctx.profile
    width = float(profile.get("LANE-CLEAR", "truck_width_m"))
    r = width / 2.0
    own = np.flatnonzero(net.own)
    if not len(own):
        return []
    out: list[Finding] = []
    reached = net.reaches_entry()
    for i in own[~reached[own]]:
        out.append(_finding(
            ctx, net, int(i), rule="LANE-CLEAR", verdict="cannot_judge", geometry=net.geoms[i],
            severity=0.0, required=width,
            message=f"消防车道 {net.refs[i]} 无法判定: 未找到车道入口(1 m 内无城市道路或车行出入口)",
            message_en=f"fire lane {net.refs[i]}: cannot judge, entry points not found "
                       f"(no city road or vehicle entrance within {ENTRY_TOL_M:g} m)",
        ))
    own_geoms = net.geoms[own]
    covers = net.grown()[own]
    covers[~shapely.is_valid(own_geoms)] = None  # (only a valid polygon's buffer surely holds its surroundings)
    obstacles = ground_obstacles(ctx, own_geoms, covers, 0.9 * ENTRY_TOL_M)
    if not len(obstacles.geoms):
        return out
    # an obstruction leaving exactly the truck width is no blockage: judge with a truck SIZE_TOL_M narrower
    r = r - gm.SIZE_TOL_M / 2.0
    dil = shapely.buffer(obstacles.geoms, r, quad_segs=8)
    clusters, member = gm.clusters(dil)
    if not len(clusters):
        return out
    cluster_tree = STRtree(clusters)
    entries = net.ext_zone[np.isin(net.ext_lane, own)]
    n = len(clusters)
    # a window (the cluster grown by WINDOW_M) lies within WINDOW_M of its cluster: clusters with one lane, no
    # other cluster and no entry zone that near are settled by distance tests, and those whose dilation provably
    # only bites into the lane's configuration space (gm.only_bites) need no window at all
    ci, lj = STRtree(own_geoms).query(clusters, predicate="dwithin", distance=WINDOW_M + r + 1.0 + 1e-6)
    n_near = np.bincount(ci, minlength=n)
    lone_lane = np.full(n, -1, dtype=np.int64)
    lone_lane[ci[n_near[ci] == 1]] = lj[n_near[ci] == 1]
    oc, oo = cluster_tree.query(clusters, predicate="dwithin", distance=WINDOW_M + 1e-6)
    easy = (n_near == 1) & (np.bincount(oc[oc != oo], minlength=n) == 0)
    if len(entries):
        near_entry, _ = STRtree(entries).query(clusters, predicate="dwithin",
                                               distance=WINDOW_M + r + REACH_TOL_M + 1e-6)
        easy &= np.bincount(near_entry, minlength=n) == 0
    lane_space = np.full(len(own), None, dtype=object)
    first = np.unique(lone_lane[easy])
    lane_space[first] = net.eroded(r, own[first])
    easy[easy] = gm.only_bites(clusters[easy], lane_space, lone_lane[easy])
    # windows around the other clusters; only the lanes, entries and other clusters inside a window are looked at
    rest = np.flatnonzero(~easy)
    windows = np.full(n, None, dtype=object)
    windows[rest] = shapely.buffer(clusters[rest], WINDOW_M, quad_segs=4)
    reach, wl, li = _window_lanes(windows, rest, ci, lj, own_geoms, r)
    wc, cj = cluster_tree.query(windows[rest], predicate="intersects")
    wc = rest[wc]
    keep = wc != cj
    wc, cj = wc[keep], cj[keep]
    we, ej = (STRtree(entries).query(windows[rest], predicate="dwithin", distance=r + REACH_TOL_M)
              if len(entries) else (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)))
    we = rest[we]
    n_hit = np.bincount(wl, minlength=n)
    by_window = np.split(li[np.argsort(wl, kind="stable")], np.cumsum(n_hit)[:-1])
    # a window on one lane takes that lane's configuration space, eroded once per lane however many clusters it
    # carries; windows where lanes meet erode their own piece of the lanes' union
    single = n_hit == 1
    single[easy] = True
    lane_of = np.array([x[0] if len(x) == 1 else -1 for x in by_window], dtype=np.int64)
    lane_of[easy] = lone_lane[easy]
    used = np.unique(lane_of[single])
    more = used[shapely.is_missing(lane_space[used])]
    lane_space[more] = net.eroded(r, own[more])
    local_lanes = np.full(n, None, dtype=object)
    local_lanes[single] = own_geoms[lane_of[single]]
    multi = np.flatnonzero(~single)
    local_lanes[multi] = shapely.intersection(net.unions([own[by_window[k]] for k in multi]), reach[multi])
    judge = np.flatnonzero(~easy)
    space = np.full(len(clusters), None, dtype=object)
    space[single] = lane_space[lane_of[single]]
    space[multi] = gm.configuration_space(local_lanes[multi], r)
    space[judge] = shapely.intersection(space[judge], windows[judge])
    # other clusters in each window are present in both states (each cluster is judged on its own effect)
    by_cluster = np.split(cj[np.argsort(wc, kind="stable")], np.cumsum(np.bincount(wc, minlength=len(clusters)))[:-1])
    crowded = np.flatnonzero(np.bincount(wc, minlength=n) > 0)
    others = np.full(len(clusters), None, dtype=object)
    if len(crowded):
        others[crowded] = shapely.intersection(
            np.array([shapely.union_all(clusters[by_cluster[k]]) for k in crowded], dtype=object), windows[crowded])
    base = space.copy()
    if len(crowded):
        base[crowded] = shapely.difference(space[crowded], others[crowded])
    # vectorised first pass over the judged windows; the exact test only where a cut is possible
    at_ = np.full(len(clusters), -1, dtype=np.int64)
    at_[judge] = np.arange(len(judge))
    maybe = np.zeros(len(clusters), dtype=bool)
    diff = np.full(len(clusters), None, dtype=object)
    diff[judge] = shapely.difference(base[judge], clusters[judge])
    maybe[judge] = ~gm.surely_uncut(base[judge], diff[judge], entries[ej], at_[we], radius=r, reach_tol=REACH_TOL_M)
    look = np.flatnonzero(maybe)
    at_ = np.full(len(clusters), -1, dtype=np.int64)
    at_[look] = np.arange(len(look))
    offered = at_[we] >= 0
    cut = gm.local_cuts(space[look], clusters[look], windows[look], entries[ej[offered]], at_[we[offered]],
                        radius=r, reach_tol=REACH_TOL_M, states=(base[look], diff[look]))
    blocked = [(int(k), np.flatnonzero(member == k), 0.0) for k in look[cut]]
    if not blocked:
        return out
    ks = np.array([b[0] for b in blocked], dtype=np.int64)
    footprints_ = np.array([shapely.union_all(obstacles.geoms[b[1]]) for b in blocked], dtype=object)
    pos = np.full(len(clusters), -1, dtype=np.int64)
    pos[ks] = np.arange(len(ks))
    near = pos[we] >= 0
    widths = gm.clear_widths(local_lanes[ks], footprints_, windows[ks], entries[ej[near]], pos[we[near]],
                             radius=r, reach_tol=REACH_TOL_M)
    blocked = [(k, idx, float(w)) for (k, idx, _), w in zip(blocked, widths, strict=True)]
    # the subject: the lane the cluster's obstacles overlap most
    fi, lj = STRtree(own_geoms).query(footprints_, predicate="intersects")
    overlap = shapely.area(shapely.intersection(own_geoms[lj], shapely.buffer(footprints_[fi], 0.01)))
    subjects = []
    for b in range(len(blocked)):
        mine = fi == b
        subjects.append(int(own[lj[mine][int(np.argmax(overlap[mine]))]]))
    lost = _access_lost(ctx, net, own, clusters, [(b[0], i) for b, i in zip(blocked, subjects, strict=True)], r)
    for (k, idx, clear), i, (n_bld, n_floors, lost_refs) in zip(blocked, subjects, lost, strict=True):
        if not reached[i]:
            continue
        kinds = sorted(set(obstacles.kinds[idx]))
        kinds_zh = "、".join(KIND_ZH.get(x, x) for x in kinds)
        kinds_en = ", ".join(x.replace("_", " ") for x in kinds)
        refs = [str(x) for x in obstacles.refs[idx]]
        evidence = shapely.intersection(local_lanes[k], clusters[k])
        who_zh = f": {', '.join(lost_refs[:10])}{' 等' if len(lost_refs) > 10 else ''}" if lost_refs else ""
        who_en = f": {', '.join(lost_refs[:10])}{' ...' if len(lost_refs) > 10 else ''}" if lost_refs else ""
        out.append(_finding(
            ctx, net, i, rule="LANE-CLEAR", verdict="fail", measured=clear, required=width,
            other_refs=refs, department=departments(kinds, profile), geometry=evidence,
            severity=severity(profile, "LANE-CLEAR", buildings=n_bld, floors=n_floors),
            message=f"消防车道 {net.refs[i]} 被{kinds_zh}({', '.join(refs)})占用, 剩余净宽 {clear:.2f} m, "
                    f"小于 {width:g} m; {n_bld} 栋建筑({n_floors} 层)失去消防车通行{who_zh}",
            message_en=f"fire lane {net.refs[i]} blocked by {kinds_en} ({', '.join(refs)}): {clear:.2f} m clear, "
                       f"less than {width:g} m; {n_bld} buildings ({n_floors} floors) lose fire-truck access{who_en}",
        ))
    return out


def _access_lost(ctx: CheckContext, net: LaneNetwork, own: np.ndarray, clusters: np.ndarray,
                 blocked: list[tuple[int, int]], r: float) -> list[tuple[int, int, list[str]]]:
    """Per blocking cluster (with its subject lane): the buildings (and floors) of the lane's compound whose
    nearest point of the compound's configuration space is reachable from an entry without the cluster but not
    with it (served only through the blocked part)."""
    compounds = list(dict.fromkeys(net.crefs[i] for _, i in blocked))
    # the own buildings of the compounds with a blockage only (the rows of the buildings view, in its order)
    frame = at.layer(ctx, "buildings")
    b_crefs = ctx.owners(frame) if len(frame) else np.empty(0, dtype=object)
    pick = np.flatnonzero(ctx.owned(frame) & pd.Series(b_crefs, dtype=object).isin(compounds).to_numpy(bool))
    frame, b_crefs = frame.iloc[pick], b_crefs[pick]
    b_geoms, b_refs = at.geoms(frame), at.refs(frame)
    floors_all = at.floors_of(frame, ctx.profile) if len(frame) else np.empty(0, dtype=int)
    # per compound: its own lanes, entry zones, configuration space and buildings (with their access points)
    pos = {c: g for g, c in enumerate(compounds)}
    lane_c = np.full(net.n, -1, dtype=np.int64)
    lane_c[own] = [pos.get(c, -1) for c in net.crefs[own]]
    groups = [own[lane_c[own] == g] for g in range(len(compounds))]
    spaces = gm.configuration_space(net.unions(groups), r)
    e_c = lane_c[net.ext_lane]
    e_geom, e_c = net.ext_zone[e_c >= 0], e_c[e_c >= 0]
    b_c = np.array([pos[c] for c in b_crefs], dtype=np.int64)
    ok = (np.bincount(b_c, minlength=len(compounds)) > 0) & (np.bincount(e_c, minlength=len(compounds)) > 0)
    ok &= ~shapely.is_empty(spaces)
    b_keep = ok[b_c]
    b_c, b_refs, floors_all = b_c[b_keep], b_refs[b_keep], floors_all[b_keep]
    access = shapely.get_point(shapely.shortest_line(spaces[b_c], b_geoms[b_keep]), 0)
    # states: each compound's space as it is, then its space without each blocking cluster
    todo = [n for n, (_, i) in enumerate(blocked) if ok[pos[net.crefs[i]]]]
    t_c = np.array([pos[net.crefs[blocked[n][1]]] for n in todo], dtype=np.int64)
    t_k = np.array([blocked[n][0] for n in todo], dtype=np.int64)
    before_c = np.flatnonzero(ok)
    states = np.concatenate([spaces[before_c], shapely.difference(spaces[t_c], clusters[t_k])])
    reached = _reached(states, np.concatenate([before_c, t_c]), e_geom, e_c, access, b_c, r)
    before = np.full(len(compounds), None, dtype=object)
    for s, c in enumerate(before_c):
        before[c] = reached[s]
    out: dict[int, tuple[int, int, list[str]]] = {}
    for s, (n, c) in enumerate(zip(todo, t_c, strict=True), start=len(before_c)):
        mine = b_c == c
        lost = before[c] & ~reached[s]
        out[n] = (int(lost.sum()), int(floors_all[mine][lost].sum()), [str(x) for x in b_refs[mine][lost]])
    return [out.get(n, (0, 0, [])) for n in range(len(blocked))]


def _reached(states: np.ndarray, state_c: np.ndarray, entries: np.ndarray, entry_c: np.ndarray,
             access: np.ndarray, access_c: np.ndarray, r: float) -> list[np.ndarray]:
    """Per state (free configuration space of compound `state_c`): which access points of that compound lie on
    a piece of it within r + REACH_TOL_M of one of the compound's entries (as bool arrays over the compound's
    access points, in their order)."""
    parts, ps = gm.pieces_of(states)
    shapely.prepare(parts)  # each piece is tested against several entries and access points
    pc = state_c[ps]
    # pieces x entries of the same compound
    pp, pe = gm.pairs_by_group(pc, entry_c)
    touch = shapely.dwithin(parts[pp], entries[pe], r + REACH_TOL_M)
    good = np.zeros(len(parts), dtype=bool)
    good[pp[touch]] = True
    gp = np.flatnonzero(good)
    # good pieces x access points of the same compound
    qp, qa = gm.pairs_by_group(pc[gp], access_c)
    on = shapely.dwithin(parts[gp[qp]], access[qa], 1e-6)
    hit = np.zeros((len(states), len(access)), dtype=bool)
    hit[ps[gp[qp[on]]], qa[on]] = True
    return [hit[s, access_c == c] for s, c in enumerate(state_c)]


# --- LANE-HEADROOM ---------------------------------------------------------------------------------------------


def lane_headroom(ctx: CheckContext, net: LaneNetwork) -> list[Finding]:
    """LANE-HEADROOM: canopies, lines, arches and gates over a lane leave `min_clear_height_m`.

    Subject: the low obstruction (other_refs: the lanes under it); also lanes and vehicle entrances whose own
    recorded clear height is lower.
    """
    profile = ctx.profile
    need = float(profile.get("LANE-HEADROOM", "min_clear_height_m"))
    out: list[Finding] = []
    obs = ctx.view("obstructions")
    if len(obs) and net.n:
        bottom = at.numbers(obs.frame, "bottom_m")
        cand = obs.take((bottom > 0) & (bottom < need))
        cand = cand.take(cand.own)
        if len(cand):
            g = cand.geoms
            oi, li = STRtree(net.geoms).query(g, predicate="intersects")
            touch = shapely.touches(g[oi], net.geoms[li])
            oi, li = oi[~touch], li[~touch]
            refs, kinds, crefs = cand.refs, at.texts(cand.frame, "kind", "other"), cand.compound_refs
            b = at.numbers(cand.frame, "bottom_m")
            for o in np.unique(oi):
                lanes = [str(x) for x in net.refs[li[oi == o]]]
                kind = str(kinds[o])
                out.append(Finding(
                    rule="LANE-HEADROOM", verdict="fail", subject_ref=str(refs[o]), compound_ref=crefs[o],
                    other_refs=lanes, measured=float(b[o]), required=need,
                    department=departments([kind], profile),
                    severity=severity(profile, "LANE-HEADROOM"),
                    geometry=shapely.intersection(g[o], shapely.union_all(net.geoms[li[oi == o]])),
                    message=f"{KIND_ZH.get(kind, kind)} {refs[o]} 下净高 {b[o]:.2f} m, 小于 {need:g} m"
                            f"(消防车道 {', '.join(lanes)})",
                    message_en=f"{kind.replace('_', ' ')} {refs[o]} leaves {b[o]:.2f} m clear height over fire lane "
                               f"{', '.join(lanes)}, less than {need:g} m",
                ))
    if net.n:
        h = at.numbers(net.frame, "clear_height_m")
        for i in np.flatnonzero(net.own & (h < need)):
            out.append(_finding(
                ctx, net, int(i), rule="LANE-HEADROOM", verdict="fail", subject_layer="fire_lanes",
                measured=float(h[i]), required=need, department="物业/住建", geometry=net.geoms[i],
                severity=severity(profile, "LANE-HEADROOM"),
                message=f"消防车道 {net.refs[i]} 记录净空高度 {h[i]:.2f} m, 小于 {need:g} m",
                message_en=f"fire lane {net.refs[i]} has a recorded clear height of {h[i]:.2f} m, less than {need:g} m",
            ))
    ent = ctx.view("entrances")
    if len(ent):
        h = at.numbers(ent.frame, "clear_height_m")
        low = ent.own & (h < need) & at.vehicle_entrances(ent.frame)
        refs, crefs, g = ent.refs, ent.compound_refs, ent.geoms
        for i in np.flatnonzero(low):
            out.append(Finding(
                rule="LANE-HEADROOM", verdict="fail", subject_layer="entrances", subject_ref=str(refs[i]),
                compound_ref=crefs[i], measured=float(h[i]), required=need, department="物业/住建",
                geometry=g[i], severity=severity(profile, "LANE-HEADROOM"),
                message=f"车行出入口 {refs[i]} 净空高度 {h[i]:.2f} m, 小于 {need:g} m",
                message_en=f"vehicle entrance {refs[i]} has {h[i]:.2f} m clear height, less than {need:g} m",
            ))
    return out


# --- LANE-TURNAROUND -------------------------------------------------------------------------------------------


def lane_turnaround(ctx: CheckContext, net: LaneNetwork) -> list[Finding]:
    """LANE-TURNAROUND: a dead-end lane's polygon holds a `min_side_m` square turnaround (mandatory), and a
    `high_rise_side_m` square when it serves a high-rise (advisory); largest inscribed square, any orientation
    the lane's edges suggest."""
    profile = ctx.profile
    sec = profile["LANE-TURNAROUND"]
    need, tall_need = float(sec["min_side_m"]), float(sec["high_rise_side_m"])
    dead = np.flatnonzero(net.own & (net.kinds == "dead_end"))
    if not len(dead):
        return []
    serves_tall = _serves_high_rise(ctx, net.geoms[dead], float(sec["serve_distance_m"]))
    out = []
    sure = gm.squares_fit(net.geoms[dead], need)
    sure_tall = ~serves_tall  # (the larger square is looked for only where a high-rise is served)
    sure_tall[serves_tall] = gm.squares_fit(net.geoms[dead[serves_tall]], tall_need)
    short: list[tuple[int, object, float, str]] = []  # (lane, where to search, side required, strength)
    for p, i in enumerate(dead):
        if sure[p] and sure_tall[p]:
            continue
        g = net.geoms[i]
        if not (sure[p] or gm.fits_square(g, need)):
            short.append((int(i), gm.square_room(g, 0.0), need, "mandatory"))
        elif not (sure_tall[p] or gm.fits_square(g, tall_need)):
            short.append((int(i), gm.square_room(g, need), tall_need, "advisory"))
    squares = gm.largest_inscribed_squares(np.array([x[1] for x in short], dtype=object),
                                           upper=np.array([x[2] for x in short], dtype=float))
    for (k, _, req, strength), sq in zip(short, squares, strict=True):
        g = net.geoms[k]
        tall_zh = "(服务高层建筑)" if strength == "advisory" else ""
        tall_en = " (serves a high-rise)" if strength == "advisory" else ""
        note_zh, note_en = net.claim_note(k)
        tall_zh, tall_en = tall_zh + note_zh, tall_en + note_en
        out.append(_finding(
            ctx, net, k, rule="LANE-TURNAROUND", verdict="fail", measured=sq.length, required=req,
            strength=strength, severity=severity_of(profile, "LANE-TURNAROUND", strength),
            geometry=sq.rectangle if sq.rectangle is not None else g,
            message=f"尽头式消防车道 {net.refs[k]}(按连通关系判定)回车场最大仅容 {sq.length:.2f} m 见方, "
                    f"应不小于 {req:g} x {req:g} m"
                    f"{tall_zh}",
            message_en=f"dead-end fire lane {net.refs[k]} (by its connections): the largest square turnaround is "
                       f"{sq.length:.2f} m, "
                       f"at least {req:g} x {req:g} m required{tall_en}",
        ))
    return out


def _serves_high_rise(ctx: CheckContext, lanes: np.ndarray, distance: float) -> np.ndarray:
    tall = at.high_rises(ctx)
    if not len(tall) or not len(lanes):
        return np.zeros(len(lanes), dtype=bool)
    li, _ = at.high_rise_tree(ctx).query(lanes, predicate="dwithin", distance=distance)
    out = np.zeros(len(lanes), dtype=bool)
    out[li] = True
    return out


# --- LANE-CONNECT ----------------------------------------------------------------------------------------------


def lane_connect(ctx: CheckContext, net: LaneNetwork) -> list[Finding]:
    """LANE-CONNECT: every own lane is reachable from a city road through vehicle entrances (directly or over
    other lanes); a ring lane (a connected group of ring lanes) has at least `min_ring_connections` separate
    outlets: entry zones or contacts with lanes that reach an entry without the ring."""
    profile = ctx.profile
    need = int(profile.get("LANE-CONNECT", "min_ring_connections"))
    out: list[Finding] = []
    if not net.n:
        return out
    reached = net.reaches_entry()
    for i in np.flatnonzero(net.own & ~reached):
        out.append(_finding(
            ctx, net, int(i), rule="LANE-CONNECT", verdict="fail", measured=0.0, required=1.0,
            severity=severity(profile, "LANE-CONNECT"), geometry=net.geoms[i],
            message=f"消防车道 {net.refs[i]} 未经车行出入口与城市道路连通{net.claim_note(int(i))[0]}",
            message_en=f"fire lane {net.refs[i]} is not reachable from a city road through a vehicle entrance"
                       f"{net.claim_note(int(i))[1]}",
        ))
    ring = net.kinds == "ring"
    if not (ring & net.own).any():
        return out
    # groups of ring lanes that touch each other form one ring
    ring_pairs = ring[net.adj_i] & ring[net.adj_j]
    graph = coo_matrix((np.ones(int(ring_pairs.sum())), (net.adj_i[ring_pairs], net.adj_j[ring_pairs])),
                       shape=(net.n, net.n))
    group = connected_components(graph, directed=False)[1]
    # a ring's outside is looked for in its own component of the lane graph only (its lanes, contacts and
    # entries, each listed once in the network's order)
    label = net.component_labels()
    by_label = _by_label(label, net.n)
    edges_of = _by_label(label[net.adj_i], net.n)
    entries_of = _by_label(label[net.ext_lane], net.n)
    gids = np.unique(group[ring & net.own])
    members_of = _by_label(group, net.n)  # (a group holding a ring lane holds ring lanes only)
    # components holding one ring group (most) are judged at once: without all their rings' lanes each such
    # component is what it is without its own ring's lanes
    pairs = np.unique(np.column_stack([label[ring], group[ring]]), axis=0)
    one_ring = np.bincount(pairs[:, 0], minlength=net.n) == 1
    ext_k, adj_k = _ring_outlets(net, ring & one_ring[label], group)
    outlets_of = {int(g): (ext_k[ext_k[:, 1] == g, 0], adj_k[adj_k[:, 1] == g, 0])
                  for g in np.unique(np.concatenate([ext_k[:, 1], adj_k[:, 1]]))}
    empty = np.empty(0, dtype=np.int64)
    on = np.zeros(net.n, dtype=bool)
    pos = np.zeros(net.n, dtype=np.int64)
    rings: list[np.ndarray] = []  # per ring (a group of ring lanes) its lanes
    from_ext: list[np.ndarray] = []  # ... the entry zones (indices) that are its outlets
    from_adj: list[np.ndarray] = []  # ... the contacts (indices) whose zones are its outlets
    for gid in gids.tolist():
        members = members_of[gid]
        c = label[members[0]]
        if one_ring[c]:
            gates, contacts = outlets_of.get(gid, (empty, empty))
            rings.append(members)
            from_ext.append(gates)
            from_adj.append(contacts)
            continue
        lanes_c, e, x = by_label[c], edges_of[c], entries_of[c]
        on[members] = True
        on_ring = on[net.ext_lane[x]]
        # outlets: vehicle gates on the ring and contacts with lanes that reach an entry without the ring; a ring
        # that merely runs along a city road (behind the compound fence) counts its road contacts only when it
        # has no gate at all
        gates = x[on_ring & net.ext_gate[x]]
        keep = e[~on[net.adj_i[e]] & ~on[net.adj_j[e]]]
        pos[lanes_c] = np.arange(len(lanes_c))
        sub = connected_components(coo_matrix((np.ones(len(keep)), (pos[net.adj_i[keep]], pos[net.adj_j[keep]])),
                                              shape=(len(lanes_c), len(lanes_c))), directed=False)[1]
        outside = np.isin(sub, sub[pos[net.ext_lane[x[~on_ring]]]])
        touching = e[on[net.adj_i[e]] & ~on[net.adj_j[e]]]
        contacts = touching[outside[pos[net.adj_j[touching]]]]
        if not len(gates) and not len(contacts):
            gates = x[on_ring]
        on[members] = False
        rings.append(members)
        from_ext.append(gates)
        from_adj.append(contacts)
    # outlets: the pieces of each ring's outlet zones (gates first, then contacts), united and grown by
    # ENTRY_TOL_M, all rings at once
    n_ext = np.array([len(k) for k in from_ext], dtype=np.int64)
    n_adj = np.array([len(k) for k in from_adj], dtype=np.int64)
    ext_k = np.concatenate([np.empty(0, dtype=np.int64), *from_ext])
    adj_k = np.concatenate([np.empty(0, dtype=np.int64), *from_adj])
    zones = np.concatenate([net.ext_zone[ext_k], net.contact_zones(adj_k)])
    ring_of = np.concatenate([np.repeat(np.arange(len(rings)), n_ext), np.repeat(np.arange(len(rings)), n_adj)])
    order = np.argsort(ring_of, kind="stable")  # per ring its gates, then its contacts, each in order
    zones, ring_of = zones[order], ring_of[order]
    real = ~shapely.is_empty(zones) if len(zones) else np.zeros(0, dtype=bool)
    zones, ring_of = zones[real], ring_of[real]
    has = np.unique(ring_of)
    grown = shapely.buffer(gm.union_rows(zones, np.searchsorted(has, ring_of), len(has)), ENTRY_TOL_M)
    counts = np.zeros(len(rings), dtype=np.int64)
    counts[has] = np.bincount(gm.pieces_of(grown)[1], minlength=len(has))
    for members, outlets in zip(rings, counts.tolist(), strict=True):
        if outlets >= need:
            continue
        for i in members[net.own[members]]:
            out.append(_finding(
                ctx, net, int(i), rule="LANE-CONNECT", verdict="fail", measured=float(outlets),
                required=float(need), severity=severity(profile, "LANE-CONNECT"), geometry=net.geoms[i],
                message=f"环形消防车道 {net.refs[i]} 仅有 {outlets} 处与其他道路连通, 应不少于 {need} 处"
                        f"{net.claim_note(int(i))[0]}",
                message_en=f"ring fire lane {net.refs[i]} connects to other roads at {outlets} places, "
                           f"at least {need} required{net.claim_note(int(i))[1]}",
            ))
    return out


def _ring_outlets(net: LaneNetwork, on: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`lane_connect`'s outlets of the rings whose lanes are `on`, each ring alone in its component of the lane
    graph: (entry index, ring group) of its gates (of every entry on it when it has neither gate nor contact) and
    (contact index, ring group) of its contacts with lanes that reach an entry without it."""
    ai, aj, el = net.adj_i, net.adj_j, net.ext_lane
    keep = ~on[ai] & ~on[aj]
    sub = connected_components(coo_matrix((np.ones(int(keep.sum())), (ai[keep], aj[keep])), shape=(net.n, net.n)),
                               directed=False)[1]
    outside = np.isin(sub, sub[el[~on[el]]])
    gates = np.flatnonzero(on[el] & net.ext_gate)
    contacts = np.flatnonzero(on[ai] & ~on[aj] & outside[aj])
    bare = np.setdiff1d(np.unique(group[on]), np.concatenate([group[el[gates]], group[ai[contacts]]]))
    road = np.flatnonzero(on[el] & np.isin(group[el], bare))
    ext_k = np.concatenate([gates, road])
    return (np.column_stack([ext_k, group[el[ext_k]]]).astype(np.int64),
            np.column_stack([contacts, group[ai[contacts]]]).astype(np.int64))


def _by_label(label: np.ndarray, n: int) -> list[np.ndarray]:
    """Per label 0..n-1 the indices carrying it, ascending."""
    order = np.argsort(label, kind="stable")
    return np.split(order, np.searchsorted(label[order], np.arange(1, n)))


# --- LANE-SETBACK, LANE-SLOPE ------------------------------------------------------------------------------------


def lane_setback(ctx: CheckContext, net: LaneNetwork) -> list[Finding]:
    """LANE-SETBACK (advisory): an own lane's edge is at least `min_setback_m` from the wall of a high-rise.

    Buildings whose height (and floors) is unknown and that are closer: cannot judge, naming the missing datum.
    """
    profile = ctx.profile
    sec = profile["LANE-SETBACK"]
    need = float(sec["min_setback_m"])
    bv = ctx.view("buildings")
    b = bv.frame
    own = np.flatnonzero(net.own)
    if not len(b) or not len(own):
        return []
    bg = bv.geoms
    height, from_floors = at.building_heights(b, profile)
    use = at.texts(b, "use", "residential")
    limit = np.where(use == "residential", float(sec["high_rise_residential_m"]), float(sec["high_rise_other_m"]))
    brefs = bv.refs
    # only buildings of unknown height and high-rises are reported: only those are looked for near the lanes
    report = np.flatnonzero(np.isnan(height) | (height > limit))
    if not len(report):
        return []
    li, bi = STRtree(bg[report]).query(net.geoms[own], predicate="dwithin", distance=need)
    pair = np.lexsort((report[bi], li))  # lane by lane, buildings in their view order
    li, bi = li[pair], report[bi[pair]]
    d = shapely.distance(net.geoms[own[li]], bg[bi])
    close = d < need
    li, bi, d = li[close], bi[close], d[close]
    lines = shapely.shortest_line(net.geoms[own[li]], bg[bi])
    out = []
    for i, j, dist, line in zip(li, bi, d, lines, strict=True):
        lane = int(own[i])
        if np.isnan(height[j]):
            out.append(_finding(
                ctx, net, lane, rule="LANE-SETBACK", verdict="cannot_judge", other_refs=[str(brefs[j])],
                measured=round(float(dist), 2), required=need, severity=0.0, geometry=line,
                message=f"消防车道 {net.refs[lane]} 距建筑 {brefs[j]} {dist:.2f} m; 无法判定: 建筑缺少高度和层数",
                message_en=f"fire lane {net.refs[lane]} is {dist:.2f} m from building {brefs[j]}; cannot judge: "
                           f"the building has neither height nor floors",
            ))
            continue
        if height[j] <= limit[j]:
            continue
        est_zh = f"(按层数估算高度 {height[j]:.0f} m)" if from_floors[j] else ""
        est_en = f" (height {height[j]:.0f} m estimated from floors)" if from_floors[j] else ""
        out.append(_finding(
            ctx, net, lane, rule="LANE-SETBACK", verdict="fail", other_refs=[str(brefs[j])],
            measured=round(float(dist), 2), required=need, severity=severity(profile, "LANE-SETBACK"),
            geometry=line,
            message=f"消防车道 {net.refs[lane]} 距高层建筑 {brefs[j]} 外墙 {dist:.2f} m, 宜不小于 {need:g} m{est_zh}",
            message_en=f"fire lane {net.refs[lane]} is {dist:.2f} m from the wall of high-rise {brefs[j]}, "
                       f"should be at least {need:g} m{est_en}",
        ))
    return out


def lane_slope(ctx: CheckContext, net: LaneNetwork) -> list[Finding]:
    """LANE-SLOPE (advisory): recorded longitudinal slope at most `max_slope_pct`; no slope, no finding."""
    profile = ctx.profile
    need = float(profile.get("LANE-SLOPE", "max_slope_pct"))
    slope = at.numbers(net.frame, "slope_pct") if net.n else np.empty(0)
    out = []
    for i in np.flatnonzero(net.own & (slope > need)):
        out.append(_finding(
            ctx, net, int(i), rule="LANE-SLOPE", verdict="fail", measured=float(slope[i]), required=need,
            severity=severity(profile, "LANE-SLOPE"), geometry=net.geoms[i],
            message=f"消防车道 {net.refs[i]} 坡度 {slope[i]:.1f}%, 宜不大于 {need:g}%",
            message_en=f"fire lane {net.refs[i]} has a {slope[i]:.1f} % slope, should be at most {need:g} %",
        ))
    return out


RULE_FUNCTIONS = (lane_width, lane_clear, lane_headroom, lane_turnaround, lane_connect, lane_turn, lane_setback,
                  lane_slope)


def check(ctx: CheckContext) -> gpd.GeoDataFrame:
    """All fire-lane rules for one partition.

    Parameters
    ----------
    ctx : CheckContext
        Lanes, roads, entrances, obstructions, illegal structures and buildings in the metric CRS `ctx.crs`.

    Returns
    -------
    GeoDataFrame
        Findings (``fail`` and ``cannot_judge``) with evidence geometry in `ctx.crs`.
    """
    net = lane_network(ctx)
    found: list[Finding] = []
    if net.n or len(ctx.view("entrances")):
        for fn in RULE_FUNCTIONS:
            found.extend(fn(ctx, net))
    return findings_frame(found, crs=ctx.crs)


__all__ = ["DEPARTMENTS", "LaneNetwork", "check", "departments", "footprints", "ground_obstacles", "lane_network"]
