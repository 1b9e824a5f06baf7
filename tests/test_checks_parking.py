"""Perimeter parking: PARK-ENTRANCE (a truck can no longer turn in), PARK-HYDRANT and PARK-LANE."""

from __future__ import annotations

import geopandas as gpd
import pytest
from checks_support import by_rule, context, feat, line, pt, rect

from gis.checks import parking


def car(ref: str, x0: float, y0: float, *, along: bool = True, **attrs) -> dict:
    """A 4.8 x 1.8 m parked car (kind vehicle, outside every compound) with its south-west corner at x0, y0."""
    geom = rect(x0, y0, x0 + 4.8, y0 + 1.8) if along else rect(x0, y0, x0 + 1.8, y0 + 4.8)
    return {"ref": ref, "compound_ref": None, "kind": "vehicle", "geometry": geom, **attrs}


# --- PARK-ENTRANCE -------------------------------------------------------------------------------------------
# A city road along y=0, 8 m wide (surface y -4..4); the compound's vehicle gate at (0, 6), 6 m wide, its lane
# running north. A truck 4 m wide must come along the road and turn north into the gate.

ROAD = {"ref": "R1", "compound_ref": None, "kind": "city", "width_m": 8.0, "geometry": line((-200, 0), (200, 0))}
GATE = feat("E1", pt(0, 6), kind="vehicle", width_m=6.0)
COMPOUND = {"ref": "C1", "name": "一", "geometry": rect(-100, 6, 100, 200)}


def entrance(*cars: dict, road: dict = ROAD) -> gpd.GeoDataFrame:
    return by_rule(parking.check(context(roads=[road], entrances=[GATE], parking=list(cars),
                                         compounds=[COMPOUND])), "PARK-ENTRANCE")


@pytest.mark.parametrize(("top", "blocked"), [(0.2, True), (-0.2, False)])
def test_a_van_in_front_of_the_gate_leaving_3_8_m_blocks_it_4_2_m_does_not(top: float, blocked: bool) -> None:
    # an 8 m van across the whole gate front (x -4..4): its north side at y=top leaves 4 - top metres to the
    # kerb on the gate's side (3.8 / 4.2 m), and less than 4 m on the far side either way
    van = {"ref": "P1", "compound_ref": None, "kind": "vehicle", "vehicle_type": "van",
           "geometry": rect(-4.0, top - 1.8, 4.0, top)}
    found = entrance(van)
    assert len(found) == int(blocked)
    if blocked:
        f = found.iloc[0]
        assert (f.verdict, f.subject_ref, f.subject_layer, f.other_refs) == ("fail", "P1", "parking", ["E1"])
        assert f.measured == pytest.approx(3.8, abs=0.02)
        assert f.required == pytest.approx(4.0)
        assert f.department == "交警/公安"
        assert f.geometry.area == pytest.approx(8.0 * 1.8)


def test_a_car_in_the_middle_of_the_road_before_the_gate_blocks_both_ways() -> None:
    found = entrance(car("P1", -2.4, -1.6))  # 3.8 m north, 2.4 m south of it
    assert list(found.subject_ref) == ["P1"]
    assert found.iloc[0].measured == pytest.approx(3.85, abs=0.03)  # between its corner and the gate's corner


def test_a_car_across_the_gate_mouth_blocks_it() -> None:
    found = entrance(car("P1", -1.0, 1.0, along=False))  # nose-in across the gate, x -1..0.8
    assert list(found.subject_ref) == ["P1"]
    assert found.iloc[0].measured < 4.0


def test_a_car_at_the_far_kerb_or_beyond_the_approach_is_not_blocking() -> None:
    assert len(entrance(car("P1", -2.4, -4.0))) == 0  # leaves 6.2 m on the gate side
    # beyond the approach stretch (gate half-width 3 + 12 m): even blocking the whole road there is fine
    assert len(entrance(car("P2", 16.0, -2.0), car("P3", 16.0, 0.0))) == 0


def test_only_the_car_that_blocks_is_named() -> None:
    found = entrance(car("P1", -2.4, -1.6), car("P2", -20.0, -4.0))
    assert list(found.subject_ref) == ["P1"]


def test_cars_blocking_only_together_are_all_named() -> None:
    # one car mid-road on each side of the gate: each closes one direction, the truck could use the other
    west, east = car("P1", -12.0, -1.6), car("P2", 7.2, -1.6)
    assert len(entrance(west)) == 0 and len(entrance(east)) == 0
    found = entrance(west, east)
    assert sorted(found.subject_ref) == ["P1", "P2"]
    assert list(found.measured) == [pytest.approx(3.8, abs=0.02)] * 2


def test_a_car_parked_inside_the_gate_is_a_lane_matter_not_perimeter_parking() -> None:
    inside = {"ref": "P1", "compound_ref": "C1", "kind": "vehicle", "geometry": rect(-0.9, 7.0, 0.9, 11.8)}
    assert len(entrance(inside)) == 0


