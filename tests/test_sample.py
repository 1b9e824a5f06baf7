"""The sample district: deterministic, realistic, clean by construction except for its recorded planted hazards."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from sqlalchemy import text

from gis.checks import roads as rd
from gis.checks.catalog import RULES
from gis.checks.runner import run_on_frames
from gis.coords import local_metric_crs
from gis.layers import LAYERS
from gis.sample import SCALES, generate, load_sample, write_sample
from gis.sample.boundaries import DISTRICTS, district_outline, read_boundaries
from gis.sample.hoselay import hose_lay
from gis.store import layer_columns


@pytest.fixture(scope="module")
def sample():
    return generate(district="yinzhou", scale="s", seed=1)


@pytest.fixture(scope="module")
def changle():
    return generate(district="changle", scale="s", seed=2)


def _g(frame: gpd.GeoDataFrame) -> np.ndarray:
    return np.asarray(frame.geometry.values, dtype=object)


def _metric(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    c = shapely.centroid(shapely.union_all(frame.geometry.values))
    return frame.to_crs(local_metric_crs(c.x, c.y))


# --- determinism ---------------------------------------------------------------------------------------------------


def test_same_seed_gives_identical_layers_and_truth(sample):
    again = generate(district="yinzhou", scale="s", seed=1)
    for name, frame in sample.layers.items():
        other = again.layers[name]
        pd.testing.assert_frame_equal(frame.drop(columns="geometry"), other.drop(columns="geometry"))
        assert shapely.equals_exact(frame.geometry.values, other.geometry.values, tolerance=0).all(), name
    pd.testing.assert_frame_equal(sample.ground_truth, again.ground_truth)


def test_different_seed_gives_a_different_sample(sample):
    other = generate(district="yinzhou", scale="s", seed=2)
    assert not sample.ground_truth.equals(other.ground_truth)
    b1, b2 = sample.layers["buildings"], other.layers["buildings"]
    assert len(b1) != len(b2) or not shapely.equals_exact(b1.geometry.values, b2.geometry.values).all()


# --- shape of the sample -------------------------------------------------------------------------------------------


def test_scale_s_is_one_street_office_of_about_forty_compounds(sample, changle):
    for s in (sample, changle):
        assert len(s.layers["compounds"]) == SCALES["s"] == 40
        assert s.layers["compounds"]["street_code"].nunique() == 1
        assert len(s.layers["buildings"]) > 25 * 40 * 0.8


def test_every_layer_has_its_declared_columns_in_storage_crs(sample):
    assert set(sample.layers) == set(LAYERS) - {"hazards"}
    for name, frame in sample.layers.items():
        assert frame.crs.to_epsg() == 4490, name
        assert list(frame.columns) == [*layer_columns(LAYERS[name]), "geometry"], name


def test_refs_are_unique_strings(sample):
    for name, frame in sample.layers.items():
        refs = frame["ref"]
        assert refs.map(type).eq(str).all(), name
        assert refs.is_unique, name


def test_geometries_are_valid_and_inside_their_street_office(sample):
    streets = sample.layers["streets"].set_index("ref")
    for name, frame in sample.layers.items():
        if name == "streets" or not len(frame):
            continue
        assert frame.geometry.is_valid.all(), name
        assert frame["street_code"].notna().all(), name
        for code, part in frame.groupby("street_code"):
            poly = streets.geometry[code]
            assert shapely.within(part.geometry.values, poly).all(), (name, code)


def test_in_compound_features_lie_in_their_compound(sample):
    comp = sample.layers["compounds"].set_index("ref")
    for name in ("buildings", "fire_lanes", "aerial_areas", "hydrants", "illegal_structures", "ebike_sites"):
        frame = sample.layers[name]
        assert frame["compound_ref"].notna().all(), name
        outline = comp.geometry.reindex(frame["compound_ref"]).values
        inside = shapely.covered_by(frame.geometry.values, shapely.buffer(outline, 1e-7))
        assert inside.all(), (name, frame["ref"][~inside].tolist()[:3])


def test_street_polygons_cover_the_district_outline():
    for key in DISTRICTS:
        streets = read_boundaries(key)
        metric = _metric(streets)
        outline = gpd.GeoSeries([district_outline(key)], crs=4490).to_crs(metric.crs).iloc[0]
        assert shapely.area(shapely.union_all(metric.geometry.values)) / shapely.area(outline) > 0.99
        assert metric.geometry.is_valid.all()
        # a partition: the street offices do not overlap
        assert metric.geometry.area.sum() / shapely.area(outline) < 1.001


# --- ground truth ---------------------------------------------------------------------------------------------------


def test_ground_truth_names_existing_features_with_notes(sample):
    gt = sample.ground_truth
    assert list(gt.columns) == ["rule", "subject_layer", "subject_ref", "compound_ref", "note"]
    assert not gt.duplicated(["rule", "subject_layer", "subject_ref"]).any()
    for layer, refs in gt.groupby("subject_layer")["subject_ref"]:
        assert set(refs) <= set(sample.layers[layer]["ref"]), layer
    assert gt["note"].str.len().gt(4).all()


# --- database ------------------------------------------------------------------------------------------------------


@pytest.mark.db
def test_load_sample_writes_every_layer_with_links(db, sample):
    load_sample(sample, engine=db)
    with db.connect() as conn:
        for name, frame in sample.layers.items():
            n = conn.execute(text(f"SELECT count(*) FROM {name}")).scalar_one()
            assert n == len(frame), name
        for name, frame in sample.layers.items():
            if name in ("streets", "compounds") or not frame["compound_ref"].notna().any():
                continue
            missing = conn.execute(text(
                f"SELECT count(*) FROM {name} WHERE compound_ref IS NOT NULL AND "
                f"(compound_id IS NULL OR street_code IS NULL)")).scalar_one()
            assert missing == 0, name
            linked = conn.execute(text(
                f"SELECT count(*) FROM {name} t JOIN compounds c ON c.id = t.compound_id "
                f"WHERE c.ref = t.compound_ref AND c.street_code = t.street_code")).scalar_one()
            assert linked == int(frame["compound_ref"].notna().sum()), name
        assert conn.execute(text("SELECT count(*) FROM hazards")).scalar_one() == 0


@pytest.mark.db
def test_load_sample_replaces_what_was_there(db, sample, changle):
    load_sample(changle, engine=db)
    load_sample(sample, engine=db)
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM compounds")).scalar_one() == 40
        codes = {r[0] for r in conn.execute(text("SELECT DISTINCT street_code FROM buildings"))}
    assert codes == set(sample.layers["buildings"]["street_code"])


# --- files ---------------------------------------------------------------------------------------------------------


def test_write_sample_files_read_back_with_pyogrio(tmp_path, sample):
    out = write_sample(sample, tmp_path / "sample")
    layers = {name for name, _ in pyogrio.list_layers(out / "layers.gpkg")}
    assert layers == {n for n, f in sample.layers.items() if len(f)}
    for name in ("buildings", "hydrants", "roads", "obstructions"):
        back = pyogrio.read_dataframe(out / "layers.gpkg", layer=name)
        assert len(back) == len(sample.layers[name])
        assert back.crs.to_epsg() == 4490
        assert set(back["ref"]) == set(sample.layers[name]["ref"])
    meta = json.loads((out / "ground_truth.json").read_text(encoding="utf-8"))
    assert meta["seed"] == 1 and len(meta["ground_truth"]) == len(sample.ground_truth)
    assert {tuple(r[k] for k in ("rule", "subject_layer", "subject_ref")) for r in meta["ground_truth"]} == set(
        map(tuple, sample.ground_truth[["rule", "subject_layer", "subject_ref"]].to_numpy()))


# --- every rule is planted ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_rule_of_the_catalogue_has_planted_failures_at_scale_s(seed):
    truth = generate(district="yinzhou", scale="s", seed=seed).ground_truth
    assert set(truth["rule"]) == set(RULES)
    assert truth.groupby("rule").size().min() >= 2


def test_changle_sample_plants_every_rule_too(changle):
    assert set(changle.ground_truth["rule"]) == set(RULES)


def test_implied_failures_are_recorded(sample):
    gt = sample.ground_truth
    keys = set(map(tuple, gt[["rule", "subject_layer", "subject_ref"]].to_numpy()))
    # SEP-ILLEGAL and STRUCT-SEPARATION go together, on the structure
    sep = {r for rule, _, r in keys if rule == "SEP-ILLEGAL"}
    assert sep and sep == {r for rule, _, r in keys if rule == "STRUCT-SEPARATION"}
    # PARK-HYDRANT implies HYD-ACCESS on a hydrant within 5 m
    m = _metric(sample.layers["parking"])
    hyd = sample.layers["hydrants"].to_crs(m.crs).set_index("ref")
    access = {r for rule, _, r in keys if rule == "HYD-ACCESS"}
    for ref in gt.loc[gt["rule"] == "PARK-HYDRANT", "subject_ref"]:
        geom = m.set_index("ref").geometry[ref]
        near = hyd.index[hyd.geometry.distance(geom) <= 5.0]
        assert len(near) and set(near) <= access, ref


# --- clean by construction -------------------------------------------------------------------------------------------


def _truth(sample, rule):
    gt = sample.ground_truth
    return set(gt.loc[gt["rule"] == rule, "subject_ref"])


def _pieces(geom) -> int:
    parts = shapely.get_parts(geom)
    return int((shapely.area(parts) > 1e-4).sum())


def test_clean_lanes_are_at_least_4_3_m_wide_everywhere(sample):
    lanes = _metric(sample.layers["fire_lanes"])
    narrow = _truth(sample, "LANE-WIDTH")
    assert narrow
    for ref, geom in zip(lanes["ref"], lanes.geometry.values, strict=True):
        one_piece = _pieces(shapely.buffer(geom, -2.15)) == 1
        assert one_piece == (ref not in narrow), ref


def test_clean_obstructions_on_lanes_leave_4_3_m(sample):
    lanes = _metric(sample.layers["fire_lanes"])
    obs = sample.layers["obstructions"].to_crs(lanes.crs)
    ground = obs[obs["bottom_m"].fillna(0) <= 0]
    ill = sample.layers["illegal_structures"].to_crs(lanes.crs)
    ill = ill[ill["status"] != "demolished"]
    blocked = _truth(sample, "LANE-CLEAR")
    clutter = np.concatenate([
        shapely.buffer(ground.geometry.values, np.where(ground.geometry.geom_type == "Point", 0.3, 0.0)),
        ill.geometry.values])
    tree = shapely.STRtree(clutter)
    checked = 0
    for ref, lane in zip(lanes["ref"], lanes.geometry.values, strict=True):
        if ref in blocked or ref in _truth(sample, "LANE-WIDTH"):
            continue
        hit = tree.query(lane, predicate="intersects")
        if not len(hit):
            continue
        free = shapely.difference(lane, shapely.union_all(clutter[hit]))
        before = _pieces(shapely.buffer(lane, -2.15))
        assert _pieces(shapely.buffer(free, -2.15)) == before, ref
        checked += 1
    assert checked >= 5


def test_clean_canopies_and_lines_keep_4_m_headroom(sample):
    obs = sample.layers["obstructions"]
    low = obs[(obs["bottom_m"] > 0) & (obs["bottom_m"] < 4.3)]
    assert set(low["ref"]) == _truth(sample, "LANE-HEADROOM") & set(obs["ref"])
    assert (obs.loc[(obs["bottom_m"] > 0) & ~obs["ref"].isin(low["ref"]), "bottom_m"] >= 4.3).all()


def _classes(b: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Table 5.2.2 class (0 high-rise, 1 grade 一/二, 2 三, 3 四) and whether the height is known."""
    h = b["height_m"].to_numpy(dtype=float)
    h = np.where(np.isnan(h), b["floors"].astype(float).to_numpy() * 3.0, h)
    limit = np.where(b["use"].fillna("residential") == "residential", 27.0, 24.0)
    grade = b["fire_resistance_grade"].fillna("2").astype(str).to_numpy()
    cls = np.select([np.isin(grade, ["1", "2"]), grade == "3"], [1, 2], 3)
    return np.where(~np.isnan(h) & (np.nan_to_num(h) > limit), 0, cls), ~np.isnan(h)


