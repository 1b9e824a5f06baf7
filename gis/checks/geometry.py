"""Geometric measures the checks share: inscribed rectangles, bottleneck widths and configuration-space passability."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from shapely import STRtree
from shapely.geometry import LineString, Polygon
from shapely.geometry.base import BaseGeometry

#: Numerical tolerance (metres) of the size tests: a 15 x 10 m area holds a 15 x 10 m rectangle although the exact
#: erosion of a polygon by itself is degenerate. Not a rule value; far below survey accuracy.
SIZE_TOL_M = 0.01
#: Precision (metres) to which bisections measure widths and sides.
MEASURE_PRECISION_M = 0.01
#: Pieces of an eroded polygon smaller than this (m²) are numerical slivers, not places a truck can be.
SLIVER_M2 = 1e-4
#: Width (metres) of the band along a window's edge where the configuration space "crosses" it (leaves the window).
EDGE_BAND_M = 0.05
#: How many dominant edge directions (and their perpendiculars) rectangle fitting tries.
MAX_DIRECTIONS = 4
#: How much larger (metres) than `squares_fit`'s erosion a square at a corner of a rectilinear polygon must be to
#: prove the erosion non-empty without drawing it (far above the 1e-6 relative skew a rectilinear edge may have).
SQUARE_CERTIFICATE_MARGIN_M = 0.01
#: How much larger (metres) than asked a rectangle must fit for `rectangles_surely_fit` to vouch for the exact
#: search (on top of what the 0.05° by which candidate orientations are merged needs).
CERTIFICATE_MARGIN_M = 0.05


# --- rotated frames -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    """A rotated local frame: origin (cx, cy) and angle (degrees) of its x axis in the source CRS."""

    cx: float
    cy: float
    angle: float

    def forward(self, geom: BaseGeometry) -> BaseGeometry:
        """Source CRS → frame (rotate by -angle about the origin, then move the origin to 0, 0)."""
        c, s = np.cos(np.radians(self.angle)), np.sin(np.radians(self.angle))
        return shapely.affinity.affine_transform(
            geom, [c, s, -s, c, -(c * self.cx + s * self.cy), s * self.cx - c * self.cy])

    def back(self, geom: BaseGeometry) -> BaseGeometry:
        """Frame → source CRS."""
        c, s = np.cos(np.radians(self.angle)), np.sin(np.radians(self.angle))
        return shapely.affinity.affine_transform(geom, [c, -s, s, c, self.cx, self.cy])


def dominant_angles(geom: BaseGeometry, *, max_directions: int = MAX_DIRECTIONS) -> np.ndarray:
    """Candidate orientations (degrees in [0, 180)) for inscribed rectangles: the polygon's dominant edge
    directions by total edge length, their perpendiculars and the minimum rotated rectangle's axes."""
    rings = shapely.get_rings(shapely.get_parts(geom))
    angles, weights = [], []
    for ring in rings:
        xy = shapely.get_coordinates(ring)
        d = np.diff(xy, axis=0)
        length = np.hypot(d[:, 0], d[:, 1])
        keep = length > 1e-9
        angles.append(np.degrees(np.arctan2(d[keep, 1], d[keep, 0])) % 180.0)
        weights.append(length[keep])
    if not angles:
        return np.array([0.0, 90.0])
    a = np.round(np.concatenate(angles) * 10) / 10 % 180.0
    w = np.concatenate(weights)
    uniq, inv = np.unique(a, return_inverse=True)
    total = np.bincount(inv.ravel(), weights=w)
    top = uniq[np.argsort(-total)[:max_directions]]
    mrr = shapely.get_coordinates(shapely.oriented_envelope(geom))
    extra = []
    if len(mrr) >= 2:
        d = mrr[1] - mrr[0]
        extra.append(np.degrees(np.arctan2(d[1], d[0])) % 180.0)
    cand = np.concatenate([top, np.asarray(extra)])
    cand = np.concatenate([cand, (cand + 90.0) % 180.0])
    out: list[float] = []
    for x in cand:
        if all(min(abs(x - y), 180.0 - abs(x - y)) > 0.05 for y in out):
            out.append(float(x))
    return np.array(out)


# --- exact erosion by an axis-parallel segment ----------------------------------------------------------------


def erode_segment(geom: BaseGeometry, length: float, *, axis: int = 1, convex: bool | None = None) -> BaseGeometry:
    """Minkowski erosion of a polygon by a centred segment of `length` along x (axis 0) or y (axis 1).

    The set of points c such that the whole segment c ± length/2 lies in the polygon. Exact (up to floating
    point): a point of the polygon whose segment leaves it has the segment cross the boundary, so it lies in the
    boundary's Minkowski sum with the segment, the union of the parallelograms every boundary edge sweeps; the
    polygon less that union is the erosion. A convex polygon is simply intersected with itself moved both ways.

    Parameters
    ----------
    geom : Polygon or MultiPolygon
    length : float
    axis : {0, 1}
    convex : bool, optional
        Whether `geom` is one convex polygon (`_convex`), when the caller erodes the same polygon many times.

    Returns
    -------
    shapely geometry (possibly empty)
    """
    if length <= 0 or geom.is_empty:
        return geom
    h = length / 2.0
    v = np.array([h, 0.0]) if axis == 0 else np.array([0.0, h])
    if _convex(geom) if convex is None else convex:  # a segment lies in a convex polygon when both its ends do
        return shapely.intersection(shapely.affinity.translate(geom, v[0], v[1]),
                                    shapely.affinity.translate(geom, -v[0], -v[1]))
    xy, ring = shapely.get_coordinates(shapely.get_rings(shapely.get_parts(geom)), return_index=True)
    edge = np.flatnonzero(ring[1:] == ring[:-1])  # every ring's edges, rings in order
    seg = np.stack([xy[edge], xy[edge + 1]], axis=1)
    d = seg[:, 1] - seg[:, 0]
    cross = d[:, 0] * v[1] - d[:, 1] * v[0]
    seg = seg[np.abs(cross) > 1e-12]
    quads = np.stack([seg[:, 0] - v, seg[:, 1] - v, seg[:, 1] + v, seg[:, 0] + v], axis=1)
    if not len(quads):
        return geom
    return geom.difference(shapely.union_all(shapely.polygons(quads)))


def _convex(geom: BaseGeometry) -> bool:
    """Whether a geometry is one convex polygon, exactly (a ring with a reflex vertex, however shallow, is not)."""
    if geom.geom_type == "MultiPolygon" and len(geom.geoms) == 1:
        geom = geom.geoms[0]
    if geom.geom_type != "Polygon" or len(geom.interiors):
        return False
    return bool(shapely.equals(geom, geom.convex_hull))


def longest_chord(geom: BaseGeometry, *, axis: int = 0) -> tuple[float, LineString | None]:
    """The longest segment parallel to x (axis 0) or y (axis 1) that lies inside a polygon.

    The longest chord at a given height changes linearly between vertex heights, so it is attained just above or
    below a vertex: all those lines are intersected with the polygon at once.
    """
    if geom.is_empty:
        return 0.0, None
    lines = shapely.linestrings(_level_lines(shapely.get_coordinates(geom), axis))
    cut = shapely.intersection(lines, geom)
    parts = shapely.get_parts(cut)
    lines_only = shapely.get_type_id(parts) == 1
    parts = parts[lines_only]
    if len(parts) == 0:
        return 0.0, None
    lengths = shapely.length(parts)
    best = int(np.argmax(lengths))
    return float(lengths[best]), parts[best]


