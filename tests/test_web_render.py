"""Rendering a page puts user text in as text: never as template code, whatever braces it holds."""

from __future__ import annotations

import folium

from web.maps import render_page


def test_user_text_with_template_braces_is_not_evaluated():
    payload = "{{ 7*7 }}{% for x in [1,2] %}loop{% endfor %}"
    html = render_page(folium.Map(tiles=None), title=payload, body_html=f"<p id='b'>{payload}</p>",
                       config={"name": payload}, layer_control=False)
    assert f"<p id='b'>{payload}</p>" in html
    assert payload.replace("<", "\\u003c") in html  # in window.FIRELANE, as JSON text
    assert "49" not in html and "looploop" not in html