def test_clean_building_pairs_keep_the_table_separation_with_margin(sample):
    b = _metric(sample.layers["buildings"]).reset_index(drop=True)
    table = np.array([[13, 9, 11, 14], [9, 6, 7, 9], [11, 7, 8, 10], [14, 9, 10, 12]], dtype=float)
    cls, known = _classes(b)
    g = b.geometry.values
    i, j = shapely.STRtree(g).query(g, predicate="dwithin", distance=15.0)
    keep = (i < j) & known[i] & known[j]
    i, j = i[keep], j[keep]
    d = shapely.distance(g[i], g[j])
    need = table[cls[i], cls[j]]
    refs = b["ref"].to_numpy()
    subjects = np.minimum(refs[i], refs[j])
    planted = _truth(sample, "SEP-BUILDINGS")
    bad = d < need
    assert set(subjects[bad]) == planted
    assert (d[bad] <= need[bad] - 0.3).all()
    assert (d[~bad] >= need[~bad] + 0.3).all()


def test_illegal_structures_fail_separation_exactly_when_planted(sample):
    b = _metric(sample.layers["buildings"]).reset_index(drop=True)
    s = sample.layers["illegal_structures"].to_crs(b.crs)
    s = s[s["status"] != "demolished"]
    cls, _ = _classes(b)
    need = np.array([14.0, 9.0, 10.0, 12.0])[cls]  # grade 四 against each class
    d = shapely.distance(_g(s)[:, None], _g(b)[None, :])
    too_close = (d < need[None, :]).any(axis=1)
    assert set(s["ref"][too_close]) == _truth(sample, "SEP-ILLEGAL")
    assert (np.abs(d - need[None, :]) >= 0.3).all()


