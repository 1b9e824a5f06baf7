"""The rule engine's fast paths give what the slow paths give: COPY reads, the pre-started pool, certificates."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from runner_support import district, load
from shapely.geometry import LineString, Point, Polygon, box
from shapely.ops import substring

from gis.checks import geometry as gm
from gis.checks.context import CONTEXT_LAYERS
from gis.checks.parking import _substrings
from gis.checks.profiles import load_profile
from gis.checks.runner import SKIPPED_COLUMNS, check_columns, read_check_layers, read_scope, run_checks
from gis.store import read_layer

X0, Y0 = 360_000.0, 3_300_000.0


def _odd_rows() -> dict[str, gpd.GeoDataFrame]:
    """Features whose values exercise the types: gaps in integers, booleans and text, quotes and commas."""
    def frame(rows: list[dict]) -> gpd.GeoDataFrame:
        geoms = [shapely.affinity.translate(r.pop("geometry"), X0, Y0) for r in rows]
        return gpd.GeoDataFrame(rows, geometry=geoms, crs=32651).to_crs(4490)

    return {
        "buildings": frame([
            {"ref": 'B "1", east', "compound_ref": "C1", "floors": 6, "height_m": None, "firewall": True,
             "noncombustible_walls": None, "name": "", "use": None, "geometry": box(30, 40, 60, 55)},
            {"ref": "B9", "compound_ref": None, "floors": None, "height_m": 18.5, "firewall": None,
             "noncombustible_walls": False, "name": "2号楼\t", "use": "commercial", "geometry": box(150, 40, 180, 55)},
        ]),
        "obstructions": frame([
            {"ref": "O1", "kind": "bollard", "size_m": None, "bottom_m": 0.0, "geometry": Point(10, 70)},
            {"ref": "O2", "kind": "overhead_line", "bottom_m": 3.5, "geometry": LineString([(0, 80), (20, 80)])},
        ]),
    }


@pytest.mark.db
def test_copy_reads_give_the_store_reads_of_the_checked_columns(db):
    load(db, district())
    load(db, _odd_rows())
    fast = read_check_layers(db, CONTEXT_LAYERS)
    for name in CONTEXT_LAYERS:
        slow = read_layer(name, engine=db)
        cols = check_columns(name)
        assert not set(cols) & SKIPPED_COLUMNS and "id" in cols
        assert list(fast[name].columns) == [*cols, "geometry"]
        assert fast[name].crs == slow.crs and list(fast[name].index) == list(slow.index)
        assert fast[name].geometry.geom_equals_exact(slow.geometry, 0).all()
        # the same values (an all-empty column may come back as NaN instead of None: both read as missing)
        pd.testing.assert_frame_equal(fast[name][cols].astype(object).where(fast[name][cols].notna(), None),
                                      slow[cols].astype(object).where(slow[cols].notna(), None),
                                      check_dtype=False, check_index_type=False)
    b = fast["buildings"].set_index("ref")
    assert b.loc['B "1", east', "firewall"] is True and b.loc["B9", "firewall"] is None
    assert b.loc['B "1", east', "name"] == "" and b.loc["B9", "name"] == "2号楼\t"
    assert pd.isna(b.loc['B "1", east', "use"]) and pd.isna(b.loc["B9", "floors"])


@pytest.mark.db
def test_scoped_reads_bind_lists_and_empty_scopes_read_nothing(db):
    load(db, district())

    layers, refs = read_scope(engine=db, compound="C1", profile=load_profile("cn-gb"))
    assert refs == ["C1"] and set(layers["fire_lanes"]["ref"]) == {"L1", "L2"}  # L2 is within C1's margin
    layers, refs = read_scope(engine=db, compound="nope", profile=load_profile("cn-gb"))
    assert refs == [] and all(len(f) == 0 for f in layers.values())
    assert list(layers["roads"].columns) == [*check_columns("roads"), "geometry"]


@pytest.mark.db
def test_a_run_on_the_pre_started_pool_finds_what_a_serial_run_finds(db):
    load(db, district())
    serial = run_checks(engine=db, ledger=False)
    pooled = run_checks(engine=db, ledger=False, workers=2, grouped=False)
    assert list(serial.findings["key"]) == list(pooled.findings["key"])
    assert serial.findings["measured"].tolist() == pooled.findings["measured"].tolist()
    assert ("LANE-CLEAR", "L1") in set(zip(pooled.findings["rule"], pooled.findings["subject_ref"], strict=True))
    again = run_checks(engine=db, ledger=False, workers=2, grouped=False)  # the pool is gone: a new one starts
    assert list(again.findings["key"]) == list(serial.findings["key"])


def _shapes() -> list[Polygon]:
    rng = np.random.default_rng(7)
    out = []
    for _ in range(60):
        w, h = rng.uniform(8.0, 30.0), rng.uniform(8.0, 14.0)
        g = box(0, 0, w, h)
        if rng.random() < 0.5:  # an L-shape
            g = g.union(box(0, 0, rng.uniform(4.0, 12.0), h + rng.uniform(2.0, 20.0)))
        if rng.random() < 0.3:  # a nick in the long side
            g = g.difference(box(w / 2, h - rng.uniform(0.1, 3.0), w / 2 + 1.0, h + 1.0))
        out.append(shapely.affinity.rotate(g, rng.uniform(0.0, 180.0), origin=(0, 0)))
    return out


@pytest.mark.parametrize("length, width", [(15.0, 10.0), (20.0, 10.0), (12.0, 12.0)])
def test_a_rectangle_certificate_is_never_wrong(length, width):
    shapes = np.array(_shapes(), dtype=object)
    sure = gm.rectangles_surely_fit(shapes, length, width)
    exact = np.array([gm.fits_rectangle(g, length, width) is not None for g in shapes])
    assert not (sure & ~exact).any()
    assert sure.any() and (~sure & exact).any()  # L-shapes whose arm holds it are left to the exact search


def test_reprojected_rectangles_with_room_are_certified():
    # a 38 x 11 m area drawn in lon/lat and brought back: not exactly a rectangle any more
    area = gpd.GeoSeries([shapely.affinity.rotate(box(X0, Y0, X0 + 38.0, Y0 + 11.0), 3.6)], crs=32651)
    back = np.asarray(area.to_crs(4490).to_crs(32651).values, dtype=object)
    assert gm.rectangles_surely_fit(back, 20.0, 10.0)[0] and gm.rectangles_surely_fit(back, 15.0, 10.0)[0]
    assert not gm.rectangles_surely_fit(back, 20.0, 11.0)[0]


def test_a_certificate_needs_the_margin():
    g = np.array([shapely.affinity.rotate(box(0, 0, 15.0, 10.0), 33.0)], dtype=object)
    assert not gm.rectangles_surely_fit(g, 15.0, 10.0)[0]  # it fits exactly, but with no room to vouch for it
    assert gm.fits_rectangle(g[0], 15.0, 10.0) is not None
    assert gm.rectangles_surely_fit(g, 14.9, 9.9)[0]


@pytest.mark.parametrize("angle", [0.0, 17.0, 45.0, 90.0, 133.0])
@pytest.mark.parametrize("length", [0.5, 4.0, 9.5, 30.0])
def test_a_convex_polygon_is_eroded_by_a_segment_as_the_general_construction_erodes_it(monkeypatch, angle,
                                                                                          length):
    hexagon = shapely.Polygon([(0, 0), (12, -1), (20, 4), (19, 11), (6, 13), (-2, 6)])
    lane = shapely.affinity.rotate(box(0, 0, 40, 4.5), angle, origin=(0, 0))
    for shape in (hexagon, lane, shapely.MultiPolygon([hexagon])):
        for axis in (0, 1):
            fast = gm.erode_segment(shape, length, axis=axis)
            with monkeypatch.context() as m:
                m.setattr(gm, "_convex", lambda g: False)
                general = gm.erode_segment(shape, length, axis=axis)
            assert fast.is_empty == general.is_empty
            assert shapely.symmetric_difference(fast, general).area < 1e-6 * max(shape.area, 1.0)


def test_a_shallow_dent_takes_the_general_construction():
    dented = shapely.Polygon([(0, 0), (10, 0), (10, 4), (5, 3.999), (0, 4)])
    assert not gm._convex(dented)
    assert gm._convex(shapely.Polygon([(0, 0), (5, 0), (10, 0), (10, 4), (0, 4)]))  # a collinear vertex is convex
    assert not gm._convex(box(0, 0, 10, 10).difference(box(4, 4, 6, 6)))  # a hole


def test_substrings_of_many_lines_are_shapelys_substrings():
    rng = np.random.default_rng(7)
    lines = np.array([LineString(np.cumsum(rng.normal(0, 20, (int(rng.integers(2, 9)), 2)), axis=0))
                      for _ in range(200)] + [LineString([(0, 0), (0, 0.5), (10, 0.5), (10, 0.5), (30, 0)])],
                     dtype=object)
    length = shapely.length(lines)
    a = rng.uniform(0, 1, len(lines)) * length
    b = np.minimum(a + rng.uniform(0.01, 1, len(lines)) * length, length)
    b[-1], a[-1] = length[-1], 0.5  # to the end, from a vertex-free start
    got = _substrings(lines, a, b)
    want = [substring(g, s, e) for g, s, e in zip(lines, a, b, strict=True)]
    assert all(shapely.equals_exact(x, y, 1e-9) for x, y in zip(got, want, strict=True))
    assert len(_substrings(lines[:0], a[:0], b[:0])) == 0


def test_the_nearest_within_a_distance_is_the_trees_nearest():
    rng = np.random.default_rng(11)
    lo = rng.uniform(0, 500, (2, 300))
    boxes = shapely.box(*lo, *(lo + rng.uniform(1, 20, (2, 300))))
    points = shapely.points(rng.uniform(-50, 550, (2000, 2)))
    tree = shapely.STRtree(boxes)
    got_i, got_j = gm.nearest_within(points, tree, 30.0)
    want_i, want_j = tree.query_nearest(points, max_distance=30.0, all_matches=False)
    assert np.array_equal(got_i, want_i)  # the same points have a box that near
    assert np.allclose(shapely.distance(points[got_i], boxes[got_j]), shapely.distance(points[want_i], boxes[want_j]),
                       rtol=0, atol=0)
    # ties go to the smaller tree index; nothing beyond the distance
    twins = np.array([box(0, 0, 1, 1), box(3, 0, 4, 1), box(100, 0, 101, 1)], dtype=object)
    i, j = gm.nearest_within(shapely.points([[2, 0.5], [50, 0.5]]), shapely.STRtree(twins), 10.0)
    assert i.tolist() == [0] and j.tolist() == [0]
