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


def bent_district() -> dict[str, gpd.GeoDataFrame]:
    """Three compounds along an L (C1 south-west, C2 north-west, C3 north-east, 900 m apart) and a fourth, C4, in
    the L's empty south-east corner with its own building B4 and lane L4: neighbours of a run that bends."""
    def compound(ref: str, x: float, y: float) -> dict:
        return {"ref": ref, "name": ref, "geometry": box(x, y, x + 100, y + 100)}

    return {
        "compounds": frame([compound("C1", 0, 0), compound("C2", 0, 1000), compound("C3", 1000, 1000),
                            compound("C4", 1000, 0)]),
        "buildings": frame([{"ref": f"B{i}", "compound_ref": f"C{i}", "height_m": 18.0,
                             "geometry": box(x + 30, y + 40, x + 60, y + 55)}
                            for i, (x, y) in enumerate(((0, 0), (0, 1000), (1000, 1000), (1000, 0)), start=1)]),
        "fire_lanes": frame([{"ref": "L4", "compound_ref": "C4", "kind": "through",
                              "geometry": box(1007, 0, 1013, 90)}]),
    }


def load(engine, layers: dict[str, gpd.GeoDataFrame]) -> None:
    with transaction(engine=engine) as conn:
        for name in ("compounds", "roads", "entrances", "fire_lanes", "obstructions", "buildings"):
            if name in layers:
                write_frame(conn, name, layers[name])
