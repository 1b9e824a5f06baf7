"""Roads as drawn: a city street drawn as its centre line with a width (OSM) or as its road-surface polygon (CAD,
surveys) gets the same findings from every rule that reads roads (entrances and perimeter parking, hydrant
placement, spacing and hose-lay cover, lane entries and turns), on both sides of each threshold, in a projected
CRS and from a GCJ-02 input."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from shapely.geometry import LineString, Point, box

from gis.checks import network as nw
from gis.checks import roads as rd
from gis.checks.context import CheckContext, build_contexts
from gis.checks.profiles import load_profile
from gis.checks.runner import check_context
from gis.coords import from_storage, to_storage

#: Local metres shifted into UTM 51N near Ningbo and stored as EPSG:4490, like real data.
X0, Y0 = 360_000.0, 3_300_000.0


def _metric(rows: list[dict]) -> gpd.GeoDataFrame:
    """Rows in local metres as a UTM 51N frame (the checks' own CRS, no storage round trip)."""
    rows = [dict(r) for r in rows]
    geoms = [shapely.affinity.translate(r.pop("geometry"), X0, Y0) for r in rows]
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=32651)


def _frame(rows: list[dict], *, gcj: bool) -> gpd.GeoDataFrame:
    out = _metric(rows).to_crs(4490)
    if gcj:  # delivered in GCJ-02 (a web map's coordinates), imported through the storage transform
        shifted = from_storage(np.asarray(out.geometry.values, dtype=object), "gcj02")
        out = out.set_geometry(gpd.GeoSeries(to_storage(shifted, "gcj02"), crs=4490))
    return out


def street(ref: str, centre: LineString, width: float, *, drawn: bool, kind: str = "city") -> dict:
    """A street as OSM draws it (centre line, width_m) or as CAD draws it (the surface polygon, no width)."""
    if drawn:
        return {"ref": ref, "kind": kind, "geometry": centre.buffer(width / 2, cap_style="flat", join_style="mitre")}
    return {"ref": ref, "kind": kind, "width_m": width, "geometry": centre}


# One compound (0..200 m square). City road R1 along its south side: centre y = -7, 12 m wide (kerbs y -1 and -13);
# side road R2 south from R1 at x = 250, 10 m wide (kerbs x 245 and 255). Vehicle gate G1 at (10, 0), 8 m wide,
# a dead-end lane north from it and an internal road up its middle (OSM: from R1's centre line; CAD: from the kerb).
def district(*, drawn: bool, gcj: bool = False, building_y: float = 43.5, van_top: float = -4.8,
             r2_last: float = -280.0) -> CheckContext:
    r1, r2 = LineString([(-150, -7), (400, -7)]), LineString([(250, -7), (250, -400)])
    if drawn:  # CAD: each street's surface on its own, the side street up to the main street's kerb
        r2 = LineString([(250, -13), (250, -400)])
    layers = {
        "compounds": [{"ref": "C1", "geometry": box(0, 0, 200, 200)}],
        "roads": [street("R1", r1, 12.0, drawn=drawn), street("R2", r2, 10.0, drawn=drawn),
                  {"ref": "I1", "kind": "internal", "width_m": 4.0, "compound_ref": "C1",
                   "geometry": LineString([(10, -1 if drawn else -7), (10, 180)])}],
        "entrances": [{"ref": "G1", "kind": "vehicle", "width_m": 8.0, "compound_ref": "C1",
                       "geometry": Point(10, 0)}],
        "fire_lanes": [{"ref": "L1", "compound_ref": "C1", "geometry": box(6, 0, 14, 60)}],
        "buildings": [{"ref": "B1", "compound_ref": "C1", "floors": 6, "height_m": 18.0,
                       "geometry": box(11, building_y, 21, building_y + 10)}],
        "hydrants": [
            # R1: 1.5 m (fine), 2.3 m (too far) and 0.3 m (too near) from the south kerb
            {"ref": "H1", "geometry": Point(100, -14.5)}, {"ref": "H2", "geometry": Point(120, -15.3)},
            {"ref": "H3", "geometry": Point(140, -13.3)},
            # R2, 1.5 m east of its kerb: 118.5 m apart, then `-158.5 - r2_last` m
            {"ref": "H4", "geometry": Point(256.5, -40)}, {"ref": "H5", "geometry": Point(256.5, -158.5)},
            {"ref": "H6", "geometry": Point(256.5, r2_last)},
        ],
        # an 8 m van across the gate front on R1, leaving `-1 - van_top` m to the kerb on the gate's side
        "parking": [{"ref": "P1", "kind": "vehicle", "vehicle_type": "van",
                     "geometry": box(6, van_top - 1.8, 14, van_top)}],
    }
    return build_contexts({k: _frame(v, gcj=gcj) for k, v in layers.items()}, profile="cn-gb")[0]


