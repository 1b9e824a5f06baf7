"""Lane kinds come from the lane network's geometry (which ends touch a road, a vehicle entrance or another lane);
a `kind` in the data is a claim the findings compare with it. LANE-TURNAROUND, LANE-CONNECT and LANE-CLEAR read one
derived network."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from lanes_support import X0, context
from shapely.geometry import LineString, Point, box

from gis.checks import lanes
from gis.checks.context import CheckContext


def lane(ref: str, geom: object, kind: str | None = None) -> dict:
    row = {"ref": ref, "geometry": geom}
    if kind is not None:
        row["kind"] = kind
    return row


def kinds(ctx: CheckContext) -> dict[str, str]:
    net = lanes.lane_network(ctx)
    return dict(zip(net.refs, net.kinds, strict=True))


def rule(ctx: CheckContext, rule_id: str) -> gpd.GeoDataFrame:
    out = lanes.check(ctx)
    return out[(out["rule"] == rule_id) & (out["verdict"] == "fail")]


STRAIGHT = box(7, 0, 13, 80)                                          # from the gate, 80 m north, no turnaround
WITH_SQUARE = shapely.union_all([box(7, 0, 13, 80), box(3, 80, 17, 94)])  # ... ending in a 14 m square


def test_kinds_from_the_network():
    ring = box(20, 0, 190, 150).difference(box(27, 7, 183, 143))
    ctx = context(
        fire_lanes=[lane("T", box(7, 0, 13, 200)), lane("D", box(13, 160, 60, 166)), lane("R", ring),
                    lane("X", box(100, 170, 106, 195))],
        entrances=[{"ref": "G1", "kind": "vehicle", "geometry": Point(10, 0)},
                   {"ref": "G2", "kind": "vehicle", "geometry": Point(10, 200)}],
        roads=[{"ref": "R1", "kind": "city", "width_m": 12.0, "geometry": LineString([(-100, -7), (300, -7)])},
               {"ref": "R2", "kind": "city", "width_m": 12.0, "geometry": LineString([(-100, 207), (300, 207)])}],
    )
    # T meets the south gate, the north gate, D and the ring; D meets T only; X meets nothing
    assert kinds(ctx) == {"T": "through", "D": "dead_end", "R": "ring", "X": "isolated"}
    net = lanes.lane_network(ctx)
    far = net.dead_end_at[list(net.refs).index("D")]
    assert far.x - X0 == pytest.approx(60.0, abs=0.01)  # the dead end is the end away from T


@pytest.mark.parametrize(("geom", "fails"), [(STRAIGHT, True), (WITH_SQUARE, False)], ids=["bare", "square"])
def test_an_untagged_dead_end_needs_a_turnaround(geom, fails):
    got = rule(context(fire_lanes=[lane("L1", geom)]), "LANE-TURNAROUND")
    assert (set(got["subject_ref"]) == {"L1"}) is fails
    if fails:
        assert "by its connections" in got["message_en"].iloc[0]
        assert "tagged" not in got["message_en"].iloc[0]  # no claim to compare


def test_a_kind_that_lies_is_named_in_the_finding():
    got = rule(context(fire_lanes=[lane("L1", STRAIGHT, "through")]), "LANE-TURNAROUND")
    assert set(got["subject_ref"]) == {"L1"}
    assert "tagged through in the data, but its connections make it dead end" in got["message_en"].iloc[0]
    assert "数据标注为贯通式车道" in got["message"].iloc[0]


def test_a_lane_tagged_dead_end_that_runs_through_needs_no_turnaround():
    ctx = context(fire_lanes=[lane("L1", box(7, 0, 13, 200), "dead_end")],
                  entrances=[{"ref": "G1", "kind": "vehicle", "geometry": Point(10, 0)},
                             {"ref": "G2", "kind": "vehicle", "geometry": Point(10, 200)}],
                  roads=[{"ref": "R1", "kind": "city", "width_m": 12.0,
                          "geometry": LineString([(-100, -7), (300, -7)])},
                         {"ref": "R2", "kind": "city", "width_m": 12.0,
                          "geometry": LineString([(-100, 207), (300, 207)])}])
    assert kinds(ctx) == {"L1": "through"}
    assert rule(ctx, "LANE-TURNAROUND").empty


def _ring() -> object:
    return box(5, 0, 195, 150).difference(box(12, 7, 188, 143))


@pytest.mark.parametrize("tag", [None, "ring", "through"])
def test_a_ring_with_one_connection_fails_connect_whatever_it_is_tagged(tag):
    ctx = context(fire_lanes=[lane("R1", _ring(), tag)])
    assert kinds(ctx) == {"R1": "ring"}
    got = rule(ctx, "LANE-CONNECT")
    assert set(got["subject_ref"]) == {"R1"} and got["measured"].iloc[0] == 1.0
    assert ("tagged through" in got["message_en"].iloc[0]) is (tag == "through")
    # a ring needs no turnaround, whatever it is tagged
    assert rule(ctx, "LANE-TURNAROUND").empty


def test_a_ring_with_two_gates_passes_connect():
    ctx = context(fire_lanes=[lane("R1", _ring())],
                  entrances=[{"ref": "G1", "kind": "vehicle", "geometry": Point(10, 0)},
                             {"ref": "G2", "kind": "vehicle", "geometry": Point(190, 0)}])
    assert rule(ctx, "LANE-CONNECT").empty


def test_connect_clear_and_turnaround_read_one_network():
    # an isolated lane: LANE-CONNECT fails it, LANE-CLEAR cannot judge it, LANE-TURNAROUND does not call it a dead end
    ctx = context(fire_lanes=[lane("L1", WITH_SQUARE), lane("L9", box(100, 50, 106, 150), "dead_end")])
    out = lanes.check(ctx)
    l9 = out[out["subject_ref"] == "L9"]
    assert set(l9.loc[l9["verdict"] == "fail", "rule"]) == {"LANE-CONNECT"}
    assert set(l9.loc[l9["verdict"] == "cannot_judge", "rule"]) == {"LANE-CLEAR"}
    assert "isolated" in l9.loc[l9["rule"] == "LANE-CONNECT", "message_en"].iloc[0]


def test_derive_kinds_counts_separate_connection_places():
    g = np.array([box(0, 0, 6, 100)], dtype=object)
    one = np.array([box(0, 0, 6, 1)], dtype=object)
    two = np.array([box(0, 0, 6, 1), box(0, 99, 6, 100)], dtype=object)
    assert lanes.derive_kinds(g, np.array([0]), one)[0].tolist() == ["dead_end"]
    assert lanes.derive_kinds(g, np.array([0, 0]), two)[0].tolist() == ["through"]
    assert lanes.derive_kinds(g, np.empty(0, dtype=np.int64), np.empty(0, dtype=object))[0].tolist() == ["isolated"]


def test_kinds_are_the_same_whether_or_not_dead_ends_are_located():
    # one place drawn as two pieces 0.5 m apart (one place once grown), two places, one, a ring with connections
    court = box(100, 0, 160, 60).difference(box(110, 10, 150, 50))
    g = np.array([box(0, 0, 6, 100), box(20, 0, 26, 100), box(40, 0, 46, 100), court], dtype=object)
    lane_of = np.array([0, 1, 1, 2, 3, 3])
    zones = np.array([shapely.MultiPolygon([box(0, 0, 2.5, 1), box(3, 0, 6, 1)]), box(20, 0, 26, 1),
                      box(20, 99, 26, 100), box(40, 99, 46, 100), box(100, 0, 101, 60), box(159, 0, 160, 60)],
                     dtype=object)
    eager, far = lanes.derive_kinds(g, lane_of, zones)
    lazy, none = lanes.derive_kinds(g, lane_of, zones, far=False)
    assert eager.tolist() == lazy.tolist() == ["dead_end", "through", "dead_end", "ring"]
    assert far[0] is not None and far[2].y == pytest.approx(0.0) and far[1] is None and far[3] is None
    assert all(x is None for x in none)


# --- a ring drawn as separate lanes whose ends meet ------------------------------------------------------------

def _ring_segments(gap: float = 0.0, tag: str | None = None) -> list[dict]:
    """The ring of `_ring()` drawn as four lanes (south, east, north, west), `gap` metres short at one corner."""
    return [lane("RS", box(5, 0, 195, 7), tag), lane("RE", box(188, 7, 195, 143), tag),
            lane("RN", box(5, 143, 195, 150), tag), lane("RW", box(5, 7 + gap, 12, 143), tag)]


@pytest.mark.parametrize("gap", [0.0, 0.6], ids=["meeting", "drawn-0.6-m-short"])
def test_a_ring_of_four_separate_lanes_with_one_connection_is_a_ring_and_fails_connect(gap):
    ctx = context(fire_lanes=_ring_segments(gap))
    assert kinds(ctx) == {"RS": "ring", "RE": "ring", "RN": "ring", "RW": "ring"}
    got = rule(ctx, "LANE-CONNECT")
    assert set(got["subject_ref"]) == {"RS", "RE", "RN", "RW"}  # one ring, one gate: every lane of it fails
    assert set(got["measured"]) == {1.0}
    assert rule(ctx, "LANE-TURNAROUND").empty


def test_a_ring_of_four_lanes_with_two_gates_passes_connect():
    ctx = context(fire_lanes=_ring_segments(),
                  entrances=[{"ref": "G1", "kind": "vehicle", "geometry": Point(10, 0)},
                             {"ref": "G2", "kind": "vehicle", "geometry": Point(190, 0)}])
    assert set(kinds(ctx).values()) == {"ring"}
    assert rule(ctx, "LANE-CONNECT").empty


def test_segments_tagged_through_that_close_a_ring_are_named_as_a_ring():
    got = rule(context(fire_lanes=_ring_segments(tag="through")), "LANE-CONNECT")
    assert all("tagged through" in m and "make it ring" in m for m in got["message_en"])


def test_a_spur_into_the_courtyard_of_a_segmented_ring_is_a_dead_end():
    spur = lane("SP", box(97, 7, 103, 80))  # from the south lane into the courtyard, no turnaround
    ctx = context(fire_lanes=[*_ring_segments(), spur],
                  entrances=[{"ref": "G1", "kind": "vehicle", "geometry": Point(10, 0)},
                             {"ref": "G2", "kind": "vehicle", "geometry": Point(190, 0)}])
    assert kinds(ctx) == {"RS": "ring", "RE": "ring", "RN": "ring", "RW": "ring", "SP": "dead_end"}
    assert set(rule(ctx, "LANE-TURNAROUND")["subject_ref"]) == {"SP"}


def test_lanes_meeting_at_one_crossing_enclose_nothing_and_are_no_ring():
    # four lanes from a crossing square: every pair touches (a cycle of the lane graph), no courtyard
    arms = [lane("C0", box(94, 94, 106, 106)), lane("CN", box(97, 106, 103, 180)), lane("CS", box(97, 0, 103, 94)),
            lane("CE", box(106, 97, 190, 103)), lane("CW", box(20, 97, 94, 103))]
    got = kinds(context(fire_lanes=arms, entrances=[{"ref": "G1", "kind": "vehicle", "geometry": Point(100, 0)}]))
    assert "ring" not in got.values()
    assert got["CS"] == "through" and got["CN"] == "dead_end"