def longest_chords(geoms: np.ndarray) -> tuple[np.ndarray, list]:
    """`longest_chord(g, axis=0)` of many polygons: the level lines of all of them cut in one vectorised call."""
    geoms = np.asarray(geoms, dtype=object)
    n = len(geoms)
    got = np.zeros(n)
    lines: list = [None] * n
    live = np.flatnonzero(~shapely.is_empty(geoms))
    if not len(live):
        return got, lines
    xy, owner = shapely.get_coordinates(geoms[live], return_index=True)
    starts = np.searchsorted(owner, np.arange(len(live) + 1))
    probes, rows = [], []
    for m in range(len(live)):
        pts = _level_lines(xy[starts[m]:starts[m + 1]], 0)
        probes.append(pts)
        rows.append(np.full(len(pts), m))
    row = np.concatenate(rows)
    cut = shapely.intersection(shapely.linestrings(np.concatenate(probes)), geoms[live][row])
    parts, idx = shapely.get_parts(cut, return_index=True)
    keep = shapely.get_type_id(parts) == 1
    parts, owner_of = parts[keep], row[idx[keep]]
    lengths = shapely.length(parts)
    bounds = np.searchsorted(owner_of, np.arange(len(live) + 1))
    for m in range(len(live)):
        if bounds[m + 1] > bounds[m]:
            best = bounds[m] + int(np.argmax(lengths[bounds[m]:bounds[m + 1]]))
            got[live[m]], lines[live[m]] = float(lengths[best]), parts[best]
    return got, lines


def _level_lines(xy: np.ndarray, axis: int) -> np.ndarray:
    """`longest_chord`'s probes: lines along `axis` across the coordinates `xy`, just below, at and just above
    every vertex level (the longest chord changes linearly between levels)."""
    k = 1 - axis
    levels = np.unique(xy[:, k])
    eps = 1e-7 * max(1.0, float(np.abs(xy).max()))
    levels = np.unique(np.concatenate([levels - eps, levels, levels + eps]))
    lo, hi = xy[:, axis].min() - 1.0, xy[:, axis].max() + 1.0
    pts = np.empty((len(levels), 2, 2))
    pts[:, 0, axis], pts[:, 1, axis] = lo, hi
    pts[:, 0, k] = pts[:, 1, k] = levels
    return pts


# --- inscribed rectangles -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inscribed:
    """A rectangle found inside a polygon: its `length` x `width` (metres) and the placed `rectangle`."""

    length: float
    width: float
    rectangle: Polygon | None


def _frames(geom: BaseGeometry, angles: Sequence[float] | None) -> list[Frame]:
    c = geom.centroid
    cand = dominant_angles(geom) if angles is None else np.asarray(angles, dtype=float)
    return [Frame(c.x, c.y, float(a)) for a in cand]


def _placed(frame: Frame, chord: LineString, width: float) -> Polygon:
    (x0, y0), (x1, y1) = shapely.get_coordinates(chord)[[0, -1]]
    rect = shapely.box(min(x0, x1), y0 - width / 2.0, max(x0, x1), y0 + width / 2.0)
    return frame.back(rect)


def rectangle_fits(geoms: np.ndarray, length: float, width: float) -> np.ndarray:
    """Fast path, vectorised: which polygons are (to 1e-6 of their area) rectangles of at least
    `length` x `width` (any orientation). False means "not known to fit", not "does not fit"."""
    geoms = np.asarray(geoms, dtype=object)
    if not len(geoms):
        return np.zeros(0, dtype=bool)
    env = shapely.oriented_envelope(geoms)
    rect = np.abs(shapely.area(env) - shapely.area(geoms)) <= 1e-6 * np.maximum(shapely.area(env), 1e-9)
    xy = shapely.get_coordinates(shapely.get_exterior_ring(env))
    n = shapely.get_num_coordinates(shapely.get_exterior_ring(env))
    ok = rect & (n == 5)
    out = np.zeros(len(geoms), dtype=bool)
    if ok.any():
        start = np.concatenate([[0], np.cumsum(n)[:-1]])[ok]
        a = np.hypot(*(xy[start + 1] - xy[start]).T)
        b = np.hypot(*(xy[start + 2] - xy[start + 1]).T)
        long_, short = np.maximum(a, b), np.minimum(a, b)
        out[ok] = (long_ >= length - SIZE_TOL_M) & (short >= width - SIZE_TOL_M)
    return out


def rectangles_surely_fit(geoms: np.ndarray, length: float, width: float, *,
                          margin: float = CERTIFICATE_MARGIN_M) -> np.ndarray:
    """Vectorised certificate: where a `length` x `width` rectangle surely fits (what `fits_rectangle` finds).

    The rectangle grown by `margin` (plus what a 0.05° turn needs), centred in the minimum rotated rectangle and
    along its long side, lies in the polygon (one `contains` per polygon). That axis is one of the orientations
    `fits_rectangle` tries, or within the 0.05° it merges candidate angles by, and the growth covers that turn
    (and floating point), so True means `fits_rectangle` finds a rectangle too. False means "not proven": ask
    `fits_rectangle`.
    """
    geoms = np.asarray(geoms, dtype=object)
    out = np.zeros(len(geoms), dtype=bool)
    if not len(geoms):
        return out
    ring = shapely.get_exterior_ring(shapely.oriented_envelope(geoms))
    n = shapely.get_num_coordinates(ring)
    ok = n == 5
    if not ok.any():
        return out
    xy = shapely.get_coordinates(ring[ok])
    start = np.concatenate([[0], np.cumsum(n[ok])[:-1]])
    p0, p1, p2 = xy[start], xy[start + 1], xy[start + 2]
    e1, e2 = p1 - p0, p2 - p1
    l1, l2 = np.hypot(*e1.T), np.hypot(*e2.T)
    long_ = np.where((l1 >= l2)[:, None], e1, e2)
    norm = np.hypot(*long_.T)
    good = norm > 0
    u = long_ / np.where(good, norm, 1.0)[:, None]
    v = np.column_stack([-u[:, 1], u[:, 0]])
    c = (p0 + p2) / 2.0
    # turning a rectangle by 0.05° moves its sides by at most half the other side x sin(0.05°) < 1e-3 x side
    grow = margin + 1e-3 * (length + width)
    hl, hw = (length + grow) / 2.0, (width + grow) / 2.0
    corners = np.stack([c - hl * u - hw * v, c + hl * u - hw * v, c + hl * u + hw * v, c - hl * u + hw * v], axis=1)
    fits = shapely.contains(geoms[ok], shapely.polygons(corners)) & good
    out[np.flatnonzero(ok)] = fits
    return out


def max_length_at_width(geom: BaseGeometry, width: float, *,
                        angles: Sequence[float] | None = None) -> Inscribed:
    """The longest rectangle of a given width inscribed in a polygon (largest inscribed rectangle, width fixed).

    For each candidate orientation the polygon is eroded exactly by a segment of `width` across, and the longest
    chord along the other axis of what remains is the longest rectangle (numerical tolerance SIZE_TOL_M).

    Parameters
    ----------
    geom : Polygon or MultiPolygon
    width : float
    angles : sequence of float, optional
        Orientations to try (degrees); default `dominant_angles(geom)`.

    Returns
    -------
    Inscribed
        `length` 0 and no rectangle when not even a `width` x `width` rectangle fits.
    """
    best = Inscribed(0.0, width, None)
    w = max(width - SIZE_TOL_M, 0.0)
    for frame in _frames(geom, angles):
        local = frame.forward(geom)
        eroded = erode_segment(local, w, axis=1)
        length, chord = longest_chord(eroded, axis=0)
        if chord is not None and length > best.length:
            best = Inscribed(length, width, _placed(frame, chord, w))
    return best


def fits_rectangle(geom: BaseGeometry, length: float, width: float, *,
                   angles: Sequence[float] | None = None) -> Inscribed | None:
    """A `length` x `width` rectangle placed inside the polygon (any candidate orientation), or None."""
    need = length - SIZE_TOL_M
    w = max(width - SIZE_TOL_M, 0.0)
    for frame in _frames(geom, angles):
        eroded = erode_segment(frame.forward(geom), w, axis=1)
        got, chord = longest_chord(eroded, axis=0)
        if chord is not None and got >= need:
            return Inscribed(got, width, _placed(frame, chord, w))
    return None


