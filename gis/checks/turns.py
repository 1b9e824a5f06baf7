"""LANE-TURN: the swept path of a fire truck's turn at every corner of the lane network, the entrances' turns from
the city road included, judged inside the drivable surface (lanes, entrance driveways, city road surfaces)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from shapely import STRtree

from gis.checks import attributes as at
from gis.checks import geometry as gm
from gis.checks.context import CheckContext
from gis.checks.findings import Finding, severity

if TYPE_CHECKING:  # lanes imports this module (lane_turn)
    from gis.checks.lanes import LaneNetwork

#: Boundary simplification before corners are looked for (metres): drawing noise below this is no corner.
#: A tolerance, not a rule value.
SIMPLIFY_M = 0.01
#: A leg is a passage when it runs along the corner for at least this share of its width (a turnaround square's
#: stub beside the lane, 4 m long and 12 m across, is no leg a truck turns into; a 5 m driveway 6 m wide is).
ARM_RATIO = 0.5
#: Consecutive inner (reflex) vertices joined by edges shorter than this are one corner (a fillet or a chamfer).
GROUP_M = 20.0
#: Corners turning less than this (degrees) are bends a truck follows without a turn; more than TURN_MAX_DEG is a
#: hairpin no swept band of one arc describes.
TURN_MIN_DEG = 30.0
TURN_MAX_DEG = 150.0
#: A leg's width is probed at these shares of its length (up to twice PROBE_M) from the corner.
PROBE_M = 10.0
PROBE_AT = (0.25, 0.5, 0.75)
#: Where the band may run across each leg: these shares of the room the leg leaves beside the truck, from the inner
#: edge (1: along the far side, the widest swing; the others where the far side is no straight line).
PLACEMENTS = ((1.0, 1.0), (0.5, 0.5), (1.0, 0.5), (0.5, 1.0))
#: Boundary segments are indexed in runs along their ring about this long (metres): fewer, larger envelopes.
CHUNK_M = 5.0
#: Longest probe across a leg (metres); probes look PROBE_NEAR_M far first: most legs are narrower (lanes, and
#: the city roads entrances turn from: a four-lane road is 16-20 m), and a near probe's envelope holds fewer
#: segments.
PROBE_REACH_M = 60.0
PROBE_NEAR_M = 20.0
#: A swept band may overlap the surface's edge by this much (metres): drawing noise. Kept small on purpose: at a
#: sharp corner a penetration of d lets the radius grow by about sqrt(2 r d) (0.4 m for 1 cm at 9 m).
DEPTH_TOL_M = 0.01
#: What is left of the band outside the surface once the depth tolerance is taken (m²): numerical dust.
AREA_TOL_M2 = 1e-4
#: Points per arc of a swept band.
ARC_POINTS = 24
#: Bisection steps for the largest radius that fits (required / 2**n precision).
BISECT_STEPS = 11
#: A driveway reaches from a vehicle gate to a city road surface at most this far (metres).
DRIVEWAY_MAX_M = 30.0
#: City road surface kept around each driveway (metres): room for the swing of the entrance turn.
ROAD_WINDOW_M = 40.0
#: A corner belongs to a lane or driveway that comes this near its vertices (metres).
TOUCH_M = 0.5
#: Closing of seams between drawn surfaces (metres).
SEAM_M = 0.005
#: A box around a corner's vertices grown by this holds every point within TOUCH_M of them (rounding to spare).
_TOUCH_BOX_M = TOUCH_M + 1e-6

#: Subject priority at a junction: the lane turned into that serves least otherwise.
_PRIORITY = {"dead_end": 0, "ring": 1, "through": 2, "isolated": 3}


@dataclass(frozen=True)
class Corners:
    """Corners of a drivable surface: the sharp corner `apex` (x, y: the legs' inner lines extended), the inner
    lines' points `a1`/`a2`, unit travel directions `t1` (into the corner) and `t2` (out of it), inward normals
    `n1`/`n2`, leg widths `w1`/`w2`, the turn angle (radians, signed: negative for the boundary's right turns)
    and the group's vertices (`verts[v0:v1]`: `touch`) by which lanes and driveways are matched."""

    apex: np.ndarray
    a1: np.ndarray
    a2: np.ndarray
    t1: np.ndarray
    t2: np.ndarray
    n1: np.ndarray
    n2: np.ndarray
    w1: np.ndarray
    w2: np.ndarray
    turn: np.ndarray
    v0: np.ndarray
    v1: np.ndarray
    len1: np.ndarray
    len2: np.ndarray
    part: np.ndarray
    #: every corner's group vertices, one after the other (shared by the corners taken from these: not per corner)
    verts: np.ndarray

    def __len__(self) -> int:
        return len(self.apex)

    def take(self, idx: np.ndarray) -> Corners:
        return Corners(*(getattr(self, f)[idx] if f != "verts" else self.verts for f in self.__dataclass_fields__))

    def touch(self, idx: np.ndarray | None = None) -> np.ndarray:
        """Per corner (of `idx`; all by default) its group's vertices (a multipoint), by which lanes and driveways
        are matched."""
        v0, v1 = (self.v0, self.v1) if idx is None else (self.v0[idx], self.v1[idx])
        k, j = gm.pairs_in_ranges(v0, v1)
        return shapely.multipoints(self.verts[j], indices=k)

    def vertex_boxes(self) -> tuple[np.ndarray, np.ndarray]:
        """Per corner the lower left and upper right (x, y) of its group's vertices."""
        size = self.v1 - self.v0
        xy = self.verts[gm.ranges(self.v0, self.v1)]
        start = np.cumsum(size) - size
        return np.minimum.reduceat(xy, start), np.maximum.reduceat(xy, start)


def _left(t: np.ndarray) -> np.ndarray:
    return np.column_stack([-t[:, 1], t[:, 0]])


def _ring_neighbours(ring: np.ndarray, idx: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Previous and next vertex of vertices `idx` (all by default) of closed rings stored one after the other
    (ring ids sorted): a ring's first and last vertex are each other's neighbours."""
    new = np.r_[True, ring[1:] != ring[:-1]]
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], len(ring)] - 1
    which = np.cumsum(new) - 1                                  # each vertex's ring, counted from 0
    idx = np.arange(len(ring)) if idx is None else np.asarray(idx, dtype=np.int64)
    first, last = starts[which[idx]], ends[which[idx]]
    return np.where(idx == first, last, idx - 1), np.where(idx == last, first, idx + 1)


def _corner_runs(xy: np.ndarray, ring: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Inner-corner groups of closed rings (interior on the left), all rings at once: runs of reflex vertices
    joined by edges shorter than GROUP_M, split where their turns would add up to more than TURN_MAX_DEG (a
    chamfer or a fillet is one corner; two corners of a U are two).

    Returns (first vertex, last vertex) per run, and every member vertex with its run's number."""
    prev, nxt = _ring_neighbours(ring)
    x, y = np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1])  # (gathers by index per column)
    ex, ey = x[nxt] - x, y[nxt] - y                   # edge from each vertex to the next
    ix, iy = x - x[prev], y - y[prev]                 # edge into each vertex
    cross = ix * ey - iy * ex
    reflex = cross < -1e-9
    # (lengths and turns are needed at the reflex vertices only)
    rv = np.flatnonzero(reflex & reflex[nxt])
    join = np.zeros(len(xy), dtype=bool)              # vertex i and the next are one corner
    join[rv] = np.hypot(ex[rv], ey[rv]) < GROUP_M
    start = reflex & ~join[prev]
    # each reflex vertex belongs to the run of the nearest start before it along its ring (cyclically)
    idx = np.arange(len(xy))
    ring_start = np.r_[True, ring[1:] != ring[:-1]]
    ring_first = np.maximum.accumulate(np.where(ring_start, idx, 0))
    acc = np.maximum.accumulate(np.where(start, idx, -1))
    first_idx = np.flatnonzero(ring_start)  # (rings are stored one after the other)
    last_start = np.repeat(np.maximum.reduceat(np.where(start, idx, -1), first_idx), np.diff(np.r_[first_idx, len(idx)]))
    owner = np.where(acc >= ring_first, acc, last_start)
    member = np.flatnonzero(reflex & (owner >= 0))    # (a ring that is one closed run has no start: no corner)
    head = owner[member]
    size = np.bincount(ring, minlength=int(ring.max()) + 1)[ring]
    offset = (idx[member] - head) % size[member]
    order = np.argsort(head * len(xy) + offset, kind="stable")  # by run, then along the ring
    member, head = member[order], head[order]
    run = np.r_[0, np.cumsum(head[1:] != head[:-1])] if len(head) else head  # (members are sorted by run)
    dot = ix[member] * ex[member] + iy[member] * ey[member]
    member_turn = np.degrees(np.abs(np.arctan2(cross[member], dot)))
    total = np.bincount(run, weights=member_turn)
    # runs turning more than TURN_MAX_DEG in all (rare: long curves) are split where the sum would exceed it
    if (total > TURN_MAX_DEG).any():
        labels = run.astype(np.int64) * len(member)   # room for the pieces of a split run, order kept
        starts = np.searchsorted(run, np.arange(len(total) + 1))  # (members are sorted by run)
        long = np.flatnonzero(total > TURN_MAX_DEG)   # the long curves of a partition
        pos, end = starts[long], starts[long + 1]
        piece = 0
        while len(pos):  # every long run's next piece at once: a handful of rounds
            col = np.arange(int((end - pos).max()))
            inside = col[None, :] < (end - pos)[:, None]
            # the turn summed from the piece's first member, added one member after the other as a walk would
            summed = np.add.accumulate(np.where(inside, member_turn[np.minimum(pos[:, None] + col, len(member) - 1)],
                                                0.0), axis=1)
            before = np.c_[np.zeros(len(pos)), summed[:, :-1]]
            cut = inside & (before > 0) & (summed > TURN_MAX_DEG)
            more = cut.any(axis=1)
            stop = np.where(more, pos + cut.argmax(axis=1), end)
            labels[gm.pairs_in_ranges(pos, stop)[1]] += piece
            pos, end, piece = stop[more], end[more], piece + 1
        run = np.unique(labels, return_inverse=True)[1]
    if not len(run):
        return member[:0], member[:0], member, run
    cut = np.flatnonzero(np.diff(run)) + 1
    first = member[np.r_[0, cut]]
    last = member[np.r_[cut - 1, len(run) - 1]]
    return first, last, member, run


def simplified(surfaces: np.ndarray) -> np.ndarray:
    """The surfaces simplified by SIMPLIFY_M, topology preserved, and oriented (interior on the left of every ring).

    Douglas-Peucker (three times cheaper) picks out the surfaces with nothing to simplify: the topology-preserving
    simplifier takes the same sections and ring ends, only refusing some, so it removes a subset of the vertices
    Douglas-Peucker removes, and none where that removes none (most surfaces); only the others are simplified.
    Douglas-Peucker runs on the rings as lines: on a polygon it also tests the result's validity, the larger part
    of its cost, and a polygon whose rings lose no vertex is returned as it is."""
    surfaces = np.asarray(surfaces, dtype=object)
    out = surfaces.copy()
    polys, owner = shapely.get_parts(surfaces, return_index=True)
    rings, ring_owner = shapely.get_rings(polys, return_index=True)
    before = shapely.get_num_coordinates(rings)
    after = shapely.get_num_coordinates(shapely.simplify(rings, SIMPLIFY_M, preserve_topology=False))
    some = np.zeros(len(surfaces), dtype=bool)
    some[owner[ring_owner[after < before]]] = True
    out[some] = shapely.simplify(surfaces[some], SIMPLIFY_M, preserve_topology=True)
    return shapely.orient_polygons(out)


def find_corners(surface: shapely.Geometry | np.ndarray, *, probe: bool = True, is_simple: bool = False) -> Corners:
    """Inner corners of `surface` (one, or an array of separate surfaces; simplified by SIMPLIFY_M) that a truck
    turns around: groups of reflex vertices turning TURN_MIN_DEG..TURN_MAX_DEG whose two legs are passages (each
    leg long enough for its width, ARM_RATIO), with the legs' widths probed across them (`probe`; else left to
    `measure_legs`). `Corners.part` is the index of the surface each corner lies on."""
    surfaces = np.atleast_1d(np.asarray(surface, dtype=object))
    simple = surfaces if is_simple else simplified(surfaces)
    polys, owner = shapely.get_parts(simple, return_index=True)
    poly = shapely.get_type_id(polys) == 3
    rings, ring_owner = shapely.get_rings(polys[poly], return_index=True)
    ring_owner = owner[poly][ring_owner]
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    last_of = np.r_[ring[1:] != ring[:-1], True]   # each ring's closing vertex repeats its first: drop it
    xy, ring = xy[~last_of], ring[~last_of]
    first, last, member, run = _corner_runs(xy, ring)
    if not len(first):
        z = np.empty((0, 2))
        f = np.empty(0)
        i = np.empty(0, dtype=np.int64)
        return Corners(z, z, z, z, z, z, z, f, f, f, i, i, f, f, i, z)
    # the vertex before each run's first and after its last (only theirs: not every vertex's)
    before, after = _ring_neighbours(ring, first)[0], _ring_neighbours(ring, last)[1]
    p_in, a1, a2, p_out = xy[before], xy[first], xy[last], xy[after]
    part = ring_owner[ring[first]]
    d1, d2 = a1 - p_in, p_out - a2
    len1, len2 = np.hypot(*d1.T), np.hypot(*d2.T)
    t1, t2 = d1 / len1[:, None], d2 / len2[:, None]
    turn = np.arctan2(t1[:, 0] * t2[:, 1] - t1[:, 1] * t2[:, 0], (t1 * t2).sum(axis=1))
    n1, n2 = _left(t1), _left(t2)
    # the sharp corner: where the legs' inner lines meet
    den = t1[:, 0] * t2[:, 1] - t1[:, 1] * t2[:, 0]
    diff = a2 - a1
    s = np.divide(diff[:, 0] * t2[:, 1] - diff[:, 1] * t2[:, 0], den, out=np.zeros(len(den)), where=den != 0)
    deg = np.degrees(np.abs(turn))
    keep = np.flatnonzero((turn < 0) & (deg >= TURN_MIN_DEG) & (deg <= TURN_MAX_DEG))
    apex = (a1 + s[:, None] * t1)[keep]
    # each run's members are consecutive in `member` (sorted by run): the kept runs' vertex ranges
    bounds = np.searchsorted(run, np.arange(len(first) + 1))
    nan = np.full(len(keep), np.nan)
    c = Corners(apex=apex, a1=a1[keep], a2=a2[keep], t1=t1[keep], t2=t2[keep], n1=n1[keep], n2=n2[keep], w1=nan,
                w2=nan, turn=turn[keep], v0=bounds[keep], v1=bounds[keep + 1], len1=len1[keep], len2=len2[keep],
                part=part[keep], verts=xy[member])
    if probe:
        c = measure_legs(c, simple)[0]
    return c


def measure_legs(c: Corners, simple: np.ndarray) -> tuple[Corners, np.ndarray]:
    """The legs' widths, probed across each leg from points near the corner to the far side of its simplified
    surface (`simple[c.part]`), and only the corners whose legs are passages (ARM_RATIO).

    A leg wider than its length / ARM_RATIO is no passage, so no probe looks farther; each corner's shorter leg
    (the one more often no passage) is probed first, the other only where the first is a passage (a corner
    dropped is dropped whichever leg fails)."""
    n = len(c)
    if not n:
        return c, np.empty(0, dtype=np.int64)
    edges = _Boundaries(simple, np.unique(c.part))
    first = c.len1 <= c.len2
    w = np.full((2, n), np.inf)  # (leg 1, leg 2)
    w[np.where(first, 0, 1), np.arange(n)] = _leg_widths(edges, c, np.arange(n), first)
    one = np.flatnonzero(np.where(first, c.len1, c.len2) >= ARM_RATIO * w.min(axis=0))
    if len(one):
        w[np.where(first[one], 1, 0), one] = _leg_widths(edges, c, one, ~first[one])
    c = dataclasses.replace(c, w1=w[0], w2=w[1])
    kept = np.flatnonzero((c.len1 >= ARM_RATIO * w[0]) & (c.len2 >= ARM_RATIO * w[1]))
    return c.take(kept), kept


def _leg_widths(edges: _Boundaries, c: Corners, idx: np.ndarray, leg1: np.ndarray) -> np.ndarray:
    """Widths of corners `idx`' first legs (where `leg1`) or second legs: the narrowest of PROBE_AT's probes (one
    may run into a side road across the leg)."""
    k = len(PROBE_AT)
    one = leg1[:, None]
    a = np.where(one, c.a1[idx], c.a2[idx])
    along = np.where(one, -c.t1[idx], c.t2[idx])  # from the corner down the leg
    normal = np.where(one, c.n1[idx], c.n2[idx])
    length = np.where(leg1, c.len1[idx], c.len2[idx])
    starts = np.vstack([a + (f * np.minimum(length, 2 * PROBE_M))[:, None] * along for f in PROBE_AT])
    got = edges.probe(starts, np.tile(normal, (k, 1)), np.tile(c.part[idx], k), np.tile(length / ARM_RATIO, k),
                      bundle=len(idx))
    return got.reshape(k, len(idx)).min(axis=0)


class _Boundaries:
    """The boundary segments of surfaces `surfaces[used]` for probes, in one STRtree of runs of consecutive
    segments along a ring (CHUNK_M long at most, or one longer segment): a run's envelope holds its segments',
    so a probe's candidates are the segments of the runs it meets whose own envelopes it meets."""

    def __init__(self, surfaces: np.ndarray, used: np.ndarray) -> None:
        polys, owner = shapely.get_parts(surfaces[used], return_index=True)
        rings, ring_owner = shapely.get_rings(polys, return_index=True)
        xy, ring = shapely.get_coordinates(rings, return_index=True)
        seg = np.flatnonzero(ring[1:] == ring[:-1])
        self.part = used[owner[ring_owner[ring[seg]]]]
        # one array per coordinate (the pairs below index them by the hundred thousand)
        self.x0, self.y0 = xy[seg, 0], xy[seg, 1]
        x1, y1 = xy[seg + 1, 0], xy[seg + 1, 1]
        self.ex, self.ey = x1 - self.x0, y1 - self.y0
        self.xlo, self.xhi = np.minimum(self.x0, x1), np.maximum(self.x0, x1)
        self.ylo, self.yhi = np.minimum(self.y0, y1), np.maximum(self.y0, y1)
        self.tree = None
        if not len(seg):
            return
        # runs: a new one where the ring changes or the length along the ring passes a multiple of CHUNK_M
        length = np.hypot(self.ex, self.ey)
        along = np.cumsum(length)
        seg_ring = ring[seg]
        new_ring = np.r_[True, seg_ring[1:] != seg_ring[:-1]]
        along -= np.maximum.accumulate(np.where(new_ring, along - length, 0.0))
        bucket = np.floor(along / CHUNK_M)
        starts = np.flatnonzero(new_ring | np.r_[True, bucket[1:] != bucket[:-1]])
        self.run_lo, self.run_hi = starts, np.r_[starts[1:], len(seg)]
        self.run_part = self.part[starts]
        # each run's line: its segments' vertices, consecutive in its ring's coordinates
        size = self.run_hi - self.run_lo + 1
        self.tree = STRtree(shapely.linestrings(xy[gm.ranges(seg[starts], seg[starts] + size)],
                                                indices=np.repeat(np.arange(len(starts)), size)))

    def probe(self, start: np.ndarray, normal: np.ndarray, part: np.ndarray, limit: np.ndarray,
              bundle: int = 0) -> np.ndarray:
        """Distance from each start point along its normal to the first crossing of its surface's boundary, inf
        when none within min(limit, PROBE_REACH_M); crossings solved in numpy. Probes look PROBE_NEAR_M far
        first, farther only when they crossed nothing that near.

        `bundle` = m: probes i, i + m, i + 2m, ... share their normal, part and limit (one leg's probes), and
        look near in one query of the line through all their ends (its envelope is theirs together)."""
        out = np.full(len(start), np.inf)
        if self.tree is None:
            return out
        limit = np.minimum(limit, PROBE_REACH_M)
        todo = np.arange(len(start))
        # (one array per coordinate: the pairs below gather from them by the hundred thousand)
        sx, sy = np.ascontiguousarray(start[:, 0]), np.ascontiguousarray(start[:, 1])
        nx_, ny_ = np.ascontiguousarray(normal[:, 0]), np.ascontiguousarray(normal[:, 1])
        for stage in (PROBE_NEAR_M, PROBE_REACH_M):  # the nearest crossing within the short reach is the nearest
            if not len(todo):
                break
            reach = np.minimum(limit[todo], stage)
            ax, ay = sx[todo] + 0.01 * nx_[todo], sy[todo] + 0.01 * ny_[todo]
            bx, by = sx[todo] + reach * nx_[todo], sy[todo] + reach * ny_[todo]
            if bundle and len(todo) == len(start):  # (the near look of every probe)
                legs = len(start) // bundle
                xs = np.concatenate([ax.reshape(legs, bundle), bx.reshape(legs, bundle)]).T
                ys = np.concatenate([ay.reshape(legs, bundle), by.reshape(legs, bundle)]).T
                ends = np.stack([xs, ys], axis=-1)
                ri, ci = self.tree.query(shapely.linestrings(ends))  # (envelopes; by bundle)
                ri, ci = (ri[None, :] + bundle * np.arange(legs)[:, None]).ravel(), np.tile(ci, legs)
            else:
                ri, ci = self.tree.query(shapely.linestrings(np.stack([np.column_stack([ax, ay]),
                                                                       np.column_stack([bx, by])], axis=1)))
            same = self.run_part[ci] == part[todo[ri]]
            ri, ci = ri[same], ci[same]
            k, si = gm.pairs_in_ranges(self.run_lo[ci], self.run_hi[ci])
            ri = ri[k]
            # the segments whose envelopes the probe's meets (gm.boxes_meet's test, per coordinate)
            lox, hix = np.minimum(ax, bx), np.maximum(ax, bx)
            loy, hiy = np.minimum(ay, by), np.maximum(ay, by)
            meet = ((self.xlo[si] <= hix[ri]) & (self.xhi[si] >= lox[ri]) & (self.ylo[si] <= hiy[ri])
                    & (self.yhi[si] >= loy[ri]))
            ri, si = ri[meet], si[meet]
            r_of = reach[ri]
            ri = todo[ri]
            # start + t * normal = p0 + u * (p1 - p0), the probe running from t = 0.01 to t = reach
            ex, ey = self.ex[si], self.ey[si]
            nx, ny = nx_[ri], ny_[ri]
            den = nx * ey - ny * ex
            qx, qy = self.x0[si] - sx[ri], self.y0[si] - sy[ri]
            ok = np.abs(den) > 1e-12
            safe = np.where(ok, den, 1.0)
            t = (qx * ey - qy * ex) / safe
            u = (qx * ny - qy * nx) / safe
            hit = ok & (t >= 0.01 - 1e-9) & (t <= r_of + 1e-9) & (u >= -1e-9) & (u <= 1.0 + 1e-9)
            np.minimum.at(out, ri[hit], t[hit])
            todo = todo[np.isinf(out[todo]) & (limit[todo] > stage)]
        return out


def _band_centres(c: Corners, r: np.ndarray, w: float, placement: tuple[float, float]) -> np.ndarray:
    """The centres of the swept bands' arcs (`swept_bands`), one row (x, y) per corner."""
    # (widths are read off the surface simplified by SIMPLIFY_M: the band keeps that much inside the far side)
    s1 = np.maximum(c.w1 - w - SIMPLIFY_M, 0.0) * placement[0]
    s2 = np.maximum(c.w2 - w - SIMPLIFY_M, 0.0) * placement[1]
    # centre: n1 . (C - a1) = s1 - r and n2 . (C - a2) = s2 - r
    b1 = (c.n1 * c.a1).sum(axis=1) + s1 - r
    b2 = (c.n2 * c.a2).sum(axis=1) + s2 - r
    det = c.n1[:, 0] * c.n2[:, 1] - c.n1[:, 1] * c.n2[:, 0]
    cx = (b1 * c.n2[:, 1] - b2 * c.n1[:, 1]) / det
    cy = (c.n1[:, 0] * b2 - c.n2[:, 0] * b1) / det
    return np.column_stack([cx, cy])


def swept_bands(c: Corners, r: np.ndarray, w: float, placement: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """The annulus sectors (inner radius r, width w) tangent to both legs, placed across each leg at the given
    share of the room the leg leaves beside the truck (1: the band's outer edge on the leg's far side, the widest
    swing the passage offers)."""
    r = np.asarray(r, dtype=float)
    cx, cy = _band_centres(c, r, w, placement).T
    phi0 = np.arctan2(c.n1[:, 1], c.n1[:, 0])
    phi = phi0[:, None] + c.turn[:, None] * np.linspace(0.0, 1.0, ARC_POINTS)[None, :]
    ux, uy = np.cos(phi), np.sin(phi)
    k = ARC_POINTS
    n, m = len(cx), 2 * k + 1
    ring = np.empty((n, m, 2))  # the outer arc, the inner arc back, the first point again
    ring[:, :k, 0] = cx[:, None] + (r + w)[:, None] * ux
    ring[:, :k, 1] = cy[:, None] + (r + w)[:, None] * uy
    ring[:, k:2 * k, 0] = (cx[:, None] + r[:, None] * ux)[:, ::-1]
    ring[:, k:2 * k, 1] = (cy[:, None] + r[:, None] * uy)[:, ::-1]
    ring[:, 2 * k] = ring[:, 0]
    # (one ring per polygon, all of one length: built from the flat coordinates in one call)
    return shapely.from_ragged_array(shapely.GeometryType.POLYGON, ring.reshape(-1, 2),
                                     (np.arange(0, n * m + 1, m), np.arange(n + 1)))


def band_boxes(c: Corners, upper: np.ndarray, w: float) -> np.ndarray:
    """Per corner a box holding its swept band in every placement for every inner radius 0..upper (the band's
    centre moves along a line as the radius grows, and the band stays within r + w of it), with a metre to spare."""
    upper = np.asarray(upper, dtype=float)
    lo = np.full((len(c), 2), np.inf)
    hi = np.full((len(c), 2), -np.inf)
    for placement in PLACEMENTS:
        for r in (np.zeros(len(c)), upper):
            centre = _band_centres(c, r, w, placement)
            lo, hi = np.minimum(lo, centre), np.maximum(hi, centre)
    reach = (upper + w + 1.0)[:, None]
    return shapely.box(*(lo - reach).T, *(hi + reach).T)


def fits(c: Corners, surface: shapely.Geometry | np.ndarray, r: np.ndarray, w: float) -> np.ndarray:
    """Whether the swept band of inner radius r lies inside `surface` (one, or one per corner; pass the surface
    grown by DEPTH_TOL_M, `grown`, for the depth tolerance), in one of the PLACEMENTS."""
    r = np.broadcast_to(np.asarray(r, dtype=float), len(c))
    where = np.broadcast_to(np.asarray(surface, dtype=object), len(c))
    ok = np.zeros(len(c), dtype=bool)
    for placement in PLACEMENTS:  # a handful of placements, each one vectorised call over the corners
        todo = np.flatnonzero(~ok)
        if not len(todo):
            break
        ok[todo] = _fits_placed(c.take(todo), where[todo], r[todo], w, placement)
    return ok


def _fits_placed(c: Corners, surface: np.ndarray, r: np.ndarray, w: float,
                 placement: tuple[float, float]) -> np.ndarray:
    """Whether each corner's swept band of inner radius r in this placement lies inside its surface (`fits`)."""
    bands = swept_bands(c, r, w, placement)
    shapely.prepare(surface)  # a shared surface is prepared once, and stays prepared for the next calls
    # a band the surface covers fits (nothing of it outside): only the others need the overlay
    inside = shapely.covers(surface, bands)
    rest = np.flatnonzero(~inside)
    rest = rest[~_surely_out(c.take(rest), r[rest], w, placement, surface[rest])]
    inside[rest] = shapely.area(shapely.difference(bands[rest], surface[rest])) <= AREA_TOL_M2
    return inside


#: A point of a band this far from the surface and from the band's own edges proves more than AREA_TOL_M2 of the
#: band outside the surface: a disc of this radius (1.1 cm, 4 x AREA_TOL_M2) lies in the band and off it.
_SURE_M = 2 * float(np.sqrt(AREA_TOL_M2 / np.pi))


def _surely_out(c: Corners, r: np.ndarray, w: float, placement: tuple[float, float],
                surface: np.ndarray) -> np.ndarray:
    """Per corner whether its swept band (`swept_bands`, inner radius r) surely leaves more than AREA_TOL_M2 outside
    the (prepared) surface: the point in the middle of the band's turn, 2 % of the width off its inner arc (where a
    band cutting the corner leaves the surface), is _SURE_M or farther from the band's edges and from the surface.
    A cheap exact test before the overlay (False: the overlay decides)."""
    rho = r + 0.02 * w
    # room to the band's edges: the inner arc's chords lie within radius r, the outer arc's beyond
    # (r + w) cos(step / 2), and the end radii half the turn away
    step = np.abs(c.turn) / (ARC_POINTS - 1)
    room = np.minimum(np.minimum(rho - r, (r + w) * np.cos(step / 2) - rho),
                      rho * np.sin(np.minimum(np.abs(c.turn), np.pi / 2) / 2))
    test = np.flatnonzero(room >= _SURE_M)
    out = np.zeros(len(c), dtype=bool)
    if len(test):
        centre = _band_centres(c.take(test), r[test], w, placement)
        phi = np.arctan2(c.n1[test, 1], c.n1[test, 0]) + c.turn[test] / 2
        point = shapely.points(centre[:, 0] + rho[test] * np.cos(phi), centre[:, 1] + rho[test] * np.sin(phi))
        out[test] = ~shapely.dwithin(surface[test], point, _SURE_M)
    return out


def largest_radius(c: Corners, surface: shapely.Geometry | np.ndarray, upper: np.ndarray,
                   w: float) -> np.ndarray:
    """The largest inner radius whose band fits (`fits`), on a grid of upper / 2**BISECT_STEPS below upper,
    rounded down to the centimetre (0 where not even radius 0 fits); all corners at once.

    By bisection, which takes a band that fits at a radius to fit at the smaller ones in the same placement:
    so each placement is asked only whether it fits one grid step above the largest radius the placements
    before it fit, and bisected above that only where it does (the first placement, the widest swing, mostly
    decides; a bisection of "some placement fits" asks every placement at every step that fails)."""
    n = len(c)
    surface = np.broadcast_to(np.asarray(surface, dtype=object), n)
    upper = np.broadcast_to(np.asarray(upper, dtype=float), n)
    grid = 2 ** BISECT_STEPS
    best = np.full(n, -1, dtype=np.int64)  # per corner the largest grid step known to fit (-1: none)
    for placement in PLACEMENTS:
        todo = np.flatnonzero(best < grid - 1)
        lo = best[todo] + 1
        ok = _fits_placed(c.take(todo), surface[todo], upper[todo] * lo / grid, w, placement)
        todo, lo = todo[ok], lo[ok]
        hi = np.full(len(todo), grid)  # (the first step known not to fit in this placement; grid: upper)
        while len(todo):
            open_ = np.flatnonzero(hi - lo > 1)
            if not len(open_):
                break
            mid = (lo[open_] + hi[open_]) // 2
            at = todo[open_]
            ok = _fits_placed(c.take(at), surface[at], upper[at] * mid / grid, w, placement)
            lo[open_] = np.where(ok, mid, lo[open_])
            hi[open_] = np.where(ok, hi[open_], mid)
        best[todo] = lo
    return np.where(best >= 0, np.floor(upper * np.maximum(best, 0) / grid * 100) / 100, 0.0)


def driveways(ctx: CheckContext, roads: STRtree) -> tuple[np.ndarray, np.ndarray]:
    """The vehicle entrances' driveways: from the gate (its width, default the truck width) straight to the
    nearest city road surface (of the tree `roads`) within DRIVEWAY_MAX_M, one metre into the compound (a square of
    the gate's width where no road is near). Returns (driveways, the entrance view's row of each)."""
    ent = ctx.view("entrances")
    if not len(ent):
        return np.empty(0, dtype=object), np.empty(0, dtype=np.int64)
    vehicle = np.flatnonzero(at.vehicle_entrances(ent.frame)
                             & np.isin(shapely.get_type_id(ent.geoms), (0,)))
    if not len(vehicle):
        return np.empty(0, dtype=object), np.empty(0, dtype=np.int64)
    g = ent.geoms[vehicle]
    width = at.numbers(ent.frame, "width_m")[vehicle]
    width = np.where(np.isnan(width) | (width <= 0), float(ctx.profile.get("LANE-CLEAR", "truck_width_m")), width)
    out = np.full(len(g), None, dtype=object)
    if len(roads.geometries):
        gi, ri = gm.nearest_within(g, roads, DRIVEWAY_MAX_M)
        if len(gi):
            line = shapely.shortest_line(g[gi], roads.geometries[ri])
            start = shapely.get_coordinates(g[gi])
            end = shapely.get_coordinates(shapely.get_point(line, 1))
            d = end - start
            length = np.hypot(*d.T)
            ok = length > 0.01
            gi, start, d, length = gi[ok], start[ok], d[ok], length[ok]
            u = d / length[:, None]
            a = start - u * 1.0
            b = start + u * (length + 0.5)[:, None]
            # the rectangle `buffer(line a-b, width / 2, cap_style="flat")` makes, built directly: its sides'
            # offsets computed as GEOS computes them, its vertices in GEOS's order (from b around to a)
            dx, dy = (b - a).T
            span = np.sqrt(dx * dx + dy * dy)
            half = width[gi] / 2
            side = np.column_stack([-(half * dy / span), half * dx / span])
            out[gi] = shapely.polygons(np.stack([b + side, b - side, a - side, a + side, b + side], axis=1))
    square = shapely.is_missing(out)  # (no road near: the gate's square, drawn only for these)
    out[square] = shapely.buffer(g[square], width[square] / 2, cap_style="square")
    return out, vehicle


def lane_turn(ctx: CheckContext, net: LaneNetwork) -> list[Finding]:
    """LANE-TURN: at every inner corner of the drivable surface that a lane or an entrance driveway meets, a truck
    of the profile's inner turning radius (aerial ladder trucks where the lanes at the corner serve a high-rise)
    and swept width turns inside the surface. Reports the corner, the largest inner radius that fits and the
    buildings cut off (those a dead-end lane behind the corner, or an entrance with no other passable entrance,
    serves)."""
    profile = ctx.profile
    sec = profile["LANE-TURN"]
    ordinary, ladder = float(sec["inner_radius_m"]), float(sec["ladder_inner_radius_m"])
    w = float(sec["swept_width_m"])
    serve = float(sec["serve_distance_m"])
    roads = net.city if net.city is not None else at.city_surfaces(at.layer(ctx, "roads"))
    roads = roads[np.isin(shapely.get_type_id(roads), (3, 6))] if len(roads) else roads
    road_tree = STRtree(roads)  # (the driveways' roads and the roads around them)
    drive, drive_row = driveways(ctx, road_tree)
    lanes = net.geoms
    if not len(lanes) and not len(drive):
        return []
    # drivable surfaces: lanes and driveways that touch form one surface (a compound's network), each with the
    # city road around its driveways; separate surfaces, no partition-wide overlay
    pieces = np.concatenate([lanes, drive])
    # lanes that touch: of the network's lane contacts (lanes within a metre) those within SEAM_M; driveways queried
    fwd = np.flatnonzero(net.adj_i < net.adj_j)
    shapely.prepare(lanes)
    # (most contacts overlap: the prepared intersects answers those, the distance test only the rest)
    meet = shapely.intersects(lanes[net.adj_i[fwd]], lanes[net.adj_j[fwd]])
    apart = fwd[~meet]
    meet[~meet] = shapely.dwithin(lanes[net.adj_i[apart]], lanes[net.adj_j[apart]], SEAM_M)
    close = fwd[meet]
    di, pj = (STRtree(pieces).query(drive, predicate="dwithin", distance=SEAM_M) if len(drive)
              else (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)))
    a = np.concatenate([net.adj_i[close], len(lanes) + di, np.arange(len(pieces))])
    b = np.concatenate([net.adj_j[close], pj, np.arange(len(pieces))])
    comp = connected_components(coo_matrix((np.ones(len(a)), (a, b)), shape=(len(pieces), len(pieces))),
                                directed=False)[1]
    n_comp = int(comp.max()) + 1 if len(comp) else 0
    # only surfaces with an own lane or an own driveway are looked at (and drawn)
    ent = ctx.view("entrances")
    own_piece = np.concatenate([net.own if net.n else np.zeros(0, dtype=bool),
                                ent.own[drive_row] if len(drive_row) else np.zeros(0, dtype=bool)])
    mine = np.unique(comp[own_piece])
    wanted = np.zeros(n_comp, dtype=bool)
    wanted[mine] = True
    take = np.flatnonzero(wanted[comp])
    parts, rows = [pieces[take]], [comp[take]]
    near = np.flatnonzero(wanted[comp[len(lanes):]])  # the driveways of those surfaces
    if len(roads) and len(near):
        window = shapely.buffer(drive[near], ROAD_WINDOW_M, quad_segs=4)
        wi, ri = road_tree.query(window, predicate="intersects")
        parts.append(shapely.intersection(roads[ri], window[wi]))
        rows.append(comp[len(lanes) + near[wi]])
    surfaces = np.full(n_comp, None, dtype=object)
    surfaces[mine] = gm.grown_union_rows(np.concatenate(parts), np.searchsorted(mine, np.concatenate(rows)), len(mine),
                                         SEAM_M, join_style="mitre")
    simple = np.full(len(surfaces), None, dtype=object)
    simple[mine] = simplified(surfaces[mine])
    corners = find_corners(simple[mine], probe=False, is_simple=True)
    corners = dataclasses.replace(corners, part=mine[corners.part])
    if not len(corners):
        return []
    found = corners
    # each corner's legs measured on its surface (corners are measured independently); only passages stay
    corners, passage = measure_legs(corners, simple)
    if not len(corners):
        return []
    # the passages' vertices are matched to driveways and lanes as multipoints, drawn only for the passages whose
    # vertices' box, grown by TOUCH_M, meets the envelope of a driveway or of a lane that serves a high-rise
    lo, hi = corners.vertex_boxes()
    near_tree = STRtree(shapely.box(*(lo - _TOUCH_BOX_M).T, *(hi + _TOUCH_BOX_M).T))
    touch = np.full(len(corners), None, dtype=object)
    passages = corners

    def touching(idx: np.ndarray) -> np.ndarray:  # (indices of `passages`)
        todo = np.unique(idx[shapely.is_missing(touch[idx])])
        touch[todo] = passages.touch(todo)
        return touch[idx]

    # which driveway each passage belongs to (by its vertices; a corner near two driveways takes the last)
    di, dj = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    if len(drive):
        near = np.unique(near_tree.query(drive)[1])
        di, dj = STRtree(drive).query(touching(near), predicate="dwithin", distance=TOUCH_M)
        di = near[di]
    gate = np.full(len(corners), -1, dtype=np.int64)
    if len(di):
        gate[di] = dj
    # the truck each corner needs: an aerial ladder truck where the lanes at the corner (or its driveway) serve a
    # high-rise. A band the surface itself covers fits: only the corners whose first band is not covered are
    # matched to their lanes and judged
    tall = at.high_rises(ctx)
    need = np.full(len(corners), ordinary)
    maybe = np.empty(0, dtype=np.int64)  # near a lane that serves a high-rise (its envelope): ladder or not
    if len(tall):
        if len(drive):
            drive_tall = np.zeros(len(drive), dtype=bool)
            drive_tall[at.high_rise_tree(ctx).query(drive, predicate="dwithin", distance=serve)[0]] = True
            need[(gate >= 0) & drive_tall[np.maximum(gate, 0)]] = ladder
        if len(lanes):
            # (the buildings query the lanes: a footprint is the prepared side of each distance test)
            tl = np.unique(STRtree(lanes).query(tall, predicate="dwithin", distance=serve)[1])
            if len(tl):
                ti, ci = near_tree.query(lanes[tl])
                keep_pair = need[ci] != ladder
                ti, ci = ti[keep_pair], ci[keep_pair]
                maybe = np.unique(ci)
    used = np.unique(corners.part)
    shapely.prepare(surfaces[used])
    covered = shapely.covers(surfaces[corners.part], swept_bands(corners, need, w, PLACEMENTS[0]))
    if len(maybe):
        # a corner whose bands for both trucks are covered fits whichever it needs; only the others are matched to
        # the lanes that serve a high-rise (a lane within TOUCH_M of the corner's vertices)
        sub = corners.take(maybe)
        tall_covered = shapely.covers(surfaces[sub.part], swept_bands(sub, np.full(len(maybe), ladder), w,
                                                                      PLACEMENTS[0]))
        ask = maybe[~(covered[maybe] & tall_covered)]
        pair = np.isin(ci, ask)
        ti, ci = ti[pair], ci[pair]
        at_corner = np.unique(ci[shapely.dwithin(lanes[tl[ti]], touching(ci), TOUCH_M)])
        need[at_corner] = ladder
        covered[at_corner] = tall_covered[np.searchsorted(maybe, at_corner)]
    look = np.flatnonzero(~covered)
    if not len(look):
        return []
    corners, gate, need = corners.take(look), gate[look], need[look]
    # which lanes each of those corners belongs to (the lanes query the corners: a lane polygon is the prepared
    # side of each distance test)
    li, ci = (STRtree(touching(look)).query(lanes, predicate="dwithin", distance=TOUCH_M) if len(lanes)
              else (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)))
    rank = np.array([_PRIORITY.get(k, 9) for k in net.kinds], dtype=np.int64) if net.n else np.empty(0, int)
    subject = np.full(len(corners), -1, dtype=np.int64)
    if len(ci):
        order = np.lexsort((net.refs[li].astype(str), rank[li], ci))
        first = np.r_[True, ci[order][1:] != ci[order][:-1]]
        subject[ci[order][first]] = li[order][first]
    own = np.where(subject >= 0, net.own[np.maximum(subject, 0)] if net.n else False,
                   (gate >= 0) & (ent.own[drive_row[np.maximum(gate, 0)]] if len(drive_row) else False))
    sel = np.flatnonzero(own & ((subject >= 0) | (gate >= 0)))
    if not len(sel):
        return []
    corners, subject, gate, keep, need = corners.take(sel), subject[sel], gate[sel], look[sel], need[sel]
    # only the surfaces with such a corner are grown, once (a band may graze the edge by the depth tolerance), and
    # those corners go through every placement; each corner's bands (any placement, any radius up to the need) lie
    # in a box around it, so the overlays run against the grown surface inside that box only
    grow = np.unique(corners.part)
    grown = np.full(len(surfaces), None, dtype=object)
    grown[grow] = shapely.buffer(surfaces[grow], DEPTH_TOL_M, join_style="mitre")
    local = shapely.intersection(grown[corners.part], band_boxes(corners, need, w))
    ok = fits(corners, local, need, w)
    bad = np.flatnonzero(~ok)
    if not len(bad):
        return []
    corners, subject, gate, need, local = corners.take(bad), subject[bad], gate[bad], need[bad], local[bad]
    best = largest_radius(corners, local, need, w)
    bands = swept_bands(corners, need, w)
    # (only the driveways of the compounds whose entrance turns fail are asked whether they are passable)
    failing_crefs = set(ent.compound_refs[drive_row[gate[subject < 0]]]) if len(drive_row) else set()
    asked = np.flatnonzero(np.array([c in failing_crefs for c in ent.compound_refs[drive_row]], dtype=bool))
    ok_gates = _passable_gates(found, passage, np.setdiff1d(keep, keep[np.flatnonzero(ok)]), di, dj, drive, asked)
    lost = _cut_off(ctx, net, subject, gate, drive, drive_row, serve, ok_gates=ok_gates)
    # one finding per subject and set of buildings cut off (its ledger key): a lane failing at several corners is
    # one hazard, measured at its tightest corner (the largest shortfall), with every failing corner as evidence
    entrance = drive_row[np.maximum(gate, 0)] if len(drive_row) else np.zeros(len(gate), dtype=np.int64)
    subject_key = np.where(subject >= 0, subject, -1 - entrance)
    apex = shapely.points(corners.apex)
    worst: dict[tuple[int, tuple[str, ...]], list[int]] = {}
    for k in np.argsort(best - need, kind="stable"):
        worst.setdefault((int(subject_key[k]), tuple(lost[k][0])), []).append(int(k))
    out = []
    for ks in worst.values():
        k = ks[0]
        truck_zh = "登高车" if need[k] == ladder else "消防车"
        truck_en = "an aerial ladder truck" if need[k] == ladder else "a fire truck"
        refs, n_bld, n_fl = lost[k]
        who_zh = f"; 受影响建筑: {', '.join(refs[:10])}{' 等' if len(refs) > 10 else ''}" if refs else ""
        who_en = f"; buildings cut off: {', '.join(refs[:10])}{' ...' if len(refs) > 10 else ''}" if refs else ""
        many_zh = f"(共 {len(ks)} 处转弯不足, 此为最窄处)" if len(ks) > 1 else ""
        many_en = f" ({len(ks)} corners fall short; this is the tightest)" if len(ks) > 1 else ""
        evidence = shapely.geometrycollections([g for j in sorted(ks) for g in (apex[j], bands[j])])
        sev = severity(profile, "LANE-TURN", buildings=n_bld, floors=n_fl)
        if subject[k] >= 0:
            i = int(subject[k])
            note_zh, note_en = net.claim_note(i)
            out.append(Finding(
                rule="LANE-TURN", verdict="fail", subject_ref=str(net.refs[i]), compound_ref=net.crefs[i],
                other_refs=refs, measured=float(best[k]), required=float(need[k]), geometry=evidence,
                severity=sev,
                message=f"消防车道 {net.refs[i]} 转弯处内侧最大可行转弯半径 {best[k]:.2f} m, 小于{truck_zh}所需 "
                        f"{need[k]:g} m(车宽含余量 {w:g} m){many_zh}{who_zh}{note_zh}",
                message_en=f"fire lane {net.refs[i]}: the largest inner turning radius that fits at this corner is "
                           f"{best[k]:.2f} m, {truck_en} needs {need[k]:g} m (swept width {w:g} m){many_en}{who_en}"
                           f"{note_en}",
            ))
        else:
            e = int(drive_row[gate[k]])
            ref = str(ent.refs[e])
            out.append(Finding(
                rule="LANE-TURN", verdict="fail", subject_layer="entrances", subject_ref=ref,
                compound_ref=ent.compound_refs[e], other_refs=refs, measured=float(best[k]),
                required=float(need[k]), geometry=evidence, severity=sev,
                message=f"车行出入口 {ref} 由城市道路转入处最大可行转弯半径 {best[k]:.2f} m, 小于{truck_zh}所需 "
                        f"{need[k]:g} m{many_zh}{who_zh}",
                message_en=f"vehicle entrance {ref}: the turn from the city road fits an inner radius of "
                           f"{best[k]:.2f} m at most, {truck_en} needs {need[k]:g} m{many_en}{who_en}",
            ))
    return out


