"""Helpers of the map-page tests: a hand-made district (two streets, three compounds, one with a hostile name,
lanes, hydrants, entrances, parking, illegal structures and ledger hazards) and its users. The site fixture
(tests/conftest.py) serves it; this module holds no tests."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import shapely
from shapely.geometry import Point, box

from api.app import create_app
from api.users import create_user
from gis.checks.catalog import RULES
from gis.db import transaction
from gis.store import write_frame

HOSTILE = "<img src=x onerror=alert(1)>"
FORMULA = "=cmd|' /C calc'!A0"
S1, S2 = "330212001", "330212002"
X0, Y0 = 121.5400, 29.8100  # south-west corner of the test area (Yinzhou)
M = 1e-5  # ~1 m in degrees here (0.97 m east-west)

PASSWORDS = {"admin1": "admin-pass-123", "planner1": "planner-pass-123", "office1": "office-pass-123",
             "office2": "office-pass-456", "viewer1": "viewer-pass-123", "traffic1": "traffic-pass-123"}


def rect(x: float, y: float, w: float, h: float) -> shapely.MultiPolygon:
    """A rectangle `w` x `h` metres whose south-west corner is `x`, `y` metres from the test origin."""
    return shapely.MultiPolygon([box(X0 + x * M, Y0 + y * M, X0 + (x + w) * M, Y0 + (y + h) * M)])


def pt(x: float, y: float) -> Point:
    return Point(X0 + x * M, Y0 + y * M)


def frame(rows: list[dict]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=4490)


def load_dataset(engine) -> None:
    """Write the hand-made district through gis.store (the same path imports use)."""
    layers = {
        "streets": [
            {"ref": S1, "name": "下应街道", "district_code": "330212", "source": "Vonng/adcode (derived)",
             "geometry": rect(0, 0, 600, 600)},
            {"ref": S2, "name": "钟公庙街道", "district_code": "330212", "source": "Vonng/adcode (derived)",
             "geometry": rect(600, 0, 600, 600)},
        ],
        "compounds": [
            {"ref": "YZ-001", "name": HOSTILE, "address": "<b>一号路</b>", "households": 320, "street_code": S1,
             "geometry": rect(50, 50, 200, 200)},
            {"ref": "YZ-002", "name": "阳光花园", "address": "二号路 8 号", "households": 180, "street_code": S1,
             "geometry": rect(300, 50, 200, 200)},
            {"ref": "YZ-003", "name": "月湖小区", "address": "三号路", "households": 90, "street_code": S2,
             "geometry": rect(700, 50, 200, 200)},
        ],
        "buildings": [
            {"ref": "B1", "name": HOSTILE, "height_m": 33.0, "floors": 11, "geometry": rect(80, 150, 40, 15)},
            {"ref": "B2", "name": "2幢", "height_m": 18.0, "floors": 6, "geometry": rect(330, 150, 40, 15)},
            {"ref": "B3", "name": "3幢", "height_m": 18.0, "floors": 6, "geometry": rect(730, 150, 40, 15)},
        ],
        "fire_lanes": [
            {"ref": "L1", "kind": "through", "design_width_m": 4.0, "geometry": rect(50, 120, 200, 5)},
            {"ref": "L2", "kind": "through", "design_width_m": 4.0, "geometry": rect(300, 120, 200, 5)},
        ],
        "hydrants": [
            {"ref": "H1", "status": "in_service", "geometry": pt(150, 110)},
            {"ref": "H2", "status": "in_service", "geometry": pt(420, 110)},
        ],
        "entrances": [
            {"ref": "E1", "kind": "vehicle", "width_m": 6.0, "geometry": pt(50, 122)},
            {"ref": "E2", "kind": "vehicle", "width_m": 6.0, "geometry": pt(300, 122)},
        ],
        "parking": [
            {"ref": "P1", "kind": "vehicle", "geometry": rect(150.5, 108, 4.8, 1.8)},
            {"ref": "P2", "kind": "stall", "geometry": rect(40, 118, 4.8, 2.4)},
            {"ref": "P3", "kind": "stall", "geometry": rect(320, 60, 4.8, 2.4)},
            {"ref": FORMULA, "kind": "vehicle", "geometry": rect(200, 20, 4.8, 1.8)},
        ],
        "illegal_structures": [
            {"ref": "IS-1", "kind": "shed", "height_m": 3.0, "geometry": rect(100, 121, 6, 4)},
            {"ref": "IS-2", "kind": "colour_steel", "height_m": 3.5, "geometry": rect(340, 170, 12, 10)},
            {"ref": "IS-3", "kind": "shed", "height_m": 2.5, "geometry": rect(760, 170, 3, 3)},
        ],
    }

    def hazard(rule: str, layer: str, ref: str, geom, *, status: str = "open", severity: float = 3.0,
               others: tuple[str, ...] = (), measured: float | None = None, required: float | None = None,
               department: str = "物业/住建", message: str = "") -> dict:
        r = RULES[rule]
        return {"key": f"{rule}|{layer}|{ref}|{'+'.join(others)}", "rule": rule, "clause": r.clause,
                "verdict": "fail", "strength": r.strength, "severity": severity, "status": status,
                "subject_layer": layer, "subject_ref": ref, "other_refs": list(others), "measured": measured,
                "required_value": required, "unit": r.unit, "message_zh": message or r.title_zh,
                "message_en": r.title_en, "department": department, "geometry": geom}

    hazards = [
        hazard("LANE-CLEAR", "fire_lanes", "L1", pt(103, 122), severity=8.0, measured=1.2, required=4.0,
               others=("IS-1",), message=HOSTILE),
        hazard("STRUCT-ON-LANE", "illegal_structures", "IS-1", pt(103, 122), severity=6.0,
               department="三改一拆办/综合执法"),
        hazard("SEP-ILLEGAL", "illegal_structures", "IS-1", pt(103, 122), severity=5.0, measured=2.0, required=6.0,
               others=("B1",), department="三改一拆办/综合执法"),
        hazard("SEP-ILLEGAL", "illegal_structures", "IS-2", pt(345, 175), severity=5.0, measured=3.0, required=6.0,
               others=("B2",), department="三改一拆办/综合执法"),
        hazard("PARK-HYDRANT", "parking", "P1", pt(153, 109), severity=4.0, measured=0.5, required=5.0,
               others=("H1",), department="交警/公安"),
        hazard("PARK-ENTRANCE", "parking", "P2", pt(42, 119), severity=4.0, measured=2.0, required=4.0,
               others=("E1",), department="交警/公安"),
        hazard("HYD-ACCESS", "hydrants", "H1", pt(150, 110), severity=4.0, others=("P1",)),
        hazard("AERIAL-SIZE", "aerial_areas", "A-closed", pt(200, 200), status="verified", severity=3.0),
        hazard("LANE-WIDTH", "fire_lanes", "L3", pt(800, 122), severity=3.0, measured=3.0, required=4.0),
        # a data gap (cannot judge), not a failure: listed apart as "data to complete"
        {**hazard("SEP-BUILDINGS", "buildings", "B2", pt(350, 160), severity=2.0, measured=8.5, required=9.0),
         "verdict": "cannot_judge", "key": "SEP-BUILDINGS|gap"},
        # closed this week
        {**hazard("AERIAL-SIZE", "aerial_areas", "A-week", pt(210, 200), status="verified", severity=3.0),
         "closed_at": pd.Timestamp.now(tz="UTC")},
        # a stall whose ref would be a formula in a spreadsheet
        hazard("PARK-LANE", "parking", FORMULA, pt(200, 20), severity=2.0, department="交警/公安"),
    ]
    with transaction(user="test-loader", engine=engine) as conn:
        for name, rows in layers.items():
            write_frame(conn, name, frame(rows), user="test-loader")
        write_frame(conn, "hazards", frame(hazards), user="test-loader")


def make_users() -> None:
    create_user("admin1", PASSWORDS["admin1"], role="admin")
    create_user("planner1", PASSWORDS["planner1"], role="planner")
    create_user("office1", PASSWORDS["office1"], role="street_office", street_codes=[S1])
    create_user("office2", PASSWORDS["office2"], role="street_office", street_codes=[S2])
    create_user("viewer1", PASSWORDS["viewer1"], role="viewer")
    create_user("traffic1", PASSWORDS["traffic1"], role="traffic_brigade")


def build_app():
    """The service's FastAPI app (api.app.create_app), which serves the pages through api.web_routes."""
    return create_app()