def test_aerial_areas_are_sized_and_placed_with_margin(sample):
    a = _metric(sample.layers["aerial_areas"])
    b = sample.layers["buildings"].to_crs(a.crs).set_index("ref")
    planted = _truth(sample, "AERIAL-DISTANCE") | _truth(sample, "AERIAL-CONNECTED") | _truth(sample, "AERIAL-SIZE")
    lanes = shapely.union_all(sample.layers["fire_lanes"].to_crs(a.crs).geometry.values)
    for ref, geom, bref in zip(a["ref"], a.geometry.values, a["building_ref"], strict=True):
        d = shapely.distance(geom, b.geometry[bref])
        assert 5.0 + 0.3 <= d <= 10.0 - 0.3 or ref in planted, ref
        assert shapely.distance(geom, lanes) <= 0.2 or ref in planted, ref
        if ref not in planted:
            rect = shapely.oriented_envelope(geom)
            assert shapely.area(rect) - shapely.area(geom) < 0.05  # a rectangle
            sides = np.hypot(*np.diff(shapely.get_coordinates(rect)[:3], axis=0).T)
            assert sides.min() >= 10.3 and sides.max() >= 20.3, ref


def test_hydrants_parking_and_ebike_sites_keep_their_distances(sample):
    h = _metric(sample.layers["hydrants"])
    p = sample.layers["parking"].to_crs(h.crs)
    d = shapely.distance(_g(p)[:, None], _g(h)[None, :]).min(axis=1)
    close = d <= 5.0
    assert set(p["ref"][close]) == _truth(sample, "PARK-HYDRANT")
    assert (np.abs(d - 5.0) >= 0.3).all()
    e = sample.layers["ebike_sites"].to_crs(h.crs)
    sites = e[e["kind"] == "centralised_site"]
    b = sample.layers["buildings"].to_crs(h.crs)
    homes = b[b["use"].fillna("residential") == "residential"]
    d = shapely.distance(_g(sites)[:, None], _g(homes)[None, :]).min(axis=1)
    assert (np.abs(d - 6.0) >= 0.3).all()
    assert set(sites["ref"][d < 6.0]) <= _truth(sample, "EBIKE-SITE")