def _passable_gates(found: Corners, passage: np.ndarray, failing: np.ndarray, di: np.ndarray, dj: np.ndarray,
                    drive: np.ndarray, asked: np.ndarray) -> np.ndarray:
    """Of the driveways `asked`, those some corner found lies at (its vertices within TOUCH_M) and no failing
    corner does: a driveway whose corners are no passages is passable. (`di`, `dj`: passage and driveway of each
    passage's driveway; `failing`: passage indices.) Only the driveways no passage decides are looked for among
    the corners that are no passages, boxes first."""
    blocked = np.unique(dj[np.isin(di, failing)])
    touched = np.intersect1d(asked, dj)
    rest = np.setdiff1d(asked, np.concatenate([touched, blocked]))
    other = np.setdiff1d(np.arange(len(found)), passage)
    if len(rest) and len(other):
        c = found.take(other)
        lo, hi = c.vertex_boxes()
        box = shapely.bounds(drive[rest])
        ci, gj = np.nonzero(gm.boxes_meet(lo[:, None], hi[:, None], box[None, :, :2], box[None, :, 2:], _TOUCH_BOX_M))
        if len(ci):
            near = np.unique(ci)
            at_ = shapely.dwithin(c.take(near).touch()[np.searchsorted(near, ci)], drive[rest[gj]], TOUCH_M)
            touched = np.union1d(touched, rest[gj[at_]])
    return np.setdiff1d(touched, blocked)


