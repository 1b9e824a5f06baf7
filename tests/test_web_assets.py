"""Map page building blocks without a database: vendored assets, escaping, basemaps and the GCJ-02 display shift."""

from __future__ import annotations

import re

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from folium import plugins
from shapely.geometry import Point, box

import web.basemap
from gis.coords import wgs84_to_gcj02
from web import popups
from web.assets import LOCAL_ASSETS, STATIC_DIR, UnvendoredAssetError, asset_path, localise
from web.basemap import (
    ADCODE_ATTRIBUTION,
    OSM_ATTRIBUTION,
    add_basemap,
    current_basemap,
    display_crs,
    offered_basemaps,
    to_display,
)
from web.maps import STYLES, geojson_layer, new_map, render_page, vector_tile_layer
from web.pages import _js_json, _source_attributions
from web.settings import map_settings

HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(autouse=True)
def _fresh_map_settings(monkeypatch):
    for key in ("FIRELANE_MAP_BASEMAP", "FIRELANE_MAP_TIANDITU_KEY"):
        monkeypatch.delenv(key, raising=False)
    map_settings.cache_clear()
    yield
    map_settings.cache_clear()


def test_every_vendored_asset_exists_with_its_licence():
    for name, url in LOCAL_ASSETS.items():
        if url is None:
            continue
        path = asset_path(url)
        assert path.is_file() and path.stat().st_size > 500, name
    for folder in (STATIC_DIR / "vendor").iterdir():
        if folder.is_dir():
            assert (folder / "LICENSE").is_file(), folder


def test_leaflet_css_images_are_vendored_too():
    css = (STATIC_DIR / "vendor/leaflet/leaflet.css").read_text()
    for image in set(re.findall(r"url\((images/[^)]+)\)", css)):
        assert (STATIC_DIR / "vendor/leaflet" / image).is_file(), image


def test_rendered_pages_reference_only_local_assets():
    m = folium.Map(tiles=None)
    plugins.HeatMap([[29.8, 121.5, 1.0]]).add_to(m)
    plugins.MarkerCluster().add_to(m)
    plugins.Draw().add_to(m)
    plugins.VectorGridProtobuf("/tiles/buildings/{z}/{x}/{y}.mvt", "b", {}).add_to(m)
    html = localise(m.get_root()).render()
    srcs = re.findall(r'<script src="([^"]+)"', html) + re.findall(r'<link rel="stylesheet" href="([^"]+)"', html)
    assert srcs and all(s.startswith("/static/vendor/") for s in srcs), srcs
    assert "https://" not in html
    # folium itself keeps its CDN defaults for other users of the library
    assert folium.Map.default_js[0][1].startswith("https://")


def test_an_unvendored_plugin_is_refused_rather_than_loaded_from_a_cdn():
    m = folium.Map(tiles=None)
    plugins.Fullscreen().add_to(m)
    with pytest.raises(UnvendoredAssetError, match="leaflet_fullscreen|Fullscreen|fullscreen"):
        localise(m.get_root())


def test_popup_tables_escape_every_value():
    frame = pd.DataFrame({"name": [HOSTILE, "阳光花园"], "n": [3, None], "w": [4.50, float("nan")]})
    html = popups.table(frame, [("name", "名称", "Name"), ("n", "数量", "Count"), ("w", "宽", "Width")],
                        title=frame["name"].map(popups.text))
    assert "<img" not in html.iloc[0]
    assert "&lt;img src=x onerror=alert(1)&gt;" in html.iloc[0]
    assert "<td>4.5</td>" in html.iloc[0]
    assert "<td></td>" in html.iloc[1]  # missing values are blank, not "nan"/"None"
    assert popups.link("/map/compounds/a%2Fb", HOSTILE) == (
        '<a href="/map/compounds/a%2Fb">&lt;img src=x onerror=alert(1)&gt;</a>')
    assert popups.compound_href('x/"y"<z>') == "/map/compounds/x%2F%22y%22%3Cz%3E"


def test_geojson_layers_inline_only_popup_and_tooltip_and_honour_the_cap():
    frame = gpd.GeoDataFrame({"ref": [f"R{i}" for i in range(10)], "secret": ["x"] * 10},
                             geometry=[Point(121.5 + i * 1e-4, 29.8) for i in range(10)], crs=4490)
    group = geojson_layer(frame, name="t", style={"color": "#000"}, popup=frame["ref"].map(popups.text),
                          limit=4)
    gj = next(iter(group._children.values()))
    assert isinstance(gj, folium.GeoJson)
    assert len(gj.data["features"]) == 4
    assert set(gj.data["features"][0]["properties"]) == {"popup"}