def test_a_gate_the_truck_cannot_reach_anyway_is_not_a_parking_finding() -> None:
    narrow = {**ROAD, "width_m": 3.0}
    assert len(entrance(car("P1", -2.4, -1.5), road=narrow)) == 0


def test_a_road_without_width_cannot_be_judged() -> None:
    unknown = {k: v for k, v in ROAD.items() if k != "width_m"}
    f = entrance(car("P1", -2.4, -1.6), road=unknown).iloc[0]
    assert f.verdict == "cannot_judge" and "width_m" in f.message


def test_a_point_vehicle_counts_by_its_footprint() -> None:
    # the profile's 0.5 m point footprint in the middle of the 6 m gate mouth leaves 2.75 m either side
    point = {"ref": "P1", "compound_ref": None, "kind": "vehicle", "geometry": pt(0, 4.0)}
    found = entrance(point)
    assert list(found.subject_ref) == ["P1"]
    assert found.iloc[0].measured == pytest.approx(2.75, abs=0.03)
    aside = {"ref": "P2", "compound_ref": None, "kind": "vehicle", "geometry": pt(0, -3.5)}
    assert len(entrance(aside)) == 0


# --- PARK-HYDRANT --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("gap", "fails"), [(4.9, True), (5.1, False)])
def test_parking_within_5_m_of_a_hydrant(gap: float, fails: bool) -> None:
    hyd = {"ref": "H1", "compound_ref": None, "geometry": pt(0, 0)}
    stall = {"ref": "P1", "compound_ref": None, "kind": "stall", "geometry": rect(gap, -1.25, gap + 5.3, 1.25)}
    found = by_rule(parking.check(context(hydrants=[hyd], parking=[stall])), "PARK-HYDRANT")
    assert len(found) == int(fails)
    if fails:
        f = found.iloc[0]
        assert (f.verdict, f.subject_ref, f.other_refs) == ("fail", "P1", ["H1"])
        assert f.measured == pytest.approx(4.9) and f.required == pytest.approx(5.0)
        assert "车位" in f.message


def test_point_vehicle_near_a_hydrant() -> None:
    hyd = {"ref": "H1", "compound_ref": None, "geometry": pt(0, 0)}
    v = {"ref": "V1", "compound_ref": None, "kind": "vehicle", "geometry": pt(3, 0)}
    f = by_rule(parking.check(context(hydrants=[hyd], parking=[v])), "PARK-HYDRANT").iloc[0]
    assert f.subject_ref == "V1" and f.measured == pytest.approx(3.0) and "车辆" in f.message


def test_parking_of_another_compound_is_reported_there() -> None:
    hyd = feat("H1", pt(0, 0))
    v = {"ref": "V1", "compound_ref": "C2", "kind": "vehicle", "geometry": pt(3, 0)}
    assert len(parking.check(context(hydrants=[hyd], parking=[v]))) == 0


# --- PARK-LANE -----------------------------------------------------------------------------------------------

LANE = feat("L1", rect(0, 0, 100, 4), kind="through")
AERIAL = feat("A1", rect(20, 4, 40, 14), building_ref="B1")


def test_a_stall_drawn_on_a_fire_lane_inside_the_compound_fails() -> None:
    stall = feat("S1", rect(50, 2, 52.5, 7.3), kind="stall")
    f = by_rule(parking.check(context(fire_lanes=[LANE], parking=[stall])), "PARK-LANE").iloc[0]
    assert (f.verdict, f.subject_ref, f.other_refs, f.unit) == ("fail", "S1", ["L1"], "m²")
    assert f.measured == pytest.approx(2.5 * 2.0)


def test_a_stall_on_an_aerial_area_fails_one_beside_the_lane_does_not() -> None:
    on_area = feat("S1", rect(25, 8, 27.5, 13.3), kind="stall")
    beside = feat("S2", rect(50, 4, 52.5, 9.3), kind="stall")  # touches the lane edge only
    found = by_rule(parking.check(context(fire_lanes=[LANE], aerial_areas=[AERIAL], parking=[on_area, beside])),
                    "PARK-LANE")
    assert list(found.subject_ref) == ["S1"] and found.iloc[0].other_refs == ["A1"]


def test_an_observed_vehicle_on_a_lane_is_not_a_stall_finding() -> None:
    v = feat("V1", rect(50, 1, 54.8, 2.8), kind="vehicle")
    assert len(by_rule(parking.check(context(fire_lanes=[LANE], parking=[v])), "PARK-LANE")) == 0


def test_a_stall_outside_every_compound_is_not_park_lane() -> None:
    stall = {"ref": "S1", "compound_ref": None, "kind": "stall", "geometry": rect(50, 2, 52.5, 7.3)}
    compound = {"ref": "C1", "name": "一", "geometry": rect(0, 10, 100, 100)}
    found = parking.check(context(fire_lanes=[LANE], parking=[stall], compounds=[compound]))
    assert len(by_rule(found, "PARK-LANE")) == 0
