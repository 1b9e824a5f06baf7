"""A small three-street district for the campaign tests: compounds with hazards in given states, a roster file.

Imported by tests/test_campaign*.py (`from campaign_support import ...`); it holds no tests itself.
"""

from __future__ import annotations

import csv
from pathlib import Path

import geopandas as gpd
import shapely

from gis.db import transaction
from gis.store import write_frame

#: street code → (name, number of compounds, how many of them reported rectified)
STREETS = {
    "330212003": ("中河街道", 12, 11),
    "330212004": ("东柳街道", 5, 5),
    "330212005": ("钟公庙街道", 3, 1),
}
HOSTILE_NAME = '=HYPERLINK("http://evil","点我")<script>alert(1)</script>'


def load_campaign_district(engine) -> dict[str, list[str]]:
    """Streets side by side, compounds in a row in each; every compound has one LANE-CLEAR hazard (rectified in
    the first `rectified` compounds of its street, open in the rest) and one SEP-BUILDINGS hazard verified.
    Returns street code → compound refs. The first compound of the first street has a hostile name."""
    x0, y0 = 121.50, 29.80
    refs: dict[str, list[str]] = {}
    streets, compounds, hazards = [], [], []
    for si, (code, (name, n, rectified)) in enumerate(STREETS.items()):
        sx = x0 + si * 0.02
        streets.append(({"ref": code, "name": name}, shapely.box(sx, y0, sx + 0.02, y0 + 0.02)))
        refs[code] = []
        for ci in range(n):
            ref = f"C{si}-{ci:02d}"
            refs[code].append(ref)
            cx, cy = sx + 0.0005 + (ci % 6) * 0.003, y0 + 0.0005 + (ci // 6) * 0.003
            cname = HOSTILE_NAME if (si, ci) == (0, 0) else f"{name[:2]}{ci}号小区"
            compounds.append(({"ref": ref, "name": cname, "street_code": code, "built_year": 2012 + ci % 10,
                               "property_company": f"物业{ci % 3}", "households": 100 + ci, "kind": "old_lowrise"},
                              shapely.box(cx, cy, cx + 0.002, cy + 0.002)))
            status = "rectified" if ci < rectified else "open"
            for rule, st, sev in (("LANE-CLEAR", status, 6.0), ("SEP-BUILDINGS", "verified", 4.0)):
                hazards.append(({"key": f"{rule}|{ref}", "rule": rule, "verdict": "fail", "status": st,
                                 "severity": sev, "subject_layer": "fire_lanes", "subject_ref": f"L-{ref}",
                                 "clause": "GB 50016-2014(2018) 7.1.8", "measured": 2.5, "required_value": 4.0,
                                 "unit": "m", "message_zh": f"{rule} 不合格", "department": "交警/公安",
                                 "compound_ref": ref},
                                shapely.Point(cx + 0.001, cy + 0.001)))

    def frame(items):
        return gpd.GeoDataFrame([a for a, _ in items], geometry=[g for _, g in items], crs=4490)

    with transaction(engine=engine, user="fixture") as conn:
        write_frame(conn, "streets", frame(streets))
        write_frame(conn, "compounds", frame(compounds))
        write_frame(conn, "hazards", frame(hazards))
    return refs


def write_roster(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["姓名", "单位", "街道"])
        w.writerows(rows)
    return path


def default_roster(path: Path) -> Path:
    """Two inspectors of each street office and three of district units (no street)."""
    rows = [(f"{name}检查员{i}", f"{name}办事处", code) for code, (name, _, _) in STREETS.items() for i in (1, 2)]
    rows += [("区住建局甲", "区住建局", ""), ("消防大队乙", "区消防救援大队", ""), ("城管丙", "区城管局", "")]
    return write_roster(path, rows)
