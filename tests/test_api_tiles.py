"""Vector tiles from ST_AsMVT: every layer, Web Mercator tile coordinates, empty tiles, caching headers."""
# ruff: noqa: F811 - pytest fixtures are imported from test_api_support and named as test arguments

from __future__ import annotations

import mapbox_vector_tile
import pytest
from test_api_support import api, district, headers  # noqa: F401 - fixtures

pytestmark = pytest.mark.db

TILE = "12/3430/1692"  # holds the whole test district


def test_every_layer_has_tiles(api, headers, district):
    from gis.layers import LAYERS

    for name in LAYERS:
        response = api.get(f"/tiles/{name}/{TILE}.mvt", headers=headers["admin"])
        assert response.status_code in (200, 204), name
        if response.status_code == 200:
            assert response.headers["content-type"] == "application/vnd.mapbox-vector-tile"
            assert name in mapbox_vector_tile.decode(response.content)


def test_tile_features_carry_their_id_and_attributes_in_tile_coordinates(api, headers, district):
    response = api.get(f"/tiles/hydrants/{TILE}.mvt", headers=headers["admin"])
    layer = mapbox_vector_tile.decode(response.content)["hydrants"]
    assert layer["extent"] == 4096
    by_ref = {f["properties"]["ref"]: f for f in layer["features"]}
    assert set(by_ref) == {"HA-1", "HB-1"}
    assert by_ref["HA-1"]["id"] == district.id("hydrants", "HA-1")
    x, y = by_ref["HA-1"]["geometry"]["coordinates"]
    assert 0 <= x <= 4096 and 0 <= y <= 4096
    assert by_ref["HA-1"]["geometry"]["coordinates"][0] < by_ref["HB-1"]["geometry"]["coordinates"][0]


def test_empty_tiles_are_204_and_bad_coordinates_400(api, headers, district):
    assert api.get("/tiles/buildings/12/0/0.mvt", headers=headers["admin"]).status_code == 204
    assert api.get("/tiles/buildings/3/8/0.mvt", headers=headers["admin"]).status_code == 400
    assert api.get("/tiles/buildings/30/0/0.mvt", headers=headers["admin"]).status_code == 400
    assert api.get("/tiles/nope/0/0/0.mvt", headers=headers["admin"]).status_code == 404


def test_tiles_have_cache_headers_and_answer_304(api, headers, district):
    first = api.get(f"/tiles/buildings/{TILE}.mvt", headers=headers["admin"])
    assert "max-age" in first.headers["Cache-Control"] and first.headers["ETag"]
    again = api.get(f"/tiles/buildings/{TILE}.mvt", headers={**headers["admin"], "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
