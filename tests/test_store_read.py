"""The layer reader's parsing: numbers and booleans typed by arrow's CSV reader, hex WKB decoded as one buffer."""

from __future__ import annotations

import io

import geopandas as gpd
import numpy as np
import pyarrow as pa
import pytest
import shapely
from sqlalchemy import text

from gis.db import transaction
from gis.schema import TABLES
from gis.store import _from_hex_wkb, _parse_csv, read_layer, write_frame

pytestmark = pytest.mark.db


def _hydrants(n: int) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({
        "ref": [f"H{i}" for i in range(n)],
        "diameter_mm": np.array([100 + i for i in range(n)], dtype=object),
        "estimated": np.array([i % 2 == 0 for i in range(n)], dtype=object),
    }, geometry=[shapely.Point(121.5 + i * 1e-4, 29.8) for i in range(n)], crs=4490)


def test_integer_and_boolean_columns_keep_numpy_types_without_gaps_and_python_objects_with_them(db):
    with transaction(engine=db) as conn:
        write_frame(conn, "hydrants", _hydrants(3))
    full = read_layer("hydrants", engine=db, columns=["ref", "diameter_mm", "estimated", "version"])
    assert full["diameter_mm"].dtype == np.int64 and full["diameter_mm"].tolist() == [100, 101, 102]
    assert full["estimated"].dtype == bool and full["estimated"].tolist() == [True, False, True]
    with db.begin() as conn:
        conn.execute(text("UPDATE hydrants SET diameter_mm = NULL, estimated = NULL WHERE ref = 'H1'"))
    gaps = read_layer("hydrants", engine=db, columns=["ref", "diameter_mm", "estimated"])
    assert gaps["diameter_mm"].dtype == np.float64
    assert gaps["diameter_mm"].iloc[0] == 100.0 and np.isnan(gaps["diameter_mm"].iloc[1])
    assert gaps["estimated"].dtype == object and gaps["estimated"].tolist() == [True, None, True]
    assert [type(v) for v in gaps["estimated"]] == [bool, type(None), bool]


def test_floats_come_back_bit_for_bit_and_an_empty_read_keeps_the_types(db):
    heights = [12.345678901234567, 0.1, 699.9999999999999]
    b = gpd.GeoDataFrame({"ref": ["B1", "B2", "B3", "B4"], "height_m": [*heights, None]},
                         geometry=[shapely.box(121.5 + i * 1e-3, 29.8, 121.5004 + i * 1e-3, 29.8004) for i in range(4)],
                         crs=4490)
    with transaction(engine=db) as conn:
        write_frame(conn, "buildings", b)
    got = read_layer("buildings", engine=db, columns=["ref", "height_m"]).set_index("ref")["height_m"]
    assert got.dtype == np.float64 and got.iloc[:3].tolist() == heights and np.isnan(got.loc["B4"])
    none = read_layer("buildings", engine=db, where="false", columns=["ref", "height_m"])
    assert len(none) == 0 and none["height_m"].dtype == np.float64 and none.crs.to_epsg() == 4490


def test_a_value_arrow_cannot_parse_falls_back_to_strings_for_the_whole_read():
    table = TABLES["hydrants"]
    good = b"ref,diameter_mm,geom\nH1,100,0101000000000000000000f03f0000000000000040\n"
    parsed, typed = _parse_csv(io.BytesIO(good), table, ["ref", "diameter_mm"])
    assert typed == {"diameter_mm"} and parsed.column("diameter_mm").type == pa.int64()
    odd = b"ref,diameter_mm,geom\nH1,1e400x,0101000000000000000000f03f0000000000000040\n"
    parsed, typed = _parse_csv(io.BytesIO(odd), table, ["ref", "diameter_mm"])
    assert typed == set() and parsed.column("diameter_mm").type == pa.string()


def test_hex_wkb_of_a_sliced_column_with_gaps_decodes_row_by_row():
    geoms = [shapely.Point(1, 2), None, shapely.box(0, 0, 3, 4), shapely.LineString([(0, 0), (5, 5)]), None]
    hexes = pa.array([None if g is None else shapely.to_wkb(g, hex=True) for g in geoms], type=pa.string())
    for piece, expect in ((hexes, geoms), (hexes.slice(1, 3), geoms[1:4]), (pa.chunked_array([hexes[:2], hexes[2:]]),
                                                                            geoms)):
        out = _from_hex_wkb(piece)
        assert [None if g is None else g.wkt for g in out] == [None if g is None else g.wkt for g in expect]
    assert _from_hex_wkb(pa.array([], type=pa.string())).tolist() == []
    assert _from_hex_wkb(pa.array([None, None], type=pa.string())).tolist() == [None, None]
