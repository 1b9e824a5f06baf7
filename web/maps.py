"""Folium building blocks for firelane's pages: map, escaped GeoJSON layers, heatmap, clusters, vector tiles, page."""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element, Figure, MacroElement
from folium import plugins
from jinja2 import Template

from web.assets import STATIC_URL, localise
from web.basemap import add_basemap, display_crs, switcher_config, to_display
from web.i18n import lang
from web.settings import map_settings

#: Yinzhou district centre, used only when a page has no data to fit
DEFAULT_CENTER = (29.82, 121.55)

STYLES: dict[str, dict[str, Any]] = {
    "streets": {"color": "#555", "weight": 2, "dashArray": "6 4", "fill": False},
    "compounds": {"color": "#1f5fa8", "weight": 2, "fillColor": "#1f5fa8", "fillOpacity": 0.06},
    "buildings": {"color": "#6b6b6b", "weight": 1, "fillColor": "#b9b2a6", "fillOpacity": 0.7},
    "fire_lanes": {"color": "#c0392b", "weight": 1, "fillColor": "#f5b041", "fillOpacity": 0.55},
    "aerial_areas": {"color": "#8e44ad", "weight": 1, "fillColor": "#bb8fce", "fillOpacity": 0.5},
    "illegal_structures": {"color": "#7b241c", "weight": 2, "fillColor": "#e74c3c", "fillOpacity": 0.6},
    "parking": {"color": "#2e86c1", "weight": 1, "fillColor": "#5dade2", "fillOpacity": 0.6},
    "obstructions": {"color": "#d35400", "weight": 2, "fillColor": "#e67e22", "fillOpacity": 0.8},
    "ebike_sites": {"color": "#16a085", "weight": 1, "fillColor": "#48c9b0", "fillOpacity": 0.6},
    "entrances": {"color": "#117a65", "weight": 2, "fillColor": "#1abc9c", "fillOpacity": 0.9},
    "hydrants": {"color": "#922b21", "weight": 2, "fillColor": "#ff0000", "fillOpacity": 0.9},
    "hazards": {"color": "#b03a2e", "weight": 3, "fillColor": "#ff5733", "fillOpacity": 0.35},
    "roads": {"color": "#999", "weight": 2},
    "conflicts": {"color": "#6a1b9a", "weight": 3, "fillColor": "#d500f9", "fillOpacity": 0.6},
}


def new_map(frames: Sequence[gpd.GeoDataFrame] = (), *, prefer_canvas: bool = False) -> folium.Map:
    """An empty map (basemap per settings, none by default) fitted to the display bounds of `frames`.

    `prefer_canvas` draws vector layers on a canvas per pane instead of one SVG element per feature: pages with
    thousands of inline features then re-project and repaint once per zoom step instead of rewriting every path."""
    # no tile layer by default, so the map itself carries the zoom range (markercluster needs maxZoom)
    m = folium.Map(location=DEFAULT_CENTER, zoom_start=14, tiles=None, control_scale=True,
                   prefer_canvas=prefer_canvas, maxZoom=22, minZoom=3)
    add_basemap(m)
    # above the marker clusters (600): what a page is about (conflicts, structures) stays on top
    folium.map.CustomPane("fl-top", z_index=650, pointer_events=True).add_to(m)
    bounds = display_bounds(frames)
    if bounds is not None:
        m.fit_bounds(bounds, padding=(20, 20), max_zoom=19)
    return m


def display_bounds(frames: Sequence[gpd.GeoDataFrame]) -> list[list[float]] | None:
    boxes = [to_display(f.geometry.envelope).tolist() for f in frames if f is not None and not f.empty]
    if not boxes:
        return None
    geoms = np.concatenate([np.asarray(b, dtype=object) for b in boxes])
    x0, y0, x1, y1 = gpd.GeoSeries(geoms).total_bounds
    return [[float(y0), float(x0)], [float(y1), float(x1)]]


def _plain(value: Any) -> Any:
    """numpy scalars as Python values (json.dumps' default)."""
    return value.item() if hasattr(value, "item") else str(value)