def square_room(geom: BaseGeometry, side: float) -> BaseGeometry:
    """The part of a polygon that can hold a square of `side` or more: a square contains the disc inscribed in
    it, so its centre lies in the polygon eroded by side/2 and the square within side/sqrt(2) of that centre.
    Searching this part (a lane's turnaround) instead of the whole lane is much cheaper."""
    if side <= 0:
        return geom
    core = shapely.buffer(geom, -(side / 2.0 - SIZE_TOL_M), quad_segs=4)
    if core.is_empty:
        return core
    return shapely.intersection(geom, shapely.buffer(core, side / np.sqrt(2.0) + SIZE_TOL_M, quad_segs=4))


def squares_fit(geoms: np.ndarray, side: float) -> np.ndarray:
    """Vectorised fast path: where a `side` x `side` square certainly fits.

    Each polygon is turned into the frame of its minimum rotated rectangle; where it is rectilinear there (every
    edge parallel to an axis: lanes, turnarounds and courts drawn square to a compound), a negative mitre buffer
    by side/2 is exactly the erosion by an axis-parallel square, so a non-empty result proves the fit. False
    means "not proven" (not rectilinear, or only a rotated square might fit): use `fits_square`.
    """
    geoms = np.asarray(geoms, dtype=object)
    out = np.zeros(len(geoms), dtype=bool)
    if not len(geoms):
        return out
    env = shapely.get_coordinates(shapely.get_exterior_ring(shapely.oriented_envelope(geoms)), return_index=True)
    xy, gi = env
    first = np.r_[0, np.flatnonzero(np.diff(gi)) + 1]
    if len(first) != len(geoms):
        return out
    d = xy[first + 1] - xy[first]
    angle = np.arctan2(d[:, 1], d[:, 0])
    parts, pi = shapely.get_parts(geoms, return_index=True)
    rings, ri = shapely.get_rings(parts, return_index=True)
    ring_xy, ring_i = shapely.get_coordinates(rings, return_index=True)
    owner = pi[ri[ring_i]]
    c, s_ = np.cos(-angle[owner]), np.sin(-angle[owner])
    rx = c * ring_xy[:, 0] - s_ * ring_xy[:, 1]
    ry = s_ * ring_xy[:, 0] + c * ring_xy[:, 1]
    same = ring_i[1:] == ring_i[:-1]
    dx, dy = np.diff(rx)[same], np.diff(ry)[same]
    length = np.hypot(dx, dy)
    skew = np.minimum(np.abs(dx), np.abs(dy)) > 1e-6 * np.maximum(length, 1.0)
    rectilinear = np.bincount(owner[1:][same][skew], minlength=len(geoms)) == 0
    gxy, g_i = shapely.get_coordinates(geoms, return_index=True)
    c, s_ = np.cos(-angle[g_i]), np.sin(-angle[g_i])
    # set_coordinates works on copies: the inputs stay as they are
    turned = shapely.set_coordinates(geoms.copy(), np.column_stack([c * gxy[:, 0] - s_ * gxy[:, 1],
                                                                    s_ * gxy[:, 0] + c * gxy[:, 1]]))
    rect = np.flatnonzero(rectilinear)
    # a square a hair larger at a corner of the frame's box (where a dead end's turnaround usually is) proves the
    # erosion non-empty without drawing it; the erosion is drawn only where no corner holds one
    inset = SQUARE_CERTIFICATE_MARGIN_M
    size = side - SIZE_TOL_M + 2.0 * inset
    x0, y0, x1, y1 = shapely.bounds(turned[rect]).T
    xs = np.stack([x0 + inset, x1 - inset - size, x0 + inset, x1 - inset - size], axis=1).ravel()
    ys = np.stack([y0 + inset, y0 + inset, y1 - inset - size, y1 - inset - size], axis=1).ravel()
    shapely.prepare(turned[rect])  # (the turned copies: four tests each)
    held = shapely.contains(np.repeat(turned[rect], 4), shapely.box(xs, ys, xs + size, ys + size))
    held = held.reshape(-1, 4).any(axis=1)
    out[rect[held]] = True
    rest = rect[~held]
    core = shapely.buffer(turned[rest], -(side - SIZE_TOL_M) / 2.0, join_style="mitre", mitre_limit=100.0)
    out[rest] = ~shapely.is_empty(core)
    return out


def fits_square(geom: BaseGeometry, side: float) -> bool:
    """Whether a `side` x `side` square fits in a polygon (any candidate orientation of the part that can hold
    it; numerical tolerance SIZE_TOL_M)."""
    room = square_room(geom, side)
    if room.is_empty:
        return False
    return any(fits_rectangle(part, side, side) is not None for part in pieces(room))


def largest_inscribed_square(geom: BaseGeometry, *, angles: Sequence[float] | None = None,
                             upper: float | None = None) -> Inscribed:
    """The largest square inscribed in a polygon (candidate orientations; bisection to MEASURE_PRECISION_M).

    The maximum inscribed circle brackets the answer (its inscribed square always fits, nothing wider than its
    diameter does); orientations whose longest chord at the lower bound is already shorter than the best side
    found are dropped before any bisection. Orientations 90 degrees apart hold the same squares: a side one of
    them held (or refused) is not tried again in the other, only sides between what is known are.

    Whether a side fits is decided exactly (the polygon eroded by the side across holds a chord of the side
    along), and a test also bounds the answer: the longest chord c(s) at side s shrinks as s grows, so no side
    above c(s) fits when s does, and every side up to c(s) fits when s does not. `_square_bounds` closes in on
    each orientation's largest side that way first; the bisection then asks only about sides those bounds leave
    open, so it takes the path (and places the square where) testing every side would.

    Parameters
    ----------
    geom : Polygon or MultiPolygon
    angles : sequence of float, optional
    upper : float, optional
        Stop searching above this side (the caller's threshold is enough).
    """
    return largest_inscribed_squares(np.array([geom], dtype=object), angles=angles,
                                     upper=None if upper is None else np.array([upper], dtype=float))[0]


def largest_inscribed_squares(geoms: np.ndarray, *, angles: Sequence[float] | None = None,
                              upper: np.ndarray | None = None) -> list[Inscribed]:
    """`largest_inscribed_square` of many polygons (with their own `upper`): the same search, its first steps
    (inscribed circles, the parts that can hold the lower bound, every orientation's test at it) vectorised over
    all of them."""
    geoms = np.asarray(geoms, dtype=object)
    out = [Inscribed(0.0, 0.0, None)] * len(geoms)
    live = np.flatnonzero(~shapely.is_empty(geoms))
    if not len(live):
        return out
    # GEOS's answer is within `tol` of the true inscribed radius
    tol = 0.05
    radius = shapely.length(shapely.maximum_inscribed_circle(geoms[live], tol))
    lo = np.maximum((radius - tol) * np.sqrt(2.0) - MEASURE_PRECISION_M, 0.0)
    hi = 2.0 * (radius + tol) + MEASURE_PRECISION_M
    if upper is not None:
        hi = np.minimum(hi, np.asarray(upper, dtype=float)[live])
    lo = np.minimum(lo, hi)
    # only the part that can hold a square of the lower bound matters (a lane's turnaround, not its length)
    room = square_rooms(geoms[live], lo - SIZE_TOL_M)
    searched = np.where(shapely.is_empty(room), geoms[live], room)
    frames = [_frames(g, angles) for g in searched]
    locals_ = [[f.forward(g) for f in fs] for g, fs in zip(searched, frames, strict=True)]
    convex = [[_convex(x) for x in xs] for xs in locals_]
    # every orientation's test at the lower bound, all at once
    job = np.repeat(np.arange(len(live)), [len(fs) for fs in frames])
    flat = np.array([x for xs in locals_ for x in xs], dtype=object)
    width = np.maximum(lo[job] - SIZE_TOL_M, 0.0)
    got, lines = _chords(flat, width, np.array([c for cs in convex for c in cs], dtype=bool))
    first = np.r_[0, np.cumsum([len(fs) for fs in frames])]
    for n, k in enumerate(live):
        s = slice(first[n], first[n + 1])
        out[k] = _square_search(frames[n], locals_[n], convex[n], float(lo[n]), float(hi[n]),
                                list(zip(got[s], lines[s], strict=True)))
    return out