def test_amap_basemap_shifts_geometries_to_gcj02_at_render_time(monkeypatch):
    pts = gpd.GeoSeries([Point(121.55, 29.82)], crs=4490)
    plain = to_display(pts)[0]
    assert (plain.x, plain.y) == pytest.approx((121.55, 29.82))
    monkeypatch.setenv("FIRELANE_MAP_BASEMAP", "amap")
    map_settings.cache_clear()
    assert display_crs() == "gcj02"
    shifted = to_display(pts)[0]
    gx, gy = wgs84_to_gcj02(121.55, 29.82)
    assert (shifted.x, shifted.y) == pytest.approx((gx, gy), abs=2e-7)
    assert abs(shifted.x - 121.55) > 1e-3  # hundreds of metres: the shift is really applied
    polys = to_display(np.array([box(121.55, 29.82, 121.551, 29.821)], dtype=object))
    assert polys[0].bounds[0] == pytest.approx(wgs84_to_gcj02(121.55, 29.82)[0], abs=2e-7)


@pytest.mark.parametrize(("basemap", "needle", "attribution"), [
    ("osm", "tile.openstreetmap.org", "© OpenStreetMap contributors"),
    ("tianditu", "tianditu.gov.cn", "天地图"),
    ("amap", "autonavi.com", "AMap"),
])
def test_configured_basemaps_add_tiles_with_attribution(monkeypatch, basemap, needle, attribution):
    monkeypatch.setenv("FIRELANE_MAP_BASEMAP", basemap)
    monkeypatch.setenv("FIRELANE_MAP_TIANDITU_KEY", "k123")
    map_settings.cache_clear()
    m = folium.Map(tiles=None)
    added = add_basemap(m)
    assert added is not None and attribution in added
    html = m.get_root().render()
    assert needle in html


def test_no_basemap_by_default_so_pages_work_offline():
    m = folium.Map(tiles=None)
    assert add_basemap(m) is None
    html = localise(new_map().get_root()).render()
    assert "tileLayer" not in html


def test_tianditu_without_a_key_is_disabled_with_a_warning_not_an_error(monkeypatch, caplog):
    monkeypatch.setenv("FIRELANE_MAP_BASEMAP", "tianditu")
    monkeypatch.delenv("FIRELANE_MAP_TIANDITU_KEY", raising=False)
    map_settings.cache_clear()
    web.basemap._warned.clear()
    assert "tianditu" not in offered_basemaps() and current_basemap() == "none"
    assert add_basemap(folium.Map(tiles=None)) is None
    assert any("FIRELANE_MAP_TIANDITU_KEY" in r.getMessage() for r in caplog.records)
    monkeypatch.setenv("FIRELANE_MAP_TIANDITU_KEY", "k123")
    map_settings.cache_clear()
    assert "tianditu" in offered_basemaps() and current_basemap() == "tianditu"


def test_page_title_and_inline_json_cannot_break_out_of_their_elements():
    html = render_page(new_map(), title=f"{HOSTILE}</title><script>alert(2)</script>", body_html="<p>x</p>")
    assert "<script>alert(2)" not in html and "<title>&lt;img" in html
    assert "</script>" not in _js_json({"a": "</script><script>alert(3)</script>"})


def test_vector_tile_styles_are_keyed_by_the_mvt_layer_name():
    m = folium.Map(tiles=None)
    vector_tile_layer("fire_lanes", name="lanes", style=STYLES["fire_lanes"]).add_to(m)
    html = localise(m.get_root()).render()
    assert '"vectorTileLayerStyles": {"fire_lanes": {' in html  # not camelized to fireLanes
    assert "/tiles/fire_lanes/{z}/{x}/{y}.mvt" in html and "L.canvas.tile" in html


def test_data_source_attributions_follow_what_is_shown():
    def frame(*sources):
        return gpd.GeoDataFrame({"source": list(sources)}, geometry=[Point(0, 0)] * len(sources), crs=4490)

    assert _source_attributions(frame("osm", None)) == [OSM_ATTRIBUTION]
    assert _source_attributions(frame("derived: Voronoi (Vonng/adcode CC BY 4.0)")) == [ADCODE_ATTRIBUTION]
    assert _source_attributions(frame("survey 2024", "cosmos"), frame()) == []