def test_every_building_is_covered_by_a_hydrant_unless_planted(sample):
    b = _metric(sample.layers["buildings"])
    h = sample.layers["hydrants"].to_crs(b.crs)
    h = h[h["status"] == "in_service"]
    roads = rd.as_drawn(sample.layers["roads"].to_crs(b.crs))  # surfaces read as the checks read them
    d = hose_lay(rd.network_lines(roads), h.geometry.values, b.geometry.values)
    straight = shapely.distance(_g(b)[:, None], _g(h)[None, :]).min(axis=1)
    networked = set(roads.loc[roads["kind"] != "city", "compound_ref"])
    planted = _truth(sample, "HYD-COVERAGE")
    in_net = b["compound_ref"].isin(networked).to_numpy()
    failing = np.where(in_net, d > 150.0, straight > 150.0)
    assert set(b["ref"][failing]) == planted
    assert (d[in_net & ~failing] <= 149.0).all()
    assert (np.abs(straight[~in_net] - 150.0) >= 0.3).all()


# --- scale -----------------------------------------------------------------------------------------------------------


def test_scale_m_is_a_district_of_800_compounds_with_every_rule_planted():
    m = generate(district="yinzhou", scale="m", seed=1)
    assert len(m.layers["compounds"]) == SCALES["m"] == 800
    assert len(m.layers["buildings"]) > 20_000
    assert len(m.layers["obstructions"]) > 100_000
    assert set(m.ground_truth["rule"]) == set(RULES)
    for name, frame in m.layers.items():
        assert frame["ref"].is_unique, name