def square_rooms(geoms: np.ndarray, sides: np.ndarray) -> np.ndarray:
    """`square_room` of many polygons, each with its own side (vectorised)."""
    geoms = np.asarray(geoms, dtype=object)
    sides = np.asarray(sides, dtype=float)
    out = geoms.copy()
    grow = np.flatnonzero(sides > 0)
    if not len(grow):
        return out
    core = shapely.buffer(geoms[grow], -(sides[grow] / 2.0 - SIZE_TOL_M), quad_segs=4)
    out[grow] = core
    full = ~shapely.is_empty(core)
    k = grow[full]
    out[k] = shapely.intersection(geoms[k], shapely.buffer(core[full], sides[k] / np.sqrt(2.0) + SIZE_TOL_M,
                                                           quad_segs=4))
    return out


def _chords(locals_: np.ndarray, widths: np.ndarray, convex: np.ndarray) -> tuple[np.ndarray, list]:
    """`longest_chord(erode_segment(g, w, axis=1, convex=c), axis=0)` for many (g, w, c), vectorised."""
    eroded = np.array([erode_segment(g, w, axis=1, convex=bool(c))
                       for g, w, c in zip(locals_, widths, convex, strict=True)], dtype=object)
    return longest_chords(eroded)


def _square_search(frames: list[Frame], locals_: list, convex: list[bool], lo: float, hi: float,
                   at_lo_chords: list[tuple[float, LineString | None]]) -> Inscribed:
    """`largest_inscribed_square`'s search in the given frames, from its tests at the lower bound `lo`."""
    twin = _quarter_turn_classes(np.array([f.angle for f in frames]))
    # what each class of frames is known to hold (sides up to `fit`) and to refuse (sides from `unfit` up)
    fit = np.full(len(frames), -np.inf)
    unfit = np.full(len(frames), np.inf)

    lines: dict[tuple[int, float], LineString | None] = {}

    def record(k: int, side: float, got: float, line: LineString | None) -> tuple[bool, float, LineString | None]:
        c = twin[k]
        lines[k, side] = line
        if line is not None and got >= side - SIZE_TOL_M:
            fit[c] = max(fit[c], side)
            # (a side just above the chord bound would be refused: kept strictly above what was tested)
            unfit[c] = min(unfit[c], max(got + SIZE_TOL_M + 1e-6, side + 1e-9))
            return True, got, line
        unfit[c] = min(unfit[c], side)
        if line is not None:
            fit[c] = max(fit[c], min(got + SIZE_TOL_M - 1e-6, side - 1e-9))
        return False, got, line

    def test(k: int, side: float) -> tuple[bool, float, LineString | None]:
        got, line = longest_chord(erode_segment(locals_[k], max(side - SIZE_TOL_M, 0.0), axis=1,
                                                convex=convex[k]), axis=0)
        return record(k, side, got, line)

    at_lo = [record(k, lo, float(got), line) for k, (got, line) in enumerate(at_lo_chords)]
    order = sorted((k for k in range(len(frames)) if at_lo[k][0]), key=lambda k: -at_lo[k][1])
    _square_bounds(test, fit, unfit, twin, order, lo, hi)
    # the bisection's own record (as when every side was tested) and the tests it still needs
    held = np.full(len(frames), -np.inf)
    refused = np.full(len(frames), np.inf)

    def chord(k: int, side: float) -> bool:
        c = twin[k]
        if side <= fit[c]:
            ok = True
        elif side >= unfit[c]:
            ok = False
        else:
            ok = test(k, side)[0]
        if ok:
            held[c] = max(held[c], side)
        else:
            refused[c] = min(refused[c], side)
        return ok

    # the best square so far: its side and the frame it was found in, placed once at the end
    best_side, best_k = 0.0, None
    bounds = []
    for k in range(len(frames)):
        ok, got, line = at_lo[k]
        held[twin[k]] = max(held[twin[k]], lo) if ok else held[twin[k]]
        if not ok:
            refused[twin[k]] = min(refused[twin[k]], lo)
        if ok:
            bounds.append((min(got, hi), k))
            if best_k is None:
                best_side, best_k = lo, k
    for top, k in sorted(bounds, reverse=True):
        a, b = max(best_side, lo), top + SIZE_TOL_M
        if b <= best_side + MEASURE_PRECISION_M / 2.0:
            continue
        if b < refused[twin[k]]:  # (a side the twin frame held is no larger than the best: b is not one)
            if chord(k, b):
                best_side, best_k = b, k
                continue
        while b - a > MEASURE_PRECISION_M / 2.0:
            mid = (a + b) / 2.0
            if mid >= refused[twin[k]]:
                b = mid
                continue
            if mid <= held[twin[k]]:  # held by the twin: no larger than the best side, nothing to place
                a = mid
                continue
            if chord(k, mid):
                a = mid
                if mid > best_side:
                    best_side, best_k = mid, k
            else:
                b = mid
    rectangle = None
    if best_k is not None:
        w = max(best_side - SIZE_TOL_M, 0.0)
        line = lines[best_k, best_side] if (best_k, best_side) in lines else longest_chord(
            erode_segment(locals_[best_k], w, axis=1, convex=convex[best_k]), axis=0)[1]
        rectangle = _placed(frames[best_k], line, w) if line is not None else None
    # a side s was accepted while the true side is at least s - SIZE_TOL_M
    side = round(max(best_side - SIZE_TOL_M / 2.0, 0.0), 2)
    return Inscribed(side, side, rectangle)


def _square_bounds(test, fit: np.ndarray, unfit: np.ndarray, twin: np.ndarray,  # noqa: ANN001 - a closure
                   frames: list[int], lo: float, hi: float) -> None:
    """Close each frame class's bounds on its largest square (`fit`, `unfit`) to MEASURE_PRECISION_M / 2:
    the untried upper bound first (a lane's width bounds the square along it), else the middle."""
    step = MEASURE_PRECISION_M / 2.0
    for k in frames:
        c = twin[k]
        tried = np.inf
        while True:
            a, b = max(fit[c], lo), min(unfit[c], hi + SIZE_TOL_M)
            if b - a <= step or b <= fit.max() + step:  # (a frame that cannot beat the best is not bisected)
                break
            mid = b - step / 2.0 if b < tried else (a + b) / 2.0
            ok = test(k, mid)[0]
            if not ok:
                tried = mid


def _quarter_turn_classes(angles: np.ndarray) -> np.ndarray:
    """Per orientation (degrees) a class number shared with the orientation 90 degrees from it, if any."""
    out = np.arange(len(angles))
    for k in range(len(angles)):
        for j in range(k):
            d = (angles[k] - angles[j]) % 180.0
            if abs(d - 90.0) < 1e-9:
                out[k] = out[j]
                break
    return out


# --- widths and passability -----------------------------------------------------------------------------------


def pieces(geom: BaseGeometry) -> np.ndarray:
    """The polygon parts of a geometry, numerical slivers dropped."""
    if geom is None or geom.is_empty:
        return np.empty(0, dtype=object)
    parts = shapely.get_parts(geom)
    tid = shapely.get_type_id(parts)
    parts = parts[(tid == 3) | (tid == 6)]
    if len(parts):
        parts = shapely.get_parts(parts)
    return parts[shapely.area(parts) > SLIVER_M2]


