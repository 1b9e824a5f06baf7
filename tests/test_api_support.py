"""Helpers of the API tests: users with tokens, one per role, and a small two-street district.

The fixtures built on them (api, headers, district) are in tests/conftest.py; this module holds no tests.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import geopandas as gpd
import shapely
from sqlalchemy import text

from api.auth import hash_password, issue_token
from gis.db import transaction
from gis.store import write_frame

STREET_A, STREET_B = "330212001", "330212002"
PASSWORD = "correct-horse-battery"
HOSTILE = "<script>alert('x')</script> & \"quotes\" 小区'; DROP TABLE users;--"


@lru_cache
def _password_hash() -> str:
    return hash_password(PASSWORD)


def make_user(engine, username: str, role: str, streets: Sequence[str] = ()) -> dict[str, str]:
    """A user (password PASSWORD) with a fresh bearer token; returns the Authorization header."""
    with engine.begin() as conn:
        uid = conn.execute(text(
            "INSERT INTO users (username, password_hash, role, street_codes) VALUES (:u, :p, :r, CAST(:s AS jsonb)) "
            "RETURNING id"), {"u": username, "p": _password_hash(), "r": role, "s": json.dumps(list(streets))}
        ).scalar_one()
    token, _ = issue_token(uid, name="test")
    return {"Authorization": f"Bearer {token}"}


ROLE_USERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "admin": ("admin", ()),
    "planner": ("planner", ()),
    "street_a": ("street_office", (STREET_A,)),
    "street_b": ("street_office", (STREET_B,)),
    "traffic": ("traffic_brigade", ()),
    "demolition": ("demolition", ()),
    "fire": ("fire_brigade", ()),
    "viewer": ("viewer", ()),
}


@dataclass
class District:
    """Ids of the features of the small district, by ref."""

    ids: dict[str, dict[str, int]]

    def id(self, layer: str, ref: str) -> int:
        return self.ids[layer][ref]


def _frame(rows: list[dict], geoms: list) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=4490)


def load_district(engine) -> District:
    """Two streets side by side near Ningbo, a compound in each (one more in A), buildings, a lane, hydrants, a
    parking stall with hostile text, and two hazards (one per street)."""
    x0, y0 = 121.50, 29.80
    with transaction(engine=engine, user="fixture") as conn:
        write_frame(conn, "streets", _frame(
            [{"ref": STREET_A, "name": "街道A"}, {"ref": STREET_B, "name": "街道B"}],
            [shapely.box(x0, y0, x0 + 0.01, y0 + 0.01), shapely.box(x0 + 0.01, y0, x0 + 0.02, y0 + 0.01)]))
        write_frame(conn, "compounds", _frame(
            [{"ref": "CA-1", "name": "甲小区"}, {"ref": "CA-2", "name": "乙小区"}, {"ref": "CB-1", "name": "丙小区"}],
            [shapely.box(x0 + 0.001, y0 + 0.001, x0 + 0.004, y0 + 0.004),
             shapely.box(x0 + 0.005, y0 + 0.005, x0 + 0.008, y0 + 0.008),
             shapely.box(x0 + 0.012, y0 + 0.001, x0 + 0.015, y0 + 0.004)]))
        # buildings drawn clockwise on purpose: the API must answer with CCW exteriors
        cw = [shapely.Polygon(list(shapely.box(x0 + 0.0012 + i * 0.0004, y0 + 0.0012,
                                               x0 + 0.0014 + i * 0.0004, y0 + 0.0014).exterior.coords)[::-1])
              for i in range(5)]
        write_frame(conn, "buildings", _frame(
            [{"ref": f"BA-{i}", "height_m": 10.0 + i, "floors": 3 + i, "use": "residential"} for i in range(5)]
            + [{"ref": "BB-0", "height_m": 30.0, "floors": 10, "use": "residential"}],
            cw + [shapely.box(x0 + 0.0122, y0 + 0.0012, x0 + 0.0124, y0 + 0.0014)]))
        write_frame(conn, "fire_lanes", _frame(
            [{"ref": "LA-1", "kind": "through", "design_width_m": 4.0}],
            [shapely.box(x0 + 0.0011, y0 + 0.0020, x0 + 0.0039, y0 + 0.00205)]))
        write_frame(conn, "hydrants", _frame(
            [{"ref": "HA-1"}, {"ref": "HB-1"}],
            [shapely.Point(x0 + 0.002, y0 + 0.003), shapely.Point(x0 + 0.013, y0 + 0.003)]))
        write_frame(conn, "parking", _frame(
            [{"ref": HOSTILE, "kind": "vehicle"}],
            [shapely.box(x0 + 0.0030, y0 + 0.0030, x0 + 0.00302, y0 + 0.00305)]))
        write_frame(conn, "hazards", _frame(
            [{"key": "k-a", "rule": "HYD-ACCESS", "verdict": "fail", "status": "open", "severity": 3.0,
              "subject_layer": "hydrants", "subject_ref": "HA-1", "department": "交警/公安"},
             {"key": "k-b", "rule": "SEP-BUILDINGS", "verdict": "fail", "status": "open", "severity": 5.0,
              "subject_layer": "buildings", "subject_ref": "BB-0", "department": "住建"}],
            [shapely.Point(x0 + 0.002, y0 + 0.003), shapely.Point(x0 + 0.0123, y0 + 0.0013)]))
    ids: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        for layer in ("streets", "compounds", "buildings", "fire_lanes", "hydrants", "parking", "hazards"):
            key = "key" if layer == "hazards" else "ref"
            ids[layer] = {r[0]: r[1] for r in conn.execute(text(f"SELECT {key}, id FROM {layer}"))}
    return District(ids=ids)


def __getattr__(name: str) -> object:
    """A test written before the fixtures moved still imports them from here: say where they are."""
    if name in ("api", "headers", "district"):
        raise ImportError(f"{name} is a fixture of tests/conftest.py: name it as a test argument, do not import it")
    raise AttributeError(name)
