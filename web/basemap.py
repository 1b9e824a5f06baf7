"""Basemaps (none, OSM, Tianditu, AMap) and the display transform (GCJ-02 shift for AMap at render time)."""

from __future__ import annotations

import folium
import geopandas as gpd
import numpy as np
import shapely

from gis.coords import from_storage, parse_crs
from web.settings import Basemap, map_settings

OSM_ATTRIBUTION = "© OpenStreetMap contributors"
ADCODE_ATTRIBUTION = "行政区划数据 Administrative division data: Vonng/adcode, CC BY 4.0"
TIANDITU_ATTRIBUTION = "© 天地图 Tianditu"
AMAP_ATTRIBUTION = "© 高德地图 AMap"


def display_crs(basemap: Basemap | None = None) -> str | None:
    """The CRS geometries are drawn in: GCJ-02 under AMap, else the storage CRS (CGCS2000 ≈ WGS84, no shift)."""
    return "gcj02" if (basemap or map_settings().basemap) == "amap" else None


def to_display(geoms: gpd.GeoSeries | np.ndarray, *, basemap: Basemap | None = None) -> np.ndarray:
    """Storage geometries (EPSG:4490) as lon/lat for the page's basemap, rounded to ~1 cm (7 decimals)."""
    arr = np.asarray(geoms.values if isinstance(geoms, gpd.GeoSeries) else geoms, dtype=object)
    crs = display_crs(basemap)
    if crs is not None and len(arr):
        arr = np.asarray(from_storage(arr, parse_crs(crs)), dtype=object)
    return shapely.set_precision(arr, 1e-7, mode="pointwise") if len(arr) else arr


def add_basemap(m: folium.Map, *, basemap: Basemap | None = None) -> str | None:
    """Add the configured tile layer(s) to `m`; returns the attribution text, or None for no basemap."""
    settings = map_settings()
    basemap = basemap or settings.basemap
    if basemap == "osm":
        folium.TileLayer(tiles=settings.osm_url, attr=OSM_ATTRIBUTION, name="OpenStreetMap", max_zoom=19).add_to(m)
        return OSM_ATTRIBUTION
    if basemap == "tianditu":
        key = settings.tianditu_key
        for layer, name in (("vec", "天地图 矢量 Tianditu"), ("cva", "天地图 注记 Tianditu labels")):
            url = (f"https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
                   f"&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={{z}}"
                   f"&TILEROW={{y}}&TILECOL={{x}}&tk={key}")
            folium.TileLayer(tiles=url, attr=TIANDITU_ATTRIBUTION, name=name, subdomains="01234567",
                             max_zoom=18, overlay=layer == "cva").add_to(m)
        return TIANDITU_ATTRIBUTION
    if basemap == "amap":
        url = "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}"
        folium.TileLayer(tiles=url, attr=AMAP_ATTRIBUTION, name="高德 AMap", subdomains="1234", max_zoom=18).add_to(m)
        return AMAP_ATTRIBUTION
    return None
