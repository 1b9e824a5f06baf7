"""GDAL's OAPIF driver reads the service as it is: ogrinfo lists the collections, ogr2ogr copies a layer."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import httpx
import pandas as pd
import pyogrio
import pytest
import shapely
from server_support import served

from api.app import create_app
from api.collections import LISTED
from gis.db import transaction
from gis.layers import COMMON_FIELDS, LAYERS
from gis.store import write_frame

pytestmark = pytest.mark.db  # GDAL (gdal-bin) is installed by scripts/setup.sh: a missing ogrinfo fails


@pytest.fixture
def server(db) -> Iterator[str]:
    """A real uvicorn server on 127.0.0.1 and a free port, in a thread of this process."""
    with served(create_app()) as url:
        yield url


def _gdal_env(auth: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env["GDAL_HTTP_HEADERS"] = f"Authorization: {auth['Authorization']}"
    env["CPL_CURL_VERBOSE"] = "NO"
    return env


def test_ogrinfo_lists_every_collection_with_a_token(server, headers, district):
    proc = subprocess.run(["ogrinfo", "-ro", "-q", f"OAPIF:{server}/"], capture_output=True, text=True,
                          env=_gdal_env(headers["viewer"]), timeout=120)
    assert proc.returncode == 0, proc.stderr
    for name in LAYERS:
        assert name in proc.stdout, (name, proc.stdout)


def test_ogrinfo_without_a_token_is_refused(server, district):
    env = dict(os.environ)
    env.pop("GDAL_HTTP_HEADERS", None)
    proc = subprocess.run(["ogrinfo", "-ro", "-q", f"OAPIF:{server}/", "buildings"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode != 0


def test_ogr2ogr_copies_a_layer_with_its_features_and_attributes(server, headers, district, tmp_path: Path):
    out = tmp_path / "buildings.geojson"
    proc = subprocess.run(["ogr2ogr", "-f", "GeoJSON", str(out), f"OAPIF:{server}/", "buildings"],
                          capture_output=True, text=True, env=_gdal_env(headers["admin"]), timeout=120)
    assert proc.returncode == 0, proc.stderr
    copied = json.loads(out.read_text())
    direct = httpx.get(f"{server}/collections/buildings/items?limit=1000", headers=headers["admin"]).json()
    assert len(copied["features"]) == len(direct["features"]) == 6
    by_ref = {f["properties"]["ref"]: f["properties"] for f in copied["features"]}
    for f in direct["features"]:
        got = by_ref[f["properties"]["ref"]]
        for key in ("height_m", "floors", "street_code", "compound_ref", "use"):
            assert got[key] == f["properties"][key], key


def test_ogr2ogr_pages_through_a_layer_bigger_than_one_page(server, headers, district, tmp_path: Path, db):
    n = 2500
    pts = gpd.GeoDataFrame({"ref": [f"P{i}" for i in range(n)]},
                           geometry=shapely.points([121.501 + (i % 50) * 1e-5 for i in range(n)],
                                                   [29.801 + (i // 50) * 1e-5 for i in range(n)]), crs=4490)
    with transaction(engine=db, user="fixture") as conn:
        write_frame(conn, "hydrants", pts)
    out = tmp_path / "hydrants.geojson"
    proc = subprocess.run(["ogr2ogr", "-f", "GeoJSON", str(out), f"OAPIF:{server}/", "hydrants"],
                          capture_output=True, text=True, env=_gdal_env(headers["admin"]), timeout=300)
    assert proc.returncode == 0, proc.stderr
    refs = [f["properties"]["ref"] for f in json.loads(out.read_text())["features"]]
    assert len(refs) == len(set(refs)) == n + 2


# --- every collection, typed from the schema, value for value against `firelane export` ---------------------------

#: OGR field types (as pyogrio names them) each declared field type must arrive as.
OGR_TYPES = {"float": {"float64"}, "int": {"int32", "int64"}, "bool": {"bool"}, "date": {"datetime64[D]"},
             "timestamp": {"datetime64[ms]"}, "text": {"object"}, "json": {"object"}}


def _export(layer: str, path: Path) -> dict[str, dict]:
    """`firelane export LAYER --format geojson` (a CLI subprocess, the managed database of this test session):
    properties by feature key, as written (floats as floats, dates as text)."""
    proc = subprocess.run([sys.executable, "-m", "api.cli", "export", layer, "--format", "geojson", "-o", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    key = "key" if layer == "hazards" else "ref"
    return {f["properties"][key]: f for f in json.loads(path.read_text())["features"]}


def _same(declared: str, exported, copied) -> bool:
    if exported is None:
        return copied is None or (isinstance(copied, float) and math.isnan(copied)) or copied is pd.NaT
    if declared == "float":
        return type(copied) is float and copied == exported
    if declared == "int":
        return int(copied) == exported
    if declared == "bool":
        return bool(copied) is exported
    if declared == "date":
        return pd.Timestamp(copied).date().isoformat() == exported[:10]
    if declared == "timestamp":
        return pd.Timestamp(copied).tz_localize(None) == pd.Timestamp(exported).tz_convert("UTC").tz_localize(None)
    if declared == "json":
        return json.loads(copied) == exported
    return copied == exported


def test_ogr2ogr_copies_every_collection_with_every_value_and_type(live, headers, desktop_district, tmp_path: Path):
    exports: dict[str, dict[str, dict]] = {}
    copied_refs: dict[str, set[str]] = {}
    for view in LISTED:
        layer = view.layer
        if layer.name not in exports:
            exports[layer.name] = _export(layer.name, tmp_path / f"{layer.name}.geojson")
        out = tmp_path / f"{view.id}.gpkg"  # a GeoPackage: JSON values arrive as text it can hold
        proc = subprocess.run(["ogr2ogr", "-f", "GPKG", str(out), f"OAPIF:{live.url}/", view.id],
                              capture_output=True, text=True, env=_gdal_env(headers["admin"]), timeout=300)
        assert proc.returncode == 0, (view.id, proc.stderr)
        info = pyogrio.read_info(out)
        types = dict(zip(info["fields"], info["dtypes"], strict=True))
        declared = {name: layer.field(name).type for name in types if name in layer_field_names(layer)}
        for name, kind in declared.items():
            assert types[name] in OGR_TYPES[kind], (view.id, name, kind, types[name])
        frame = pyogrio.read_dataframe(out)
        # GDAL 3.6 types the geometry from the first page: an empty collection's is Unknown
        assert info["geometry_type"] == (view.geometry_type if len(frame) else "Unknown"), view.id
        key = "key" if layer.name == "hazards" else "ref"
        for _, row in frame.iterrows():
            exported = exports[layer.name][row[key]]
            for name, kind in declared.items():
                assert _same(kind, exported["properties"].get(name), row[name]), (view.id, row[key], name)
            want = shapely.geometry.shape(exported["geometry"])
            assert shapely.hausdorff_distance(row.geometry, want) < 1e-6, (view.id, row[key])
        copied_refs.setdefault(layer.name, set()).update(frame[key])
    for name, features in exports.items():  # the parts of a mixed layer cover it exactly
        assert copied_refs[name] == set(features), name
    assert {"O-P1", "O-P2", "O-L1", "O-A1"} <= copied_refs["obstructions"]


def layer_field_names(layer) -> set[str]:
    return {f.name for f in (*COMMON_FIELDS, *layer.fields)}


def test_ogrinfo_counts_a_layer_in_at_most_three_requests(live, headers, desktop_district, db):
    n = 3000
    pts = gpd.GeoDataFrame({"ref": [f"OB{i}" for i in range(n)], "kind": ["vehicle"] * n},
                           geometry=shapely.points([121.501 + (i % 60) * 1e-5 for i in range(n)],
                                                   [29.801 + (i // 60) * 1e-5 for i in range(n)]), crs=4490)
    with transaction(engine=db, user="fixture") as conn:
        write_frame(conn, "obstructions", pts)
    proc = subprocess.run(["ogrinfo", "-ro", "-so", f"OAPIF:{live.url}/", "obstructions_points"],
                          capture_output=True, text=True, env=_gdal_env(headers["viewer"]), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"Feature Count: {n + 2}" in proc.stdout
    assert len(live.requests) <= 3, live.requests  # /collections, the schema, one page with numberMatched


def test_the_mvt_driver_opens_an_empty_tile_and_a_full_one(live, headers, desktop_district):
    env = _gdal_env(headers["viewer"])
    empty = subprocess.run(["ogrinfo", "-ro", f"MVT:/vsicurl/{live.url}/tiles/buildings/12/0/0.mvt"],
                           capture_output=True, text=True, env=env, timeout=60)
    assert empty.returncode == 0, empty.stderr
    full = subprocess.run(["ogrinfo", "-ro", "-so", "-al", f"MVT:/vsicurl/{live.url}/tiles/buildings/12/3430/1692.mvt"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert full.returncode == 0 and "Feature Count: 6" in full.stdout, full.stdout + full.stderr
    assert live.count("HEAD", "/tiles/") >= 1  # /vsicurl asks for the size first, and gets it