def pieces_of(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`pieces` of many geometries at once: the pieces and the index of the geometry each came from."""
    parts, idx = shapely.get_parts(np.asarray(geoms, dtype=object), return_index=True)
    tid = shapely.get_type_id(parts)
    poly = (tid == 3) | (tid == 6)
    parts, idx = parts[poly], idx[poly]
    parts, sub = shapely.get_parts(parts, return_index=True)
    idx = idx[sub]
    big = shapely.area(parts) > SLIVER_M2
    return parts[big], idx[big]


def clusters(dilated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pieces of the union of `dilated` (polygons) and, per input, the index of the piece it lies in.

    The same pieces as `pieces(union_all(dilated))`, but the overlay runs only inside groups of inputs that
    overlap (connected components of the intersects graph): an input overlapping nothing is its own piece as
    drawn, with no overlay at all. An input in no piece (a sliver) gets -1.
    """
    dilated = np.asarray(dilated, dtype=object)
    n = len(dilated)
    if not n:
        return np.empty(0, dtype=object), np.empty(0, dtype=np.int64)
    i, j = STRtree(dilated).query(dilated, predicate="intersects")
    keep = i < j
    graph = coo_matrix((np.ones(int(keep.sum())), (i[keep], j[keep])), shape=(n, n))
    label = connected_components(graph, directed=False)[1]
    size = np.bincount(label)
    alone = size[label] == 1
    groups = np.flatnonzero(size > 1)
    merged = np.empty(0, dtype=object)
    if len(groups):
        merged = union_rows(dilated[~alone], np.searchsorted(groups, label[~alone]), len(groups))
    out = np.concatenate([dilated[alone], merged])
    parts, src = pieces_of(out)
    member = np.full(n, -1, dtype=np.int64)
    # inputs alone: their own piece (the first, should a buffer come in parts); grouped inputs: the piece they meet
    first = np.full(len(out), -1, dtype=np.int64)
    first[src[::-1]] = np.arange(len(src))[::-1]
    n_alone = int(alone.sum())
    member[np.flatnonzero(alone)] = first[:n_alone]
    if len(groups) and len(parts):
        gi, pj = STRtree(parts).query(dilated[~alone], predicate="intersects")
        member[np.flatnonzero(~alone)[gi]] = pj
    return parts, member


#: How far (metres) around an obstacle cluster's dilation `only_bites` makes sure no second edge of the
#: configuration space comes.
BITE_MARGIN_M = 0.05


def convex(polys: np.ndarray) -> np.ndarray:
    """Which geometries are single convex polygons without holes (turns of one sign along the exterior ring, up
    to 1e-9 of the edge lengths: far below the margins the callers keep)."""
    polys = np.asarray(polys, dtype=object)
    out = (shapely.get_type_id(polys) == 3) & (shapely.get_num_interior_rings(polys) == 0)
    idx = np.flatnonzero(out)
    if not len(idx):
        return out
    xy, ri = shapely.get_coordinates(shapely.get_exterior_ring(polys[idx]), return_index=True)
    same = ri[1:] == ri[:-1]
    d, ei = np.diff(xy, axis=0)[same], ri[1:][same]
    first = np.r_[0, np.flatnonzero(np.diff(ei)) + 1]
    nxt = np.arange(1, len(d) + 1)
    nxt[np.r_[first[1:] - 1, len(d) - 1]] = first  # the ring closes: the last edge turns into the first
    turn = d[:, 0] * d[nxt, 1] - d[:, 1] * d[nxt, 0]
    tol = 1e-9 * np.hypot(d[:, 0], d[:, 1]) * np.hypot(d[nxt, 0], d[nxt, 1])
    left = np.bincount(ei, weights=turn > tol, minlength=len(idx)) > 0
    right = np.bincount(ei, weights=turn < -tol, minlength=len(idx)) > 0
    out[idx] = ~(left & right)
    return out


def only_bites(dilated: np.ndarray, spaces: np.ndarray, which: np.ndarray) -> np.ndarray:
    """Vectorised certificate for `surely_uncut` (and so `local_cut`) on windows with no entry zone and no other
    cluster: True where removing the convex `dilated` from `spaces[which]` ∩ window provably keeps every piece
    one piece.

    The dilation is convex and at most one edge of the configuration space's boundary comes within
    BITE_MARGIN_M of it (so that edge's end vertices are farther away: it runs through). Then the dilation meets
    the space in a convex bite bounded by one straight chord of that edge (or lies inside or outside it), and
    its other side runs through the interior (the window reaches 1.8 m past the dilation): cutting such a bite
    off a piece, or a hole out of it, leaves one piece, which keeps at least the margin's width next to the bite
    (no sliver). False means "not proven": judge the window (`surely_uncut`, `local_cut`).

    Parameters
    ----------
    dilated : array of geometries
        Obstacle clusters grown by the truck's half width.
    spaces : array of geometries
        Configuration spaces of whole lanes (before a window clips them).
    which : array of int
        The lane under each cluster (index into `spaces`).
    """
    dilated = np.asarray(dilated, dtype=object)
    which = np.asarray(which, dtype=np.int64)
    out = convex(dilated)
    idx = np.flatnonzero(out)
    if not len(idx):
        return out
    used, slot = np.unique(which[idx], return_inverse=True)
    parts, pi = shapely.get_parts(np.asarray(spaces, dtype=object)[used], return_index=True)
    rings, ri = shapely.get_rings(parts, return_index=True)
    xy, ci = shapely.get_coordinates(rings, return_index=True)
    same = np.flatnonzero(ci[1:] == ci[:-1])
    # per cluster the edges of its own lane's space whose boxes come within the margin of the dilation's box (in
    # numpy: the edges of one space are grouped), then the exact distance test on those pairs only
    edge_space = pi[ri[ci[same + 1]]]
    first = np.searchsorted(edge_space, np.arange(len(used) + 1))
    k, e = pairs_in_ranges(first[slot], first[slot + 1])
    a, b = xy[same[e]], xy[same[e] + 1]
    box = shapely.bounds(dilated[idx])[k]
    m = BITE_MARGIN_M + 1e-6
    near = boxes_meet(np.minimum(a, b), np.maximum(a, b), box[:, :2], box[:, 2:], m)
    k, a, b = k[near], a[near], b[near]
    shapely.prepare(dilated[idx])  # (as an STRtree query prepares it: the same distance test)
    close = shapely.dwithin(dilated[idx][k], shapely.linestrings(np.stack([a, b], axis=1)), BITE_MARGIN_M)
    out[idx] = np.bincount(k[close], minlength=len(idx)) <= 1
    return out


def boxes_meet(lo_a: np.ndarray, hi_a: np.ndarray, lo_b: np.ndarray, hi_b: np.ndarray,
               margin: float = 0.0) -> np.ndarray:
    """Whether boxes a (corners lo_a, hi_a: (..., 2) arrays of x, y) and boxes b, grown by `margin`, meet
    (broadcast like numpy's comparisons)."""
    return ((lo_a[..., 0] <= hi_b[..., 0] + margin) & (hi_a[..., 0] >= lo_b[..., 0] - margin)
            & (lo_a[..., 1] <= hi_b[..., 1] + margin) & (hi_a[..., 1] >= lo_b[..., 1] - margin))


def ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The concatenation of range(lo[k], hi[k]) over k, without a Python loop."""
    count = hi - lo
    start = np.cumsum(count) - count
    return np.repeat(lo - start, count) + np.arange(int(count.sum()))


def pairs_in_ranges(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (k, j) with lo[k] <= j < hi[k], k ascending."""
    return np.repeat(np.arange(len(lo)), hi - lo), ranges(lo, hi)


def surely_uncut(base: np.ndarray, diff: np.ndarray, entries: np.ndarray, entry_window: np.ndarray, *,
                 radius: float | np.ndarray, reach_tol: float = 0.5) -> np.ndarray:
    """Vectorised first pass of `local_cut` over many windows: True where removing the cluster certainly joins
    the same terminals as before (so `local_cut` would say False); False means "look closer".

    Per window, `base` is the configuration space (other clusters removed) and `diff` the same minus the cluster.
    No cut is certain when every piece of `base` keeps exactly one piece in `diff` (so every crossing of the
    window's edge, 2 m from the cluster, stays with its piece) and every entry zone a piece reached it still
    reaches.

    Parameters
    ----------
    base, diff : arrays of geometries, one per window
    entries : array of geometries
        Entry zones near the windows; `entry_window[i]` is the window of `entries[i]` (one row per pair).
    radius : float or array of float (one per window)
    reach_tol : float
    """
    n = len(base)
    reach = np.broadcast_to(np.asarray(radius, dtype=float), (n,)) + reach_tol
    a, ai = _parts(base)
    b, bi = _parts(diff)
    ok = np.ones(n, dtype=bool)
    if not len(a):
        return ok
    # the piece of `base` each piece of `diff` lies in (same window: windows overlap)
    bp, ap = STRtree(a).query(shapely.point_on_surface(b), predicate="within") if len(b) else (
        np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))
    same = ai[ap] == bi[bp]
    bp, ap = bp[same], ap[same]
    count = np.bincount(ap, minlength=len(a))
    ok &= np.bincount(ai[count != 1], minlength=n) == 0
    inside = np.full(len(b), -1, dtype=np.int64)
    inside[bp] = ap
    if len(entries):
        pe, pa = STRtree(a).query(entries, predicate="dwithin", distance=float(reach.max()))
        keep = ai[pa] == entry_window[pe]
        pe, pa = pe[keep], pa[keep]
        keep = shapely.dwithin(entries[pe], a[pa], reach[ai[pa]])
        pe, pa = pe[keep], pa[keep]
        # the diff piece of each such base piece must still reach the entry
        reach_b = np.zeros(len(pe), dtype=bool)
        if len(b):
            qe, qb = STRtree(b).query(entries[pe], predicate="dwithin", distance=float(reach.max()))
            hit = (inside[qb] == pa[qe]) & shapely.dwithin(entries[pe][qe], b[qb], reach[bi[qb]])
            reach_b[np.unique(qe[hit])] = True
        ok &= np.bincount(ai[pa[~reach_b]], minlength=n) == 0
    return ok