def feature_collection(frame: gpd.GeoDataFrame, properties: dict[str, pd.Series | np.ndarray]) -> dict:
    """A GeoJSON FeatureCollection of `frame` in display coordinates carrying only `properties` (no raw fields).

    Geometries are written by GEOS in one vectorised call (geopandas' to_json walks the features in Python)."""
    # 7 decimals (about 1 cm) are all a map shows: shorter pages than GEOS' 15 digits
    display = shapely.transform(np.asarray(to_display(frame.geometry), dtype=object), lambda xy: np.round(xy, 7))
    geoms = shapely.to_geojson(display)
    keys = list(properties)
    columns = [[None if v is None or (isinstance(v, float) and v != v) else v for v in np.asarray(col, dtype=object)]
               for col in properties.values()]
    rows = zip(*columns, strict=True) if columns else ([] for _ in range(len(geoms)))
    features = ['{"type":"Feature","properties":' + json.dumps(dict(zip(keys, row, strict=True)), ensure_ascii=False, default=_plain)
                + ',"geometry":' + (g if g is not None else "null") + "}" for row, g in zip(rows, geoms, strict=True)]
    return json.loads('{"type":"FeatureCollection","features":[' + ",".join(features) + "]}")


def geojson_layer(frame: gpd.GeoDataFrame, *, name: str, style: dict[str, Any], popup: pd.Series | None = None,
                  tooltip: pd.Series | None = None, show: bool = True, limit: int | None = None,
                  point_radius: int = 6, colours: pd.Series | None = None,
                  pane: str | None = None) -> folium.FeatureGroup:
    """A FeatureGroup with `frame` inlined as GeoJSON (at most `limit` features, default the settings' cap).

    `popup`/`tooltip` are HTML strings built from escaped values (web.popups); no other attribute is inlined.
    `colours` (one CSS colour per row) fills each feature; `pane` puts the layer in a custom map pane
    ("fl-top" is above the marker clusters).
    """
    cap = limit if limit is not None else map_settings().max_inline_features
    frame = frame.head(cap)
    group = folium.FeatureGroup(name=name, show=show)
    if frame.empty:
        return group
    props: dict[str, Any] = {}
    if popup is not None:
        props["popup"] = popup.reindex(frame.index).fillna("").to_numpy()
    if tooltip is not None:
        props["tooltip"] = tooltip.reindex(frame.index).fillna("").to_numpy()
    if colours is not None:
        props["fill"] = colours.reindex(frame.index).fillna(style.get("fillColor", "#888")).to_numpy()
    data = feature_collection(frame, props)
    extra: dict[str, Any] = {"pane": pane} if pane else {}
    marker = folium.CircleMarker(radius=point_radius, **_leaflet_style(style), **extra)
    if colours is not None:
        def style_function(f: dict, s: dict = style) -> dict:
            return {**s, "fillColor": f["properties"]["fill"], "fillOpacity": 0.45, "color": f["properties"]["fill"]}
    else:
        def style_function(f: dict, s: dict = style) -> dict:
            return s
    gj = folium.GeoJson(
        data, name=name, style_function=style_function, marker=marker,
        popup=folium.GeoJsonPopup(fields=["popup"], labels=False, max_width=420) if popup is not None else None,
        tooltip=folium.GeoJsonTooltip(fields=["tooltip"], labels=False) if tooltip is not None else None,
    )
    if pane:
        gj.options["pane"] = pane
    gj.add_to(group)
    return group


def _leaflet_style(style: dict[str, Any]) -> dict[str, Any]:
    keys = {"color": "color", "weight": "weight", "fillColor": "fill_color", "fillOpacity": "fill_opacity"}
    return {keys[k]: v for k, v in style.items() if k in keys}


