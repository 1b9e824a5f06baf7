"""OpenStreetMap import on a real extract (tests/data/helsinki.osm.pbf, © OpenStreetMap contributors, ODbL).

Counts are checked against an independent reading of the same file: a plain osmium pass with no location index,
no area assembler and no WKB (geometries rebuilt here from raw node coordinates), cross-checked with GDAL's OSM
driver where the two agree on what a feature is.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import osmium
import pyogrio
import pyproj
import pytest
import shapely
from click.testing import CliRunner
from db_support import table_counts
from sqlalchemy import text

from api.cli import cli
from gis.checks import runner
from gis.exporter import OSM_ATTRIBUTION, attribution_path, export_layer
from gis.osm import ATTRIBUTION, OsmImportError, derive_osm, import_osm
from gis.osm import tags as T
from gis.osm.reader import read_osm

DATA = Path(__file__).parent / "data" / "helsinki.osm.pbf"
REF = re.compile(r"^osm:(node|way|relation)/\d+$")

# The rules, restated literally (a change in gis.osm.tags must be deliberate and show up here).
LANE_HW = {"service", "living_street", "residential", "unclassified", "track"}
CITY_HW = {"trunk", "trunk_link", "primary", "primary_link", "secondary", "secondary_link", "tertiary",
           "tertiary_link", "unclassified", "residential", "living_street", "road", "busway", "service"}
WALK_HW = {"footway", "path", "pedestrian", "steps", "cycleway"}
GATES = {"gate", "swing_gate", "sliding_gate", "entrance", "lift_gate", "turnstile", "kissing_gate",
         "full-height_turnstile"}
OBSTACLES = {"bollard", "lift_gate", "block", "gate", "swing_gate", "sliding_gate", "chain", "jersey_barrier"}
OBSTACLE_LINES = {"bollard", "block", "chain", "jersey_barrier"}
OLD_PARKING = {"parallel", "diagonal", "perpendicular", "orthogonal", "marked", "inline", "yes"}
NEW_PARKING = {"lane", "street_side", "on_kerb", "half_on_kerb", "shoulder", "yes"}


# --- the independent reading --------------------------------------------------------------------------------------


@dataclass
class Extract:
    """Raw objects of the file and geometries built here from node coordinates, in the file's UTM zone."""

    coords: dict[int, tuple[float, float]] = field(default_factory=dict)
    node_tags: dict[int, dict[str, str]] = field(default_factory=dict)
    ways: dict[int, tuple[dict[str, str], list[int]]] = field(default_factory=dict)
    rels: dict[int, tuple[dict[str, str], list[tuple[str, int]]]] = field(default_factory=dict)
    utm: pyproj.Transformer | None = None

    def complete(self, way: int) -> bool:
        return way in self.ways and all(n in self.coords for n in self.ways[way][1])

    def line(self, way: int) -> shapely.LineString:
        assert self.utm is not None  # set once the file is read
        lons, lats = zip(*(self.coords[n] for n in self.ways[way][1]), strict=True)
        xs, ys = self.utm.transform(lons, lats)
        return shapely.LineString(np.column_stack([xs, ys]))

    def point(self, node: int) -> shapely.Point:
        assert self.utm is not None
        return shapely.Point(self.utm.transform(*self.coords[node]))

    def areas(self, wanted) -> dict[str, shapely.Geometry]:
        """ref -> polygon (UTM) of closed complete ways and complete multipolygon relations whose tags pass."""
        out = {}
        for wid, (tags, nodes) in self.ways.items():
            if wanted(tags) and nodes[0] == nodes[-1] and self.complete(wid):
                out[f"osm:way/{wid}"] = shapely.Polygon(self.line(wid).coords)
        for rid, (tags, members) in self.rels.items():
            if tags.get("type") == "multipolygon" and wanted(tags) \
                    and all(t == "w" and self.complete(m) for t, m in members):
                out[f"osm:relation/{rid}"] = shapely.build_area(
                    shapely.GeometryCollection([self.line(m) for _, m in members]))
        return out


