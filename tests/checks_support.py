"""Scaffolding for the rule-check unit tests: hand-made features in UTM 51N (Ningbo) and a one-compound context."""

from __future__ import annotations

import geopandas as gpd
import pyproj
import shapely

from gis.checks.context import CheckContext
from gis.checks.profiles import load_profile

CRS = "EPSG:32651"  # UTM 51N: Ningbo / Yinzhou
X0, Y0 = 350_000.0, 3_300_000.0
PROFILE = load_profile("cn-gb")


def rect(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    """A box given in metres from the test origin."""
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def pt(x: float, y: float) -> shapely.Point:
    return shapely.Point(X0 + x, Y0 + y)


def line(*xy: tuple[float, float]) -> shapely.LineString:
    return shapely.LineString([(X0 + x, Y0 + y) for x, y in xy])


def feat(ref: str, geometry, **attrs) -> dict:
    """A feature of compound C1."""
    return {"ref": ref, "compound_ref": "C1", "geometry": geometry, **attrs}


def context(**layers: list[dict]) -> CheckContext:
    """A partition of compound C1 holding the given layers (lists of feature dicts)."""
    frames = {name: gpd.GeoDataFrame(rows, geometry="geometry", crs=CRS) for name, rows in layers.items()}
    return CheckContext(compound_ref="C1", crs=pyproj.CRS(CRS), profile=PROFILE, layers=frames)


def by_rule(found: gpd.GeoDataFrame, rule: str) -> gpd.GeoDataFrame:
    """The findings of one rule."""
    return found[found.rule == rule]