def test_layout_was_drawn_in_every_compounds_own_utm_zone(sample):
    comp = sample.layers["compounds"]
    c = shapely.get_coordinates(shapely.centroid(comp.geometry.values))
    zones = {local_metric_crs(x, y).to_epsg() for x, y in c}
    assert zones == {sample.metric_crs.to_epsg()}


# --- roads drawn as surfaces ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2])
def test_city_roads_in_front_of_planted_gate_parking_are_drawn_as_surfaces(seed):
    s = generate(district="yinzhou", scale="s", seed=seed)
    roads = _metric(s.layers["roads"])
    drawn = roads[roads.geometry.geom_type == "MultiPolygon"]
    assert 2 <= len(drawn) <= 6 and (drawn["kind"] == "city").all() and drawn["width_m"].isna().all()
    parking = s.layers["parking"].to_crs(roads.crs)
    planted = parking[parking["ref"].str.contains("-KX")]  # PARK-ENTRANCE cases, failing and passing
    assert len(planted) and set(s.ground_truth["rule"]) >= {"PARK-ENTRANCE"}
    city = roads[roads["kind"] == "city"]
    near = shapely.STRtree(_g(city)).query_nearest(_g(planted), all_matches=False)[1]
    # planted gate parking stands on surfaces (up to four such roads a district)
    assert (city.geometry.geom_type.to_numpy()[near] == "MultiPolygon").sum() >= min(len(set(near)), 4) > 0


# --- a ring drawn as separate lanes --------------------------------------------------------------------------------


def test_a_ring_drawn_as_four_lanes_is_planted_once_failing_and_once_passing(sample):
    lanes = sample.layers["fire_lanes"]
    segments = lanes[lanes["name"].astype(str).str.match(r"^环形消防车道[南东北西]段$")]
    by_compound = segments.groupby("compound_ref")["ref"].apply(set)
    assert len(by_compound) == 2 and (by_compound.apply(len) == 4).all()
    # the four lanes of a ring meet end to end and enclose the courtyard together, and no `kind` says ring
    for refs in by_compound:
        joined = shapely.union_all(_g(_metric(segments[segments["ref"].isin(refs)])))
        assert joined.geom_type == "Polygon" and len(joined.interiors) == 1
    assert segments["kind"].isna().all()
    truth = sample.ground_truth
    failing = set(truth.loc[truth["subject_ref"].isin(segments["ref"]), "subject_ref"])
    assert set(truth.loc[truth["subject_ref"].isin(segments["ref"]), "rule"]) == {"LANE-CONNECT"}
    assert failing in set(map(frozenset, by_compound))  # one ring: all four segments, one gate
    # the checks read both as rings: the failing one fails LANE-CONNECT on every segment, nothing else does
    found = run_on_frames(sample.layers, families=("lanes",), compounds=list(by_compound.index))
    on_segments = found[found["subject_ref"].isin(segments["ref"])]
    assert set(zip(on_segments["rule"], on_segments["subject_ref"], strict=True)) == \
        {("LANE-CONNECT", ref) for ref in failing}
    assert set(on_segments["measured"]) == {1.0}
