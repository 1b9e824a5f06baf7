"""Fire-lane rules on hand-made compounds, on both sides of every threshold (GB 50016 7.1.8 / 7.1.9)."""

from __future__ import annotations

import pytest
import shapely
from lanes_support import Y0, context, fails, findings, frame, lane, parked_car
from shapely.geometry import LineString, Point, box

from gis.checks import lanes
from gis.checks.context import build_contexts

# --- LANE-WIDTH ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("width", "fails_"), [(3.9, True), (4.0, False), (4.1, False), (6.0, False)])
def test_lane_width_threshold(width, fails_):
    ctx = context(fire_lanes=[lane("L1", box(10 - width / 2, 0, 10 + width / 2, 120))])
    got = findings(ctx, "LANE-WIDTH")
    assert (fails(got) == {"L1"}) is fails_
    if fails_:
        assert got["measured"].iloc[0] == pytest.approx(width, abs=0.02)
        assert got["required"].iloc[0] == 4.0


def test_a_neck_in_a_wide_lane_is_found_and_located():
    # a 6 m lane narrowed to 3.6 m between y = 50 and 54 by a wall notch
    geom = box(7, 0, 13, 120).difference(box(10.6, 50, 14, 54))
    got = findings(context(fire_lanes=[lane("L1", geom)]), "LANE-WIDTH")
    assert fails(got) == {"L1"}
    assert got["measured"].iloc[0] == pytest.approx(3.6, abs=0.02)
    neck = got.to_crs(32651).geometry.iloc[0]
    # the evidence is a cross-section at the neck, about as long as the measured width
    assert neck.geom_type == "LineString"
    assert 50 - 0.5 <= neck.centroid.y - Y0 <= 54 + 0.5
    assert neck.length == pytest.approx(3.6, abs=0.1)
    assert "3.60" in got["message"].iloc[0] and "3.60" in got["message_en"].iloc[0]


def test_a_narrow_mouth_at_the_gate_is_a_neck_too():
    # wide lane, but the last 3 m before the gate are 3.5 m wide
    geom = shapely.union_all([box(8.25, 0, 11.75, 3), box(7, 3, 13, 120)])
    assert fails(findings(context(fire_lanes=[lane("L1", geom)]), "LANE-WIDTH")) == {"L1"}


def test_a_wide_lane_with_a_wide_turnaround_passes_width():
    geom = shapely.union_all([box(7, 0, 13, 100), box(1, 100, 19, 118)])
    assert findings(context(fire_lanes=[lane("L1", geom, "dead_end")]), "LANE-WIDTH").empty


# --- LANE-CLEAR ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("clear", "blocked"), [(3.8, True), (4.2, False), (4.0, False)])
def test_a_car_leaving_less_than_4_m_blocks_the_lane(clear, blocked):
    # 6 m lane from x = 7 to 13; the car's left edge at 7 + clear leaves `clear` metres on its left
    x = 7 + clear
    ctx = context(fire_lanes=[lane("L1", box(7, 0, 13, 120))],
                  obstructions=[parked_car("V1", min(x, 13 - 1.8), 50)] if x + 1.8 <= 13 else
                  [{"ref": "V1", "kind": "vehicle", "geometry": box(x, 50, 13.5, 54.8)}])
    got = findings(ctx, "LANE-CLEAR")
    assert (fails(got) == {"L1"}) is blocked
    if blocked:
        row = got.iloc[0]
        assert row["measured"] == pytest.approx(clear, abs=0.02)
        assert row["other_refs"] == ["V1"]
        assert row["department"] == "交警/公安"
        assert "V1" in row["message"] and "V1" in row["message_en"]


def test_two_obstructions_that_together_leave_too_little_are_one_blockage():
    # goods on the left edge (1.5 m) and a car on the right (1.8 m) side by side leave 2.7 m of a 6 m lane
    ctx = context(fire_lanes=[lane("L1", box(7, 0, 13, 120))], obstructions=[
        {"ref": "S1", "kind": "stacked_goods", "geometry": box(7, 60, 8.5, 63)},
        parked_car("V2", 11.2, 59),
    ])
    got = findings(ctx, "LANE-CLEAR")
    assert len(got) == 1
    row = got.iloc[0]
    assert row["other_refs"] == ["S1", "V2"]
    assert row["measured"] == pytest.approx(2.7, abs=0.02)
    assert set(row["department"].split("; ")) == {"交警/公安", "综合执法/城管"}