def fails(ctx: CheckContext) -> pd.DataFrame:
    """(rule, subject, verdict, measured) of every finding, in a stable order."""
    found = check_context(ctx)
    out = pd.DataFrame({"rule": found["rule"], "subject": found["subject_ref"], "verdict": found["verdict"],
                        "measured": pd.to_numeric(found["measured"], errors="coerce")})
    return out.sort_values(["rule", "subject", "verdict"]).reset_index(drop=True)


def same_findings(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert a[["rule", "subject", "verdict"]].equals(b[["rule", "subject", "verdict"]]), (a, b)
    np.testing.assert_allclose(a["measured"].to_numpy(), b["measured"].to_numpy(), atol=0.05, equal_nan=True)


def gate_parking(frames: dict[str, gpd.GeoDataFrame]) -> pd.DataFrame:
    """The PARK-ENTRANCE failures of compound C1 checked on UTM frames."""
    found = fails(CheckContext(compound_ref="C1", crs=pyproj.CRS("EPSG:32651"), profile=load_profile("cn-gb"),
                               layers=frames))
    return found[found["rule"] == "PARK-ENTRANCE"]


def subjects(found: pd.DataFrame, rule: str, verdict: str = "fail") -> set[str]:
    return set(found.loc[(found["rule"] == rule) & (found["verdict"] == verdict), "subject"])


CASES = {
    "below": {"building_y": 43.5, "van_top": -4.8, "r2_last": -276.5},   # hose 149 m, 3.8 m left, 118 m gap
    "above": {"building_y": 45.5, "van_top": -5.2, "r2_last": -280.5},   # hose 151 m, 4.2 m left, 122 m gap
}


@pytest.mark.parametrize("gcj", [False, True], ids=["utm", "gcj02"])
@pytest.mark.parametrize("case", list(CASES))
def test_a_street_drawn_as_a_surface_gets_the_findings_of_its_centre_line(case: str, gcj: bool) -> None:
    kw = CASES[case]
    line = fails(district(drawn=False, gcj=gcj, **kw))
    surface = fails(district(drawn=True, gcj=gcj, **kw))
    same_findings(surface, line)
    above = case == "above"
    for found in (line, surface):
        # HYD-PLACEMENT: 1.5 m from the kerb is fine, 2.3 m and 0.3 m are not (on both streets)
        assert subjects(found, "HYD-PLACEMENT") == {"H2", "H3"}
        # HYD-COVERAGE along R1 and the internal road: 7.5 + 90 + 7 + y + 1 m
        assert subjects(found, "HYD-COVERAGE") == ({"B1"} if above else set())
        # PARK-ENTRANCE: the van leaves 3.8 m (blocks) or 4.2 m (does not)
        assert subjects(found, "PARK-ENTRANCE") == (set() if above else {"P1"})
        # HYD-SPACING along R2: 118 m passes, 122 m fails
        assert subjects(found, "HYD-SPACING") == ({"H5"} if above else set())
        # the lane enters from the gate and the road: a dead end without a turnaround, not an unreachable lane
        assert subjects(found, "LANE-TURNAROUND") == {"L1"}
        assert subjects(found, "LANE-CONNECT") == set() and subjects(found, "LANE-CLEAR", "cannot_judge") == set()
    measured = surface.set_index(["rule", "subject"])["measured"]
    if above:
        assert measured[("HYD-COVERAGE", "B1")] == pytest.approx(151.0, abs=0.05)
        assert measured[("HYD-SPACING", "H5")] == pytest.approx(122.0, abs=0.05)
    else:
        assert measured[("PARK-ENTRANCE", "P1")] == pytest.approx(3.8, abs=0.02)


def test_a_surface_s_centre_line_and_width_are_derived_once_and_kept() -> None:
    centre = LineString([(0, 0), (200, 0), (200, 150)])
    frame = gpd.GeoDataFrame({"ref": ["R1", "R2"], "kind": ["city", "city"], "width_m": [None, 7.0]},
                             geometry=[centre.buffer(6, cap_style="flat", join_style="mitre"),
                                       LineString([(0, 50), (100, 50)])], crs=32651)
    got = rd.as_drawn(frame)
    assert list(got.geometry.geom_type) == ["MultiLineString", "LineString"]
    assert got.geometry.iloc[0].hausdorff_distance(centre) < 2.0  # the medial axis cuts the mitred corner
    assert got.geometry.iloc[0].length == pytest.approx(350.0, abs=2.0)
    assert list(got["width_m"]) == [pytest.approx(12.0, abs=0.05), 7.0]
    assert list(got["estimated"]) == [True, False]
    assert got[rd.SURFACE_COLUMN].iloc[0].equals(frame.geometry.iloc[0]) and got[rd.SURFACE_COLUMN].iloc[1] is None
    surfaces = rd.surfaces(got)
    assert surfaces[0].equals(frame.geometry.iloc[0])  # the drawn surface itself, not a buffer of its centre line
    assert surfaces[1].area == pytest.approx(700.0)
    again = rd.as_drawn(got)
    assert again is got  # nothing left to derive
    assert rd.as_drawn(frame.iloc[[1]]) is not None and len(rd.as_drawn(frame.iloc[:0])) == 0


def test_lines_ending_on_a_surface_join_its_centre_line() -> None:
    main = LineString([(0, 0), (300, 0)]).buffer(6, cap_style="flat")           # kerbs y -6 and 6
    side = LineString([(100, -6), (100, -100)]).buffer(4, cap_style="flat")     # a CAD side street to the kerb
    walk = LineString([(200, 6.5), (200, 80)])                                  # a walkway 0.5 m short of the kerb
    far = LineString([(50, 20), (50, 80)])                                      # 14 m from the road: no link
    frame = rd.as_drawn(gpd.GeoDataFrame({"ref": ["M", "S", "W", "F"]}, geometry=[main, side, walk, far],
                                         crs=32651))
    lines = rd.network_lines(frame)
    links = lines[4:]
    assert len(links) == 2
    got = sorted((round(ln.coords[0][0]), round(ln.coords[0][1]), round(ln.length, 1)) for ln in links)
    assert got == [(100, -6, 6.0), (200, 6, 6.5)] or got == [(100, -6, 6.0), (200, 7, 6.5)]
    # the surfaces, the side street and the walkway are one network
    net = nw.build_network(lines)
    pieces = {int(net.piece[net.u[k]]) for k in range(len(net.edges)) if net.edges[k].distance(Point(50, 50)) > 1}
    assert len(pieces) == 1


@pytest.mark.parametrize("gcj", [False, True], ids=["utm", "gcj02"])
@pytest.mark.parametrize(("second", "too_far"), [(158.0, False), (162.0, True)], ids=["118-m", "122-m"])
def test_a_street_drawn_partly_as_a_surface_is_one_street(second: float, too_far: bool, gcj: bool) -> None:
    # 甲路: a centre line up to x = 100, its surface beyond; hydrants either side of the seam are consecutive
    layers = {
        "compounds": [{"ref": "C1", "geometry": box(0, 0, 200, 200)}],
        "roads": [{"ref": "R1a", "name": "甲路", "kind": "city", "width_m": 12.0,
                   "geometry": LineString([(-150, -7), (100, -7)])},
                  {"ref": "R1b", "name": "甲路", "kind": "city",
                   "geometry": LineString([(100, -7), (400, -7)]).buffer(6, cap_style="flat")}],
        "hydrants": [{"ref": "H1", "geometry": Point(40, -14.5)}, {"ref": "H2", "geometry": Point(second, -14.5)},
                     {"ref": "H3", "geometry": Point(250, -14.5)}],
    }
    ctx = build_contexts({k: _frame(v, gcj=gcj) for k, v in layers.items()}, profile="cn-gb")[0]
    found = fails(ctx)
    spacing = found[found["rule"] == "HYD-SPACING"]
    assert list(spacing["subject"]) == (["H1"] if too_far else [])
    if too_far:
        assert spacing["measured"].iloc[0] == pytest.approx(122.0, abs=0.05)


@pytest.mark.parametrize("gcj", [False, True], ids=["utm", "gcj02"])
@pytest.mark.parametrize(("width", "too_narrow"), [(12.0, True), (16.0, False)])
def test_the_entrance_turn_from_a_road_drawn_as_a_surface(width: float, too_narrow: bool, gcj: bool) -> None:
    # a 4 m gate and a 4 m lane north from it: a 9 m turn off a 12 m carriageway does not fit, off 16 m it does
    centre = LineString([(-150, -1 - width / 2), (350, -1 - width / 2)])
    found = {}
    for drawn in (False, True):
        layers = {
            "compounds": [{"ref": "C1", "geometry": box(-50, 0, 250, 250)}],
            "roads": [street("R1", centre, width, drawn=drawn)],
            "entrances": [{"ref": "G1", "kind": "vehicle", "width_m": 4.0, "geometry": Point(10, 0)}],
            "fire_lanes": [{"ref": "L1", "geometry": box(8, 0, 12, 100)}],
        }
        ctx = build_contexts({k: _frame(v, gcj=gcj) for k, v in layers.items()}, profile="cn-gb")[0]
        found[drawn] = fails(ctx)
    same_findings(found[True], found[False])
    turn = found[True][found[True]["rule"] == "LANE-TURN"]
    assert set(turn["subject"]) == ({"G1"} if too_narrow else set())


@pytest.mark.parametrize(("top", "blocked"), [(0.2, True), (-0.2, False)])
def test_gate_parking_is_measured_to_the_drawn_kerb_not_the_mean_width(top: float, blocked: bool) -> None:
    # an 8 m carriageway (kerbs y -4 and 4) with a lay-by on the far side in front of the gate (y -8 for x -30..30):
    # the mean width and the centre line bulge towards the lay-by, the kerb on the gate's side stays at y = 4, so
    # a van across the gate front leaves 3.8 m (blocks) or 4.2 m (does not), as on a straight 8 m road
    surface = shapely.union(box(-200, -4, 200, 4), box(-30, -8, 30, -4))
    layers = {
        "compounds": [{"ref": "C1", "geometry": box(-100, 6, 100, 200)}],
        "roads": [{"ref": "R1", "kind": "city", "geometry": surface}],
        "entrances": [{"ref": "E1", "kind": "vehicle", "width_m": 6.0, "compound_ref": "C1", "geometry": Point(0, 6)}],
        "parking": [{"ref": "P1", "kind": "vehicle", "vehicle_type": "van", "geometry": box(-4, top - 1.8, 4, top)}],
    }
    park = gate_parking({k: _metric(v) for k, v in layers.items()})
    assert list(park["subject"]) == (["P1"] if blocked else [])
    if blocked:
        assert park["measured"].iloc[0] == pytest.approx(3.8, abs=0.02)


@pytest.mark.parametrize("centre_given", [False, True], ids=["medial-axis", "centre-line-given"])
@pytest.mark.parametrize(("room", "blocked"), [(3.8, True), (4.2, False)])
def test_a_forecourt_drawn_into_the_road_surface_is_road_however_deep(room: float, blocked: bool,
                                                                       centre_given: bool) -> None:
    # a 6 m carriageway (kerbs y -3 and 3) whose surface runs up to a gate 22 m back from the kerb (a forecourt
    # x -3..0.8 + room, y 3..25); a car on the forecourt 7-9 m in front of the kerb covers all but 2.2 m of the
    # gate's width. The truck turns in round it through the forecourt: `room` m beside the car (3.8 blocks, 4.2
    # does not). The forecourt reaches 22 m past the kerb, more than three mean half-widths of the surface (9 m):
    # the road is the drawn surface out to the gate, as a surface with its centre line given (a straight line
    # along the carriageway, width 6 m) and as one whose centre line is derived (it branches into the forecourt)
    surface = shapely.union(box(-200, -3, 200, 3), box(-3, 3, 0.8 + room, 25))
    road = {"ref": "R1", "kind": "city", "geometry": surface}
    layers = {
        "compounds": [{"ref": "C1", "geometry": box(-100, 25, 100, 200)}],
        "roads": [road],
        "entrances": [{"ref": "E1", "kind": "vehicle", "width_m": 6.0, "compound_ref": "C1",
                       "geometry": Point(0, 25)}],
        "parking": [{"ref": "P1", "kind": "vehicle", "geometry": box(-3, 10, 0.8, 12)}],
    }
    frames = {k: _metric(v) for k, v in layers.items()}
    if centre_given:  # a normalised row: the centre line as geometry, the drawn surface beside it
        roads = frames["roads"]
        roads[rd.SURFACE_COLUMN] = [roads.geometry.iloc[0]]
        roads["width_m"] = [6.0]
        frames["roads"] = roads.set_geometry(gpd.GeoSeries(
            [shapely.affinity.translate(LineString([(-200, 0), (200, 0)]), X0, Y0)], crs=32651))
    park = gate_parking(frames)
    assert list(park["subject"]) == (["P1"] if blocked else [])
    if blocked:
        assert park["measured"].iloc[0] == pytest.approx(3.8, abs=0.02)
