"""GDAL's OAPIF driver reads the service as it is: ogrinfo lists the collections, ogr2ogr copies a layer."""
# ruff: noqa: F811 - pytest fixtures are imported from test_api_support and named as test arguments

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_api_support import district, headers  # noqa: F401 - fixtures

pytestmark = pytest.mark.db  # GDAL (gdal-bin) is installed by scripts/setup.sh: a missing ogrinfo fails


@pytest.fixture
def server(db) -> Iterator[str]:
    """A real uvicorn server on 127.0.0.1 and a free port, in a thread of this process."""
    import uvicorn

    from api.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning", access_log=False)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.05)
    yield url
    srv.should_exit = True
    thread.join(timeout=10)


def _gdal_env(auth: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env["GDAL_HTTP_HEADERS"] = f"Authorization: {auth['Authorization']}"
    env["CPL_CURL_VERBOSE"] = "NO"
    return env


def test_ogrinfo_lists_every_collection_with_a_token(server, headers, district):
    from gis.layers import LAYERS

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
    import geopandas as gpd
    import shapely

    from gis.db import transaction
    from gis.store import write_frame

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