def test_overhead_obstructions_do_not_block_passage():
    ctx = context(fire_lanes=[lane("L1", box(7, 0, 13, 120))], obstructions=[
        {"ref": "T1", "kind": "tree", "bottom_m": 4.5, "geometry": box(6, 40, 14, 48)},
    ])
    assert findings(ctx, "LANE-CLEAR").empty


def test_bollard_points_use_the_profile_footprint():
    # a row of bollards 1.5 m apart across a 6 m lane: gaps of 1.2 m (0.3 m bollards)
    posts = [{"ref": f"P{i}", "kind": "bollard", "geometry": Point(7.75 + 1.5 * i, 30)} for i in range(4)]
    got = findings(context(fire_lanes=[lane("L1", box(7, 0, 13, 120))], obstructions=posts), "LANE-CLEAR")
    assert fails(got) == {"L1"}
    assert got["measured"].iloc[0] < 2.0
    assert got["department"].iloc[0] == "物业/住建"


def test_an_illegal_structure_on_the_lane_blocks_it():
    ctx = context(fire_lanes=[lane("L1", box(7, 0, 13, 120))],
                  illegal_structures=[{"ref": "W1", "kind": "shed", "geometry": box(9, 70, 16, 76)}])
    got = findings(ctx, "LANE-CLEAR")
    assert fails(got) == {"L1"}
    assert got["other_refs"].iloc[0] == ["W1"]
    assert "三改一拆办" in got["department"].iloc[0]


def test_blockage_ranked_by_the_buildings_that_lose_access():
    # a dead-end lane: a car halfway cuts off the two buildings along its far half
    ctx = context(
        fire_lanes=[lane("L1", box(7, 0, 13, 160), "through")],
        obstructions=[parked_car("V1", 9.5, 80)],
        buildings=[
            {"ref": "B-near", "floors": 6, "geometry": box(20, 20, 40, 40)},
            {"ref": "B-far1", "floors": 18, "geometry": box(20, 100, 40, 120)},
            {"ref": "B-far2", "floors": 6, "geometry": box(20, 130, 40, 150)},
        ],
    )
    got = findings(ctx, "LANE-CLEAR")
    assert fails(got) == {"L1"}
    row = got.iloc[0]
    assert "B-far1" in row["message"] and "B-near" not in row["message"]
    assert "2 buildings (24 floors)" in row["message_en"]
    assert row["severity"] == pytest.approx(3.0 + 2 * 1.0 + 24 * 0.1)


def test_a_lane_alongside_the_city_road_is_still_blocked_by_a_car():
    # the lane runs within 1 m of the road surface all along (one long entry zone): the car still cuts it
    ctx = context(fire_lanes=[lane("L1", box(0, 0, 150, 6))],
                  obstructions=[{"ref": "V1", "kind": "vehicle", "geometry": box(60, 3, 64.8, 4.8)}])
    got = findings(ctx, "LANE-CLEAR")
    assert fails(got) == {"L1"}
    assert got["measured"].iloc[0] == pytest.approx(3.0, abs=0.02)


def test_lane_without_entry_points_cannot_be_judged_for_clearance():
    ctx = context(fire_lanes=[lane("L1", box(7, 0, 13, 120)), lane("L9", box(100, 50, 106, 150))])
    got = findings(ctx, "LANE-CLEAR")
    assert list(got["verdict"]) == ["cannot_judge"]
    assert got["subject_ref"].iloc[0] == "L9"
    assert "entry points not found" in got["message_en"].iloc[0]


def test_a_lane_reached_through_another_lane_has_entries():
    ctx = context(fire_lanes=[lane("L1", box(7, 0, 13, 120)), lane("L2", box(13, 100, 90, 106), "spur")],
                  obstructions=[parked_car("V1", 50, 101.5)])
    got = findings(ctx, "LANE-CLEAR")
    assert fails(got) == {"L2"}
    assert not (got["verdict"] == "cannot_judge").any()


# --- LANE-HEADROOM ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("bottom", "fails_"), [(3.9, True), (4.1, False)])
def test_headroom_under_a_canopy(bottom, fails_):
    ctx = context(fire_lanes=[lane("L1", box(7, 0, 13, 120))],
                  obstructions=[{"ref": "T1", "kind": "tree", "bottom_m": bottom, "geometry": box(10, 40, 16, 46)}])
    got = findings(ctx, "LANE-HEADROOM")
    assert (fails(got) == {"T1"}) is fails_
    if fails_:
        assert got["subject_layer"].iloc[0] == "obstructions"
        assert got["other_refs"].iloc[0] == ["L1"]
        assert got["measured"].iloc[0] == pytest.approx(3.9)
    # a canopy blocks nobody's way: headroom is its own rule
    assert findings(ctx, "LANE-CLEAR").empty


