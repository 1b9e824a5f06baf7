"""Helpers of the desktop-client tests (GDAL, QGIS, OWSLib): a district with every kind of value, a live server.

The district adds to test_api_support's: mixed-geometry obstructions, e-bike sites and hazards, whole and
fractional floats (4.0 and 4.5, the values a client types Integer from a page of whole numbers), dates,
timestamps, booleans, JSON-valued properties (`extra`, `other_refs`). The fixtures desktop_district and live (tests/conftest.py) are built
on them; this module holds no tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import geopandas as gpd
import shapely
from server_support import served
from sqlalchemy import text
from test_api_support import District, load_district

from api.app import create_app
from api.auth import forget_tokens, login_limiter
from api.features import forget_extents
from gis.db import transaction
from gis.store import write_frame

X0, Y0 = 121.50, 29.80


def _frame(rows: list[dict], geoms: list) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=4490)


def load_desktop_district(engine) -> District:
    """test_api_support's district plus roads, hydrant details, obstructions of all three geometry types, e-bike
    sites (points and polygons) and hazards (points and polygons) carrying floats, dates, timestamps, booleans
    and JSON values."""
    district = load_district(engine)
    x0, y0 = X0, Y0
    with transaction(engine=engine, user="fixture") as conn:
        write_frame(conn, "roads", _frame(
            [{"ref": f"R-{i}", "name": f"路{i}", "kind": "internal", "width_m": w}
             for i, w in enumerate((4.0, 4.5, 6.0, 3.25))],
            [shapely.LineString([(x0 + 0.0011, y0 + 0.0015 + i * 0.0005), (x0 + 0.0039, y0 + 0.0015 + i * 0.0005)])
             for i in range(4)]))
        write_frame(conn, "obstructions", _frame(
            [{"ref": "O-P1", "kind": "bollard", "size_m": 1.0, "removable": True, "observed_at": date(2024, 5, 1)},
             {"ref": "O-P2", "kind": "ground_lock", "size_m": 0.5, "removable": False},
             {"ref": "O-L1", "kind": "overhead_line", "bottom_m": 4.0, "top_m": 4.5,
              "observed_at": date(2024, 6, 2)},
             {"ref": "O-A1", "kind": "stacked_goods", "top_m": 2.0, "removable": True,
              "extra": {"来源": "巡查", "photos": 3}}],
            [shapely.Point(x0 + 0.0021, y0 + 0.00202), shapely.Point(x0 + 0.0025, y0 + 0.00202),
             shapely.LineString([(x0 + 0.0015, y0 + 0.0019), (x0 + 0.0015, y0 + 0.0022)]),
             shapely.box(x0 + 0.0030, y0 + 0.00201, x0 + 0.0031, y0 + 0.00204)]))
        write_frame(conn, "ebike_sites", _frame(
            [{"ref": "E-1", "kind": "indoor_report", "location": "stairwell", "charging": True},
             {"ref": "E-2", "kind": "centralised_site", "location": "outdoor", "charging": False, "capacity": 40}],
            [shapely.Point(x0 + 0.0013, y0 + 0.0013),
             shapely.box(x0 + 0.0032, y0 + 0.0032, x0 + 0.0035, y0 + 0.0034)]))
        write_frame(conn, "hazards", _frame(
            [{"key": "k-o", "rule": "LANE-CLEAR", "verdict": "fail", "status": "open", "severity": 4.0,
              "subject_layer": "obstructions", "subject_ref": "O-A1", "measured": 3.5, "required_value": 4.0,
              "unit": "m", "other_refs": ["LA-1", "BA-0"], "first_seen_at": datetime(2024, 5, 1, 8, 30, tzinfo=UTC),
              "department": "住建"}],
            [shapely.box(x0 + 0.0030, y0 + 0.00201, x0 + 0.0031, y0 + 0.00204)]))
        conn.execute(text("UPDATE hydrants SET flow_lps = 15.0, pressure_mpa = 0.35, diameter_mm = 100, "
                          "inspected_at = DATE '2024-04-30' WHERE ref = 'HA-1'"))
    with engine.connect() as conn:
        for layer in ("roads", "obstructions", "ebike_sites", "hazards"):
            key = "key" if layer == "hazards" else "ref"
            district.ids[layer] = {r[0]: r[1] for r in conn.execute(text(f"SELECT {key}, id FROM {layer}"))}
    return district


@dataclass
class LiveServer:
    """A uvicorn server on loopback and every request it answered (method, path, query)."""

    url: str
    requests: list[tuple[str, str, str]] = field(default_factory=list)

    def count(self, method: str = "GET", path_part: str = "") -> int:
        return sum(1 for m, p, _ in self.requests if m == method and path_part in p)


class _Counting:
    def __init__(self, app, log: list) -> None:
        self.app, self.log = app, log

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            self.log.append((scope["method"], scope["path"], scope.get("query_string", b"").decode()))
        await self.app(scope, receive, send)


@contextmanager
def live_server() -> Iterator[LiveServer]:
    """The real app under uvicorn on 127.0.0.1 and a free port (a thread of this process), counting requests."""
    forget_tokens()
    forget_extents()
    login_limiter.clear()
    requests: list[tuple[str, str, str]] = []
    with served(_Counting(create_app(), requests)) as url:
        requests.clear()
        yield LiveServer(url=url, requests=requests)


def __getattr__(name: str) -> object:
    """A test written before the fixtures moved still imports them from here: say where they are."""
    if name in ("desktop_district", "live"):
        raise ImportError(f"{name} is a fixture of tests/conftest.py: name it as a test argument, do not import it")
    raise AttributeError(name)
