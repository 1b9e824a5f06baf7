"""Partitioning a district into check contexts: who owns a feature, what each partition carries, the projection."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from lanes_support import frame
from shapely import STRtree
from shapely.geometry import Point, box

from gis.checks.context import OWNER_COLUMN, OWNER_REACH_M, _owners, _projected, build_contexts
from gis.coords import local_metric_crs


def owners_of(layer: str, ctxs) -> dict[str, str]:
    out: dict[str, str] = {}
    for ctx in ctxs:
        f = ctx.layer(layer)
        out.update(zip(f["ref"], f[OWNER_COLUMN], strict=True))
    return out


def two_compounds(**layers: list[dict]) -> dict[str, gpd.GeoDataFrame]:
    """C2 at 0..100 m, C1 at 200..300 m (the smaller ref on the right), 100 m of open ground between them."""
    base = {"compounds": [{"ref": "C2", "geometry": box(0, 0, 100, 100)},
                          {"ref": "C1", "geometry": box(200, 0, 300, 100)}]}
    base.update(layers)
    return {k: frame(v) for k, v in base.items()}


def test_a_feature_without_compound_ref_belongs_to_the_nearest_compound_near_or_far():
    assert OWNER_REACH_M < 35  # p2 and p3 lie beyond the near search: the tree's own nearest search decides them
    parking = [
        {"ref": "P1", "geometry": box(104, 40, 109, 45)},     # 4 m from C2, 91 m from C1
        {"ref": "P2", "geometry": box(160, 40, 165, 45)},     # 60 m from C2, 35 m from C1
        {"ref": "P3", "geometry": box(135, 40, 140, 45)},     # 35 m from C2, 60 m from C1
        {"ref": "P4", "geometry": box(50, 150, 55, 155)},     # 50 m north of C2, far from C1
        {"ref": "P5", "geometry": box(250, -20, 255, -15)},   # 15 m south of C1
        {"ref": "P6", "geometry": box(20, 20, 25, 25)},       # inside C2
        {"ref": "P7", "compound_ref": "C1", "geometry": box(20, 30, 25, 35)},  # inside C2, but C1 names it
    ]
    ctxs = build_contexts(two_compounds(parking=parking), profile="cn-gb", group_size=2)
    assert owners_of("parking", ctxs) == {"P1": "C2", "P2": "C1", "P3": "C2", "P4": "C2", "P5": "C1",
                                          "P6": "C2", "P7": "C1"}
    ctxs = build_contexts(two_compounds(parking=parking), profile="cn-gb")  # one partition per compound
    assert [c.compound_ref for c in ctxs] == ["C1", "C2"]
    own = {c.compound_ref: set(c.layer("parking")["ref"][c.owned(c.layer("parking"))]) for c in ctxs}
    assert own == {"C1": {"P2", "P5", "P7"}, "C2": {"P1", "P3", "P4", "P6"}}


def test_equally_near_compounds_give_the_feature_to_the_smaller_ref_near_or_far():
    outlines = np.array([box(0, 0, 100, 100), box(200, 0, 300, 100), box(0, 300, 100, 400)], dtype=object)
    crefs = np.array(["C3", "C1", "C2"], dtype=object)
    geoms = np.array([Point(150, 50),            # 50 m from C3 and C1
                      Point(100.0 + 5, 100.0),    # 5 m from C3 only
                      box(100, 45, 200, 55),      # touches C3 and C1
                      Point(50, 200),             # 100 m from C3 and C2
                      None], dtype=object)
    given = np.array([None, None, None, None, "C2"], dtype=object)
    owner = _owners(geoms, given, outlines, crefs, STRtree(outlines))
    assert crefs[owner[:4]].tolist() == ["C1", "C3", "C1", "C2"]
    assert owner[4] == 2
    # a compound_ref that names no compound of the partitioning is not an owner: the nearest outline is
    assert crefs[_owners(np.array([Point(250, 50)], dtype=object), np.array(["elsewhere"], dtype=object), outlines,
                         crefs, STRtree(outlines))].tolist() == ["C1"]


def test_layers_with_only_empty_geometries_are_left_out_and_missing_ones_dropped():
    layers = two_compounds(parking=[{"ref": "P1", "geometry": box(104, 40, 109, 45)}])
    layers["hydrants"] = gpd.GeoDataFrame({"ref": ["H1"]}, geometry=[Point()], crs=4490)
    blank = gpd.GeoDataFrame({"ref": ["PX", "PY"]}, geometry=[None, Point()], crs=4490)
    layers["parking"] = gpd.GeoDataFrame(pd.concat([layers["parking"], blank], ignore_index=True), crs=4490)
    ctx = build_contexts(layers, profile="cn-gb", group_size=2)[0]
    assert "hydrants" not in ctx.layers
    assert ctx.layer("parking")["ref"].tolist() == ["P1"]


def test_projection_gives_geopandas_coordinates_exactly():
    layers = two_compounds(parking=[{"ref": "P1", "geometry": box(104, 40, 109, 45)}],
                           roads=[{"ref": "R1", "geometry": shapely.LineString([(-50, -7), (350, -7)])}])
    crs = local_metric_crs(121.5, 29.8)
    for f in layers.values():
        mine, theirs = _projected(f, crs), f.to_crs(crs)
        assert mine.crs == theirs.crs and list(mine.columns) == list(theirs.columns)
        assert shapely.equals_exact(np.asarray(mine.geometry.values), np.asarray(theirs.geometry.values),
                                    tolerance=0).all()
    # a frame with z coordinates keeps them, moved as geopandas moves them
    z = gpd.GeoDataFrame({"ref": ["Z"]}, geometry=[Point(121.5, 29.8, 5.0)], crs=4490)
    assert shapely.equals_exact(_projected(z, crs).geometry.iloc[0], z.to_crs(crs).geometry.iloc[0], tolerance=0)
