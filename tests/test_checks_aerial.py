"""Aerial operation area rules on hand-made compounds, on both sides of every threshold (GB 50016 7.2.1 / 7.2.2)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, Point, box

from gis.checks import aerial
from gis.checks import geometry as gm
from gis.checks.context import CheckContext, build_contexts

X0, Y0 = 360_000.0, 3_300_000.0


def frame(rows: list[dict]) -> gpd.GeoDataFrame:
    rows = [dict(r) for r in rows]
    geoms = [shapely.affinity.translate(r.pop("geometry"), X0, Y0) for r in rows]
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=32651).to_crs(4490)


#: A fire lane along the south of the compound (y 0..6); buildings stand north of it.
LANE = {"ref": "L1", "kind": "through", "geometry": box(0, 0, 300, 6)}


def context(**layers: list[dict]) -> CheckContext:
    base = {"compounds": [{"ref": "C1", "geometry": box(0, 0, 300, 200)}], "fire_lanes": [LANE]}
    base.update(layers)
    ctxs = build_contexts({k: frame(v) for k, v in base.items()}, profile="cn-gb")
    return ctxs[0]


def findings(ctx: CheckContext, rule: str) -> gpd.GeoDataFrame:
    out = aerial.check(ctx)
    return out[out["rule"] == rule]


def fails(f: gpd.GeoDataFrame) -> set[str]:
    return set(f.loc[f["verdict"] == "fail", "subject_ref"])


def building(ref: str = "B1", *, height: float | None = 40.0, x0: float = 20, length: float = 30,
             y0: float = 22, depth: float = 15, **kw) -> dict:
    row = {"ref": ref, "geometry": box(x0, y0, x0 + length, y0 + depth), **kw}
    if height is not None:
        row["height_m"] = height
    return row


def area(ref: str, geom, building_ref: str | None = "B1", **kw) -> dict:
    return {"ref": ref, "building_ref": building_ref, "geometry": geom, **kw}


# --- AERIAL-SIZE -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("length", "fails_"), [(14.0, True), (15.0, False), (14.9, True)])
def test_size_15_by_10(length, fails_):
    ctx = context(buildings=[building()], aerial_areas=[area("A1", box(20, 6, 20 + length, 16))])
    got = findings(ctx, "AERIAL-SIZE")
    assert (fails(got) == {"A1"}) is fails_
    if fails_:
        assert got["measured"].iloc[0] == pytest.approx(length, abs=0.01)
        assert got["required"].iloc[0] == 15.0


def test_width_just_under_10_m_fails():
    ctx = context(buildings=[building()], aerial_areas=[area("A1", box(20, 6, 50, 15.9))])
    assert fails(findings(ctx, "AERIAL-SIZE")) == {"A1"}


def test_l_shape_with_a_big_bounding_box_is_too_small():
    # bbox 20 x 20 m, but each arm only 6 m wide: no 15 x 10 rectangle fits inside
    geom = shapely.union_all([box(20, 6, 40, 12), box(20, 6, 26, 26)])
    ctx = context(buildings=[building(x0=30, y0=30)], aerial_areas=[area("A1", geom)])
    got = findings(ctx, "AERIAL-SIZE")
    assert fails(got) == {"A1"}
    assert got["measured"].iloc[0] < 15.0


def test_l_shape_that_does_hold_the_rectangle_passes():
    geom = shapely.union_all([box(20, 6, 40, 16), box(20, 6, 26, 26)])
    ctx = context(buildings=[building()], aerial_areas=[area("A1", geom)])
    assert findings(ctx, "AERIAL-SIZE").empty


def test_rotated_area_is_measured_in_its_own_orientation():
    geom = shapely.affinity.rotate(box(0, 0, 15.05, 10.05), 33, origin=(0, 0))
    geom = shapely.affinity.translate(geom, 100, 6 - geom.bounds[1])
    ctx = context(buildings=[building(x0=80, y0=30)], aerial_areas=[area("A1", geom)])
    assert findings(ctx, "AERIAL-SIZE").empty


@pytest.mark.parametrize(("length", "height", "verdict"), [
    (15.0, 60.0, "fail"), (20.0, 60.0, None), (15.0, 50.0, None), (15.0, None, "cannot_judge"),
])
def test_buildings_over_50_m_need_20_by_10(length, height, verdict):
    ctx = context(buildings=[building(height=height)], aerial_areas=[area("A1", box(20, 6, 20 + length, 16))])
    got = findings(ctx, "AERIAL-SIZE")
    assert list(got["verdict"]) == ([verdict] if verdict else [])
    if verdict == "fail":
        assert got["required"].iloc[0] == 20.0
    if verdict == "cannot_judge":
        assert "neither height nor floors" in got["message_en"].iloc[0]


def test_largest_inscribed_rectangle_helpers():
    r = box(0, 0, 15, 10)
    assert gm.max_length_at_width(r, 10).length == pytest.approx(15.0)
    assert gm.fits_rectangle(r, 15, 10) is not None
    assert gm.fits_rectangle(box(0, 0, 14, 10), 15, 10) is None
    sq = gm.largest_inscribed_square(shapely.union_all([box(0, 0, 50, 6), box(50, -3, 61.9, 8.9)]))
    assert sq.length == pytest.approx(11.9, abs=0.01)
    assert sq.rectangle is not None
    assert sq.rectangle.within(shapely.union_all([box(0, 0, 50, 6), box(50, -3, 61.9, 8.9)]).buffer(1e-6))


# --- AERIAL-DISTANCE -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("gap", "verdict", "strength"), [
    (4.5, "fail", "advisory"), (5.5, None, None), (9.5, None, None), (10.5, "fail", "mandatory"),
])
def test_distance_to_the_wall(gap, verdict, strength):
    # area y 6..16; the building's wall at 16 + gap
    ctx = context(buildings=[building(y0=16 + gap)], aerial_areas=[area("A1", box(20, 6, 50, 16))])
    got = findings(ctx, "AERIAL-DISTANCE")
    assert list(got["verdict"]) == ([verdict] if verdict else [])
    if verdict:
        assert got["strength"].iloc[0] == strength
        assert got["measured"].iloc[0] == pytest.approx(gap, abs=0.01)
        assert got["other_refs"].iloc[0] == ["B1"]
        assert got.to_crs(32651).geometry.iloc[0].length == pytest.approx(gap, abs=0.01)


def test_area_without_its_building_cannot_be_judged():
    ctx = context(buildings=[building()], aerial_areas=[area("A1", box(20, 6, 50, 16), building_ref=None),
                                                        area("A2", box(60, 6, 90, 16), building_ref="B9")])
    got = findings(ctx, "AERIAL-DISTANCE")
    assert set(got["verdict"]) == {"cannot_judge"}
    assert set(got["subject_ref"]) == {"A1", "A2"}
    assert "B9 not found" in " ".join(got["message_en"])


# --- AERIAL-OBSTRUCTED -----------------------------------------------------------------------------------------


def test_obstructions_inside_or_between_fail_those_beside_do_not():
    base = {"buildings": [building()], "aerial_areas": [area("A1", box(20, 6, 50, 16))]}
    inside = context(**base, obstructions=[{"ref": "T1", "kind": "tree", "geometry": Point(30, 10)}])
    between = context(**base, obstructions=[{"ref": "T2", "kind": "tree", "geometry": Point(35, 20)}])
    beside = context(**base, obstructions=[{"ref": "T3", "kind": "tree", "geometry": Point(70, 20)}])
    line = context(**base, obstructions=[{"ref": "W1", "kind": "overhead_line", "bottom_m": 8.0,
                                          "geometry": LineString([(10, 18), (60, 18)])}])
    assert fails(findings(inside, "AERIAL-OBSTRUCTED")) == {"A1"}
    got = findings(between, "AERIAL-OBSTRUCTED")
    assert fails(got) == {"A1"} and got["other_refs"].iloc[0] == ["T2"]
    assert got["department"].iloc[0] == "综合执法(绿化)"
    assert findings(beside, "AERIAL-OBSTRUCTED").empty
    assert fails(findings(line, "AERIAL-OBSTRUCTED")) == {"A1"}


def test_parked_vehicles_and_illegal_structures_obstruct():
    ctx = context(buildings=[building()], aerial_areas=[area("A1", box(20, 6, 50, 16))],
                  parking=[{"ref": "P1", "kind": "vehicle", "geometry": box(22, 8, 26.8, 9.8)}],
                  illegal_structures=[{"ref": "W1", "kind": "shed", "geometry": box(40, 12, 44, 15)}])
    got = findings(ctx, "AERIAL-OBSTRUCTED")
    assert fails(got) == {"A1"}
    assert got["other_refs"].iloc[0] == ["P1", "W1"]
    assert "交警/公安" in got["department"].iloc[0]


# --- AERIAL-CONNECTED ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("gap", "fails_"), [(0.0, False), (0.4, False), (0.6, True), (3.0, True)])
def test_area_touches_a_fire_lane(gap, fails_):
    ctx = context(buildings=[building(y0=22 + gap)], aerial_areas=[area("A1", box(20, 6 + gap, 50, 16 + gap))])
    got = findings(ctx, "AERIAL-CONNECTED")
    assert (fails(got) == {"A1"}) is fails_
    if fails_:
        assert got["measured"].iloc[0] == pytest.approx(gap, abs=0.01)


# --- AERIAL-COVERAGE -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("areas", "height", "verdict"), [
    ([(20, 50)], 40.0, None),                 # along the whole 30 m long side
    ([(20, 44)], 40.0, "fail"),               # 24 m of a 30 m long side
    ([(20, 34)], 20.0, None),                 # not a high-rise: no requirement
    ([(20, 34)], None, "cannot_judge"),       # height unknown
])
def test_high_rise_frontage(areas, height, verdict):
    b = building(height=height, x0=20, length=30, y0=22, depth=15)
    rows = [area(f"A{k}", box(x0, 6, x1, 16)) for k, (x0, x1) in enumerate(areas)]
    got = findings(context(buildings=[b], aerial_areas=rows), "AERIAL-COVERAGE")
    assert list(got["verdict"]) == ([verdict] if verdict else [])
    if verdict == "fail":
        assert got["subject_layer"].iloc[0] == "buildings" and got["subject_ref"].iloc[0] == "B1"
        assert got["required"].iloc[0] == pytest.approx(30.0)


@pytest.mark.parametrize(("height", "verdict"), [(40.0, None), (60.0, "fail")])
def test_frontage_with_gaps_counts_only_up_to_50_m(height, verdict):
    # 40 x 15 m building: 25 m along the south side, a 15 m gap, then the whole 15 m east side (total 40 m)
    b = building(height=height, x0=20, length=40, y0=22, depth=15)
    rows = [area("A1", box(20, 6, 45, 16)), area("A2", box(66, 22, 76, 37))]
    got = findings(context(buildings=[b], aerial_areas=rows), "AERIAL-COVERAGE")
    assert list(got["verdict"]) == ([verdict] if verdict else [])
    if verdict:
        assert got["measured"].iloc[0] == pytest.approx(25.0)


def test_frontage_may_turn_a_corner():
    # 30 x 15 m high-rise: 15 m along the long side plus the whole 15 m short side, continuous round the corner
    b = building(height=40.0, x0=20, length=30, y0=22, depth=15)
    rows = [area("A1", shapely.union_all([box(35, 12, 60, 22), box(50, 12, 60, 37)]))]
    assert findings(context(buildings=[b], aerial_areas=rows), "AERIAL-COVERAGE").empty


def test_frontage_runs_helper():
    runs, perimeter, _ = aerial.frontage_runs(box(0, 0, 30, 15),
                                              np.array([box(5, -10, 15, -5), box(18, -8, 40, -3)], dtype=object),
                                              reach=10.0)
    assert perimeter == pytest.approx(90.0)
    got = sorted(round(e - s, 3) for s, e in runs)
    assert got == [10.0, 12.0]
    assert aerial.best_frontage(runs, perimeter, max_gap=None) == pytest.approx(12.0)
    assert aerial.best_frontage(runs, perimeter, max_gap=5.0) == pytest.approx(22.0)


# --- AERIAL-SLOPE ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("slope", "fails_"), [(3.5, True), (2.5, False), (None, False)])
def test_aerial_slope(slope, fails_):
    row = area("A1", box(20, 6, 50, 16))
    if slope is not None:
        row["slope_pct"] = slope
    got = findings(context(buildings=[building()], aerial_areas=[row]), "AERIAL-SLOPE")
    assert (fails(got) == {"A1"}) is fails_
    if fails_:
        assert got["strength"].iloc[0] == "advisory"


def test_a_sound_area_has_no_findings():
    ctx = context(buildings=[building(height=45.0)], aerial_areas=[area("A1", box(18, 6, 52, 16))],
                  obstructions=[{"ref": "T1", "kind": "tree", "geometry": Point(80, 20)}])
    assert aerial.check(ctx).empty
