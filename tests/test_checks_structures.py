"""Illegal structures: SEP-ILLEGAL / STRUCT-SEPARATION (both on the structure) and STRUCT-ON-LANE."""

from __future__ import annotations

import pytest
from checks_support import by_rule, context, feat, line, pt, rect

from gis.checks import structures


def shed(ref: str, x0: float, **attrs) -> dict:
    """A 4 x 3 m shed whose west side is at x0 (buildings below end at x=20)."""
    return feat(ref, rect(x0, 2, x0 + 4, 5), kind="colour_steel", **attrs)


GRADE4 = feat("B1", rect(0, 0, 20, 10), height_m=6.0, fire_resistance_grade="4")
HIGH = feat("B1", rect(0, 0, 20, 10), height_m=45.0)


@pytest.mark.parametrize(("gap", "fails"), [(11.9, True), (12.1, False)])
def test_structure_near_a_grade_4_building_needs_12_m(gap: float, fails: bool) -> None:
    found = structures.check(context(buildings=[GRADE4], illegal_structures=[shed("S1", 20 + gap)]))
    assert sorted(found.rule) == (["SEP-ILLEGAL", "STRUCT-SEPARATION"] if fails else [])
    for f in found.itertuples():
        assert (f.verdict, f.subject_ref, f.subject_layer, f.other_refs) == ("fail", "S1", "illegal_structures",
                                                                             ["B1"])
        assert f.measured == pytest.approx(11.9)
        assert f.required == pytest.approx(12.0)
        assert f.department == "三改一拆办/综合执法"
        assert f.geometry.length == pytest.approx(11.9)


def test_structure_grade_comes_from_its_field_default_4() -> None:
    # a grade-II low-rise building: grade IV structure 9 m, grade III structure 7 m
    low = feat("B1", rect(0, 0, 20, 10), height_m=10.0)
    assert len(structures.check(context(buildings=[low], illegal_structures=[shed("S1", 28.0)]))) == 2
    assert len(structures.check(context(buildings=[low], illegal_structures=[shed("S1", 28.0,
                                                                                  fire_resistance_grade="3")]))) == 0


@pytest.mark.parametrize(("gap", "fails"), [(13.9, True), (14.1, False)])
def test_structure_near_a_high_rise_needs_14_m(gap: float, fails: bool) -> None:
    found = by_rule(structures.check(context(buildings=[HIGH], illegal_structures=[shed("S1", 20 + gap)])),
                    "SEP-ILLEGAL")
    assert len(found) == int(fails)


def test_one_finding_per_rule_naming_every_building_too_close() -> None:
    b2 = feat("B2", rect(0, 12, 20, 22), height_m=6.0, fire_resistance_grade="4")  # 8.6 m away
    far = feat("B3", rect(100, 0, 120, 10), height_m=6.0)
    found = structures.check(context(buildings=[GRADE4, b2, far], illegal_structures=[shed("S1", 25.0)]))
    sep = by_rule(found, "SEP-ILLEGAL").iloc[0]
    assert sep.other_refs == ["B1", "B2"]
    assert sep.measured == pytest.approx(5.0)
    assert sep.geometry.geom_type == "MultiLineString" and len(sep.geometry.geoms) == 2


def test_structure_built_against_a_building_fails_with_distance_zero() -> None:
    found = structures.check(context(buildings=[GRADE4], illegal_structures=[shed("S1", 20.0)]))
    assert by_rule(found, "STRUCT-SEPARATION").iloc[0].measured == pytest.approx(0.0)


def test_unknown_building_height_cannot_be_judged_between_the_cells() -> None:
    # grade IV structure vs a grade-II building of unknown height: 9 m (low-rise) .. 14 m (high-rise)
    bld = feat("B1", rect(0, 0, 20, 10))
    f = by_rule(structures.check(context(buildings=[bld], illegal_structures=[shed("S1", 31.0)])), "SEP-ILLEGAL")
    assert f.iloc[0].verdict == "cannot_judge" and "height_m" in f.iloc[0].message


def test_demolished_structures_and_other_compounds_structures_are_not_reported() -> None:
    gone = shed("S1", 25.0, status="demolished")
    theirs = shed("S2", 25.0)
    theirs["compound_ref"] = "C2"
    assert len(structures.check(context(buildings=[GRADE4], illegal_structures=[gone, theirs]))) == 0


# --- STRUCT-ON-LANE ------------------------------------------------------------------------------------------

LANE = feat("L1", rect(0, 0, 100, 4), kind="through")
AERIAL = feat("A1", rect(20, 4, 40, 14), building_ref="B1")


