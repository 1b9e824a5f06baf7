"""Helpers of the runner tests: two hand-made compounds side by side, written to PostGIS through the store."""

from __future__ import annotations

import geopandas as gpd
from lanes_support import frame
from shapely.geometry import LineString, Point, box

from gis.db import transaction
from gis.store import write_frame


def district() -> dict[str, gpd.GeoDataFrame]:
    """Two compounds side by side; C1's lane is blocked by a car, C2's lane is 3.8 m wide."""
    return {
        "compounds": frame([{"ref": "C1", "name": "一号小区", "geometry": box(0, 0, 100, 150)},
                            {"ref": "C2", "name": "二号小区", "geometry": box(120, 0, 220, 150)}]),
        "roads": frame([{"ref": "R1", "kind": "city", "width_m": 12.0,
                         "geometry": LineString([(-50, -7), (270, -7)])}]),
        "entrances": frame([{"ref": "G1", "kind": "vehicle", "geometry": Point(10, 0)},
                            {"ref": "G2", "kind": "vehicle", "geometry": Point(130, 0)}]),
        "fire_lanes": frame([{"ref": "L1", "kind": "through", "geometry": box(7, 0, 13, 140)},
                             {"ref": "L2", "kind": "through", "geometry": box(128.1, 0, 131.9, 140)}]),
        "obstructions": frame([{"ref": "V1", "kind": "vehicle", "geometry": box(9.5, 60, 11.3, 64.8)}]),
        "buildings": frame([{"ref": "B1", "height_m": 18.0, "geometry": box(30, 40, 60, 55)},
                            {"ref": "B2", "height_m": 18.0, "geometry": box(150, 40, 180, 55)}]),
    }


def load(engine, layers: dict[str, gpd.GeoDataFrame]) -> None:
    with transaction(engine=engine) as conn:
        for name in ("compounds", "roads", "entrances", "fire_lanes", "obstructions", "buildings"):
            if name in layers:
                write_frame(conn, name, layers[name])
