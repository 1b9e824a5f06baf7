"""Popup and tooltip HTML built server-side with every value escaped (folium inserts popup strings as raw HTML)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from urllib.parse import quote

import pandas as pd

#: (column, zh label, en label) rows of a popup table
PopupField = tuple[str, str, str]


def text(value: object) -> str:
    """A value as escaped HTML text; None/NaN as an empty string, floats without noise."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return escape(f"{value:.2f}".rstrip("0").rstrip("."))
    if value is pd.NaT:
        return ""
    return escape(str(value))


def link(href: str, label: object) -> str:
    """An <a> element with an escaped label; `href` is a site path whose variable parts were quoted by the caller."""
    return f'<a href="{escape(href)}">{text(label)}</a>'


def compound_href(ref: object) -> str:
    """The one-compound-one-file page of a compound ref (any characters: quoted as one path segment)."""
    return "/map/compounds/" + quote(str(ref), safe="")


def table(frame: pd.DataFrame, fields: Sequence[PopupField], *, title: pd.Series | None = None,
          extra: pd.Series | None = None) -> pd.Series:
    """One escaped HTML popup per row of `frame`: an optional title line, then a label/value table.

    `title` and `extra` are HTML already built from escaped parts (e.g. with :func:`link`); field values are escaped
    here. Returns a Series indexed like `frame`.
    """
    present = [f for f in fields if f[0] in frame.columns]
    cells = pd.DataFrame(index=frame.index)
    for col, zh, en in present:
        values = frame[col].map(text).astype(object)  # an empty int column maps to an empty int Series
        cells[col] = f'<tr><th>{escape(zh)} {escape(en)}</th><td>' + values + "</td></tr>"
    body = cells.apply(lambda r: "".join(r), axis=1) if present and len(frame) else pd.Series("", index=frame.index)
    html = '<table class="fl-popup">' + body.astype(str) + "</table>"
    if title is not None:
        html = '<div class="fl-popup-title">' + title.reindex(frame.index).fillna("") + "</div>" + html
    if extra is not None:
        html = html + extra.reindex(frame.index).fillna("")
    return html.astype(str)