def heat_layer(points: gpd.GeoSeries, weights: pd.Series, *, name: str, show: bool = True) -> plugins.HeatMap:
    """A leaflet.heat layer of `points` weighted by `weights` (scaled to 0..1 by the largest weight)."""
    pts = to_display(points)
    w = np.asarray(weights, dtype=float)
    w = np.nan_to_num(w, nan=1.0)
    top = float(w.max()) if len(w) and w.max() > 0 else 1.0
    x = np.asarray([p.x for p in pts]) if len(pts) else np.array([])
    y = np.asarray([p.y for p in pts]) if len(pts) else np.array([])
    data = np.column_stack([y, x, np.clip(w / top, 0.05, 1.0)]).tolist() if len(pts) else []
    return plugins.HeatMap(data, name=name, radius=28, blur=18, min_opacity=0.35, max_zoom=18, max=1.0, show=show)


def cluster_layer(points: gpd.GeoSeries, popups: pd.Series, *, name: str, color: str,
                  show: bool = True, radius: int = 7) -> folium.FeatureGroup:
    """Clustered circle markers (leaflet.markercluster) for many points; popups are pre-escaped HTML."""
    pts = to_display(points)
    html = popups.reindex(points.index).fillna("").astype(str).tolist()
    rows = [[p.y, p.x, h] for p, h in zip(pts, html, strict=True)]
    callback = (
        "function (row) { var m = L.circleMarker(new L.LatLng(row[0], row[1]), "
        f"{{radius: {int(radius)}, color: {json.dumps(color)}, weight: 2, fillOpacity: 0.85}});"
        " if (row[2]) { m.bindPopup(row[2], {maxWidth: 420}); } return m; }"
    )
    group = folium.FeatureGroup(name=name, show=show)  # FastMarkerCluster ignores `show`: the group carries it
    plugins.FastMarkerCluster(rows, callback=callback, control=False,
                              options={"maxClusterRadius": 40, "disableClusteringAtZoom": 19}).add_to(group)
    return group


def vector_tile_layer(collection: str, *, name: str, style: dict[str, Any], show: bool = False,
                      min_zoom: int = 14, interactive: bool = False,
                      point_radius: int | None = None) -> plugins.VectorGridProtobuf:
    """A Leaflet.VectorGrid layer of the API's Mapbox vector tiles (/tiles/{collection}/{z}/{x}/{y}.mvt).

    Used for large layers instead of inlining them. Tiles are in storage coordinates: under a GCJ-02 basemap
    web/static/firelane/map.js shifts each tile by the GCJ-02 offset at its centre, so these layers line up too.
    `interactive` layers fire clicks carrying the feature's properties (ref, version, fields) and its id as `fid`.
    """
    leaflet_style = {**style, "fill": style.get("fill", "fillColor" in style)}
    if point_radius is not None:
        leaflet_style["radius"] = point_radius
    # built as a JS string: folium would camelize the dict keys, and the style key must be the MVT layer's name
    options = {"vectorTileLayerStyles": {collection: leaflet_style}, "interactive": interactive,
               "minZoom": min_zoom, "maxNativeZoom": 22, "maxZoom": 22}
    if interactive:
        options["getFeatureId"] = None
    # clicks need SVG tiles (the canvas tile renderer's hit-testing misses under Leaflet 1.9)
    renderer = "L.svg.tile" if interactive else "L.canvas.tile"
    options_js = json.dumps(options)[:-1] + f', "rendererFactory": {renderer}}}'
    if interactive:
        options_js = options_js.replace('"getFeatureId": null', '"getFeatureId": function (f) { f.properties.fid = f.id; return f.id; }')
    return plugins.VectorGridProtobuf(f"/tiles/{collection}/{{z}}/{{x}}/{{y}}.mvt", name, options_js, show=show)


class RawHtml(Element):
    """HTML put into the page as it is. branca's Element(html) compiles its text as a Jinja template: user text
    there ("{{ ... }}" in a compound name or a note) would run as template code, and a page-sized template takes
    a third of a second to compile."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self._name = "RawHtml"
        self.html = html

    def render(self, **kwargs: Any) -> str:
        return self.html


def _figure(element: Element) -> Figure:
    """The Figure an element renders in (branca types get_root as any Element)."""
    root = element.get_root()
    if not isinstance(root, Figure):
        raise TypeError(f"{element.get_name()} is not in a Figure")
    return root


def _render_macro_output_raw(self: MacroElement, **kwargs: Any) -> None:
    """branca's MacroElement.render with its header/html/script output added as RawHtml instead of Element."""
    figure = _figure(self)
    module = self._template.module
    for part, target in (("header", figure.header), ("html", figure.html), ("script", figure.script)):
        macro = module.__dict__.get(part)
        if macro is not None:
            target.add_child(RawHtml(macro(self, kwargs)), name=self.get_name())
    for element in self._children.values():
        element.render(**kwargs)


