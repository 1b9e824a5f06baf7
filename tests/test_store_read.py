"""The layer reader's parsing: numbers and booleans typed by arrow's CSV reader, hex WKB decoded as one buffer."""

from __future__ import annotations

import gc
import io
import weakref
from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import shapely
from sqlalchemy import text

from gis.db import raw_connection, transaction
from gis.schema import TABLES
from gis.store import (
    INDEXED_READ_SETTINGS,
    _by_id,
    _from_hex_wkb,
    _parse_csv,
    read_layer,
    read_layers,
    write_frame,
)

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


def test_an_indexed_read_returns_the_same_rows_through_the_indexes_and_leaves_the_connection_as_it_was(db):
    """A check group's read (`geom && ANY(boxes) OR compound_ref = ANY(refs)`) is planned as a BitmapOr of the
    geometry and compound_ref indexes, without parallel workers, for its own transaction only; the frames are
    those of the default plan."""
    frame = _hydrants(600)
    frame["compound_ref"] = [f"C{i % 7}" if i % 5 == 0 else None for i in range(600)]
    with transaction(engine=db) as conn:
        write_frame(conn, "hydrants", frame)
        conn.execute(text("ANALYZE hydrants"))
    hydrants_where = "t.geom && ANY(CAST(CAST(:boxes AS text[]) AS geometry[])) OR t.compound_ref = ANY(:refs)"
    where: dict[str, str | None] = {"hydrants": hydrants_where}
    params = {"boxes": ["SRID=4490;POLYGON((121.5 29.79,121.5 29.81,121.51 29.81,121.51 29.79,121.5 29.79))",
                        "SRID=4490;POLYGON((121.54 29.79,121.54 29.81,121.55 29.81,121.55 29.79,121.54 29.79))"],
              "refs": ["C1", "C3"]}
    columns: dict[str, Sequence[str]] = {"hydrants": ["id", "ref", "compound_ref", "diameter_mm"]}
    plain = read_layers(db, ["hydrants"], where=where, params=params, columns=columns)["hydrants"]
    indexed = read_layers(db, ["hydrants"], where=where, params=params, columns=columns, indexed=True)["hydrants"]
    assert 100 < len(indexed) < 600  # both boxes and the refs beyond them
    assert set(indexed["compound_ref"].dropna()) >= {"C1", "C3"}
    pd.testing.assert_frame_equal(indexed, plain)
    assert shapely.equals_exact(indexed.geometry.values, plain.geometry.values, tolerance=0).all()
    with db.connect() as conn:
        assert conn.execute(text("SHOW enable_seqscan")).scalar_one() == "on"
        conn.rollback()
        with conn.begin():
            for key, value in INDEXED_READ_SETTINGS.items():
                conn.execute(text("SELECT set_config(:k, :v, true)"), {"k": key, "v": value})
            sql = hydrants_where.replace(":boxes", "CAST(:boxes AS text[])").replace(":refs", "CAST(:refs AS text[])")
            plan = "\n".join(r[0] for r in conn.execute(
                text(f"EXPLAIN SELECT t.id FROM hydrants t WHERE {sql} ORDER BY t.id"), params))
    assert "BitmapOr" in plan and "Seq Scan" not in plan and "Gather" not in plan, plan


def test_rows_come_back_in_id_order_when_the_table_stores_them_otherwise(db):
    """Updated rows move to the end of the table (a new row version): a scan returns them out of id order, the
    reader puts them back in it, through the default and the indexed plans and the string fallback."""
    with transaction(engine=db) as conn:
        write_frame(conn, "hydrants", _hydrants(50))
    with db.begin() as conn:
        conn.execute(text("UPDATE hydrants SET diameter_mm = diameter_mm + 1 WHERE ref IN ('H3', 'H17', 'H0')"))
        stored = [r[0] for r in conn.execute(text("SELECT ref FROM hydrants"))]  # a seq scan: physical order
    assert stored[-3:] != ["H47", "H48", "H49"]  # the updated rows went to the end
    for read in (read_layer("hydrants", engine=db),
                 read_layers(db, ["hydrants"], where={"hydrants": "t.geom && ST_MakeEnvelope(121, 29, 122, 30, 4490)"},
                             indexed=True)["hydrants"]):
        assert read["ref"].tolist() == [f"H{i}" for i in range(50)]
        assert read.index.tolist() == sorted(read.index) and read["diameter_mm"].iloc[3] == 104
    table = TABLES["hydrants"]
    csv = b"id,ref,geom\n7,H7,0101000000000000000000f03f0000000000000040\n2,H2,0101000000000000000000f03f0000000000000040\n"
    parsed, _ = _parse_csv(io.BytesIO(csv), table, ["id", "ref"])
    assert _by_id(parsed).column("ref").to_pylist() == ["H2", "H7"]
    assert _by_id(parsed.cast(pa.schema([("id", pa.string()), ("ref", pa.string()), ("geom", pa.string())]))
                  ).column("ref").to_pylist() == ["H2", "H7"]


def test_the_driver_connection_is_looked_up_without_keeping_the_sqlalchemy_connection_alive(db):
    """The reader's COPY goes through `raw_connection`; a connection it was asked for is freed once closed (no
    cache holds it, or its pooled driver connection)."""
    with db.connect() as conn:
        assert raw_connection(conn).execute("SELECT 1").fetchone() == (1,)
        alive = weakref.ref(conn)
    del conn
    gc.collect()
    assert alive() is None
