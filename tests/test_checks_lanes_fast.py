"""LANE-CLEAR's fast paths judge as its exact path does: the bite certificate, batched cuts, clusters, unions."""

from __future__ import annotations

from typing import cast

import numpy as np
import pytest
import shapely
from lanes_support import context, fails, findings, lane, parked_car
from shapely.geometry import Point, Polygon, box

from gis.checks import geometry as gm
from gis.checks import lanes

#: Half a 4 m truck, judged SIZE_TOL_M narrower (as lane_clear does).
R = 2.0 - gm.SIZE_TOL_M / 2.0
#: A ring lane: the band between a 60 x 40 m rectangle and a 48 x 28 m courtyard (6 m wide), rotated.
RING = shapely.affinity.rotate(box(0, 0, 60, 40).difference(box(6, 6, 54, 34)), 17.0, origin=(0, 0))
STRAIGHT = box(7, 0, 13, 120)


def _exact(lane_geom, obstacle, entries=()) -> tuple[bool, bool]:
    """(surely_uncut, local_cut) of one obstacle on one lane, as lane_clear judges a window."""
    dilated = shapely.buffer(obstacle, R, quad_segs=8)
    window = shapely.buffer(dilated, lanes.WINDOW_M, quad_segs=4)
    space = shapely.intersection(gm.configuration_space(lane_geom, R), window)
    ents = np.array(list(entries), dtype=object)
    uncut = gm.surely_uncut(np.array([space], dtype=object), np.array([space.difference(dilated)], dtype=object),
                            ents, np.zeros(len(ents), dtype=np.int64), radius=R, reach_tol=lanes.REACH_TOL_M)[0]
    cut = gm.local_cut(space, dilated, window, list(ents), radius=R, reach_tol=lanes.REACH_TOL_M)
    return bool(uncut), bool(cut)


def _bites(lane_geom, obstacles) -> np.ndarray:
    dilated = shapely.buffer(np.asarray(obstacles, dtype=object), R, quad_segs=8)
    space = np.array([gm.configuration_space(lane_geom, R)], dtype=object)
    return gm.only_bites(dilated, space, np.zeros(len(dilated), dtype=np.int64))


