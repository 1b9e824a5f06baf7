"""Rendering a page puts user text in as text: never as template code, whatever braces it holds."""

from __future__ import annotations

import folium
import geopandas as gpd
from shapely.geometry import Point

from web.maps import geojson_layer, new_map, render_page


def test_user_text_with_template_braces_is_not_evaluated():
    payload = "{{ 'fire' ~ 'lane' ~ 'x' * 3 }}{% for x in [1,2] %}loop{% endfor %}"
    html = render_page(folium.Map(tiles=None), title=payload, body_html=f"<p id='b'>{payload}</p>",
                       config={"name": payload}, layer_control=False)
    assert f"<p id='b'>{payload}</p>" in html
    assert payload.replace("<", "\\u003c") in html  # in window.FIRELANE, as JSON text
    assert "firelanexxx" not in html and "looploop" not in html


def test_inlined_features_with_template_braces_are_not_evaluated():
    payload = "{{ 'fire' ~ 'lane' ~ 'x' * 3 }}"
    frame = gpd.GeoDataFrame({"ref": [payload]}, geometry=[Point(121.55, 29.82)], crs=4490)
    m = new_map([frame])
    geojson_layer(frame, name=payload, style={"color": "#000"}, popup=frame["ref"], tooltip=frame["ref"]).add_to(m)
    html = render_page(m, title="t", body_html="", layer_control=True)
    assert "firelanexxx" not in html
    assert payload.replace("'", "\\u0027") in html or payload in html