# branca 0.8.2 (the latest) wraps every element's rendered JavaScript in Element(...), which compiles it as a
# Jinja template: a "{{ ... }}" in inlined data (a compound name in a popup) would run as template code
MacroElement.render = _render_macro_output_raw  # type: ignore[method-assign]


class InlineScript(MacroElement):
    """JavaScript run after the map and the elements added before it exist (`{map}` is replaced by its variable)."""

    _template = Template("{% macro script(this, kwargs) %}{{ this.js }}{% endmacro %}")

    def __init__(self, js: str) -> None:
        super().__init__()
        self._name = "InlineScript"
        self.js = js

    def render(self, **kwargs: Any) -> None:  # type: ignore[override]  # branca: MacroElement.render returns None
        if self._parent is None:
            raise TypeError(f"{self.get_name()} renders inside a map")
        self.js = self.js.replace("{map}", self._parent.get_name())
        super().render(**kwargs)


def attribution_js(texts: Sequence[str]) -> str:
    """JS that adds data-source attributions (escaped text) to the map's attribution control."""
    return "".join(
        f"{{map}}.attributionControl.addAttribution({json.dumps(escape(t))});" for t in dict.fromkeys(texts) if t
    )


def render_page(m: folium.Map, *, title: str, body_html: str, scripts: Sequence[str] = (),
                inline_js: Sequence[str] = (), attributions: Sequence[str] = (), layer_control: bool = True,
                css: Sequence[str] = (), config: dict[str, Any] | None = None) -> str:
    """The full HTML page: folium's map (assets pointed at /static/vendor) plus firelane's header and side panel.

    `title` is plain text (escaped here); `body_html` comes from an autoescaping template. `config` becomes
    `window.FIRELANE` (JSON, safe inside a script) for firelane's page scripts (map.js first, then `scripts`).
    """
    if layer_control:
        control = folium.LayerControl(collapsed=True, position="topright")
        control.add_to(m)
        m.add_child(InlineScript(f"window.FIRELANE_LAYERS = {control.get_name()};"))
    fig = _figure(m)
    fig.title = escape(title)
    fig.header.add_child(RawHtml('<meta name="viewport" content="width=device-width, initial-scale=1">'
                                 '<link rel="icon" href="data:,">'), name="fl_viewport")
    for i, href in enumerate([f"{STATIC_URL}/firelane/page.css", *css]):
        fig.header.add_child(RawHtml(f'<link rel="stylesheet" href="{escape(href)}"/>'), name=f"fl_css_{i}")
    fig.html.add_child(RawHtml(body_html), name="fl_body")
    config = {"lang": lang(), "gcj02": display_crs() == "gcj02", "basemaps": switcher_config(), **(config or {})}
    fig.html.add_child(RawHtml(f"<script>window.FIRELANE = {safe_json(config)};</script>"), name="fl_config")
    for i, src in enumerate([f"{STATIC_URL}/firelane/map.js", f"{STATIC_URL}/firelane/chrome.js", *scripts]):
        fig.html.add_child(RawHtml(f'<script src="{escape(src)}"></script>'), name=f"fl_js_{i}")
    m.add_child(InlineScript(attribution_js(attributions) + "firelaneMap({map});"))
    for js in inline_js:
        m.add_child(InlineScript(js))
    localise(fig)
    html = fig.render()
    return html.replace("<html>", f'<html lang="{"en" if lang() == "en" else "zh-CN"}">', 1)


def safe_json(obj: Any) -> str:
    """JSON safe inside an inline <script> (no `</script>` breakout)."""
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
            .replace(">", "\\u003e").replace("&", "\\u0026"))