def test_headroom_of_an_overhead_line_and_of_a_low_gate():
    ctx = context(
        fire_lanes=[lane("L1", box(7, 0, 13, 120))],
        obstructions=[{"ref": "W1", "kind": "overhead_line", "bottom_m": 3.2,
                       "geometry": LineString([(0, 90), (30, 90)])}],
        entrances=[{"ref": "G1", "kind": "vehicle", "clear_height_m": 3.5, "geometry": Point(10, 0)}],
    )
    got = findings(ctx, "LANE-HEADROOM")
    assert set(zip(got["subject_layer"], got["subject_ref"], strict=True)) == {("obstructions", "W1"),
                                                                               ("entrances", "G1")}


# --- LANE-TURNAROUND -------------------------------------------------------------------------------------------


def _dead_end(side: float) -> object:
    return shapely.union_all([box(7, 0, 13, 80), box(10 - side / 2, 80, 10 + side / 2, 80 + side)])


@pytest.mark.parametrize(("side", "fails_"), [(11.9, True), (12.1, False)])
def test_turnaround_square(side, fails_):
    got = findings(context(fire_lanes=[lane("L1", _dead_end(side), "dead_end")]), "LANE-TURNAROUND")
    assert (fails(got) == {"L1"}) is fails_
    if fails_:
        assert got["measured"].iloc[0] == pytest.approx(11.9, abs=0.02)
        assert got["strength"].iloc[0] == "mandatory"


def test_a_hammerhead_lane_end_has_no_12_m_square():
    # a T-shaped end 30 m wide but only 6 m deep: its bounding box is big, no 12 x 12 square fits
    geom = shapely.union_all([box(7, 0, 13, 80), box(-5, 80, 25, 86)])
    got = findings(context(fire_lanes=[lane("L1", geom, "dead_end")]), "LANE-TURNAROUND")
    assert fails(got) == {"L1"}
    assert got["measured"].iloc[0] == pytest.approx(6.0, abs=0.05)


def test_rotated_turnaround_is_found():
    geom = shapely.affinity.rotate(_dead_end(12.5), 37, origin=(10, 0))
    assert findings(context(fire_lanes=[lane("L1", geom, "dead_end")]), "LANE-TURNAROUND").empty


def test_turnaround_serving_a_high_rise_should_be_15_m_advisory():
    ctx = context(fire_lanes=[lane("L1", _dead_end(12.5), "dead_end")],
                  buildings=[{"ref": "B1", "height_m": 54, "geometry": box(20, 80, 50, 95)}])
    got = findings(ctx, "LANE-TURNAROUND")
    assert fails(got) == {"L1"}
    assert got["strength"].iloc[0] == "advisory" and got["required"].iloc[0] == 15.0
    assert got["severity"].iloc[0] == 1.0


def test_through_lanes_need_no_turnaround():
    # a lane from the south gate to a north gate: through by its connections, whatever it is tagged
    ctx = context(fire_lanes=[lane("L1", box(7, 0, 13, 200), "dead_end")],
                  roads=[{"ref": "R1", "kind": "city", "width_m": 12.0, "geometry": LineString([(-100, -7), (300, -7)])},
                         {"ref": "R2", "kind": "city", "width_m": 12.0,
                          "geometry": LineString([(-100, 207), (300, 207)])}],
                  entrances=[{"ref": "G1", "kind": "vehicle", "geometry": Point(10, 0)},
                             {"ref": "G2", "kind": "vehicle", "geometry": Point(10, 200)}])
    assert findings(ctx, "LANE-TURNAROUND").empty


# --- LANE-CONNECT ----------------------------------------------------------------------------------------------


def test_a_lane_cut_off_from_every_entrance_fails_connect():
    ctx = context(fire_lanes=[lane("L1", box(7, 0, 13, 120)), lane("L2", box(13, 100, 60, 106), "spur"),
                              lane("L9", box(100, 50, 106, 150))])
    got = findings(ctx, "LANE-CONNECT")
    assert fails(got) == {"L9"}


def _ring() -> object:
    return box(5, 0, 195, 150).difference(box(11, 6, 189, 144))


def test_ring_lane_with_one_gate_fails_and_with_two_passes():
    one = findings(context(fire_lanes=[lane("R1", _ring(), "ring")]), "LANE-CONNECT")
    assert fails(one) == {"R1"}
    assert one["measured"].iloc[0] == 1.0
    two = context(fire_lanes=[lane("R1", _ring(), "ring")],
                  entrances=[{"ref": "G1", "kind": "vehicle", "geometry": Point(10, 0)},
                             {"ref": "G2", "kind": "vehicle", "geometry": Point(190, 0)}])
    assert findings(two, "LANE-CONNECT").empty


