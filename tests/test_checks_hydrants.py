"""Hydrant rules: hose-lay cover along the road network (or straight), spacing, access, placement, service."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from checks_support import CRS, by_rule, context, feat, line, pt, rect

from gis.checks import hydrants
from gis.checks import network as nw
from gis.checks.runner import run_on_frames

# --- HYD-COVERAGE -------------------------------------------------------------------------------------------

L_ROAD = feat("R1", line((0, 0), (75, 0), (75, 100)), kind="internal", width_m=4.0)


@pytest.mark.parametrize(("y0", "covered"), [(73.0, True), (75.0, False)])
def test_hose_lay_runs_along_an_l_shaped_road_149_vs_151_m(y0: float, covered: bool) -> None:
    # hydrant at the road's start; building 1 m east of the vertical leg: 75 + y0 + 1 m along the road,
    # although only ~107 m away in a straight line
    bld = feat("B1", rect(76, y0, 86, y0 + 10), floors=6)
    found = by_rule(hydrants.check(context(buildings=[bld], hydrants=[feat("H1", pt(0, 0))], roads=[L_ROAD])),
                  "HYD-COVERAGE")
    assert shapely.distance(pt(0, 0), bld["geometry"]) < 150
    if covered:
        assert len(found) == 0
    else:
        f = found.iloc[0]
        assert (f.verdict, f.subject_ref, f.subject_layer) == ("fail", "B1", "buildings")
        assert f.measured == pytest.approx(151.0)
        assert f.required == pytest.approx(150.0)
        assert "沿道路" in f.message and "along the network" in f.message_en
        assert f.geometry.equals(bld["geometry"])


def test_severity_of_an_uncovered_building_grows_with_its_floors() -> None:
    far = [feat("LOW", rect(76, 80, 86, 90), floors=2), feat("TALL", rect(76, 95, 86, 105), floors=20)]
    found = by_rule(hydrants.check(context(buildings=far, hydrants=[feat("H1", pt(0, 0))], roads=[L_ROAD])),
                  "HYD-COVERAGE").set_index("subject_ref")
    assert found.loc["TALL", "severity"] > found.loc["LOW", "severity"]


@pytest.mark.parametrize(("x", "covered"), [(149.0, True), (151.0, False)])
def test_without_a_network_the_distance_is_straight_and_said_so(x: float, covered: bool) -> None:
    bld = feat("B1", rect(x, -5, x + 10, 5))
    found = by_rule(hydrants.check(context(buildings=[bld], hydrants=[feat("H1", pt(0, 0))])), "HYD-COVERAGE")
    assert len(found) == int(not covered)
    if not covered:
        assert found.iloc[0].measured == pytest.approx(151.0)
        assert "直线" in found.iloc[0].message and "straight line" in found.iloc[0].message_en


def test_a_compound_with_only_city_roads_around_it_is_measured_straight() -> None:
    city = {"ref": "R9", "compound_ref": None, "kind": "city", "width_m": 10.0,
            "geometry": line((0, -6), (0, 300))}
    bld = feat("B1", rect(151, -5, 161, 5))
    f = by_rule(hydrants.check(context(buildings=[bld], hydrants=[feat("H1", pt(0, 0))], roads=[city])),
              "HYD-COVERAGE").iloc[0]
    assert f.measured == pytest.approx(151.0) and "straight line" in f.message_en


def test_hose_lay_is_measured_from_the_nearest_of_several_hydrants_and_hops_on_and_off_the_network() -> None:
    # H2 stands 3 m beside the vertical leg at y=60: 3 + (75 - 60) + 1 m to the building at y 75..85
    bld = feat("B1", rect(76, 75, 86, 85))
    ctx = context(buildings=[bld], hydrants=[feat("H1", pt(0, 0)), feat("H2", pt(72, 60))], roads=[L_ROAD])
    assert len(by_rule(hydrants.check(ctx), "HYD-COVERAGE")) == 0
    # the network distance of that building from H2 alone
    net = nw.build_network([L_ROAD["geometry"]])
    d = nw.target_distances(net, nw.attach(net, [pt(72, 60)], max_hop=150), nw.attach(net, [bld["geometry"]],
                                                                                           max_hop=150), 1)
    assert d[0] == pytest.approx(3 + 15 + 1)


def test_walkways_and_crossing_roads_are_noded_into_one_network() -> None:
    # a city road along y=0, an internal road crossing it at x=50 (not at a vertex), a walkway off it
    roads = [feat("CITY", line((0, 0), (200, 0)), kind="city", width_m=10.0),
             feat("INT", line((50, -20), (50, 120)), kind="internal", width_m=4.0),
             feat("WALK", line((50, 100), (140, 100)), kind="walkway", width_m=1.5)]
    bld = feat("B1", rect(141, 95, 151, 105))  # 0 + 50 + 100 + 90 + 1 = 241 m from H at the origin
    found = by_rule(hydrants.check(context(buildings=[bld], hydrants=[feat("H1", pt(0, 0))], roads=roads)),
                  "HYD-COVERAGE")
    assert found.iloc[0].measured == pytest.approx(241.0)
    near = feat("H2", pt(60, 1))  # 1 m hop, 10 m back to the crossing, 100 + 90 + 1 → 202 m
    found = by_rule(hydrants.check(context(buildings=[bld], hydrants=[near], roads=roads)), "HYD-COVERAGE")
    assert found.iloc[0].measured == pytest.approx(202.0)
    on_walk = feat("H3", pt(100, 101))  # same edge as the building: 1 + 40 + 1
    assert len(by_rule(hydrants.check(context(buildings=[bld], hydrants=[on_walk], roads=roads)),
                     "HYD-COVERAGE")) == 0


def test_unusable_hydrants_give_no_cover_and_fail_service() -> None:
    bld = feat("B1", rect(10, -5, 20, 5))
    found = hydrants.check(context(buildings=[bld], hydrants=[feat("H1", pt(0, 0), status="damaged",
                                                                     supply="municipal")]))
    cover = by_rule(found, "HYD-COVERAGE").iloc[0]
    assert cover.subject_ref == "B1" and cover.measured is None or pd_isna(cover.measured)
    service = by_rule(found, "HYD-SERVICE").iloc[0]
    assert (service.verdict, service.subject_ref, service.department) == ("fail", "H1", "水利")
    assert "损坏" in service.message and "damaged" in service.message_en


def pd_isna(value) -> bool:
    return bool(pd.isna(value))


@pytest.mark.parametrize("status", ["out_of_service", "low_pressure", "damaged"])
def test_every_unusable_status_fails_service_and_in_service_or_unknown_do_not(status: str) -> None:
    hyds = [feat("BAD", pt(0, 0), status=status), feat("OK", pt(50, 0), status="in_service"),
            feat("UNK", pt(90, 0), status="unknown"), feat("NONE", pt(130, 0))]
    found = by_rule(hydrants.check(context(hydrants=hyds)), "HYD-SERVICE")
    assert list(found.subject_ref) == ["BAD"]
    assert found.iloc[0].department == "物业/住建; 水利"  # supply not given: the catalogue's routing


# --- HYD-SPACING --------------------------------------------------------------------------------------------


def test_consecutive_hydrants_along_a_road_more_than_120_m_apart_fail() -> None:
    road = feat("R1", line((0, 0), (400, 0)), kind="city", width_m=10.0)
    # along the road: H-A at 0, H-C at 119 (gap 119), H-B at 240 (gap 121), H-D across the road at 300 (gap 60)
    hyds = [feat("H-A", pt(0, 6)), feat("H-B", pt(240, 6)), feat("H-C", pt(119, 6)), feat("H-D", pt(300, -6))]
    found = by_rule(hydrants.check(context(hydrants=hyds, roads=[road])), "HYD-SPACING")
    assert len(found) == 1
    f = found.iloc[0]
    assert (f.verdict, f.subject_ref, f.other_refs) == ("fail", "H-B", ["H-C"])
    assert f.measured == pytest.approx(121.0)
    assert f.required == pytest.approx(120.0)
    assert f.geometry.length == pytest.approx(121.0)


def test_spacing_is_measured_along_a_bent_road_not_straight() -> None:
    road = feat("R1", line((0, 0), (70, 0), (70, 70)), kind="internal", width_m=4.0)
    # 70 + 55 = 125 m along the road, 89 m straight
    found = by_rule(hydrants.check(context(hydrants=[feat("H1", pt(0, 2)), feat("H2", pt(72, 55))], roads=[road])),
                  "HYD-SPACING")
    assert found.iloc[0].measured == pytest.approx(125.0)


def test_on_a_ring_road_the_last_and_the_first_hydrant_are_consecutive() -> None:
    ring = feat("RING", line((0, 0), (100, 0), (100, 60), (0, 60), (0, 0)), kind="internal", width_m=4.0)
    # a 320 m ring: hydrants at 10, 110 and 200 m along it, so 130 m from the last back round to the first
    hyds = [feat("H1", pt(10, 1)), feat("H2", pt(99, 10)), feat("H3", pt(60, 59))]
    found = by_rule(hydrants.check(context(hydrants=hyds, roads=[ring])), "HYD-SPACING")
    assert len(found) == 1
    f = found.iloc[0]
    assert (f.subject_ref, f.other_refs) == ("H1", ["H3"])
    assert f.measured == pytest.approx(130.0) and f.geometry.length == pytest.approx(130.0)


def test_two_hydrants_on_a_ring_are_spaced_by_the_longer_arc() -> None:
    ring = feat("RING", line((0, 0), (100, 0), (100, 60), (0, 60), (0, 0)), kind="internal", width_m=4.0)
    found = by_rule(hydrants.check(context(hydrants=[feat("H1", pt(10, 1)), feat("H2", pt(99, 10))], roads=[ring])),
                  "HYD-SPACING")
    assert list(found.measured) == [pytest.approx(220.0)]


def test_hydrants_on_different_roads_are_not_consecutive() -> None:
    roads = [feat("R1", line((0, 0), (100, 0)), kind="city", width_m=8.0),
             feat("R2", line((0, 300), (100, 300)), kind="city", width_m=8.0)]
    found = hydrants.check(context(hydrants=[feat("H1", pt(0, 5)), feat("H2", pt(100, 295))], roads=roads))
    assert len(by_rule(found, "HYD-SPACING")) == 0


# --- HYD-ACCESS ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("gap", "blocked"), [(4.9, True), (5.1, False)])
def test_parking_within_5_m_blocks_the_hydrant(gap: float, blocked: bool) -> None:
    car = feat("P1", rect(gap, -0.9, gap + 4.8, 0.9), kind="vehicle")
    found = by_rule(hydrants.check(context(hydrants=[feat("H1", pt(0, 0))], parking=[car])), "HYD-ACCESS")
    assert len(found) == int(blocked)
    if blocked:
        f = found.iloc[0]
        assert (f.verdict, f.subject_ref, f.subject_layer, f.other_refs) == ("fail", "H1", "hydrants", ["P1"])
        assert f.measured == pytest.approx(4.9)
        assert f.department == "交警/公安"


def test_an_obstruction_on_the_hydrant_blocks_it_a_canopy_above_does_not() -> None:
    goods = feat("O1", rect(-1, -1, 1, 1), kind="stacked_goods")
    canopy = feat("O2", rect(-3, -3, 3, 3), kind="tree", bottom_m=5.0)
    found = by_rule(hydrants.check(context(hydrants=[feat("H1", pt(0, 0))], obstructions=[goods, canopy])),
                  "HYD-ACCESS")
    assert list(found.subject_ref) == ["H1"]
    assert found.iloc[0].other_refs == ["O1"]
    assert found.iloc[0].department == "综合执法"


def test_a_ground_lock_point_counts_by_its_footprint() -> None:
    lock = feat("O1", pt(0.2, 0), kind="ground_lock")  # 0.6 m footprint covers the hydrant 0.2 m away
    found = by_rule(hydrants.check(context(hydrants=[feat("H1", pt(0, 0))], obstructions=[lock])), "HYD-ACCESS")
    assert list(found.subject_ref) == ["H1"]


# --- HYD-PLACEMENT ------------------------------------------------------------------------------------------

ROAD = feat("R1", line((-100, 0), (100, 0)), kind="city", width_m=10.0)  # surface y -5..5


@pytest.mark.parametrize(("y", "fails"), [(5.3, True), (6.0, False), (6.9, False), (7.2, True), (3.0, True)])
def test_hydrant_should_stand_half_to_two_metres_from_the_road_edge(y: float, fails: bool) -> None:
    found = by_rule(hydrants.check(context(hydrants=[feat("H1", pt(0, y))], roads=[ROAD])), "HYD-PLACEMENT")
    assert len(found) == int(fails)
    if fails:
        f = found.iloc[0]
        assert (f.verdict, f.strength) == ("fail", "advisory")
        assert f.measured == pytest.approx(max(y - 5.0, 0.0))


def test_hydrant_near_a_building_wall_is_advised_against_unless_wall_mounted() -> None:
    bld = feat("B1", rect(-10, 10, 10, 20))  # wall at y=10, hydrant 4 m away
    found = by_rule(hydrants.check(context(hydrants=[feat("H1", pt(0, 6.0))], roads=[ROAD], buildings=[bld])),
                  "HYD-PLACEMENT")
    assert found.iloc[0].measured == pytest.approx(4.0) and found.iloc[0].required == pytest.approx(5.0)
    wall = feat("H2", pt(0, 6.0), kind="wall")
    assert len(by_rule(hydrants.check(context(hydrants=[wall], roads=[ROAD], buildings=[bld])), "HYD-PLACEMENT")) == 0


def test_road_without_width_cannot_judge_placement() -> None:
    road = feat("R1", line((-100, 0), (100, 0)), kind="city")
    f = by_rule(hydrants.check(context(hydrants=[feat("H1", pt(0, 6))], roads=[road])), "HYD-PLACEMENT").iloc[0]
    assert f.verdict == "cannot_judge" and "width_m" in f.message


def test_hydrants_of_another_compound_are_reported_there() -> None:
    other = feat("H9", pt(0, 0), status="damaged")
    other["compound_ref"] = "C2"
    assert len(hydrants.check(context(hydrants=[other]))) == 0


# --- network attachment and grouped partitions ---------------------------------------------------------------


def test_attach_lands_once_per_connected_piece_on_its_nearest_edge() -> None:

    # a comb: a road along y=0 with a spur every 20 m (dozens of edges within reach), plus a walkway cut off
    # from it 30 m north of the building
    comb = [line((0, 0), (200, 0))] + [line((x, 0), (x, -30)) for x in range(0, 201, 20)]
    island = line((90, 45), (120, 45))
    net = nw.build_network([*comb, island])
    bld = rect(101, 5, 109, 15)
    att = nw.attach(net, [bld], max_hop=150)
    assert int((shapely.dwithin(net.edges, bld, 150)).sum()) > 10
    pieces = net.piece[net.u[att.edge]]
    # one edge per piece (the wall is parallel to both: landings at the ends of the nearest stretch)
    assert len(set(pieces.tolist())) == 2 and len(set(att.edge.tolist())) == 2
    assert sorted(set(att.hop.round(6).tolist())) == pytest.approx([5.0, 30.0])
    assert {round(a, 6) for a in att.along[pieces == net.piece[net.u[att.edge[att.hop < 10][0]]]]} == {1.0, 9.0}
    # beyond the longest hop a piece is not joined
    assert set(nw.attach(net, [bld], max_hop=20).hop.round(6).tolist()) == {5.0}


# a U-shaped internal road whose near end passes 2 m south of the building and whose far leg runs past H1:
# 1 m hop + 260 + 45 + 200 m along it + 2 m hop = 508 m, though H1 is 62 m from the building in a straight line
U_ROAD = feat("U", line((15, 0), (15, -200), (60, -200), (60, 80)), kind="internal", width_m=4.0)
U_BLD = feat("B1", rect(10, 2, 20, 12))
U_HYD = feat("H1", pt(59, 60))


def test_the_building_s_nearest_road_does_not_decide_its_cover_another_piece_of_the_network_may() -> None:
    alone = by_rule(hydrants.check(context(buildings=[U_BLD], hydrants=[U_HYD], roads=[U_ROAD])), "HYD-COVERAGE")
    assert alone.iloc[0].measured == pytest.approx(508.0) and "along the network" in alone.iloc[0].message_en
    # a walkway of its own 48 m north of the building: 4 m hop + 30 m along it + 48.26 m hop = 82.26 m
    walk = feat("W", line((25, 60), (55, 60)), kind="walkway", width_m=1.5)
    ctx = context(buildings=[U_BLD], hydrants=[U_HYD], roads=[U_ROAD, walk])
    assert len(by_rule(hydrants.check(ctx), "HYD-COVERAGE")) == 0
    net = nw.build_network([U_ROAD["geometry"], walk["geometry"]])
    sources = nw.attach(net, [U_HYD["geometry"]], max_hop=150)
    via_nearest = nw.target_distances(net, sources, nw.nearest_landing(net, [U_BLD["geometry"]], max_hop=150), 1)
    exact = nw.target_distances(net, sources, nw.attach(net, [U_BLD["geometry"]], max_hop=150), 1)
    assert via_nearest[0] == pytest.approx(508.0) and exact[0] == pytest.approx(82.26, abs=0.01)
    # with a farther hydrant the walkway is the shorter lay but still too long: the exact distance is reported
    # (1 m hop + 115 m along a walkway branch + 48.26 m; about 628 m round the U)
    far, branch = feat("H2", pt(26, 175)), feat("W2", line((25, 60), (25, 175)), kind="walkway", width_m=1.5)
    found = by_rule(hydrants.check(context(buildings=[U_BLD], hydrants=[far], roads=[U_ROAD, walk, branch])),
                    "HYD-COVERAGE")
    assert found.iloc[0].measured == pytest.approx(1 + 115 + 48.26, abs=0.01)


def _frame(rows: list[dict]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=CRS).to_crs(4490)


def test_grouped_partitions_decide_network_or_straight_line_per_compound() -> None:

    # C1 has an internal road (measured along it); its neighbour C2 has none (measured in a straight line),
    # also when both share one partition
    layers = {
        "compounds": _frame([{"ref": "C1", "geometry": rect(0, 0, 100, 150)},
                             {"ref": "C2", "geometry": rect(120, 0, 220, 150)}]),
        "roads": _frame([{"ref": "CITY", "compound_ref": None, "kind": "city", "width_m": 12.0,
                          "geometry": line((-50, -7), (270, -7))},
                         feat("INT", line((10, -7), (10, 145)), kind="internal", width_m=4.0)]),
        "hydrants": _frame([feat("H1", pt(60, 30))]),
        # B1: 100 m straight, 37 (hop to the nearest road) + 50 + 137 + 50 = 274 m along the roads;
        # B2: 70 m straight (164 m along the roads)
        "buildings": _frame([feat("B1", rect(60, 130, 70, 140)),
                             {**feat("B2", rect(125, 55, 135, 65)), "compound_ref": "C2"}]),
    }
    grouped = run_on_frames(layers, families=("hydrants",), grouped=True)
    single = run_on_frames(layers, families=("hydrants",), grouped=False)
    cover = grouped[grouped.rule == "HYD-COVERAGE"]
    assert list(cover.subject_ref) == ["B1"]
    assert cover.iloc[0].measured == pytest.approx(274.0, abs=0.05) and "along the network" in cover.iloc[0].message_en
    cols = ["key", "verdict", "compound_ref", "measured", "message"]
    assert grouped[cols].astype(str).values.tolist() == single[cols].astype(str).values.tolist()


# --- HYD-PLACEMENT inside a compound: measured to the fire lane the hydrant stands beside ---------------------

FAR_ROAD = feat("R1", line((-100, -150), (100, -150)), kind="city", width_m=10.0)  # 145 m south of the lane


@pytest.mark.parametrize(("x", "fails"), [(6.3, True), (6.7, False), (7.8, False), (8.2, True)])
def test_a_hydrant_in_a_compound_is_measured_to_the_lane_edge(x: float, fails: bool) -> None:
    lane = feat("L1", rect(0, -100, 6, 100))  # lane edge at x = 6; no internal road drawn
    found = by_rule(hydrants.check(context(hydrants=[feat("H1", pt(x, 0))], roads=[FAR_ROAD], fire_lanes=[lane])),
                    "HYD-PLACEMENT")
    assert len(found) == int(fails)
    if fails:
        assert found.iloc[0].measured == pytest.approx(x - 6.0, abs=0.01)
        assert "fire lane" in found.iloc[0].message_en


def test_a_hydrant_by_the_lane_is_not_measured_to_the_distant_city_road() -> None:
    lane = feat("L1", rect(0, -100, 6, 100))
    found = by_rule(hydrants.check(context(hydrants=[feat("H1", pt(7.0, 0))], roads=[FAR_ROAD])), "HYD-PLACEMENT")
    assert found.iloc[0].measured > 100  # without the lane: 150 m from the only road
    found = by_rule(hydrants.check(context(hydrants=[feat("H1", pt(7.0, 0))], roads=[FAR_ROAD], fire_lanes=[lane])),
                    "HYD-PLACEMENT")
    assert found.empty


def test_points_attach_as_the_per_piece_nearest_search_attaches_them() -> None:
    # a street grid, spurs and detached walkways; hydrants land through the numpy pass for points, the same
    # hydrants as one-point multipoints through the per-piece nearest queries: the same hose lays to every building
    rng = np.random.default_rng(7)
    grid = [line((0, y), (300, y)) for y in (0, 100, 200)] + [line((x, 0), (x, 200)) for x in (0, 150, 300)]
    spurs = [line((x, 0), (x, -float(rng.uniform(5, 40)))) for x in rng.uniform(5, 295, 12)]
    islands = [line((x, 250), (x + 30, 260)) for x in (20, 140, 260)]
    # edges of several segments: a winding lane off the grid and a loop road (noding keeps their bends)
    winding = [line((300, 100), (320, 110), (330, 135), (345, 140), (350, 170))]
    loop = [shapely.LinearRing([(-60, 20), (-30, 20), (-25, 60), (-60, 70)])]
    net = nw.build_network([*grid, *spurs, *islands, *winding, *loop])
    assert (shapely.get_num_coordinates(net.edges) > 2).sum() >= 2
    points = [pt(*xy) for xy in rng.uniform([-70, -50], [360, 280], (60, 2))]
    multi = [shapely.MultiPoint([p]) for p in points]
    homes = [rect(x, y, x + 12, y + 8) for x, y in rng.uniform([-70, -40], [350, 270], (40, 2))]
    targets = nw.attach(net, homes, max_hop=150)
    by_points = nw.target_distances(net, nw.attach(net, points, max_hop=150), targets, len(homes))
    by_pieces = nw.target_distances(net, nw.attach(net, multi, max_hop=150), targets, len(homes))
    assert np.isfinite(by_points).sum() > 20
    np.testing.assert_allclose(by_points, by_pieces, rtol=0, atol=1e-9)


def test_a_walkway_drawn_to_the_wall_bounds_the_hose_lay_from_above() -> None:
    # walkways drawn from walls to a street grid (some to a wall away from the nearest street, some crossing
    # others); the bound through each wall's walkway is never below the exact lay, and where the way in runs
    # through the walkway's far end it is the exact lay to within the hop
    rng = np.random.default_rng(11)
    grid = [line((0, y), (300, y)) for y in (0, 100, 200)] + [line((x, 0), (x, 200)) for x in (0, 150, 300)]
    corners = rng.uniform([10, 10], [280, 180], (40, 2))
    homes = [rect(x, y, x + 12, y + 8) for x, y in corners]
    walks = [line((x + 6, y), (x + 6, float(rng.choice([0.0, 100.0, 200.0])))) for x, y in corners[:30]]
    net = nw.build_network([*grid, *walks])
    sources = nw.attach(net, [pt(*xy) for xy in rng.uniform([0, 0], [300, 200], (5, 2))], max_hop=150)
    nodes = nw.node_distances(net, sources)
    bound = nw.touch_bound(net, homes, nodes)
    exact = nw.target_distances(net, sources, nw.attach(net, homes, max_hop=150), len(homes), nodes=nodes)
    assert np.isfinite(bound[:30]).all() and np.isfinite(exact).all()
    assert (bound >= exact).all()
    assert (bound[:30] - exact[:30] < 0.01).sum() >= 5
    assert np.isinf(bound[30:]).sum() >= 3  # homes with no walkway of their own (unless another one touches)


def test_a_building_whose_walkway_is_the_long_way_round_is_measured_exactly() -> None:
    # the U road's building gets a walkway to its wall from the U's near leg: the bound through it (~500 m)
    # is above the limit, so the exact lay (through the walkway north of it, 82.26 m) decides: covered
    stub = feat("S", line((15, 2), (15, 0)), kind="walkway", width_m=1.5)
    walk = feat("W", line((25, 60), (55, 60)), kind="walkway", width_m=1.5)
    assert len(by_rule(hydrants.check(context(buildings=[U_BLD], hydrants=[U_HYD], roads=[U_ROAD, walk, stub])),
                       "HYD-COVERAGE")) == 0
    net = nw.build_network([U_ROAD["geometry"], walk["geometry"], stub["geometry"]])
    nodes = nw.node_distances(net, nw.attach(net, [U_HYD["geometry"]], max_hop=150))
    assert nw.touch_bound(net, [U_BLD["geometry"]], nodes)[0] > 150


def test_a_point_lands_on_its_nearest_edge_as_attach_lands_it() -> None:
    # points near the streets (the numpy search) and far from them (the nearest query): each landing is one of
    # attach's rows, at the least hop of all of them
    rng = np.random.default_rng(5)
    grid = [line((0, y), (300, y)) for y in (0, 100, 200)] + [line((x, 0), (x, 200)) for x in (0, 150, 300)]
    winding = [line((300, 100), (320, 110), (330, 135), (345, 140), (350, 170))]
    net = nw.build_network([*grid, *winding, shapely.LinearRing([(-60, 20), (-30, 20), (-25, 60), (-60, 70)])])
    points = [pt(*xy) for xy in rng.uniform([-100, -100], [400, 300], (80, 2))]
    land = nw.point_landing(net, points, max_hop=150)
    full = nw.attach(net, points, max_hop=150)
    rows = set(zip(full.item.tolist(), full.edge.tolist(), full.hop.tolist(), full.along.tolist(), strict=True))
    assert len(set(land.item.tolist())) == len(land.item) == len(set(full.item.tolist()))
    assert all(r in rows for r in zip(land.item.tolist(), land.edge.tolist(), land.hop.tolist(), land.along.tolist(),
                                      strict=True))
    least = np.full(len(points), np.inf)
    np.minimum.at(least, full.item, full.hop)
    np.testing.assert_array_equal(land.hop, least[land.item])
    assert (land.hop > 20).sum() >= 5 and (land.hop < 20).sum() >= 20  # both searches ran