def _cut_off(ctx: CheckContext, net: LaneNetwork, subject: np.ndarray, gate: np.ndarray, drive: np.ndarray,
             drive_row: np.ndarray, serve: float, *, ok_gates: np.ndarray) -> list[tuple[list[str], int, int]]:
    """Per failing corner the buildings (refs, count, floors) that lose fire-truck access: those within `serve`
    of a dead-end lane behind the corner and of no other lane; at an entrance with no other passable entrance of
    the compound, every building of the compound within `serve` of its lanes."""
    b = ctx.view("buildings")
    out: list[tuple[list[str], int, int]] = [([], 0, 0)] * len(subject)
    if not len(b) or not net.n:
        return out
    floors = at.floors_of(b.frame, ctx.profile)
    ent = ctx.view("entrances")
    ok_crefs = set(ent.compound_refs[drive_row[ok_gates]]) if len(ok_gates) else set()
    # the lanes asked about: the dead ends behind failing corners, the lanes of the compounds whose entrance
    # turns fail with no other passable entrance; the buildings near them
    behind = subject[subject >= 0]
    dead = np.unique(behind[net.kinds[behind] == "dead_end"])
    crefs = {ent.compound_refs[drive_row[g]] for g in gate[gate >= 0]} - ok_crefs
    ask = np.union1d(dead, np.flatnonzero(np.isin(net.crefs, list(crefs))))
    lj, bj = at.tree(ctx, "buildings").query(net.geoms[ask], predicate="dwithin", distance=serve)
    lj = ask[lj]
    # every lane near the dead ends' buildings (a building another lane serves is not cut off)
    near = np.unique(bj[np.isin(lj, dead)])
    bi, li = STRtree(net.geoms).query(b.geoms[near], predicate="dwithin", distance=serve)
    bi = near[bi]
    n_lanes = np.bincount(bi, minlength=len(b))
    for k in range(len(subject)):  # the failing corners (a few per district)
        if subject[k] >= 0:
            i = int(subject[k])
            if net.kinds[i] != "dead_end":
                continue
            mine = np.unique(bi[(li == i)])
            mine = mine[n_lanes[mine] == 1]
        else:
            cref = ent.compound_refs[drive_row[gate[k]]]
            if cref in ok_crefs:
                continue
            mine = np.unique(bj[np.isin(lj, np.flatnonzero(net.crefs == cref))])
            mine = mine[b.compound_refs[mine] == cref]
        refs = sorted(str(x) for x in b.refs[mine])
        out[k] = (refs, len(mine), int(floors[mine].sum()))
    return out


__all__ = ["Corners", "driveways", "find_corners", "fits", "lane_turn", "largest_radius", "swept_bands"]
