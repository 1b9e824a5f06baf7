"""LANE-TURN, the swept-path check: a truck's turn at a lane corner fits inside the lanes and the entrance's driveway,
on both sides of the profile's inner turning radii (9 m fire truck, 12 m aerial ladder truck; unconfirmed values)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, Point, Polygon, box

from gis.checks import geometry as gm
from gis.checks import lanes, turns
from gis.checks.context import CheckContext, build_contexts
from gis.coords import from_storage, to_storage

#: Local metres are shifted into UTM 51N near Ningbo and stored as EPSG:4490, like real data.
X0, Y0 = 360_000.0, 3_300_000.0


def _frame(rows: list[dict], *, angle: float = 0.0, gcj: bool = False) -> gpd.GeoDataFrame:
    rows = [dict(r) for r in rows]
    geoms = [shapely.affinity.translate(shapely.affinity.rotate(r.pop("geometry"), angle, origin=(10, 0)), X0, Y0)
             for r in rows]
    out = gpd.GeoDataFrame(rows, geometry=geoms, crs=32651).to_crs(4490)
    if gcj:
        # delivered in GCJ-02 (a web map's coordinates), imported through the storage transform
        shifted = from_storage(np.asarray(out.geometry.values, dtype=object), "gcj02")
        out = out.set_geometry(gpd.GeoSeries(to_storage(shifted, "gcj02"), crs=4490))
    return out


def context(*, angle: float = 0.0, gcj: bool = False, road_width: float = 16.0, gate_width: float = 8.0,
            **layers: list[dict]) -> CheckContext:
    """One compound (0..200 m square), a city road south of it, a vehicle gate at x = 10 m."""
    base = {
        "compounds": [{"ref": "C1", "geometry": box(-50, 0, 250, 250)}],
        "roads": [{"ref": "R1", "kind": "city", "width_m": road_width,
                   "geometry": LineString([(-150, -1 - road_width / 2), (350, -1 - road_width / 2)])}],
        "entrances": [{"ref": "G1", "kind": "vehicle", "width_m": gate_width, "geometry": Point(10, 0)}],
    }
    base.update(layers)
    ctxs = build_contexts({k: _frame(v, angle=angle, gcj=gcj) for k, v in base.items()}, profile="cn-gb")
    return ctxs[0]


def turn_findings(ctx: CheckContext) -> gpd.GeoDataFrame:
    out = lanes.check(ctx)
    return out[out["rule"] == "LANE-TURN"]


def fillet(x: float, y: float, dx: float, dy: float, radius: float) -> object:
    square = box(min(x, x + dx * radius), min(y, y + dy * radius), max(x, x + dx * radius), max(y, y + dy * radius))
    return square.difference(Point(x + dx * radius, y + dy * radius).buffer(radius, quad_segs=16))


def corner_lane(*, fillet_r: float = 0.0, chamfer: float = 0.0, width: float = 4.0) -> object:
    """A 4 m lane north from the gate, turning 90° east at y = 60 (inner corner at (12, 56))."""
    x0, x1 = 10 - width / 2, 10 + width / 2
    parts = [box(x0, 0, x1, 60), box(x0, 60 - width, 150, 60)]
    if fillet_r:
        parts.append(fillet(x1, 60 - width, 1, -1, fillet_r))
    if chamfer:
        parts.append(shapely.Polygon([(x1, 60 - width - chamfer), (x1, 60 - width), (x1 + chamfer, 60 - width)]))
    return shapely.union_all(parts)


def lane_rows(geom: object) -> list[dict]:
    return [{"ref": "L1", "geometry": geom}]


CASES = [
    ({}, True), ({"fillet_r": 8.5}, True), ({"fillet_r": 9.5}, False), ({"chamfer": 3.0}, True),
    ({"chamfer": 10.0}, False),
]


@pytest.mark.parametrize(("shape", "fails"), CASES, ids=lambda v: str(v))
@pytest.mark.parametrize(("angle", "gcj"), [(0.0, False), (33.0, False), (0.0, True), (-71.0, True)],
                         ids=["plain", "rotated", "gcj02", "rotated-gcj02"])
def test_a_90_degree_corner_of_4_m_lanes(shape, fails, angle, gcj):
    got = turn_findings(context(fire_lanes=lane_rows(corner_lane(**shape)), angle=angle, gcj=gcj))
    assert (not got.empty) is fails
    if fails:
        assert set(got["subject_ref"]) == {"L1"} and set(got["required"]) == {9.0}
        if "fillet_r" in shape:
            # the largest inner radius that fits is the fillet's (the 4 m truck band fills the 4 m lane)
            assert got["measured"].max() == pytest.approx(shape["fillet_r"], abs=0.1)
        if not shape:
            assert got["measured"].max() < 0.1
        ev = got.geometry.iloc[0]
        assert ev.geom_type == "GeometryCollection"  # the corner and the swept band needed


def test_a_wider_lane_lets_the_truck_cut_the_corner():
    # 7 m lanes: a sharp corner still fits a 10.2 m inner radius (the 4 m band swings out across the lane)
    got = turn_findings(context(fire_lanes=lane_rows(corner_lane(width=7.0))))
    assert got.empty
    tall = {"ref": "B1", "height_m": 60.0, "geometry": box(30, 20, 60, 45)}
    got = turn_findings(context(fire_lanes=lane_rows(corner_lane(width=7.0)), buildings=[tall]))
    assert set(got["subject_ref"]) == {"L1"}
    assert set(got["required"]) == {12.0}  # a lane serving a high-rise needs the aerial ladder truck
    assert got["measured"].iloc[0] == pytest.approx(3 / (1 - 2 ** -0.5), abs=0.1)  # 3 m of room each side: 10.24 m
    assert "aerial ladder truck" in got["message_en"].iloc[0]


@pytest.mark.parametrize(("radius", "fails"), [(9.5, True), (12.5, False)])
def test_ladder_trucks_need_12_m_where_the_lane_serves_a_high_rise(radius, fails):
    tall = {"ref": "B1", "height_m": 60.0, "geometry": box(30, 20, 60, 45)}
    got = turn_findings(context(fire_lanes=lane_rows(corner_lane(fillet_r=radius)), buildings=[tall]))
    assert (not got.empty) is fails


@pytest.mark.parametrize(("road_width", "fails"), [(12.0, True), (16.0, False)])
def test_the_entrance_turn_from_the_city_road(road_width, fails):
    # a 4 m gate and a 4 m lane straight north: the turn off the road swings across the carriageway (16 m: 12 m
    # of room beside the truck fits 9 m; 12 m: 8 m of room does not)
    got = turn_findings(context(fire_lanes=lane_rows(box(8, 0, 12, 100)), road_width=road_width, gate_width=4.0))
    assert (not got.empty) is fails
    if fails:
        assert set(got["subject_layer"]) == {"entrances"} and set(got["subject_ref"]) == {"G1"}
        assert got["measured"].max() == pytest.approx(8.0, abs=0.6)


def test_a_failed_turn_into_a_dead_end_names_the_buildings_cut_off():
    trunk = shapely.union_all([box(8, 0, 12, 120)])
    branch = box(12, 80, 100, 84)
    near = {"ref": "B1", "floors": 6, "height_m": 18.0, "geometry": box(60, 90, 90, 100)}
    beside_trunk = {"ref": "B2", "floors": 6, "height_m": 18.0, "geometry": box(20, 20, 40, 40)}
    ctx = context(fire_lanes=[{"ref": "L1", "geometry": trunk}, {"ref": "L2", "geometry": branch}],
                  buildings=[near, beside_trunk])
    got = turn_findings(ctx)
    assert set(got["subject_ref"]) == {"L2"}  # the dead end turned into, not the trunk
    assert all(refs == ["B1"] for refs in got["other_refs"])
    assert "buildings cut off: B1" in got["message_en"].iloc[0]


def test_a_lane_failing_at_two_corners_is_one_finding_at_its_tightest_corner():
    # a Z of 4 m lanes: sharp at (12, 56), an 8.5 m fillet at (76, 60); both fall short of 9 m. One hazard (one
    # ledger key), measured where the shortfall is largest, with both corners and their bands as evidence
    z = shapely.union_all([box(8, 0, 12, 60), box(8, 56, 80, 60), box(76, 56, 80, 150),
                           fillet(76, 60, -1, 1, 8.5)])
    got = turn_findings(context(fire_lanes=lane_rows(z)))
    assert len(got) == 1 and got["key"].is_unique
    assert got["measured"].iloc[0] < 0.1
    assert "2 corners fall short; this is the tightest" in got["message_en"].iloc[0]
    assert "共 2 处转弯不足" in got["message"].iloc[0]
    assert len(got.geometry.iloc[0].geoms) == 4  # each corner's apex and swept band
    # one corner alone stays one plain finding
    single = turn_findings(context(fire_lanes=lane_rows(corner_lane())))
    assert len(single) == 1 and "corners fall short" not in single["message_en"].iloc[0]


def test_straight_lanes_and_turnaround_squares_are_no_turns():
    # a dead end ending in a 14 m square: the square's corners beside the lane are no turn a truck makes
    geom = shapely.union_all([box(8, 0, 12, 80), box(3, 80, 17, 94)])
    assert turn_findings(context(fire_lanes=lane_rows(geom))).empty


def test_find_corners_groups_a_fillet_into_one_corner():
    surface = corner_lane(fillet_r=9.5)
    c = turns.find_corners(surface)
    assert len(c) == 1
    assert np.degrees(abs(c.turn[0])) == pytest.approx(90.0, abs=0.5)
    assert c.w1[0] == pytest.approx(4.0, abs=0.1) and c.w2[0] == pytest.approx(4.0, abs=0.1)
    r = turns.largest_radius(c, surface, np.array([20.0]), 4.0)
    assert r[0] == pytest.approx(9.5, abs=0.1)


def test_largest_radius_is_the_largest_grid_radius_some_placement_fits(monkeypatch):
    # each placement is bisected only above what the placements before it fit: the answer is still the largest
    # radius of the bisection's grid at which some placement fits, found here by trying every radius of a coarse
    # grid; on two of the chamfered outer corners the widest swing (the first placement) hits the chamfer and
    # another placement wins
    monkeypatch.setattr(turns, "BISECT_STEPS", 7)
    def chamfered(width: float, cut: float) -> object:
        lane = shapely.union_all([box(0, 0, width, 80), box(0, 80 - width, 90, 80)])
        return lane.difference(Polygon([(0, 80), (0, 80 - cut), (cut, 80)]))
    surfaces = np.array([corner_lane(), corner_lane(width=7.5, chamfer=3.0), corner_lane(fillet_r=6.0),
                         chamfered(12.0, 10.0), chamfered(14.0, 12.0), chamfered(10.0, 8.0)], dtype=object)
    c = turns.find_corners(surfaces)
    assert len(c) == len(surfaces)
    grown = shapely.buffer(turns.simplified(surfaces), turns.DEPTH_TOL_M, join_style="mitre")[c.part]
    got = turns.largest_radius(c, grown, np.full(len(c), 12.0), 4.0)
    grid = 2 ** turns.BISECT_STEPS
    every = np.repeat(np.arange(len(c)), grid)
    ok = turns.fits(c.take(every), grown[every], np.tile(12.0 * np.arange(grid) / grid, len(c)), 4.0)
    ok = ok.reshape(len(c), grid)
    step = np.where(ok.any(axis=1), grid - 1 - np.argmax(ok[:, ::-1], axis=1), -1)
    assert got.tolist() == np.where(step >= 0, np.floor(12.0 * step / grid * 100) / 100, 0.0).tolist()
    assert got[0] == 0.0 and 5.9 <= got[2] <= 6.0 and (got[3:] > 11.0).all()
    widest = turns.swept_bands(c, got, 4.0, turns.PLACEMENTS[0])
    assert not shapely.covers(grown[3:5], widest[3:5]).any()  # (another placement fits there)


def test_band_boxes_hold_every_band_a_corner_is_tried_with():
    # the placements and the bisection judge a corner inside its box only: every band they can draw (any
    # placement, any inner radius up to the need) lies in it, on corners of several angles and leg widths
    surfaces = [corner_lane(width=4.0), corner_lane(width=7.5, chamfer=3.0), corner_lane(fillet_r=6.0),
                shapely.union_all([box(0, 0, 6, 80), shapely.affinity.rotate(box(0, 74, 90, 80), 35, origin=(3, 77))])]
    c = turns.find_corners(np.array(surfaces, dtype=object))
    assert len(c) >= 4
    upper = np.full(len(c), 12.0)
    boxes = turns.band_boxes(c, upper, 4.0)
    for placement in turns.PLACEMENTS:
        for r in np.linspace(0.0, 12.0, 25):
            bands = turns.swept_bands(c, np.full(len(c), r), 4.0, placement)
            assert shapely.contains(boxes, bands).all()


def test_leg_probes_find_the_first_crossing_of_their_own_surface():
    # the boundary index holds runs of segments (arcs of many short ones, long straight edges alone): each probe
    # still gets the distance to its first crossing of its own surface's boundary, as GEOS intersects the line
    rng = np.random.default_rng(7)
    surfaces = np.array([
        shapely.union_all([box(0, 0, 6, 80), box(0, 74, 90, 80)]).buffer(3.0, quad_segs=24).buffer(-2.0),
        Point(200, 40).buffer(30, quad_segs=64).difference(Point(200, 40).buffer(22, quad_segs=64)),
        box(300, 0, 420, 9).union(box(330, 0, 339, 70)),
    ], dtype=object)
    simple = turns.simplified(surfaces)
    part = rng.integers(0, len(simple), 6000)
    lo, hi = shapely.bounds(simple)[part, :2], shapely.bounds(simple)[part, 2:]
    start = lo + rng.random((len(part), 2)) * (hi - lo)
    inside = shapely.contains_xy(simple[part], start[:, 0], start[:, 1])
    part, start = part[inside], start[inside]
    angle = rng.random(len(part)) * 2 * np.pi
    normal = np.column_stack([np.cos(angle), np.sin(angle)])
    limit = rng.choice([1.0, 12.0, 40.0, 80.0], len(part))
    got = turns._Boundaries(simple, np.arange(len(simple))).probe(start, normal, part, limit)
    reach = np.minimum(limit, turns.PROBE_REACH_M)
    ray = shapely.linestrings(np.stack([start + 0.01 * normal, start + reach[:, None] * normal], axis=1))
    hits = shapely.intersection(ray, shapely.boundary(simple[part]))
    first = np.where(shapely.is_empty(hits), np.inf, shapely.distance(shapely.points(start), hits))
    assert len(part) > 1000 and np.isfinite(got).sum() > 500 and np.isinf(got).sum() > 50
    assert np.allclose(got, first, rtol=0, atol=1e-6)
    # a leg's three probes (one normal, part and limit, starts a metre apart along the leg) looked for together
    n = len(part)
    along = np.column_stack([-normal[:, 1], normal[:, 0]])
    starts = np.vstack([start + j * along for j in range(3)])
    rows = (np.tile(normal, (3, 1)), np.tile(part, 3), np.tile(limit, 3))
    edges = turns._Boundaries(simple, np.arange(len(simple)))
    assert np.array_equal(edges.probe(starts, *rows, bundle=n), edges.probe(starts, *rows))


@pytest.mark.parametrize("second_gate", [False, True])
def test_an_entrance_turn_cuts_off_the_compound_unless_another_gate_is_passable(second_gate):
    # G1's turn off a 12 m road falls short (as above); the compound's buildings by its lanes lose their access,
    # unless a second vehicle gate is passable: G2's driveway meets the road in corners that are no passages (2 m
    # legs of an 8 m driveway), and a driveway whose corners are no passages is passable
    gates = [{"ref": "G1", "kind": "vehicle", "width_m": 4.0, "geometry": Point(10, 0)}]
    if second_gate:
        gates.append({"ref": "G2", "kind": "vehicle", "width_m": 8.0, "geometry": Point(150, 0)})
    building = {"ref": "B1", "floors": 6, "height_m": 18.0, "geometry": box(20, 40, 40, 60)}
    got = turn_findings(context(fire_lanes=lane_rows(box(8, 0, 12, 100)), road_width=12.0, entrances=gates,
                                buildings=[building]))
    assert list(got["subject_ref"]) == ["G1"]
    assert got["other_refs"].iloc[0] == ([] if second_gate else ["B1"])


def test_a_long_curve_is_cut_into_corners_of_at_most_150_degrees_as_a_walk_along_it_would():
    # a half-disc hole (a drop-off loop around a planter): its 60 m straight side starts the run, which turns
    # 360 degrees in all; walking along it, a new corner starts where the next vertex would take the sum past 150
    for quad_segs in (3, 8, 16, 45):
        disc = Point(50, 50).buffer(30, quad_segs=quad_segs)
        hole = disc.intersection(box(0, 50, 100, 100))
        surface = turns.simplified(np.array([box(0, 0, 100, 100).difference(hole)], dtype=object))
        xy, ring = shapely.get_coordinates(shapely.get_rings(shapely.get_parts(surface)), return_index=True)
        last = np.r_[ring[1:] != ring[:-1], True]
        xy, ring = xy[~last], ring[~last]
        first, _, member, run = turns._corner_runs(xy, ring)
        prev, nxt = turns._ring_neighbours(ring)
        into, out = xy - xy[prev], xy[nxt] - xy
        turn = np.degrees(np.abs(np.arctan2(into[:, 0] * out[:, 1] - into[:, 1] * out[:, 0], (into * out).sum(1))))
        walk = 0.0
        pieces: list[list[np.integer]] = [[]]
        for v in member:
            if walk > 0 and walk + turn[v] > turns.TURN_MAX_DEG:
                walk, pieces = 0.0, [*pieces, []]
            walk += turn[v]
            pieces[-1].append(v)
        assert len(pieces) >= 3
        assert [list(member[run == r]) for r in range(run.max() + 1)] == pieces


def test_a_band_surely_out_leaves_more_than_the_tolerance_outside():
    # the cheap test before the overlay never calls a band out that the overlay would let fit
    surfaces = [corner_lane(), corner_lane(fillet_r=9.5), corner_lane(width=7.5, chamfer=3.0), corner_lane(width=6.0),
                shapely.union_all([box(0, 0, 6, 80), shapely.affinity.rotate(box(0, 74, 90, 80), 35, origin=(3, 77))])]
    c = turns.find_corners(np.array(surfaces, dtype=object))
    grown = shapely.buffer(np.array(surfaces, dtype=object)[c.part], turns.DEPTH_TOL_M, join_style="mitre")
    shapely.prepare(grown)
    said = 0
    for placement in turns.PLACEMENTS:
        for r in np.linspace(0.0, 15.0, 31):
            radius = np.full(len(c), r)
            out = turns._surely_out(c, radius, 4.0, placement, grown)
            outside = shapely.area(shapely.difference(turns.swept_bands(c, radius, 4.0, placement), grown))
            assert (outside[out] > turns.AREA_TOL_M2).all()
            said += int(out.sum())
    assert said > 50


def test_surfaces_grown_in_one_buffer_are_the_union_grown():
    # the drivable surfaces are each row's pieces buffered as one collection: the same surface as the pieces'
    # union grown by the seam, with lanes that meet only up to floating point (rotated, shifted into UTM),
    # an overlapping driveway, multipolygon pieces, rows given out of order and a row with no piece
    rng = np.random.default_rng(3)
    ring = [box(0, 0, 50, 4), box(0, 4, 4, 40), box(0, 36, 50, 40), box(46, 4, 50, 36), box(20, -12, 28, 1),
            shapely.MultiPolygon([box(60, 0, 64, 30), box(64, 26, 90, 30)])]
    pieces, rows = [], []
    for k in np.setdiff1d(np.arange(40), [7]):  # row 7 has no piece
        angle = rng.random() * 90
        for g in ring:
            pieces.append(shapely.affinity.translate(shapely.affinity.rotate(g, angle, origin=(0, 0)),
                                                     X0 + 300 * k, Y0))
            rows.append(k)
    order = rng.permutation(len(pieces))
    parts, row = np.array(pieces, dtype=object)[order], np.array(rows)[order]
    got = gm.grown_union_rows(parts, row, 40, turns.SEAM_M, join_style="mitre")
    want = shapely.buffer(gm.union_rows(parts, row, 40), turns.SEAM_M, join_style="mitre")
    assert list(np.flatnonzero(shapely.is_empty(got))) == [7]
    full = ~shapely.is_empty(got)
    # (micrometres apart: the union falls back to snap rounding to 1e-5 m on some rows here)
    assert np.max(shapely.hausdorff_distance(got[full], want[full])) < 1e-4
    # seams closed: the ring is one polygon around its yard, the two-part piece a second polygon
    assert (shapely.get_num_geometries(got[full]) == 2).all()
    assert shapely.get_num_interior_rings(shapely.get_parts(got[full])).sum() == 39


def test_surfaces_are_simplified_as_the_topology_preserving_simplifier_does():
    # curved lanes with and without millimetres of drawing noise, some with a notch a few millimetres deep beside
    # a thin slot (where Douglas-Peucker's flattening would cross the slot and the topology-preserving simplifier
    # refuses it): the surfaces come out exactly as the topology-preserving simplifier gives them
    rng = np.random.default_rng(5)
    drawn = []
    for k in range(60):
        xy = shapely.get_coordinates(Point(0, 0).buffer(30, quad_segs=int(rng.integers(4, 40))))[:-1]
        if k % 3:
            xy = xy + rng.normal(0, 0.004, xy.shape) * (rng.random(len(xy)) < 0.3)[:, None]
        g = shapely.Polygon(xy).difference(Point(0, 0).buffer(22, quad_segs=16))
        if k % 3 == 2:
            slot = [(x, 29.96 - 0.006 * (i % 2)) for i, x in enumerate(np.linspace(-5, 5, 11))] + [(5, 29.9), (-5, 29.9)]
            g = g.difference(shapely.Polygon(slot))
        drawn.append(shapely.affinity.translate(g, X0 + 100 * k, Y0))
    # and surfaces of two parts, where only the second part has anything to simplify
    drawn += [shapely.MultiPolygon([shapely.affinity.translate(drawn[k], 0, 200), drawn[k + 1]])
              for k in range(0, 9, 3)]
    shapes = np.array(drawn, dtype=object)
    want = shapely.orient_polygons(shapely.simplify(shapes, turns.SIMPLIFY_M, preserve_topology=True))
    assert shapely.equals_exact(turns.simplified(shapes), want, 0.0).all()
    # (both cases occur: surfaces with nothing to simplify, and some Douglas-Peucker alone would get wrong)
    assert shapely.equals_exact(want, shapely.orient_polygons(shapes), 0.0).sum() >= 20
    dp = shapely.orient_polygons(shapely.simplify(shapes, turns.SIMPLIFY_M, preserve_topology=False))
    assert (~shapely.equals_exact(dp, want, 0.0)).sum() >= 3


def test_the_corners_that_fall_short_are_matched_to_their_own_lanes_among_many_that_pass():
    # five 7 m lanes turning a sharp corner (each fits 10.2 m) and, drawn last, two 4 m ones (fitting nothing), one
    # beside a high-rise (the first): a finding on each of those two, the aerial ladder truck's beside the high-rise
    rows = [{"ref": f"W{k}", "geometry": shapely.affinity.translate(corner_lane(width=7.0), 200 * k, 0)}
            for k in range(5)]
    rows += [{"ref": f"N{k}", "geometry": shapely.affinity.translate(corner_lane(), 1000 + 200 * k, 0)}
             for k in (1, 2)]
    tall = {"ref": "B1", "height_m": 60.0, "geometry": box(1230, 20, 1260, 45)}
    got = turn_findings(context(compounds=[{"ref": "C1", "geometry": box(-50, 0, 1450, 250)}], fire_lanes=rows,
                                buildings=[tall]))
    assert dict(zip(got["subject_ref"], got["required"], strict=True)) == {"N1": 12.0, "N2": 9.0}