def test_structure_on_a_fire_lane_fails_with_the_occupied_area() -> None:
    s = feat("S1", rect(50, 2, 54, 6))
    f = by_rule(structures.check(context(fire_lanes=[LANE], illegal_structures=[s])), "STRUCT-ON-LANE").iloc[0]
    assert (f.verdict, f.subject_ref, f.other_refs) == ("fail", "S1", ["L1"])
    assert f.measured == pytest.approx(8.0) and f.unit == "m²"
    assert f.geometry.area == pytest.approx(8.0)
    assert "消防车道" in f.message and "fire lane" in f.message_en


def test_structure_merely_touching_the_lane_edge_does_not_occupy_it() -> None:
    s = feat("S1", rect(50, 4, 54, 8))
    assert len(by_rule(structures.check(context(fire_lanes=[LANE], illegal_structures=[s])), "STRUCT-ON-LANE")) == 0


def test_structure_on_an_aerial_area_and_lane_is_one_finding_counting_ground_once() -> None:
    s = feat("S1", rect(30, 2, 34, 8))  # 8 m² on the lane, 16 m² on the aerial area
    f = by_rule(structures.check(context(fire_lanes=[LANE], aerial_areas=[AERIAL], illegal_structures=[s])),
                "STRUCT-ON-LANE")
    assert list(f.other_refs) == [["A1", "L1"]]
    assert f.iloc[0].measured == pytest.approx(24.0)


@pytest.mark.parametrize(("x", "blocks"), [(2.9, True), (3.1, False)])
def test_structure_within_half_the_width_of_an_entrance_blocks_it(x: float, blocks: bool) -> None:
    gate = feat("E1", pt(0, 0), kind="pedestrian", width_m=6.0)
    s = feat("S1", rect(x, -2, x + 3, 2))
    found = by_rule(structures.check(context(entrances=[gate], illegal_structures=[s])), "STRUCT-ON-LANE")
    assert len(found) == int(blocks)
    if blocks:
        assert found.iloc[0].other_refs == ["E1"] and "出入口" in found.iloc[0].message


def test_entrance_without_width_is_blocked_only_when_covered() -> None:
    gate = feat("E1", pt(0, 0), kind="vehicle")
    on = feat("S1", rect(-1, -1, 1, 1))
    beside = feat("S2", rect(0.5, -1, 2, 1))
    found = by_rule(structures.check(context(entrances=[gate], illegal_structures=[on, beside])), "STRUCT-ON-LANE")
    assert list(found.subject_ref) == ["S1"]


def test_structure_on_an_evacuation_walkway_blocks_it_a_city_road_is_not_a_walkway() -> None:
    walk = feat("W1", line((0, 20), (40, 20)), kind="walkway", width_m=2.0)  # surface y 19..21
    city = feat("R1", line((0, 40), (40, 40)), kind="city", width_m=10.0)
    on_walk = feat("S1", rect(10, 20.5, 13, 24))
    beside = feat("S2", rect(20, 21.2, 23, 24))
    on_city = feat("S3", rect(10, 38, 13, 41))
    found = by_rule(structures.check(context(roads=[walk, city], illegal_structures=[on_walk, beside, on_city])),
                    "STRUCT-ON-LANE")
    assert list(found.subject_ref) == ["S1"]
    assert found.iloc[0].other_refs == ["W1"] and "疏散通道" in found.iloc[0].message


@pytest.mark.parametrize(("width", "reaches"), [(5.8, False), (6.2, True), (None, False), (0.0, False)])
def test_a_walkway_is_occupied_as_far_as_half_its_width_reaches(width: float | None, reaches: bool) -> None:
    # the structure stands 3 m beside the walkway's centre line: a surface 5.8 m wide stops 0.1 m short of it,
    # 6.2 m reaches 0.1 m into it; without a width the centre line alone is the route
    walk = feat("W1", line((0, 20), (40, 20)), kind="walkway", **({} if width is None else {"width_m": width}))
    shed_ = feat("S1", rect(10, 23, 13, 26))
    found = by_rule(structures.check(context(roads=[walk], illegal_structures=[shed_])), "STRUCT-ON-LANE")
    assert list(found.subject_ref) == (["S1"] if reaches else [])
    if reaches:
        assert found.iloc[0].measured == pytest.approx(0.3, abs=0.01)  # 3 x 0.1 m


def test_a_structure_across_a_walkway_of_unknown_width_occupies_its_centre_line() -> None:
    walk = feat("W1", line((0, 20), (40, 20)), kind="walkway")
    found = by_rule(structures.check(context(roads=[walk], illegal_structures=[feat("S1", rect(10, 18, 13, 22))])),
                    "STRUCT-ON-LANE")
    assert list(found.subject_ref) == ["S1"] and found.iloc[0].other_refs == ["W1"]
