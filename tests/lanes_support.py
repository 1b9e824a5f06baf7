"""Helpers of the fire-lane rule tests: hand-made compounds in local metres, stored and partitioned like real data."""

from __future__ import annotations

import geopandas as gpd
import shapely
from shapely.geometry import LineString, Point, box

from gis.checks import lanes
from gis.checks.context import CheckContext, build_contexts
from gis.checks.findings import FINDING_COLUMNS

#: Local metres are shifted into UTM 51N near Ningbo, stored as EPSG:4490 and partitioned like real data.
X0, Y0 = 360_000.0, 3_300_000.0


def frame(rows: list[dict]) -> gpd.GeoDataFrame:
    rows = [dict(r) for r in rows]
    geoms = [shapely.affinity.translate(r.pop("geometry"), X0, Y0) for r in rows]
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=32651).to_crs(4490)


def context(**layers: list[dict]) -> CheckContext:
    """One compound (0..200 m square) with a 12 m city road south of it and a vehicle gate at x = 10 m."""
    base = {
        "compounds": [{"ref": "C1", "geometry": box(0, 0, 200, 200)}],
        "roads": [{"ref": "R1", "kind": "city", "width_m": 12.0,
                   "geometry": LineString([(-100, -7), (300, -7)])}],
        "entrances": [{"ref": "G1", "kind": "vehicle", "width_m": 8.0, "geometry": Point(10, 0)}],
    }
    base.update(layers)
    ctxs = build_contexts({k: frame(v) for k, v in base.items()}, profile="cn-gb")
    assert [c.compound_ref for c in ctxs] == ["C1"]
    return ctxs[0]


def findings(ctx: CheckContext, rule: str | None = None) -> gpd.GeoDataFrame:
    out = lanes.check(ctx)
    assert list(out.columns[:-1]) == list(FINDING_COLUMNS)
    return out if rule is None else out[out["rule"] == rule]


def lane(ref: str, geom, kind: str = "through", **kw) -> dict:
    return {"ref": ref, "kind": kind, "geometry": geom, **kw}


def fails(frame: gpd.GeoDataFrame) -> set[str]:
    return set(frame.loc[frame["verdict"] == "fail", "subject_ref"])


def parked_car(ref: str, x0: float, y0: float, kind: str = "vehicle") -> dict:
    return {"ref": ref, "kind": kind, "geometry": box(x0, y0, x0 + 1.8, y0 + 4.8)}