def _parts(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    parts, idx = shapely.get_parts(np.asarray(geoms, dtype=object), return_index=True)
    tid = shapely.get_type_id(parts)
    poly = (tid == 3) | (tid == 6)
    parts, idx = parts[poly], idx[poly]
    big = shapely.area(parts) > SLIVER_M2
    return parts[big], idx[big]


def spans(geom: BaseGeometry, radius: float, terminals: Sequence[BaseGeometry], *,
          reach_tol: float = 0.5) -> bool:
    """Whether `geom` eroded by `radius` is one connected piece coming within radius + `reach_tol` of every
    terminal (a disc of that radius fits everywhere along it from one terminal to every other)."""
    core = pieces(shapely.buffer(geom, -radius, quad_segs=8)) if radius > 0 else pieces(geom)
    if len(core) != 1:
        return False
    if not len(terminals):
        return True
    return bool(shapely.dwithin(core[0], np.asarray(terminals, dtype=object), radius + reach_tol).all())


@dataclass(frozen=True)
class Bottleneck:
    """The narrowest place of a polygon between its terminals: clear `width` (metres) and a cross-section line."""

    width: float
    neck: BaseGeometry | None


def bottleneck_width(geom: BaseGeometry, terminals: Sequence[BaseGeometry], *, required: float,
                     reach_tol: float = 0.5) -> Bottleneck | None:
    """The own clear width of a polygon between its terminals, when it is below `required`.

    Negative buffer by `required`/2: the polygon passes when the eroded polygon is one connected piece reaching
    every terminal. Otherwise the actual bottleneck width is found by bisection on the buffer distance
    (MEASURE_PRECISION_M) and located: the cross-section where the eroded polygon splits (or stops short of a
    terminal) just above the bottleneck.

    Parameters
    ----------
    geom : Polygon or MultiPolygon
    terminals : sequence of shapely geometries
        Entry zones the width must span (lane mouths); none: the polygon must merely stay one piece.
    required : float
        The required clear width (metres).
    reach_tol : float
        How much farther than the radius a terminal may lie from the eroded polygon (flat lane ends).

    Returns
    -------
    Bottleneck or None
        None when the polygon is at least `required` wide everywhere between its terminals.
    """
    t = np.asarray(terminals, dtype=object).ravel()
    return bottleneck_widths(np.array([geom], dtype=object), t, np.zeros(len(t), dtype=np.int64),
                             required=required, reach_tol=reach_tol)[0]


def bottleneck_widths(geoms: np.ndarray, terminals: np.ndarray, terminal_of: np.ndarray, *, required: float,
                      reach_tol: float = 0.5, eroded: np.ndarray | None = None) -> list[Bottleneck | None]:
    """`bottleneck_width` of many polygons at once: the same tests and the same bisection, run in step over all
    polygons (each round's erosions one vectorised buffer call), and the neck drawn on the last refused erosion.

    Parameters
    ----------
    geoms : array of polygons
    terminals, terminal_of : arrays
        The terminals and the polygon (index into `geoms`) each belongs to.
    required, reach_tol : float
    eroded : array of geometries, optional
        `geoms` eroded by required/2 - SIZE_TOL_M/2 (`configuration_space`), when the caller has them: the first
        test's erosion.
    """
    geoms = np.asarray(geoms, dtype=object)
    n = len(geoms)
    terminals = np.asarray(terminals, dtype=object)
    terminal_of = np.asarray(terminal_of, dtype=np.int64)
    r_hi = required / 2.0
    first = r_hi - SIZE_TOL_M / 2.0
    every = np.arange(n)
    if eroded is not None:
        core = np.asarray(eroded, dtype=object)
    else:
        core = shapely.buffer(geoms, -first, quad_segs=8) if first > 0 else geoms
    passed = _spans_many(core, every, np.full(n, first), terminals, terminal_of, reach_tol)
    lo, hi = np.zeros(n), np.full(n, r_hi)
    at_hi = np.full(n, None, dtype=object)  # the erosion at `hi` once a bisection step refused it
    todo = np.flatnonzero(~passed)
    while True:
        todo = todo[hi[todo] - lo[todo] > MEASURE_PRECISION_M / 4.0]
        if not len(todo):
            break
        mid = (lo[todo] + hi[todo]) / 2.0
        core = shapely.buffer(geoms[todo], -mid, quad_segs=8)
        ok = _spans_many(core, todo, mid, terminals, terminal_of, reach_tol)
        lo[todo[ok]] = mid[ok]
        hi[todo[~ok]] = mid[~ok]
        at_hi[todo[~ok]] = core[~ok]
    out: list[Bottleneck | None] = [None] * n
    for k in np.flatnonzero(~passed):
        core_k = at_hi[k] if at_hi[k] is not None else shapely.buffer(geoms[k], -hi[k], quad_segs=8)
        neck = _neck(geoms[k], core_k, float(hi[k]), terminals[terminal_of == k], reach_tol)
        out[k] = Bottleneck(width=round(float(lo[k] + hi[k]), 2), neck=neck)
    return out


def _spans_many(cores: np.ndarray, which: np.ndarray, radius: np.ndarray, terminals: np.ndarray,
                terminal_of: np.ndarray, reach_tol: float) -> np.ndarray:
    """`spans` of the polygons `which`, given their erosions `cores` by `radius` (one per polygon tested)."""
    n = len(which)
    parts, idx = pieces_of(cores)
    one = np.bincount(idx, minlength=n) == 1
    pos = np.full(int(which.max(initial=-1)) + 1, -1, dtype=np.int64)
    pos[which] = np.arange(n)
    t = np.flatnonzero(terminal_of < len(pos))
    t = t[pos[terminal_of[t]] >= 0]
    t = t[one[pos[terminal_of[t]]]]
    if len(t):
        row = pos[terminal_of[t]]
        piece = np.full(n, None, dtype=object)
        piece[idx] = parts  # (the only piece, where `one`)
        near = shapely.dwithin(piece[row], terminals[t], radius[row] + reach_tol)
        one &= np.bincount(row[~near], minlength=n) == 0
    return one


def _neck(geom: BaseGeometry, eroded: BaseGeometry, radius: float, terminals: Sequence[BaseGeometry],
          reach_tol: float) -> BaseGeometry:
    """A cross-section line at the place where `geom` eroded by `radius` (`eroded`) splits or stops short of a
    terminal."""
    core = pieces(eroded)
    if len(core) == 0:
        return geom
    if len(core) >= 2:
        order = np.argsort(-shapely.area(core))
        a = core[order[0]]
        rest = core[order[1:]]
        b = rest[int(np.argmin(shapely.distance(a, rest)))]
        gap = shapely.shortest_line(a, b)
    else:
        t = np.asarray(terminals, dtype=object)
        far = t[~shapely.dwithin(core[0], t, radius + reach_tol)]
        if not len(far):
            return geom
        gap = shapely.shortest_line(core[0], far[0])
    mid = shapely.line_interpolate_point(gap, 0.5, normalized=True)
    return cross_section(geom, mid)


def cross_section(geom: BaseGeometry, point: BaseGeometry) -> BaseGeometry:
    """The chord through `point` from its nearest boundary point straight across the polygon."""
    p1 = shapely.get_coordinates(shapely.shortest_line(geom.boundary, point))[0]
    m = shapely.get_coordinates(point)[0]
    d = m - p1
    n = float(np.hypot(*d))
    if n < 1e-9:
        return point
    far = p1 + d / n * (4.0 * n + 1.0)
    chord = shapely.intersection(LineString([p1 - d / n * 1e-6, far]), geom)
    parts = shapely.get_parts(chord)
    parts = parts[shapely.get_type_id(parts) == 1]
    if not len(parts):
        return point
    return parts[int(np.argmin(shapely.distance(parts, shapely.Point(p1))))]


# --- configuration space --------------------------------------------------------------------------------------


def configuration_space(free: BaseGeometry, radius: float) -> BaseGeometry:
    """Where the centre of a disc of `radius` (half a truck's width) can be: `free` eroded by `radius`.

    Note: eroding (lane − obstacles) equals eroding the lane and removing the obstacles dilated by the radius,
    which is how `local_cut` re-uses one erosion of the lane for every obstruction cluster.
    """
    return shapely.buffer(free, -radius, quad_segs=8)


def local_cut(space: BaseGeometry, dilated: BaseGeometry, window: BaseGeometry,
              entries: Sequence[BaseGeometry], *, radius: float, reach_tol: float = 0.5,
              others: BaseGeometry | None = None) -> bool:
    """Whether removing `dilated` (obstacles grown by `radius`) from the configuration space `space` disconnects
    places the free space connected inside `window`.

    Terminals are where the configuration space crosses the window's boundary (it continues beyond) and the
    entry zones inside the window; an obstacle cluster blocks when two terminals that one piece of
    (space − others) ∩ window joined are no longer joined by any piece of (space − others − dilated) ∩ window.

    Parameters
    ----------
    space : geometry
        The configuration space of the unobstructed lane network (eroded by `radius`), at least over `window`.
    dilated : geometry
        The cluster's obstacles buffered by `radius`.
    window : Polygon
        A neighbourhood of the cluster (the cluster's dilation grown by a margin).
    entries : sequence of geometries
        Lane entry zones (city road / vehicle entrance contacts).
    radius, reach_tol : float
        A terminal entry counts as reached within radius + reach_tol.
    others : geometry, optional
        Other clusters' dilations (present in both states, so each cluster is judged on its own effect).
    """
    base = shapely.intersection(space, window)
    if others is not None and not others.is_empty:
        base = base.difference(others)
    a = pieces(base)
    if len(a) == 0:
        return False
    b = pieces(base.difference(dilated))
    # crossings: where the space reaches a thin band along the window's edge (polygons, not the edge line itself:
    # the space's boundary runs along the edge and a line overlay there is not robust)
    band = shapely.difference(window, shapely.buffer(window, -EDGE_BAND_M, quad_segs=4))
    cross = _parts(np.array([shapely.intersection(shapely.union_all(a), band)], dtype=object))[0]
    ents = np.asarray(entries, dtype=object).ravel()
    if len(ents):
        ents = ents[~shapely.is_missing(ents)]
        ents = ents[~shapely.is_empty(ents) & shapely.dwithin(ents, window, radius + reach_tol)]
    terminals = np.concatenate([cross, ents]) if len(ents) else cross
    if len(terminals) < 2:
        return False
    tol = np.where(np.arange(len(terminals)) < len(cross), 1e-6, radius + reach_tol)
    in_a = shapely.dwithin(a[:, None], terminals[None, :], tol[None, :])
    in_b = (shapely.dwithin(b[:, None], terminals[None, :], tol[None, :])
            if len(b) else np.zeros((0, len(terminals)), dtype=bool))
    joined_a = _joined(in_a)
    joined_b = _joined(in_b)
    return bool((joined_a & ~joined_b).any())


def local_cuts(space: np.ndarray, dilated: np.ndarray, windows: np.ndarray, entries: np.ndarray,
               entry_window: np.ndarray, *, radius: float, reach_tol: float = 0.5,
               others: np.ndarray | None = None,
               states: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """`local_cut` for many windows at once (the same tests, each overlay one vectorised call for all windows).

    Parameters
    ----------
    space, dilated, windows : arrays of geometries, one per window
    entries, entry_window : arrays
        Entry zones and the window each is offered to (one row per pair, as `local_cut`'s `entries` per window).
    radius, reach_tol : float
    others : array of geometries or None (one per window; None or empty: no other clusters)
    states : (base, diff) or None
        When the caller has them (`surely_uncut`'s arguments): per window (space − others) ∩ window and the same
        minus `dilated`; `space` and `others` are then not looked at.

    Returns
    -------
    numpy.ndarray of bool, one per window
    """
    n = len(windows)
    out = np.zeros(n, dtype=bool)
    if not n:
        return out
    if states is None:
        base = shapely.intersection(space, windows)
        if others is not None:
            has = ~shapely.is_missing(others)
            has[has] = ~shapely.is_empty(others[has])
            base[has] = shapely.difference(base[has], others[has])
        diff = shapely.difference(base, dilated)
    else:
        base, diff = states
    a, ak = pieces_of(base)
    b, bk = pieces_of(diff)
    band = shapely.difference(windows, shapely.buffer(windows, -EDGE_BAND_M, quad_segs=4))
    cross, xk = _parts(shapely.intersection(union_rows(a, ak, n), band))
    entries = np.asarray(entries, dtype=object)
    entry_window = np.asarray(entry_window, dtype=np.int64)
    if len(entries):
        ok = ~shapely.is_missing(entries)
        ok[ok] = ~shapely.is_empty(entries[ok])
        ok[ok] = shapely.dwithin(entries[ok], windows[entry_window[ok]], radius + reach_tol)
        entries, entry_window = entries[ok], entry_window[ok]
    terms = np.concatenate([cross, entries])
    tk = np.concatenate([xk, entry_window]).astype(np.int64)
    tol = np.concatenate([np.full(len(cross), 1e-6), np.full(len(entries), radius + reach_tol)])
    ai, at = pairs_by_group(ak, tk)
    in_a = shapely.dwithin(a[ai], terms[at], tol[at])
    bi, bt = pairs_by_group(bk, tk)
    in_b = shapely.dwithin(b[bi], terms[bt], tol[bt])
    n_terms = np.bincount(tk, minlength=n)
    look = (n_terms >= 2) & (np.bincount(ak, minlength=n) > 0)
    # `_joined` of every window at once: the pairs of terminals (each with itself too) one piece touches; a window
    # is cut where a pair joined by a piece of `base` is joined by no piece of `diff`
    joined_a = _touched_pairs(ai[in_a], at[in_a], len(terms))
    joined_b = _touched_pairs(bi[in_b], bt[in_b], len(terms))
    lost = joined_a[~np.isin(joined_a, joined_b)]
    out[tk[lost // max(len(terms), 1)]] = True
    return out & look


def _touched_pairs(piece: np.ndarray, term: np.ndarray, n_terms: int) -> np.ndarray:
    """Codes t1 * n_terms + t2 of the terminal pairs (t1 == t2 included) that one piece touches, from (piece,
    terminal) incidence pairs."""
    i, j = pairs_by_group(piece, piece)
    return np.unique(term[i] * n_terms + term[j])


def union_rows(parts: np.ndarray, row: np.ndarray, n: int) -> np.ndarray:
    """Per row 0..n-1 the union of the `parts` labelled with it: one vectorised call over a ragged table of the
    rows' parts padded with None (empty rows: empty)."""
    order = np.argsort(row, kind="stable")
    parts, row = parts[order], row[order]
    col = np.arange(len(row)) - np.searchsorted(row, row)
    table = np.full((n, int(col.max(initial=0)) + 1), None, dtype=object)
    table[row, col] = parts
    return shapely.union_all(table, axis=1)


def grown_union_rows(parts: np.ndarray, row: np.ndarray, n: int, distance: float, **buffer_kw: object) -> np.ndarray:
    """Per row 0..n-1 the union of the `parts` labelled with it grown by `distance` > 0 (`shapely.buffer`'s
    keywords; empty rows: empty): each row's parts buffered as one collection. GEOS's buffer nodes all the parts'
    offset curves together in one pass; a union first overlays the parts pair by pair, renoding at every level."""
    order = np.argsort(row, kind="stable")
    rows = np.full(n, shapely.from_wkt("GEOMETRYCOLLECTION EMPTY"), dtype=object)
    if len(order):
        shapely.geometrycollections(parts[order], indices=row[order], out=rows)
    return shapely.buffer(rows, distance, **buffer_kw)


def nearest_within(geoms: np.ndarray, tree: STRtree, distance: float) -> tuple[np.ndarray, np.ndarray]:
    """Per geometry of `geoms` the nearest of `tree`'s geometries within `distance`, ties to the smaller tree index:
    (indices into `geoms`, indices into the tree), the geometries with none that near left out. What
    `STRtree.query_nearest(max_distance=...)` finds, from one `dwithin` query and one array of distances instead of
    a branch-and-bound search per geometry."""
    i, j = tree.query(geoms, predicate="dwithin", distance=distance)
    d = shapely.distance(geoms[i], tree.geometries[j])
    order = np.lexsort((j, d, i))
    i, j = i[order], j[order]
    first = np.r_[True, i[1:] != i[:-1]] if len(i) else np.zeros(0, dtype=bool)
    return i[first], j[first]


def pairs_by_group(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (i, j) with a[i] == b[j] (i ascending, j ascending within i)."""
    order = np.argsort(b, kind="stable")
    i, j = pairs_in_ranges(np.searchsorted(b[order], a, side="left"), np.searchsorted(b[order], a, side="right"))
    return i, order[j]


def _joined(member: np.ndarray) -> np.ndarray:
    """Terminal x terminal: joined when one piece touches both (pieces x terminals incidence).

    Deliberately not transitive: an entry zone along a lane's side (a city road beside it) touches the pieces on
    both sides of a blockage without joining them, and crossing terminals lie on the window's edge, away from the
    obstacles, so one piece always holds a whole crossing.
    """
    n = member.shape[1]
    if member.shape[0] == 0:
        return np.zeros((n, n), dtype=bool)
    m = member.astype(np.int32)
    return (m.T @ m) > 0


def clear_widths(lanes: np.ndarray, obstacles: np.ndarray, windows: np.ndarray, entries: np.ndarray,
                 entry_window: np.ndarray, *, radius: float, reach_tol: float = 0.5) -> np.ndarray:
    """The widest truck that still passes each blocking obstacle cluster, all clusters at once.

    The passage past a cluster closes when two of its obstacles, or an obstacle and a lane edge, come within the
    truck width, so the answer is one of those distances (exactly so for convex obstacles; below it otherwise).
    Every candidate of every cluster is tested in one vectorised pass (`surely_uncut` on the window's lanes
    eroded by half the candidate): the widest passing candidate is the clear width (0 when none passes). Only
    each window's lanes (grown by the radius) are eroded, never the whole network.

    Parameters
    ----------
    lanes, obstacles, windows : arrays of geometries, one per cluster
        The lanes around the cluster, the union of its obstacles, its window.
    entries, entry_window : arrays
        Entry zones near the windows and the window (cluster index) of each.
    radius : float
        Half the required truck width (the largest width tested is 2 x radius).
    reach_tol : float

    Returns
    -------
    numpy.ndarray
        Clear width per cluster (metres, 2 decimals).
    """
    n = len(windows)
    out = np.zeros(n)
    if not n:
        return out
    local = shapely.intersection(lanes, shapely.buffer(windows, radius + 1.0, quad_segs=4))
    parts, pk = shapely.get_parts(obstacles, return_index=True)
    inner, lk = shapely.get_parts(shapely.intersection(local, windows), return_index=True)
    rings, rp = shapely.get_rings(inner, return_index=True)
    ring_k = lk[rp]
    xy, ri = shapely.get_coordinates(rings, return_index=True)
    same = ri[1:] == ri[:-1]
    seg_k = ring_k[ri[1:][same]]
    segs = shapely.linestrings(np.stack([xy[:-1][same], xy[1:][same]], axis=1))
    feats = np.concatenate([parts, segs])
    feat_k = np.concatenate([pk, seg_k])
    # candidate widths: distances from each obstacle part to every feature of its own window
    pi, fi = STRtree(feats).query(parts, predicate="dwithin", distance=2.0 * radius)
    keep = pk[pi] == feat_k[fi]
    d = np.round(shapely.distance(parts[pi[keep]], feats[fi[keep]]), 4)
    k = pk[pi[keep]]
    ok = (d > 1e-6) & (d < 2.0 * radius)
    cand = np.unique(np.column_stack([k[ok], d[ok]]), axis=0) if ok.any() else np.empty((0, 2))
    if not len(cand):
        return out
    ck, cw = cand[:, 0].astype(np.int64), cand[:, 1]
    rho = np.maximum(cw / 2.0 - 1e-4, 1e-4)
    order = np.argsort(entry_window, kind="stable")
    starts = np.searchsorted(entry_window[order], np.arange(n + 1))

    def passing(sel: np.ndarray) -> np.ndarray:
        """`surely_uncut` for the candidates `sel` (each test is its own row: rows do not interact)."""
        k, r = ck[sel], rho[sel]
        base = shapely.intersection(shapely.buffer(local[k], -r, quad_segs=8), windows[k])
        diff = shapely.difference(base, shapely.buffer(obstacles[k], r, quad_segs=8))
        # entries of each candidate's window
        counts = starts[k + 1] - starts[k]
        rows = np.repeat(np.arange(len(k)), counts)
        take = order[np.concatenate([np.arange(starts[c], starts[c + 1]) for c in k])] if counts.sum() else \
            np.empty(0, dtype=np.int64)
        return surely_uncut(base, diff, entries[take], rows, radius=r, reach_tol=reach_tol)

    # the widest passing candidate: each round tries every open cluster's next candidate, from the widest down,
    # until one of a cluster's passes (all wider ones having failed, it is the widest that passes; no candidate
    # narrower than it is tested)
    first = np.searchsorted(ck, np.arange(n + 1))  # (candidates are sorted by cluster, then width)
    rank = first[ck + 1] - 1 - np.arange(len(ck))  # 0 for each cluster's widest
    open_ = np.ones(n, dtype=bool)
    lo = 0
    while True:
        sel = np.flatnonzero(open_[ck] & (rank == lo))
        if not len(sel):
            break
        ok = passing(sel)
        out[ck[sel[ok]]] = cw[sel[ok]]
        open_[ck[sel[ok]]] = False
        lo += 1
    return np.round(out, 2)