def test_pedestrian_gates_do_not_connect_lanes():
    ctx = context(fire_lanes=[lane("L1", box(7, 0, 13, 120))],
                  roads=[], entrances=[{"ref": "G1", "kind": "pedestrian", "geometry": Point(10, 0)}])
    assert fails(findings(ctx, "LANE-CONNECT")) == {"L1"}


# --- LANE-SETBACK, LANE-SLOPE ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("gap", "height", "verdict"), [
    (4.5, 40.0, "fail"), (5.5, 40.0, None), (4.5, 20.0, None), (4.5, None, "cannot_judge"),
])
def test_setback_from_high_rise_walls(gap, height, verdict):
    building = {"ref": "B1", "geometry": box(13 + gap, 30, 40, 60)}
    if height is not None:
        building["height_m"] = height
    got = findings(context(fire_lanes=[lane("L1", box(7, 0, 13, 120))], buildings=[building]), "LANE-SETBACK")
    assert list(got["verdict"]) == ([verdict] if verdict else [])
    if verdict == "fail":
        assert got["strength"].iloc[0] == "advisory"
        assert got["measured"].iloc[0] == pytest.approx(gap, abs=0.01)
        assert got["other_refs"].iloc[0] == ["B1"]
    if verdict == "cannot_judge":
        assert "neither height nor floors" in got["message_en"].iloc[0]


def test_setback_uses_floors_when_height_is_missing():
    b = {"ref": "B1", "floors": 12, "geometry": box(17, 30, 40, 60)}
    got = findings(context(fire_lanes=[lane("L1", box(7, 0, 13, 120))], buildings=[b]), "LANE-SETBACK")
    assert fails(got) == {"L1"}
    assert "estimated from floors" in got["message_en"].iloc[0]


@pytest.mark.parametrize(("slope", "fails_"), [(9.0, True), (7.0, False), (None, False)])
def test_lane_slope(slope, fails_):
    row = lane("L1", box(7, 0, 13, 120))
    if slope is not None:
        row["slope_pct"] = slope
    assert (fails(findings(context(fire_lanes=[row]), "LANE-SLOPE")) == {"L1"}) is fails_


def _fillet(x: float, y: float, dx: float, dy: float, radius: float) -> object:
    """The inner fillet of a lane corner at (x, y), extending along the signs (dx, dy)."""
    square = box(min(x, x + dx * radius), min(y, y + dy * radius), max(x, x + dx * radius), max(y, y + dy * radius))
    return square.difference(Point(x + dx * radius, y + dy * radius).buffer(radius, quad_segs=16))


def test_a_sound_compound_has_no_lane_findings():
    # the turn into the dead end has 10 m inner fillets (LANE-TURN: 9 m needed)
    trunk = shapely.union_all([box(7, 0, 13, 120), _fillet(13, 100, 1, -1, 10), _fillet(13, 106, 1, 1, 10)])
    ctx = context(
        fire_lanes=[lane("L1", trunk),
                    lane("L2", shapely.union_all([box(13, 100, 80, 106), box(80, 97, 93, 110)]), "dead_end")],
        obstructions=[parked_car("V1", 7.2, 30)],
        buildings=[{"ref": "B1", "height_m": 18, "geometry": box(20, 20, 50, 60)}],
    )
    assert findings(ctx).empty


def test_neighbours_features_are_reported_by_their_own_compound():
    layers = {
        "compounds": frame([{"ref": "C1", "geometry": box(0, 0, 100, 200)},
                            {"ref": "C2", "geometry": box(100, 0, 200, 200)}]),
        "roads": frame([{"ref": "R1", "kind": "city", "width_m": 12.0,
                         "geometry": LineString([(-100, -7), (300, -7)])}]),
        "fire_lanes": frame([{"ref": "L1", "compound_ref": "C1", "geometry": box(90, 0, 93.9, 100)},
                             {"ref": "L2", "compound_ref": "C2", "geometry": box(107, 0, 110.9, 100)}]),
    }
    ctxs = build_contexts(layers, profile="cn-gb")
    by = {c.compound_ref: fails(lanes.check(c)[lambda f: f["rule"] == "LANE-WIDTH"]) for c in ctxs}
    assert by == {"C1": {"L1"}, "C2": {"L2"}}
