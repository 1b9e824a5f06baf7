"""Fast reads of the columns the checks use: COPY ... TO STDOUT as CSV, parsed by pandas' C reader and shapely."""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Engine
from sqlalchemy import types as sa_types

from gis.db import pyformat
from gis.layers import STORAGE_SRID
from gis.schema import TABLES

#: Store-managed and bookkeeping columns no rule looks at (the store id stays: it is the frame index and the ref
#: of last resort). Dates and JSON are skipped as a type (no rule reads observation dates or `extra`).
SKIPPED_COLUMNS: frozenset[str] = frozenset({
    "street_code", "estimated", "source", "compound_id", "extra", "version", "created_at", "updated_at",
    "updated_by",
})
_SKIPPED_TYPES = (sa_types.Date, sa_types.DateTime, sa_types.Time, sa_types.JSON)

#: Marker of NULL in the CSV stream (empty strings stay empty strings; a text value that is literally "\N" would
#: read as missing, which no ref, kind or name is).
_NULL = r"\N"


def check_columns(layer: str) -> list[str]:
    """The columns of a layer's table the checks read (in table order, without the geometry)."""
    return [c.name for c in TABLES[layer].c
            if c.name != "geom" and c.name not in SKIPPED_COLUMNS and not isinstance(c.type, _SKIPPED_TYPES)]


def _typed(frame: pd.DataFrame, layer: str, cols: list[str]) -> pd.DataFrame:
    """Column types as `gis.store.read_layer` gives them: numbers as numbers (integers with gaps as floats),
    booleans as True/False/None, text as text."""
    table = TABLES[layer]
    for name in cols:
        kind = table.c[name].type
        s = frame[name]
        if isinstance(kind, sa_types.Boolean):
            v = s.to_numpy(dtype=object)
            null = pd.isna(v)
            flags = v == "t"
            if null.any():
                flags = flags.astype(object)  # Python True/False, None in the gaps
                flags[null] = None
            frame[name] = pd.Series(flags, index=frame.index)
        elif isinstance(kind, sa_types.Integer):
            f = pd.to_numeric(s, errors="coerce")
            frame[name] = f.astype(float) if f.isna().any() else f.astype(np.int64)
        elif isinstance(kind, sa_types.Float | sa_types.Numeric):
            frame[name] = pd.to_numeric(s, errors="coerce").astype(float)
    return frame


def read_check_layer(conn: Any, layer: str, *, where: str | None = None,
                     params: Mapping[str, Any] | None = None) -> gpd.GeoDataFrame:
    """One layer's checked columns as a GeoDataFrame in EPSG:4490, indexed by store id (like `read_layer`).

    Parameters
    ----------
    conn : sqlalchemy.Connection
        On a psycopg 3 engine.
    layer : str
    where : str, optional
        SQL condition on the table aliased `t` (bound parameters from `params`).
    params : mapping, optional

    Returns
    -------
    GeoDataFrame
        Ordered by id; the columns of `check_columns(layer)`.
    """
    cols = check_columns(layer)
    select = (f"SELECT {', '.join('t.' + c for c in cols)}, encode(ST_AsBinary(t.geom), 'hex') AS geom "
              f"FROM {layer} t" + (f" WHERE ({where})" if where else "") + " ORDER BY t.id")
    raw = conn.connection.driver_connection
    buf = io.BytesIO()
    statement = f"COPY ({pyformat(select)}) TO STDOUT WITH (FORMAT csv, HEADER, NULL '{_NULL}')"
    with raw.cursor() as cur, cur.copy(statement, dict(params) if params else None) as cp:
        for block in cp:
            buf.write(block)
    buf.seek(0)
    text_cols = {c: str for c in cols if not isinstance(TABLES[layer].c[c].type,
                                                           sa_types.Integer | sa_types.Float | sa_types.Numeric)}
    frame = pd.read_csv(buf, dtype={**text_cols, "geom": str}, na_values=[_NULL], keep_default_na=False)
    frame = _typed(frame, layer, cols)
    geoms = _from_hex_wkb(frame.pop("geom").to_numpy(dtype=object))
    gdf = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=STORAGE_SRID), crs=STORAGE_SRID)
    gdf = gdf.set_index("id", drop=False)
    gdf.index.name = None
    return gdf


def _from_hex_wkb(hexes: np.ndarray) -> np.ndarray:
    """Geometries from hex WKB strings: one hex decode of the whole column (shapely's per-string hex path is
    slower than its binary one), then binary WKB per row; missing values stay None."""
    out = np.full(len(hexes), None, dtype=object)
    present = np.flatnonzero(~pd.isna(hexes))
    if not len(present):
        return out
    strings = hexes[present].tolist()
    blob = bytes.fromhex("".join(strings))
    ends = np.cumsum([len(x) // 2 for x in strings]).tolist()
    starts = [0, *ends[:-1]]
    out[present] = shapely.from_wkb(np.array([blob[a:b] for a, b in zip(starts, ends, strict=True)], dtype=object))
    return out


def read_check_layers(engine: Engine, layers: Iterable[str], *,
                      where: Mapping[str, str | None] | None = None,
                      params: Mapping[str, Any] | None = None) -> dict[str, gpd.GeoDataFrame]:
    """Several layers over one connection (`where` per layer name, shared `params`).

    Sequential on purpose: parsing holds the GIL, and measured with threads over several connections the read
    was slower, not faster.
    """
    where = where or {}
    with engine.connect() as conn:
        return {name: read_check_layer(conn, name, where=where.get(name), params=params) for name in layers}


__all__ = ["SKIPPED_COLUMNS", "check_columns", "read_check_layer", "read_check_layers"]
