"""Downloads of the map pages' lists: stalls to remove or move (CSV/XLSX), illegal structures (KML/GPX).

Every cell is text a spreadsheet will not evaluate (gis.spreadsheet_safety: CSV formula-like text gets a leading
apostrophe, XLSX text cells are typed as strings, never formulas).
"""

from __future__ import annotations

import csv
import io
from xml.sax.saxutils import escape

import pandas as pd
from openpyxl import Workbook

from gis.spreadsheet_safety import csv_value, set_cell
from web.i18n import tr

#: (column, zh, en) of the stalls list
TRAFFIC_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("street_name", "街道", "Street"), ("rule", "规则", "Rule"), ("title", "问题", "Problem"),
    ("parking", "停车编号", "Parking ref"), ("action", "处置", "Action"), ("near", "相关", "Near"),
    ("compound", "小区", "Compound"), ("status", "状态", "Status"), ("severity", "严重度", "Severity"),
    ("lon", "经度 WGS84", "Lon WGS84"), ("lat", "纬度 WGS84", "Lat WGS84"),
)


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def neutral_csv(value: object) -> str:
    """A CSV cell that no spreadsheet runs as a formula."""
    return csv_value(_cell(value))


def _header() -> list[str]:
    return [tr(zh, en) for _, zh, en in TRAFFIC_COLUMNS]


def traffic_csv(rows: pd.DataFrame) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(_header())
    for rec in rows.to_dict("records"):
        writer.writerow([neutral_csv(rec.get(c)) for c, _, _ in TRAFFIC_COLUMNS])
    return ("\ufeff" + out.getvalue()).encode("utf-8")  # BOM: Excel opens UTF-8 Chinese correctly


def traffic_xlsx(rows: pd.DataFrame) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = tr("停车清移清单", "Stalls")
    ws.append(_header())
    for rec in rows.to_dict("records"):
        ws.append([""] * len(TRAFFIC_COLUMNS))
        for j, (c, _, _) in enumerate(TRAFFIC_COLUMNS, start=1):
            set_cell(ws.cell(row=ws.max_row, column=j), _cell(rec.get(c)))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def demolition_kml(rows: pd.DataFrame) -> bytes:
    """Placemarks (WGS 84, as KML requires) named `#rank ref`, described by what each structure blocks."""
    marks = []
    for r in rows.to_dict("records"):
        text = "; ".join(r.get("impacts") or [])
        name = escape("#" + str(r["rank"]) + " " + str(r["ref"]))
        marks.append(f"<Placemark><name>{name}</name>"
                     f"<description>{escape(text)}</description>"
                     f"<Point><coordinates>{float(r['lon']):.7f},{float(r['lat']):.7f}</coordinates></Point>"
                     "</Placemark>")
    doc = ('<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="http://www.opengis.net/kml/2.2"><Document>'
           f"<name>{escape(tr('违章建筑清单', 'Illegal structures'))}</name>" + "".join(marks) + "</Document></kml>\n")
    return doc.encode("utf-8")


def demolition_gpx(rows: pd.DataFrame) -> bytes:
    """Waypoints (WGS 84) for GPS units and navigation apps."""
    pts = []
    for r in rows.to_dict("records"):
        text = "; ".join(r.get("impacts") or [])
        name = escape("#" + str(r["rank"]) + " " + str(r["ref"]))
        pts.append(f'<wpt lat="{float(r["lat"]):.7f}" lon="{float(r["lon"]):.7f}">'
                   f"<name>{name}</name><desc>{escape(text)}</desc></wpt>")
    doc = ('<?xml version="1.0" encoding="UTF-8"?>\n<gpx version="1.1" creator="firelane" '
           'xmlns="http://www.topografix.com/GPX/1/1">' + "".join(pts) + "</gpx>\n")
    return doc.encode("utf-8")
