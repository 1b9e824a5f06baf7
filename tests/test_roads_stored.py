"""Roads are stored as drawn: centre lines and road-surface polygons in one layer, written through the store and the
OGC API (Part 4), published to desktop clients as one collection per geometry type, checked as the same street."""

from __future__ import annotations

import pytest
import shapely

from api.collections import COLLECTIONS, LISTED
from gis.checks import roads as rd
from gis.checks.context import build_contexts
from gis.layers import LAYERS
from gis.store import read_layer

pytestmark = pytest.mark.db

X, Y = 121.5011, 29.8009  # just south of compound CA-1 of the API district


def _feature(geometry: dict, ref: str, **props) -> dict:
    return {"type": "Feature", "geometry": geometry, "properties": {"ref": ref, "kind": "city", **props}}


def _surface() -> dict:
    ring = [[X, Y], [X + 0.003, Y], [X + 0.003, Y + 0.0001], [X, Y + 0.0001], [X, Y]]
    return {"type": "Polygon", "coordinates": [ring]}


def test_roads_accept_lines_and_surfaces_never_points():
    roads = LAYERS["roads"]
    assert set(roads.accepted_geometries) == {"LineString", "MultiLineString", "Polygon", "MultiPolygon"}
    assert roads.multi and roads.dimensions == (1, 2)
    listed = {c.id for c in LISTED if c.layer.name == "roads"}
    assert listed == {"roads_lines", "roads_polygons"}  # a desktop layer per type; no empty points layer
    assert "roads" in COLLECTIONS and not COLLECTIONS["roads"].listed  # the whole layer stays addressable


def test_a_road_surface_and_a_centre_line_are_written_through_the_api_and_stored_as_multi(api, headers, district,
                                                                                          db):
    h = headers["planner"]
    surface = api.post("/collections/roads/items", json=_feature(_surface(), "RS-1", name="甲路"), headers=h)
    assert surface.status_code == 201, surface.text
    assert surface.json()["geometry"]["type"] == "MultiPolygon"
    line = {"type": "LineString", "coordinates": [[X, Y + 0.0003], [X + 0.003, Y + 0.0003]]}
    centre = api.post("/collections/roads/items", json=_feature(line, "RL-1", width_m=12.0), headers=h)
    assert centre.status_code == 201, centre.text
    point = api.post("/collections/roads/items", json=_feature({"type": "Point", "coordinates": [X, Y]}, "RP-1"),
                     headers=h)
    assert point.status_code == 400 and "Polygon" in point.text and "LineString" in point.text
    stored = read_layer("roads", engine=db).set_index("ref")
    assert stored.geometry.geom_type.to_dict() == {"RS-1": "MultiPolygon", "RL-1": "MultiLineString"}
    polygons = api.get("/collections/roads_polygons/items", headers=headers["viewer"]).json()["features"]
    lines = api.get("/collections/roads_lines/items", headers=headers["viewer"]).json()["features"]
    assert [f["properties"]["ref"] for f in polygons] == ["RS-1"]
    assert [f["properties"]["ref"] for f in lines] == ["RL-1"]


def test_a_stored_road_surface_reaches_the_checks_as_a_centre_line_with_its_surface(api, headers, district, db):
    assert api.post("/collections/roads/items", json=_feature(_surface(), "RS-1"),
                    headers=headers["planner"]).status_code == 201
    layers = {name: read_layer(name, engine=db) for name in ("compounds", "roads")}
    ctx = next(c for c in build_contexts(layers, profile="cn-gb") if c.compound_ref == "CA-1")
    roads = ctx.layers["roads"]
    row = roads[roads["ref"] == "RS-1"].iloc[0]
    assert row.geometry.geom_type == "MultiLineString"
    assert row[rd.SURFACE_COLUMN].geom_type in ("Polygon", "MultiPolygon")
    assert row["width_m"] == pytest.approx(0.0001 * 111_000, rel=0.05)  # 0.0001° of latitude ≈ 11.1 m
    assert row.geometry.length == pytest.approx(shapely.length(row[rd.SURFACE_COLUMN]) / 2 - row["width_m"], rel=0.05)
