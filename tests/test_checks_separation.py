"""SEP-BUILDINGS: GB 50016 table 5.2.2 separations, on both sides of every threshold, across compound borders."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import pyproj
import pytest
import shapely

from gis.checks import separation
from gis.checks.context import CheckContext, build_contexts
from gis.checks.profiles import load_profile

CRS = "EPSG:32651"  # UTM 51N: Ningbo / Yinzhou
X0, Y0 = 350_000.0, 3_300_000.0
PROFILE = load_profile("cn-gb")


def rect(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def building(ref: str, x0: float, width: float = 20.0, *, compound: str = "C1", **attrs) -> dict:
    """A 20 x 10 m building whose west wall is at x0 (pairs are laid out along x, walls facing)."""
    return {"ref": ref, "compound_ref": compound, "geometry": rect(x0, 0, x0 + width, 10), **attrs}


def context(*buildings: dict, compound: str = "C1") -> CheckContext:
    frame = gpd.GeoDataFrame(list(buildings), geometry="geometry", crs=CRS)
    return CheckContext(compound_ref=compound, crs=pyproj.CRS(CRS), profile=PROFILE, layers={"buildings": frame})


def pair(gap: float, a: dict | None = None, b: dict | None = None) -> gpd.GeoDataFrame:
    """Findings for building A (west, x 0..20) and building B (east, gap metres from A's east wall)."""
    return separation.check(context(building("A", 0, **(a or {})), building("B", 20 + gap, **(b or {}))))


HIGH: dict[str, Any] = {"height_m": 30.0}
LOW: dict[str, Any] = {"height_m": 12.0}


@pytest.mark.parametrize(("gap", "fails"), [(12.9, True), (13.1, False)])
def test_high_rise_pair_needs_13_m(gap: float, fails: bool) -> None:
    found = pair(gap, HIGH, HIGH)
    assert len(found) == int(fails)
    if fails:
        f = found.iloc[0]
        assert (f.rule, f.verdict, f.subject_ref, f.other_refs) == ("SEP-BUILDINGS", "fail", "A", ["B"])
        assert f.measured == pytest.approx(12.9)
        assert f.required == pytest.approx(13.0)
        assert f.compound_ref == "C1" and f.department == "资源规划/住建" and f.severity > 0
        assert "13 m" in f.message and "12.9 m" in f.message_en


@pytest.mark.parametrize(("gap", "fails"), [(8.9, True), (9.1, False)])
def test_high_rise_and_low_rise_grade_2_need_9_m(gap: float, fails: bool) -> None:
    found = pair(gap, HIGH, LOW)
    assert len(found) == int(fails)
    if fails:
        assert found.iloc[0].required == pytest.approx(9.0)
        assert found.iloc[0].measured == pytest.approx(8.9)


def test_residential_high_rise_starts_above_27_m_other_use_above_24_m() -> None:
    # 26 m: residential is not high-rise (6 m between grade II), a 26 m office block is (9 m to a low-rise)
    assert len(pair(7.0, {"height_m": 26.0}, LOW)) == 0
    found = pair(7.0, {"height_m": 26.0, "use": "commercial"}, LOW)
    assert found.iloc[0].required == pytest.approx(9.0)


def test_unknown_grade_is_taken_as_grade_2_and_grades_3_4_use_their_cells() -> None:
    assert len(pair(5.9, LOW, LOW)) == 1 and len(pair(6.1, LOW, LOW)) == 0
    found = pair(9.9, {**LOW, "fire_resistance_grade": "4"}, {**LOW, "fire_resistance_grade": "3"})
    assert found.iloc[0].required == pytest.approx(10.0)
    assert len(pair(10.1, {**LOW, "fire_resistance_grade": "4"}, {**LOW, "fire_resistance_grade": "3"})) == 0


@pytest.mark.parametrize(("gap", "fails"), [(9.7, True), (9.8, False)])
def test_non_combustible_facing_walls_cut_the_distance_by_a_quarter(gap: float, fails: bool) -> None:
    walls = {**HIGH, "noncombustible_walls": True}
    found = pair(gap, walls, walls)
    assert len(found) == int(fails)
    if fails:
        assert found.iloc[0].required == pytest.approx(13.0 * 0.75)
        assert "25%" in found.iloc[0].message


def test_the_reduction_needs_both_walls_and_no_building_over_100_m() -> None:
    assert pair(9.8, {**HIGH, "noncombustible_walls": True}, HIGH).iloc[0].required == pytest.approx(13.0)
    found = pair(9.8, {"height_m": 101.0, "noncombustible_walls": True}, {**HIGH, "noncombustible_walls": True})
    assert found.iloc[0].verdict == "fail"
    assert found.iloc[0].required == pytest.approx(13.0)


def test_the_taller_buildings_firewall_lifts_the_limit_the_lower_ones_does_not() -> None:
    assert len(pair(5.0, {"height_m": 50.0, "firewall": True}, HIGH)) == 0
    found = pair(5.0, {"height_m": 50.0}, {**HIGH, "firewall": True})
    assert found.iloc[0].verdict == "fail"
    assert found.iloc[0].required == pytest.approx(13.0)


def test_height_from_floors_is_used_and_said() -> None:
    found = pair(12.9, {"floors": 10}, HIGH)  # 10 floors x 3 m = 30 m: high-rise
    f = found.iloc[0]
    assert f.verdict == "fail" and f.required == pytest.approx(13.0)
    assert "层数" in f.message and "floors x 3 m" in f.message_en
    assert len(pair(12.9, {"floors": 9}, HIGH)) == 0  # 27 m residential: not high-rise → 9 m


def test_unknown_height_cannot_be_judged_when_the_verdict_depends_on_it() -> None:
    # unknown class vs a high-rise: 9 m (low-rise grade II) .. 13 m (high-rise)
    f = pair(11.0, {}, HIGH).iloc[0]
    assert (f.verdict, f.subject_ref, f.other_refs) == ("cannot_judge", "A", ["B"])
    assert f.measured == pytest.approx(11.0)
    assert "height_m" in f.message and "floors" in f.message_en and "A" in f.message_en


def test_unknown_height_still_fails_when_too_close_for_any_height_and_passes_beyond_all() -> None:
    f = pair(8.5, {}, HIGH).iloc[0]
    assert f.verdict == "fail" and f.required == pytest.approx(9.0)
    assert len(pair(13.1, {}, HIGH)) == 0


def test_evidence_is_the_shortest_connecting_line() -> None:
    f = pair(8.0, HIGH, HIGH).iloc[0]
    assert f.geometry.geom_type == "LineString"
    assert f.geometry.length == pytest.approx(8.0)


def test_subject_is_the_smaller_ref_whatever_the_order_in_the_layer() -> None:
    found = separation.check(context(building("Z9", 0, **LOW), building("B10", 25, **LOW), building("B2", 50, **LOW)))
    pairs = sorted(zip(found.subject_ref, found.other_refs.map(tuple), strict=True))
    # B10 < B2 < Z9 in string order; Z9-B10 and B10-B2 are 5 m apart (< 6 m), Z9-B2 is 30 m apart
    assert pairs == [("B10", ("B2",)), ("B10", ("Z9",))]


def test_touching_footprints_are_one_complex_not_a_pair() -> None:
    assert len(pair(0.0, LOW, LOW)) == 0


def test_a_pair_across_a_compound_border_is_reported_once_by_the_subjects_compound() -> None:
    a = building("A", 0, compound="C1", **LOW)
    b = building("B", 25, compound="C2", **LOW)
    in_c1 = separation.check(context(a, b, compound="C1"))
    in_c2 = separation.check(context(a, b, compound="C2"))
    assert list(in_c1.subject_ref) == ["A"] and list(in_c1.compound_ref) == ["C1"]
    assert len(in_c2) == 0


def test_across_partitions_built_from_the_district_the_pair_appears_once() -> None:
    # two compounds side by side, their buildings 5 m apart across the border (low-rise grade II: 6 m)
    comp = gpd.GeoDataFrame({"ref": ["C1", "C2"], "name": ["一", "二"]},
                            geometry=[rect(-10, -10, 22.5, 20), rect(22.5, -10, 60, 20)], crs=CRS)
    blds = gpd.GeoDataFrame([building("B-east", 25, compound="C2", **LOW), building("A-west", 0, compound="C1", **LOW)],
                            geometry="geometry", crs=CRS)
    contexts = build_contexts({"compounds": comp.to_crs(4490), "buildings": blds.to_crs(4490)}, profile=PROFILE)
    assert [c.compound_ref for c in contexts] == ["C1", "C2"]
    found = [separation.check(c) for c in contexts]
    assert [len(f) for f in found] == [1, 0]
    f = found[0].iloc[0]
    assert (f.subject_ref, f.other_refs, f.verdict) == ("A-west", ["B-east"], "fail")
    assert f.measured == pytest.approx(5.0, abs=0.01)


def test_the_same_ref_in_two_compounds_is_still_reported_once() -> None:
    a = building("1号楼", 0, compound="C1", **LOW)
    b = building("1号楼", 25, compound="C2", **LOW)
    found = [separation.check(context(a, b, compound=c)) for c in ("C1", "C2")]
    found_reversed = [separation.check(context(b, a, compound=c)) for c in ("C1", "C2")]
    assert [len(f) for f in found] == [1, 0] == [len(f) for f in found_reversed]
    assert found[0].iloc[0].compound_ref == "C1"
