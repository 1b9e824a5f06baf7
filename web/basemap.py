"""Basemaps (none, OSM, Tianditu, AMap), the one a request shows, and the display transform (GCJ-02 for AMap)."""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import shapely

from gis.coords import from_storage, parse_crs
from web.i18n import tr
from web.settings import Basemap, map_settings

log = logging.getLogger("firelane.web")

OSM_ATTRIBUTION = "© OpenStreetMap contributors"
ADCODE_ATTRIBUTION = "行政区划数据 Administrative division data: Vonng/adcode, CC BY 4.0"
TIANDITU_ATTRIBUTION = "© 天地图 Tianditu"
AMAP_ATTRIBUTION = "© 高德地图 AMap"
COOKIE = "fl_basemap"
BASEMAPS: tuple[Basemap, ...] = ("none", "osm", "tianditu", "amap")
LABELS: dict[Basemap, tuple[str, str]] = {
    "none": ("无底图", "No basemap"), "osm": ("OpenStreetMap", "OpenStreetMap"),
    "tianditu": ("天地图", "Tianditu"), "amap": ("高德地图", "AMap"),
}

_chosen: ContextVar[Basemap | None] = ContextVar("firelane_page_basemap", default=None)
_warned: set[str] = set()


def offered_basemaps() -> tuple[Basemap, ...]:
    """'none' plus the configured basemaps that can work; Tianditu without a key is left out with a warning."""
    settings = map_settings()
    out: list[Basemap] = ["none"]
    for b in settings.offered:
        if b == "tianditu" and not settings.tianditu_key:
            if "tianditu" not in _warned:
                _warned.add("tianditu")
                log.warning("天地图底图已停用: 未设置 FIRELANE_MAP_TIANDITU_KEY; Tianditu basemap disabled: no key")
            continue
        if b != "none" and b not in out:
            out.append(b)
    return tuple(out)


def current_basemap() -> Basemap:
    """The basemap of this request (chosen by the user), else the configured default, else none."""
    offered = offered_basemaps()
    chosen = _chosen.get()
    if chosen in offered:
        return chosen  # type: ignore[return-value]
    default = map_settings().basemap
    if default in offered:
        return default
    if default not in _warned:
        _warned.add(default)
        log.warning("默认底图 %s 不可用, 改用无底图 default basemap %s unavailable: using none", default, default)
    return "none"


def choose_basemap(value: object) -> None:
    """The user's basemap for this request (cookie or ?basemap=); an unknown value is ignored."""
    _chosen.set(value if value in BASEMAPS else None)  # type: ignore[arg-type]


def display_crs(basemap: Basemap | None = None) -> str | None:
    """The CRS geometries are drawn in: GCJ-02 under AMap, else the storage CRS (CGCS2000 ≈ WGS84, no shift)."""
    return "gcj02" if (basemap or current_basemap()) == "amap" else None


def to_display(geoms: gpd.GeoSeries | np.ndarray, *, basemap: Basemap | None = None) -> np.ndarray:
    """Storage geometries (EPSG:4490) as lon/lat for the page's basemap, rounded to ~1 cm (7 decimals)."""
    arr = np.asarray(geoms.values if isinstance(geoms, gpd.GeoSeries) else geoms, dtype=object)
    crs = display_crs(basemap)
    if crs is not None and len(arr):
        arr = np.asarray(from_storage(arr, parse_crs(crs)), dtype=object)
    return shapely.set_precision(arr, 1e-7, mode="pointwise") if len(arr) else arr


def tile_layers(basemap: Basemap) -> list[dict[str, Any]]:
    """Leaflet tile layer definitions (url, options) of a basemap; [] for none."""
    settings = map_settings()
    if basemap == "osm":
        return [{"url": settings.osm_url, "options": {"attribution": OSM_ATTRIBUTION, "maxZoom": 22,
                                                       "maxNativeZoom": 19}}]
    if basemap == "tianditu":
        out = []
        for layer in ("vec", "cva"):
            url = (f"https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
                   f"&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={{z}}"
                   f"&TILEROW={{y}}&TILECOL={{x}}&tk={settings.tianditu_key}")
            out.append({"url": url, "options": {"attribution": TIANDITU_ATTRIBUTION, "subdomains": "01234567",
                                                "maxZoom": 22, "maxNativeZoom": 18}})
        return out
    if basemap == "amap":
        return [{"url": settings.amap_url, "options": {"attribution": AMAP_ATTRIBUTION, "subdomains": "1234",
                                                        "maxZoom": 22, "maxNativeZoom": 18}}]
    return []


def tile_hosts() -> list[str]:
    """Origins of the offered basemaps' tiles (for the pages' Content-Security-Policy)."""
    hosts = {"osm": map_settings().osm_url.split("/{")[0].split("/", 3)[:3],
             "tianditu": ["https:", "", "*.tianditu.gov.cn"], "amap": ["https:", "", "*.is.autonavi.com"]}
    out = []
    for b in offered_basemaps():
        if b in hosts:
            scheme, _, host = hosts[b][:3]
            out.append(f"{scheme}//{host.replace('{s}.', '*.')}")
    return out


def switcher_config() -> dict[str, Any]:
    """What the page's basemap switcher (basemap.js) offers and shows now."""
    return {"current": current_basemap(), "cookie": COOKIE,
            "title": tr("底图", "Basemap"),
            "offered": [{"id": b, "label": tr(*LABELS[b]), "gcj02": b == "amap"} for b in offered_basemaps()]}


def add_basemap(m: folium.Map, *, basemap: Basemap | None = None) -> str | None:
    """Add the current basemap's tile layer(s) to `m`; returns the attribution text, or None for no basemap."""
    basemap = basemap or current_basemap()
    layers = tile_layers(basemap)
    for i, spec in enumerate(layers):
        opts = spec["options"]
        folium.TileLayer(tiles=spec["url"], attr=opts["attribution"], name=f"{tr(*LABELS[basemap])} {i or ''}".strip(),
                         subdomains=opts.get("subdomains", "abc"), max_zoom=22,
                         max_native_zoom=opts.get("maxNativeZoom"), overlay=i > 0, control=False).add_to(m)
    return layers[0]["options"]["attribution"] if layers else None
