"""Map page settings (FIRELANE_MAP_*): default basemap, basemaps offered and keys, inline-feature caps."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

Basemap = Literal["none", "osm", "tianditu", "amap"]


class MapSettings(BaseSettings):
    """How map pages look: no basemap by default (works offline); OSM, Tianditu or AMap tiles when configured."""

    model_config = SettingsConfigDict(env_prefix="FIRELANE_MAP_")
    basemap: Basemap = "none"
    tianditu_key: str | None = None
    osm_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    #: most features a page inlines as GeoJSON per layer; beyond it layers go through vector tiles or clustering
    max_inline_features: int = 3000
    #: most rows a side-panel list shows (the map still shows everything in scope)
    max_list_rows: int = 1000
    #: most points a clustered marker layer carries
    max_cluster_points: int = 20000

    #: basemaps the switcher offers (besides "none"); one without what it needs (Tianditu's key) is left out
    offered: tuple[Basemap, ...] = ("osm", "tianditu", "amap")
    #: AMap (GCJ-02) tiles; the page shifts every layer it draws onto them
    amap_url: str = "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}"


@lru_cache
def map_settings() -> MapSettings:
    return MapSettings()