def _cars_on_ring(n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    out: list[shapely.Geometry] = []
    while len(out) < n:
        x, y = rng.uniform(-5, 65), rng.uniform(-5, 45)
        car = shapely.affinity.rotate(box(x, y, x + rng.uniform(0.5, 2.5), y + rng.uniform(1.0, 5.0)),
                                      rng.uniform(0, 180))
        car = shapely.affinity.rotate(car, 17.0, origin=(0, 0))
        if car.intersects(RING) and not car.touches(RING):
            out.append(car)
    return out


@pytest.mark.parametrize(("clear", "cut"), [(3.8, True), (3.98, True), (4.0, False), (4.02, False), (4.2, False)])
def test_the_bite_certificate_agrees_with_the_exact_cut_on_both_sides_of_4_m(clear, cut):
    # a 1.8 m car on the right edge of a 6 m lane leaves `clear` metres; same car across the left edge
    x = 7 + clear
    cars = [box(x, 50, x + 1.8, 54.8), box(13 - clear - 1.8, 50, 13 - clear, 54.8)]
    for car, sure in zip(cars, _bites(STRAIGHT, cars), strict=True):
        uncut, blocked = _exact(STRAIGHT, car)
        assert blocked is cut
        assert not (sure and blocked)  # the certificate never clears a blockage
        # it clears a car that leaves more than the margin to spare, and leaves the close calls to the exact test
        assert bool(sure) is (clear - 2 * R > gm.BITE_MARGIN_M)
        assert not sure or uncut


def test_the_bite_certificate_is_never_wrong_on_a_ring_and_clears_most_cars():
    cars = _cars_on_ring(300, seed=7)
    sure = _bites(RING, cars)
    exact = [_exact(RING, c) for c in cars]
    assert all(uncut and not cut for s, (uncut, cut) in zip(sure, exact, strict=True) if s)
    assert sure.mean() > 0.3  # cars parked along the band, away from the corners
    assert any(cut for _, cut in exact)  # and the sample holds real blockages, none of them certified


def test_the_bite_certificate_refuses_corners_concave_obstacles_and_covered_lanes():
    corner = box(13 - 2.5, 118, 13.5, 121)  # at the lane's end: two edges near
    notch = Polygon([(9, 50), (13.5, 50), (13.5, 60), (9, 60), (9, 56), (12, 56), (12, 54), (9, 54)])
    covering = box(6, 50, 14, 52)
    assert not _bites(STRAIGHT, [corner, notch, covering]).any()
    assert _exact(STRAIGHT, covering)[1]


def test_batched_cuts_equal_one_window_at_a_time():
    cars = _cars_on_ring(120, seed=3)
    dilated = shapely.buffer(np.asarray(cars, dtype=object), R, quad_segs=8)
    windows = shapely.buffer(dilated, lanes.WINDOW_M, quad_segs=4)
    space = shapely.intersection(np.full(len(cars), gm.configuration_space(RING, R), dtype=object), windows)
    # entry zones at two corners of the ring; other clusters: the next car's dilation where it reaches the window
    gate = shapely.affinity.rotate(box(0, 0, 6, 3), 17.0, origin=(0, 0))
    yard = shapely.affinity.rotate(box(54, 37, 60, 40), 17.0, origin=(0, 0))
    ents, ew = [], []
    for k, w in enumerate(windows):
        for z in (gate, yard):
            if shapely.dwithin(z, w, R + lanes.REACH_TOL_M):
                ents.append(z)
                ew.append(k)
    others = np.array([shapely.intersection(dilated[(k + 1) % len(cars)], w) for k, w in enumerate(windows)],
                      dtype=object)
    others[::3] = None
    ents_a, ew_a = np.array(ents, dtype=object), np.array(ew, dtype=np.int64)
    got = gm.local_cuts(space, dilated, windows, ents_a, ew_a, radius=R, reach_tol=lanes.REACH_TOL_M, others=others)
    want = [gm.local_cut(space[k], dilated[k], windows[k], list(ents_a[ew_a == k]), radius=R,
                         reach_tol=lanes.REACH_TOL_M, others=others[k]) for k in range(len(cars))]
    assert got.tolist() == want
    assert 0 < got.sum() < len(got)
    # the caller's own (space - others) and that minus the cluster give the same cuts
    base = space.copy()
    has = ~shapely.is_missing(others)
    base[has] = shapely.difference(space[has], others[has])
    states = (base, shapely.difference(base, dilated))
    again = gm.local_cuts(space, dilated, windows, ents_a, ew_a, radius=R, reach_tol=lanes.REACH_TOL_M, states=states)
    assert again.tolist() == want


def test_clusters_are_the_pieces_of_the_union():
    rng = np.random.default_rng(5)
    discs = shapely.buffer(shapely.points(rng.uniform(0, 60, (200, 2))), rng.uniform(0.5, 3.0, 200), quad_segs=8)
    got, member = gm.clusters(discs)
    want = gm.pieces(shapely.union_all(discs))
    assert len(got) == len(want) < len(discs)
    assert sorted(np.round(shapely.area(got), 6)) == sorted(np.round(shapely.area(want), 6))
    # the same pieces to floating point (the overlay nodes the groups in another order)
    assert all(min(shapely.hausdorff_distance(g, want)) < 1e-6 for g in got)
    assert (member >= 0).all() and (shapely.area(shapely.difference(discs, got[member])) < 1e-9).all()


def test_unions_of_lane_groups_equal_one_union_at_a_time():
    # three lanes meeting with 0.5 m gaps (bridged) and a fourth alone; groups overlap
    ctx = context(fire_lanes=[lane("L1", box(7, 0, 13, 100)), lane("L2", box(13.5, 60, 80, 66)),
                              lane("L3", box(80.5, 0, 86, 120)), lane("L4", box(150, 0, 156, 50))])
    net = lanes.lane_network(ctx)
    groups = [np.array([0, 1, 2]), np.array([1, 2]), np.array([3]), np.array([2, 0]), np.array([], dtype=np.int64)]
    got = net.unions(groups)
    for g, u in zip(groups, got, strict=True):
        # (`union` is typed `object`: it returns a shapely geometry)
        assert u.equals_exact(net.union(g), 0) or (u.is_empty and cast(shapely.Geometry, net.union(g)).is_empty)
    assert len(gm.pieces(got[0])) == 1  # the gaps are bridged


@pytest.mark.parametrize(("clear", "blocked"), [(3.8, True), (3.95, True), (4.05, False), (4.2, False)])
def test_lane_clear_gives_the_same_findings_without_the_certificate(monkeypatch, clear, blocked):
    x = 7 + clear
    ctx = context(fire_lanes=[lane("L1", box(7, 0, 13, 120))], obstructions=[parked_car("V1", x, 50)],
                  buildings=[{"ref": "B1", "floors": 6, "geometry": box(20, 40, 40, 60)}])
    fast = findings(ctx, "LANE-CLEAR")
    monkeypatch.setattr(gm, "only_bites", lambda dilated, spaces, which: np.zeros(len(dilated), dtype=bool))
    ctx.cache.clear()
    slow = findings(ctx, "LANE-CLEAR")
    assert (fails(fast) == {"L1"}) is blocked
    cols = ["rule", "subject_ref", "verdict", "measured", "message"]
    assert fast[cols].reset_index(drop=True).equals(slow[cols].reset_index(drop=True))
    assert fast.geometry.reset_index(drop=True).geom_equals_exact(slow.geometry.reset_index(drop=True), 1e-6).all()


def test_obstacles_found_through_the_lanes_grown_polygons_include_every_near_one():
    # covers (the lanes grown by 1 m, as the network draws them for the contact zones) settle the pairs by a
    # point-in-polygon test: every point within the distance is kept, none beyond the cover; no cover: exact
    areas = np.array([shapely.affinity.rotate(box(0, 0, 6, 80), 30), box(100, 0, 106, 80).difference(
        box(102, 10, 104, 70)), shapely.MultiPolygon([box(200, 0, 206, 30), box(200, 40, 206, 80)])], dtype=object)
    covers = shapely.buffer(areas, lanes.ENTRY_TOL_M, quad_segs=4)
    covers[2] = None
    rng = np.random.default_rng(3)
    pts = shapely.points(rng.uniform(-50, 250, (20000, 2)))
    d = 0.9 * lanes.ENTRY_TOL_M
    got = lanes._near(pts, areas, d, covers)
    exact = shapely.dwithin(pts[:, None], areas[None, :], d)
    assert set(np.flatnonzero(exact.any(axis=1))) <= set(got.tolist())
    assert shapely.dwithin(pts[got][:, None], areas[None, :2], lanes.ENTRY_TOL_M).any(axis=1)[
        ~exact[got][:, 2]].all()
    assert set(got[exact[got][:, 2] & ~exact[got][:, :2].any(axis=1)].tolist()) == set(
        np.flatnonzero(exact[:, 2] & ~exact[:, :2].any(axis=1)).tolist())
    assert len(got) > exact.any(axis=1).sum()  # (some a little farther away, filtered exactly by the caller)


def test_the_bite_certificate_counts_only_the_own_lanes_edges_near_each_dilation():
    # discs of many sizes around three lanes (one of them two parts, one eroded away): certified exactly where
    # the disc is convex and at most one edge of its own lane's configuration space comes within the margin
    lanes_ = np.array([box(0, 0, 8, 60), shapely.affinity.rotate(box(20, 0, 27, 60), 25),
                       shapely.MultiPolygon([box(40, 0, 48, 25), box(40, 30, 48, 60)]), box(60, 0, 63, 60)],
                      dtype=object)
    spaces = np.array([gm.configuration_space(g, R) for g in lanes_], dtype=object)
    rng = np.random.default_rng(5)
    which = rng.integers(0, len(lanes_), 600)
    x = np.array([4.0, 23.0, 44.0, 61.5])[which] + rng.normal(0, 4, 600)
    dilated = shapely.buffer(shapely.points(x, rng.uniform(-5, 65, 600)), rng.uniform(0.3, 6, 600), quad_segs=8)
    dilated[:5] = shapely.buffer(shapely.LineString([(0, 30), (9, 30), (9, 40)]), R)  # not convex
    got = gm.only_bites(dilated, spaces, which)
    want = []
    for d, w in zip(dilated, which, strict=True):
        xy = [ring.coords for part in getattr(spaces[w], "geoms", [spaces[w]]) if not part.is_empty
              for ring in [part.exterior, *part.interiors]]
        edges = [shapely.LineString(c[i:i + 2]) for c in xy for i in range(len(c) - 1)]
        near = sum(d.dwithin(e, gm.BITE_MARGIN_M) for e in edges)
        want.append(bool(gm.convex(np.array([d], dtype=object))[0]) and near <= 1)
    assert got.tolist() == want
    assert 0 < sum(want) < len(want)


def test_obstacles_are_found_by_distance_as_before():
    areas = np.array([shapely.affinity.rotate(box(0, 0, 6, 80), 30), box(100, 0, 106, 80)], dtype=object)
    rng = np.random.default_rng(2)
    pts = shapely.points(rng.uniform(-50, 150, (3000, 2)))
    near = lanes._near(pts, areas, 2.5)
    want = np.flatnonzero(shapely.dwithin(pts[:, None], areas[None, :], 2.5).any(axis=1))
    assert near.tolist() == want.tolist() and 0 < len(want) < len(pts)


def test_a_car_that_only_bites_the_lane_but_shuts_a_side_gate_is_still_judged():
    # 4.2 m clear beside the car, but it stands in front of a second vehicle gate on the lane's east side: the
    # window holds an entry zone, so the certificate must leave it to the exact test (which finds the gate cut off)
    ctx = context(fire_lanes=[lane("L1", box(7, 0, 13, 120))], obstructions=[parked_car("V1", 11.2, 57.6)],
                  entrances=[{"ref": "G1", "kind": "vehicle", "geometry": Point(10, 0)},
                             {"ref": "G2", "kind": "vehicle", "geometry": Point(13, 60)}])
    car = box(11.2, 57.6, 13, 62.4)
    assert _bites(STRAIGHT, [car])[0]  # alone it would be certified
    gate_zone = box(7, 0, 13, 120).intersection(Point(13, 60).buffer(1.0, quad_segs=4))
    assert _exact(STRAIGHT, car, [gate_zone])[1]
    assert fails(findings(ctx, "LANE-CLEAR")) == {"L1"}


def _necked(x: float, neck: float) -> shapely.Polygon:
    """A 6 m lane 80 m long narrowed to `neck` metres for 4 m half way."""
    side = (6.0 - neck) / 2.0
    return box(x, 0, x + 6, 80).difference(box(x, 38, x + side, 42)).difference(box(x + 6 - side, 38, x + 6, 42))


def test_batched_bottlenecks_equal_one_lane_at_a_time():
    # lanes passing, narrowed to several widths, split, and one whose far end a terminal lies beyond
    geoms = np.array([_necked(0, 6.0), _necked(20, 3.9), _necked(40, 2.5), _necked(60, 0.0),
                      box(80, 0, 86, 80), _necked(100, 3.2)], dtype=object)
    terms = [[box(0, -1, 6, 0)], [box(20, -1, 26, 0), box(20, 80, 26, 81)], [box(40, 80, 46, 81)], [],
             [box(80, 83, 86, 84)], [box(100, 80, 106, 81), box(100, -1, 106, 0)]]
    flat = np.array([t for ts in terms for t in ts], dtype=object)
    owner = np.repeat(np.arange(len(terms)), [len(t) for t in terms])
    got = gm.bottleneck_widths(geoms, flat, owner, required=4.0, reach_tol=lanes.REACH_TOL_M)
    eroded = gm.configuration_space(geoms, 2.0 - gm.SIZE_TOL_M / 2.0)
    given = gm.bottleneck_widths(geoms, flat, owner, required=4.0, reach_tol=lanes.REACH_TOL_M, eroded=eroded)
    alone = [gm.bottleneck_width(g, t, required=4.0, reach_tol=lanes.REACH_TOL_M) for g, t in zip(geoms, terms,
                                                                                                    strict=True)]
    for a, b, c in zip(got, given, alone, strict=True):
        assert (a is None) == (b is None) == (c is None)
        if a is not None:
            assert b is not None and c is not None  # (as asserted just above)
            assert a.width == b.width == c.width
            assert a.neck is not None and a.neck.equals_exact(b.neck, 0) and a.neck.equals_exact(c.neck, 0)
    widths = [None if a is None else a.width for a in got]
    assert widths[0] is None and widths[1] == pytest.approx(3.9, abs=0.01)
    assert widths[2] == pytest.approx(2.5, abs=0.01) and widths[5] == pytest.approx(3.2, abs=0.01)
    assert widths[3] is not None and widths[4] is not None  # split in two; the terminal lies beyond the end


def test_kinds_count_places_as_the_union_of_the_grown_zones_does():
    # three 3.6 m lanes, each met by two side lanes: diagonally across it with 1.6 m between their zones both ways
    # (the grown boxes meet, the grown zones do not: two places), on one side 0.5 m apart (one place), and far
    # apart (two places)
    def spine_with(x: float, left: tuple[float, float], right: tuple[float, float] | None) -> list:
        other = box(x + 3.6, right[0], x + 23.6, right[1]) if right else box(x - 20, 8.5, x, 14.5)
        return [box(x, 0, x + 3.6, 60), box(x - 20, left[0], x, left[1]), other]

    geoms = np.array([*spine_with(0, (20, 26), (29.6, 35.6)), *spine_with(100, (0, 6), None),
                      *spine_with(200, (5, 11), (45, 51))], dtype=object)
    ai, aj = shapely.STRtree(geoms).query(geoms, predicate="dwithin", distance=lanes.ENTRY_TOL_M)
    ai, aj = ai[ai != aj], aj[ai != aj]
    zones = shapely.intersection(geoms[ai], shapely.buffer(geoms[aj], lanes.ENTRY_TOL_M, quad_segs=4))
    fast = lanes.derive_kinds(geoms, ai, zones, far=False)[0]
    union = lanes.derive_kinds(geoms, ai, zones, far=True)[0]  # (every lane's grown zones united)
    assert fast.tolist() == union.tolist()
    assert fast[[0, 3, 6]].tolist() == ["through", "dead_end", "through"]


def test_batched_squares_equal_one_at_a_time():
    turned = shapely.affinity.rotate(shapely.union_all([box(0, 0, 6, 60), box(-4, 60, 10, 72)]), 23.0)
    geoms = np.array([box(0, 0, 4.5, 120), turned, Polygon(), shapely.union_all([box(0, 0, 50, 6),
                                                                                 box(50, -3, 61.9, 8.9)]),
                      box(0, 0, 30, 30).difference(box(5, 5, 25, 25))], dtype=object)
    upper = np.array([12.0, 15.0, 12.0, 30.0, 12.0])
    got = gm.largest_inscribed_squares(geoms, upper=upper)
    for g, u, sq in zip(geoms, upper, got, strict=True):
        one = gm.largest_inscribed_square(g, upper=float(u))
        assert sq.length == one.length
        assert (sq.rectangle is None and one.rectangle is None) or (
            sq.rectangle is not None and sq.rectangle.equals_exact(one.rectangle, 0))
    assert got[0].length == pytest.approx(4.5, abs=0.01) and got[2].length == 0.0
    assert got[1].length == pytest.approx(12.0, abs=0.01)  # the upper bound stops the search


@pytest.mark.parametrize("head", [11.98, 11.995, 12.0, 12.005, 12.02, 12.5])
def test_the_corner_square_certificate_agrees_with_the_erosion(monkeypatch, head):
    # dead ends with a head of `head` metres at one end (either end, either side, T or L shaped), rotated, and
    # random rectilinear unions of boxes
    rng = np.random.default_rng(int(head * 1000))
    shapes = [shapely.union_all([box(0, 0, 4.5, 80), box(0, 80, head, 80 + head)]),
              shapely.union_all([box(0, 0, 4.5, 80), box(-head / 2, 80, head / 2, 80 + head)]),
              shapely.union_all([box(0, 0, 4.5, 80), box(4.5 - head, -head, 4.5, 0)])]
    for _ in range(40):
        x, y = rng.uniform(0, 20, (2, 4))
        w, h = rng.uniform(3, 16, (2, 4))
        shapes.append(shapely.union_all([box(a, b, a + c, b + d) for a, b, c, d in zip(x, y, w, h, strict=True)]))
    geoms = np.array([shapely.affinity.rotate(shapely.affinity.translate(g, 357_000, 3_296_000), a, origin=(0, 0))
                      for g in shapes for a in (0.0, 31.0)], dtype=object)
    got = gm.squares_fit(geoms, 12.0)
    monkeypatch.setattr(gm, "SQUARE_CERTIFICATE_MARGIN_M", 1e6)  # no corner square: every polygon eroded
    assert got.tolist() == gm.squares_fit(geoms, 12.0).tolist()
    assert got[:6].tolist() == [head >= 12.0 - gm.SIZE_TOL_M] * 6


def _court(x: float) -> shapely.Polygon:
    """A 6 m ring lane around a 48 x 28 m courtyard, its south-west corner at (x, 0)."""
    return box(x, 0, x + 60, 40).difference(box(x + 6, 6, x + 54, 34))


def test_rings_alone_in_their_component_and_rings_sharing_one_count_outlets_alike():
    # A (alone): one gate, a spur reaching nothing: 1 outlet. D (alone): a gate and a spur to a gate: 2 outlets.
    # B and C share a component through the link K: B has no gate, its only outlet is K (C has gates): 1 outlet;
    # C has two gates, and K reaches no entry without C: 2 outlets
    gate = "vehicle"
    ctx = context(
        fire_lanes=[lane("A", _court(0)), lane("S1", box(60, 17, 90, 23)), lane("B", _court(200)),
                    lane("K", box(260, 17, 300, 23)), lane("C", _court(300)), lane("D", _court(500)),
                    lane("S2", box(560, 17, 590, 23))],
        entrances=[{"ref": "G1", "kind": gate, "geometry": Point(10, 0)},
                   {"ref": "G4", "kind": gate, "geometry": Point(310, 0)},
                   {"ref": "G5", "kind": gate, "geometry": Point(350, 0)},
                   {"ref": "G6", "kind": gate, "geometry": Point(510, 0)},
                   {"ref": "G7", "kind": gate, "geometry": Point(590, 20)}])
    got = findings(ctx, "LANE-CONNECT")
    assert fails(got) == {"A", "B"}
    assert got.set_index("subject_ref")["measured"].to_dict() == {"A": 1.0, "B": 1.0}