@pytest.fixture(scope="module")
def extract() -> Extract:
    ex = Extract()
    for obj in osmium.FileProcessor(str(DATA)):
        if isinstance(obj, osmium.osm.Node):  # (what is_node() tests, narrowing the type)
            ex.coords[obj.id] = (obj.location.lon, obj.location.lat)
            if len(obj.tags):
                ex.node_tags[obj.id] = dict(obj.tags)
        elif isinstance(obj, osmium.osm.Way):
            ex.ways[obj.id] = (dict(obj.tags), [n.ref for n in obj.nodes])
        elif isinstance(obj, osmium.osm.Relation):
            ex.rels[obj.id] = (dict(obj.tags), [(m.type, m.ref) for m in obj.members])
    lon = np.mean([c[0] for c in ex.coords.values()])
    zone = int((lon + 180) // 6) + 1
    ex.utm = pyproj.Transformer.from_crs(4326, 32600 + zone, always_xy=True)
    return ex


@pytest.fixture(scope="module")
def derived():
    return derive_osm(DATA)


def _is_building(t):
    return t.get("building", "no") != "no"


def _is_parking_area(t):
    return (t.get("amenity") == "parking" and "building" not in t
            and t.get("parking") not in {"underground", "multi-storey", "rooftop"})


def _parks(tags: dict[str, str]) -> bool:
    sides: dict[str, bool] = {}
    for side in ("both", "left", "right"):
        for key, values in ((f"parking:lane:{side}", OLD_PARKING), (f"parking:{side}", NEW_PARKING)):
            if key in tags:
                for s in (("left", "right") if side == "both" else (side,)):
                    sides[s] = tags[key] in values
    return any(sides.values())


@pytest.fixture(scope="module")
def expected(extract: Extract) -> dict[str, set[str]]:
    """Refs per layer (and per road kind) by the independent reading."""
    ex = extract
    compounds = ex.areas(lambda t: t.get("landuse") == "residential")
    buildings = ex.areas(_is_building)
    in_compound = shapely.STRtree(list(compounds.values()))
    lines = {w: ex.line(w) for w, (t, _) in ex.ways.items()
             if ex.complete(w) and len(set(ex.ways[w][1])) > 1
             and (t.get("highway") in CITY_HW | LANE_HW | WALK_HW or t.get("barrier") in OBSTACLE_LINES)}

    def inside(w: int) -> bool:
        return len(in_compound.query(lines[w].interpolate(0.5, normalized=True), predicate="within")) > 0

    lanes, city, walk = {}, set(), set()
    for w, line in lines.items():
        t = ex.ways[w][0]
        hw, tunnel = t.get("highway"), t.get("tunnel") == "yes"
        emergency = hw == "service" and (t.get("service") == "emergency_access" or t.get("emergency_access") == "yes"
                                         or t.get("emergency") in ("yes", "designated"))
        if not tunnel and ((hw in LANE_HW and inside(w)) or emergency):
            width = T.parse_length_m(t.get("width"))
            width = width if width and 0 < width <= 50 else 4.0
            lanes[w] = line.buffer(width / 2, cap_style="flat")
        elif not tunnel and hw in CITY_HW:
            city.add(w)
        elif not tunnel and hw in WALK_HW and inside(w):
            walk.add(w)
    lane_union = shapely.union_all(list(lanes.values()))
    boundaries = shapely.union_all([g.boundary for g in compounds.values()])
    outlines = shapely.union_all([g.boundary for g in buildings.values()])
    entrances = set()
    for n, t in ex.node_tags.items():
        if t.get("barrier") in GATES or "entrance" in t:
            p = ex.point(n)
            door = p.distance(outlines) <= 0.05
            if p.distance(boundaries) <= 5.0 and (t.get("barrier") in GATES or not door):
                entrances.add(n)
    obstructions = {f"osm:node/{n}" for n, t in ex.node_tags.items()
                    if t.get("barrier") in OBSTACLES and n not in entrances and ex.point(n).intersects(lane_union)}
    obstructions |= {f"osm:way/{w}" for w in lines if ex.ways[w][0].get("barrier") in OBSTACLE_LINES
                     and "highway" not in ex.ways[w][0] and lines[w].intersects(lane_union)}
    parking = set(ex.areas(_is_parking_area))
    parking |= {f"osm:node/{n}" for n, t in ex.node_tags.items() if _is_parking_area(t)}
    parking |= {f"osm:way/{w}" for w in set(lanes) | city if _parks(ex.ways[w][0])}
    return {
        "compounds": set(compounds), "buildings": set(buildings),
        "fire_lanes": {f"osm:way/{w}" for w in lanes},
        "roads.internal": {f"osm:way/{w}" for w in lanes}, "roads.city": {f"osm:way/{w}" for w in city},
        "roads.walkway": {f"osm:way/{w}" for w in walk},
        "hydrants": {f"osm:node/{n}" for n, t in ex.node_tags.items() if t.get("emergency") == "fire_hydrant"},
        "entrances": {f"osm:node/{n}" for n in entrances}, "obstructions": obstructions, "parking": parking,
    }


# --- derivation (no database) ---------------------------------------------------------------------------------------


def test_every_layer_matches_the_independent_count_feature_by_feature(derived, expected):
    got = {name: set(frame["ref"]) for name, frame in derived.frames.items()}
    roads = derived.frames["roads"]
    for kind in ("city", "internal", "walkway"):
        got[f"roads.{kind}"] = set(roads.loc[roads["kind"] == kind, "ref"])
    del got["roads"]
    assert {k: len(v) for k, v in got.items()} == {k: len(v) for k, v in expected.items()}
    assert got == expected
    assert all(len(v) > 0 for v in expected.values()), "the test file must exercise every layer"


@pytest.mark.filterwarnings("ignore:Non closed ring:RuntimeWarning", "ignore:organizePolygons:RuntimeWarning")
def test_counts_agree_with_gdal_where_gdal_sees_the_same_features(derived, extract):
    points = pyogrio.read_dataframe(DATA, layer="points", columns=["osm_id", "other_tags"])
    hydrants = points[points["other_tags"].fillna("").str.contains('"emergency"=>"fire_hydrant"', regex=False)]
    ours = derived.frames["hydrants"].set_index("ref")
    assert sorted(ours.index) == sorted(f"osm:node/{i}" for i in hydrants["osm_id"])
    # same places (EPSG:4490 and WGS84 agree to well under a metre here)
    gdal_xy = {f"osm:node/{i}": (g.x, g.y) for i, g in zip(hydrants["osm_id"], hydrants.geometry, strict=True)}
    for ref, geom in ours.geometry.items():
        assert geom.x == pytest.approx(gdal_xy[ref][0], abs=1e-6) and geom.y == pytest.approx(gdal_xy[ref][1], abs=1e-6)

    polys = pyogrio.read_dataframe(DATA, layer="multipolygons", on_invalid="ignore",
                                   columns=["osm_id", "osm_way_id", "building", "landuse"])
    polys["ref"] = np.where(polys["osm_id"].notna(), "osm:relation/" + polys["osm_id"].fillna(""),
                            "osm:way/" + polys["osm_way_id"].fillna(""))
    for layer, mask in (("buildings", polys["building"].notna() & (polys["building"] != "no")),
                        ("compounds", polys["landuse"] == "residential")):
        gdal = polys[mask].set_index("ref").to_crs(32635)
        mine = derived.frames[layer].set_index("ref").to_crs(32635)
        shared = mine.index.intersection(gdal.index)
        assert len(shared) >= 0.95 * len(mine), layer  # GDAL also builds clipped ways we drop: compare ours
        ratio = mine.loc[shared].area / gdal.loc[shared].area
        assert ratio.between(0.999, 1.001).all(), (layer, ratio[~ratio.between(0.999, 1.001)])


def test_refs_are_osm_ids_and_every_feature_is_marked_osm(derived):
    node_layers = {"hydrants", "entrances"}
    for name, frame in derived.frames.items():
        assert frame["ref"].is_unique, name
        assert frame["ref"].str.match(REF).all(), name
        assert (frame["source"] == "osm").all(), name
        assert frame.crs.to_epsg() == 4490
        assert shapely.is_valid(frame.geometry.values).all(), name
        if name in node_layers:
            assert frame["ref"].str.startswith("osm:node/").all(), name


def test_building_heights_come_from_height_else_levels_times_three_marked_estimated(derived, extract):
    b = derived.frames["buildings"].set_index("ref")
    tags = {f"osm:way/{w}": t for w, (t, _) in extract.ways.items()}
    tags |= {f"osm:relation/{r}": t for r, (t, _) in extract.rels.items()}
    kinds: Counter[str] = Counter()
    for ref, row in b.iterrows():
        t = tags[ref]
        height, levels = T.parse_length_m(t.get("height")), T.parse_levels(t.get("building:levels"))
        if height is not None:
            kinds["measured"] += 1
            assert row["height_m"] == pytest.approx(height) and not row["estimated"], ref
        elif levels:
            kinds["from levels"] += 1
            assert row["height_m"] == pytest.approx(3.0 * levels) and row["estimated"], ref
            assert row["extra"]["estimated_fields"] == ["height_m"]
        else:
            kinds["unknown"] += 1
            assert row["height_m"] is None and not row["estimated"], ref
    assert min(kinds.values()) > 0 and len(kinds) == 3, kinds
    assert derived.estimated["buildings"]["height_m"] == kinds["from levels"]


def test_lane_widths_use_the_width_tag_else_the_documented_default_marked_estimated(derived, extract):
    lanes = derived.frames["fire_lanes"].set_index("ref")
    roads = derived.frames["roads"].set_index("ref")
    for ref, row in lanes.iterrows():
        tagged = T.parse_length_m(extract.ways[int(ref.split("/")[1])][0].get("width"))
        if tagged:
            assert row["design_width_m"] == tagged and not row["estimated"]
        else:
            assert row["design_width_m"] == T.DEFAULT_FIRE_LANE_WIDTH_M == 4.0 and row["estimated"]
        # the lane is the centre line buffered by half the width; the centre line is an internal road
        assert roads.loc[ref, "kind"] == "internal"
        centre = roads.loc[[ref]].to_crs(32635).geometry.iloc[0]
        area = lanes.loc[[ref]].to_crs(32635).geometry.iloc[0].area
        assert area == pytest.approx(centre.length * row["design_width_m"], rel=0.05)
    assert lanes["estimated"].any() and not lanes["estimated"].all()


def test_unmodelled_tags_useful_to_users_are_kept_in_extra(derived, extract):
    h = derived.frames["hydrants"].set_index("ref")
    for ref, row in h.iterrows():
        t = extract.node_tags[int(ref.split("/")[1])]
        assert {k: v for k, v in t.items() if k.startswith("fire_hydrant:")}.items() <= row["extra"].items()
        assert row["kind"] == {"underground": "underground", "pillar": "above_ground"}.get(t.get("fire_hydrant:type"))
    b = derived.frames["buildings"]
    with_address = [e for e in b["extra"] if "addr:street" in e]
    assert len(with_address) > 10
    named = b[b["name"].notna()]
    assert len(named) and all(e["name"] == n for e, n in zip(named["extra"], named["name"], strict=True))


def test_parking_strips_follow_the_parking_lane_tags(derived):
    p = derived.frames["parking"].set_index("ref")
    strips = p[p["extra"].map(lambda e: "parking_sides" in e)]
    assert len(strips) and strips["estimated"].all()
    roads = derived.frames["roads"].set_index("ref").to_crs(32635)
    one_sided: Counter[str] = Counter()
    for ref, row in strips.to_crs(32635).iterrows():
        sides = dict(s.split(":") for s in row["extra"]["parking_sides"].split(","))
        line, half = roads.loc[ref, "geometry"], roads.loc[ref, "width_m"] / 2
        depth = sum(T.PARKING_DEPTH_M[o] for o in sides.values())
        # as deep as the orientation says, along the whole way, inside the carriageway (or the first metres of it)
        assert row.geometry.area == pytest.approx(line.length * depth, rel=0.05), ref
        assert row.geometry.hausdorff_distance(line) <= max(half, max(T.PARKING_DEPTH_M.values())) + 0.01, ref
        if len(sides) == 1:
            side = next(iter(sides))
            reach = max(half, 5.0) + 1.0
            left = shapely.buffer(line, reach, single_sided=True)
            right = shapely.buffer(line, -reach, single_sided=True)
            on_left = row.geometry.intersection(left).area / row.geometry.area
            on_right = row.geometry.intersection(right).area / row.geometry.area
            assert (on_left if side == "left" else on_right) > 0.98, (ref, side)
            one_sided[side] += 1
    assert one_sided["left"] and one_sided["right"]


def test_an_osm_xml_extract_gives_the_same_layers(tmp_path, derived):
    xml = tmp_path / "helsinki.osm"
    with osmium.SimpleWriter(str(xml)) as writer:
        for obj in osmium.FileProcessor(str(DATA)):
            writer.add(obj)
    again = derive_osm(xml, node_index="flex_mem")
    assert {k: sorted(f["ref"]) for k, f in again.frames.items()} == \
        {k: sorted(f["ref"]) for k, f in derived.frames.items()}


def test_changesets_in_an_osm_xml_file_are_skipped(tmp_path):
    # a changeset is neither node, way, relation nor area: it once crashed the read (no is_area) when it
    # carried one of the wanted keys
    xml = tmp_path / "with-changeset.osm"
    xml.write_text(
        "<?xml version='1.0' encoding='UTF-8'?>\n<osm version=\"0.6\" generator=\"test\">\n"
        "<changeset id=\"7\" created_at=\"2024-01-01T00:00:00Z\" closed_at=\"2024-01-01T00:10:00Z\" "
        "open=\"false\" uid=\"1\" user=\"u\" num_changes=\"1\" comments_count=\"0\">"
        "<tag k=\"comment\" v=\"add a hydrant\"/><tag k=\"amenity\" v=\"parking\"/></changeset>\n"
        "<node id=\"1\" version=\"1\" lat=\"60.17\" lon=\"24.94\"><tag k=\"emergency\" v=\"fire_hydrant\"/></node>\n"
        "</osm>\n", encoding="utf-8")
    raw = read_osm(xml, node_index="flex_mem")
    assert raw.objects_read == 2
    assert raw.nodes == [("osm:node/1", 1, {"emergency": "fire_hydrant"}, 24.94, 60.17)]
    assert not raw.areas and not raw.lines and not raw.dropped


@pytest.mark.parametrize(("value", "metres"), [
    ("12", 12.0), ("12.5 m", 12.5), ("4,5", 4.5), ("40 ft", 12.192), ("13'6\"", 4.1148), ("80 cm", 0.8),
    ("tall", None), (None, None), ("3;4", 3.0),
])
def test_length_tags_are_read_with_their_units(value, metres):
    got = T.parse_length_m(value)
    assert got == (None if metres is None else pytest.approx(metres))


def test_hydrant_tags_are_converted_to_the_layer_units():
    assert T.parse_pressure_mpa("4") == pytest.approx(0.4)  # OSM's unit is bar
    assert T.parse_pressure_mpa("0.35 MPa") == pytest.approx(0.35)
    assert T.parse_pressure_mpa("suction") is None
    assert T.parse_diameter_mm("DN100") == 100 and T.parse_diameter_mm('4"') == 102
    assert T.parse_flow_lps("1200") == pytest.approx(20.0)  # l/min
    assert T.parking_sides({"parking:lane:both": "parallel", "parking:lane:right": "no_stopping"}) == \
        {"left": "parallel"}
    assert T.parking_sides({"parking:both": "lane", "parking:both:orientation": "diagonal"}) == \
        {"left": "diagonal", "right": "diagonal"}


# --- the database import ----------------------------------------------------------------------------------------


def _rows(engine, layer: str) -> dict[str, tuple]:
    with engine.connect() as conn:
        return {r[0]: tuple(r[1:]) for r in conn.execute(text(
            f"SELECT ref, version, updated_by, source, ST_SRID(geom), extra->>'osm_import_version' FROM {layer}"))}


@pytest.mark.db
def test_import_writes_every_layer_with_refs_sources_and_links(db, derived):
    report = import_osm(DATA, engine=db, user="osm-test")
    for name, frame in derived.frames.items():
        rows = _rows(db, name)
        assert set(rows) == set(frame["ref"]), name
        assert {r[2] for r in rows.values()} == {"osm"} and {r[3] for r in rows.values()} == {4490}
        assert report.layers[name].sync.inserted == len(frame) == report.counts[name]
    with db.connect() as conn:
        linked = conn.execute(text(
            "SELECT count(*) FROM buildings b JOIN compounds c ON c.id = b.compound_id "
            "WHERE ST_Intersects(c.geom, ST_PointOnSurface(b.geom)) AND b.compound_ref = c.ref")).scalar_one()
        streets = conn.execute(text("SELECT count(*) FROM compounds WHERE street_code IS NOT NULL")).scalar_one()
    assert linked > 0 and streets == 0  # buildings are linked to compounds; no streets, no street codes
    summary = report.summary()
    assert ATTRIBUTION in summary and "buildings" in summary and "height_m" in summary
    assert "丢弃 dropped" in summary  # the clipped extract has incomplete ways, reported not written


@pytest.mark.db
def test_reimport_is_idempotent(db):
    import_osm(DATA, engine=db, user="osm-test")
    before = {name: _rows(db, name) for name in ("compounds", "buildings", "fire_lanes", "roads", "parking")}
    with db.connect() as conn:
        audit = conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one()
    again = import_osm(DATA, engine=db, user="someone-else")
    after = {name: _rows(db, name) for name in before}
    assert after == before  # same rows, same versions, same updated_by
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one() == audit
    for name, r in again.layers.items():
        assert (r.sync.inserted, r.sync.updated, r.sync.unchanged) == (0, 0, r.found), name


@pytest.mark.db
def test_a_user_edit_survives_reimport_and_is_reported_as_skipped(db):
    import_osm(DATA, engine=db, user="osm-test")
    with db.begin() as conn:
        conn.execute(text("SELECT set_config('firelane.user', 'planner-li', true)"))
        ref = conn.execute(text("SELECT ref FROM buildings WHERE height_m IS NULL ORDER BY ref LIMIT 1")).scalar_one()
        conn.execute(text("UPDATE buildings SET height_m = 33.0, floors = 11 WHERE ref = :r"), {"r": ref})
        conn.execute(text("DELETE FROM hydrants WHERE ref = (SELECT min(ref) FROM hydrants)"))
    report = import_osm(DATA, engine=db, user="osm-test")
    with db.connect() as conn:
        row = conn.execute(text("SELECT height_m, floors, version, updated_by FROM buildings WHERE ref = :r"),
                           {"r": ref}).one()
        hydrants = conn.execute(text("SELECT count(*) FROM hydrants")).scalar_one()
    assert tuple(row) == (33.0, 11, 2, "planner-li")
    assert report.skipped == {"buildings": [ref]}
    assert report.layers["buildings"].sync.unchanged == report.layers["buildings"].found - 1
    assert len(report.layers["hydrants"].sync.skipped_deleted) == 1 and hydrants == report.counts["hydrants"] - 1
    assert ref in report.summary()


@pytest.mark.db
def test_changed_osm_data_update_unedited_features_in_place(db, tmp_path):
    import_osm(DATA, engine=db, user="osm-test")
    with db.connect() as conn:
        ref, bid = conn.execute(text(
            "SELECT ref, id FROM buildings WHERE height_m IS NULL AND ref LIKE 'osm:way/%' ORDER BY ref LIMIT 1")).one()
    way = int(ref.split("/")[1])
    changed = tmp_path / "changed.osm.pbf"
    with osmium.SimpleWriter(str(changed)) as writer:
        for obj in osmium.FileProcessor(str(DATA)):
            if isinstance(obj, osmium.osm.Way) and obj.id == way:
                writer.add(obj.replace(tags={**dict(obj.tags), "building:levels": "7"}))
            else:
                writer.add(obj)
    report = import_osm(changed, engine=db, user="osm-test")
    with db.connect() as conn:
        row = conn.execute(text("SELECT id, height_m, floors, estimated, version, "
                                "(extra->>'osm_import_version')::int FROM buildings WHERE ref = :r"),
                           {"r": ref}).one()
    assert tuple(row) == (bid, 21.0, 7, True, 2, 2)
    assert report.layers["buildings"].sync.updated == 1
    # the updated feature is again the importer's own: the next import leaves it alone
    assert import_osm(changed, engine=db, user="osm-test").layers["buildings"].sync.unchanged == \
        report.layers["buildings"].found


@pytest.mark.db
def test_an_extract_outside_the_districts_streets_is_refused_and_nothing_written(db):
    with db.begin() as conn:
        conn.execute(text("INSERT INTO streets (ref, name, geom) VALUES ('330212001', '中河街道', "
                          "ST_Multi(ST_MakeEnvelope(121.50, 29.80, 121.56, 29.86, 4490)))"))
    before = table_counts(db)
    with pytest.raises(OsmImportError, match="outside"):
        import_osm(DATA, engine=db)
    assert table_counts(db) == before


@pytest.mark.db
def test_the_cli_imports_and_prints_the_summary_with_attribution(db):
    result = CliRunner().invoke(cli, ["import-osm", str(DATA), "--user", "cli-test"])
    assert result.exit_code == 0, result.output
    assert ATTRIBUTION in result.output and "hydrants" in result.output
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM hydrants WHERE updated_by = 'cli-test'")).scalar_one() == 37


@pytest.mark.db
def test_checks_run_on_the_imported_data(db):
    import_osm(DATA, engine=db, user="osm-test")
    result = runner.run_checks(engine=db, ledger=False)
    findings = result.findings
    assert set(result.compounds) == set(_rows(db, "compounds"))
    osm_subjects = findings[findings["subject_ref"].astype(str).str.startswith("osm:")]
    assert len(osm_subjects) == len(findings)  # every subject is an imported OSM feature
    with db.connect() as conn:
        heightless = set(conn.execute(text(
            "SELECT ref FROM buildings WHERE height_m IS NULL AND floors IS NULL")).scalars())
    unjudged = findings[(findings["verdict"] == "cannot_judge") & (findings["subject_layer"] == "buildings")]
    assert set(unjudged["subject_ref"]) & heightless, "buildings without height must be cannot_judge"


@pytest.mark.db
@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "csv"])
def test_exports_of_osm_derived_data_carry_the_attribution(db, tmp_path, fmt):
    import_osm(DATA, engine=db, user="osm-test")
    out = tmp_path / f"hydrants.{fmt}"
    assert export_layer("hydrants", fmt=fmt, path=out, engine=db) == 37
    assert attribution_path(out).read_text(encoding="utf-8").strip() == OSM_ATTRIBUTION
    assert "© OpenStreetMap contributors" in OSM_ATTRIBUTION
    printed = CliRunner().invoke(cli, ["export", "hydrants", "--format", fmt, "-o", str(out)])
    assert printed.exit_code == 0, printed.output
    assert "© OpenStreetMap contributors" in printed.output


@pytest.mark.db
def test_exports_without_osm_data_carry_no_osm_attribution(db, tmp_path):
    import_osm(DATA, engine=db, user="osm-test")
    with db.begin() as conn:
        conn.execute(text("UPDATE hydrants SET source = 'survey'"))
    out = tmp_path / "hydrants.geojson"
    attribution_path(out).write_text("stale", encoding="utf-8")
    export_layer("hydrants", fmt="geojson", path=out, engine=db)
    assert not attribution_path(out).exists()
