"""Vendored Leaflet assets: folium's CDN links rewritten to the local /static/vendor copies (pages work offline)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from branca.element import Element
from folium.elements import JSCSSMixin

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_URL = "/static"
VENDOR_URL = f"{STATIC_URL}/vendor"

#: folium's asset names (the first item of its `default_js`/`default_css` pairs) → local URL, or None to drop the
#: asset. jQuery, Bootstrap and Awesome Markers are folium defaults that firelane's pages do not use (no
#: L.AwesomeMarkers icons, no Bootstrap widgets), so they are left out rather than vendored.
LOCAL_ASSETS: dict[str, str | None] = {
    "leaflet": f"{VENDOR_URL}/leaflet/leaflet.js",
    "leaflet_css": f"{VENDOR_URL}/leaflet/leaflet.css",
    "jquery": None,
    "bootstrap": None,
    "bootstrap_css": None,
    "glyphicons_css": None,
    "awesome_markers": None,
    "awesome_markers_css": None,
    "awesome_markers_font_css": None,
    "awesome_rotate_css": None,
    "leaflet-heat.js": f"{VENDOR_URL}/leaflet.heat/leaflet-heat.js",
    "markerclusterjs": f"{VENDOR_URL}/leaflet.markercluster/leaflet.markercluster.js",
    "markerclustercss": f"{VENDOR_URL}/leaflet.markercluster/MarkerCluster.css",
    "markerclusterdefaultcss": f"{VENDOR_URL}/leaflet.markercluster/MarkerCluster.Default.css",
    "leaflet_draw_js": f"{VENDOR_URL}/leaflet-draw/leaflet.draw.js",
    "leaflet_draw_css": f"{VENDOR_URL}/leaflet-draw/leaflet.draw.css",
    "vectorGrid": f"{VENDOR_URL}/leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js",
}


class UnvendoredAssetError(LookupError):
    """A folium element asks for a CDN asset that firelane does not ship (vendor it or map it to None)."""


def _local(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    out = []
    for name, url in pairs:
        if url.startswith(STATIC_URL + "/"):
            out.append((name, url))
            continue
        if name not in LOCAL_ASSETS:
            raise UnvendoredAssetError(f"未内置的前端资源 asset not vendored: {name} ({url})")
        local = LOCAL_ASSETS[name]
        if local is not None:
            out.append((name, local))
    return out


def _walk(element: Element) -> Iterator[Element]:
    yield element
    for child in list(element._children.values()):
        yield from _walk(child)


def localise(root: Element) -> Element:
    """Point every folium element under `root` at the vendored assets (per instance; folium's classes untouched).

    Raises UnvendoredAssetError for an asset firelane does not ship, so a new plugin cannot slip a CDN URL in.
    """
    for element in _walk(root):
        if isinstance(element, JSCSSMixin):
            element.default_js = _local(list(element.default_js))
            element.default_css = _local(list(element.default_css))
    return root


def asset_path(url: str) -> Path:
    """The file behind a /static URL (for tests and checks)."""
    if not url.startswith(STATIC_URL + "/"):
        raise ValueError(url)
    return STATIC_DIR / url[len(STATIC_URL) + 1:]
