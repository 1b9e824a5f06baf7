"""Reading layers from PostGIS into GeoDataFrames and bulk-writing validated frames with COPY."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import shapely
import sqlalchemy.exc
from sqlalchemy import Connection, Engine, text

from gis.db import get_engine
from gis.layers import COMMON_FIELDS, STORAGE_SRID, Layer, get_layer
from gis.schema import TABLES


def layer_columns(layer: Layer) -> list[str]:
    """The user-data columns of a layer's table (common fields it has + its own), in table order."""
    table = TABLES[layer.name]
    names = [f.name for f in COMMON_FIELDS] + [f.name for f in layer.fields]
    return [n for n in names if n in table.c]


def read_layer(
    layer: str | Layer,
    *,
    engine: Engine | Connection | None = None,
    street: str | None = None,
    compound: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    where: str | None = None,
    params: dict | None = None,
    columns: Sequence[str] | None = None,
) -> gpd.GeoDataFrame:
    """A layer as a GeoDataFrame in the storage CRS (EPSG:4490), indexed by id.

    `street` filters by street_code, `compound` by the compound's ref, `bbox` (lon/lat) by intersection.
    """
    layer = get_layer(layer) if isinstance(layer, str) else layer
    table = TABLES[layer.name]
    cols = list(columns) if columns is not None else [
        c.name for c in table.c if c.name != "geom"
    ]
    clauses, args = [], dict(params or {})
    if street is not None:
        if "street_code" in table.c:
            clauses.append("t.street_code = :street")
        elif layer.name == "streets":
            clauses.append("t.ref = :street")
        else:
            clauses.append("t.compound_id IN (SELECT id FROM compounds WHERE street_code = :street)")
        args["street"] = street
    if compound is not None:
        if layer.name == "compounds":
            clauses.append("t.ref = :compound")
        elif "compound_id" in table.c:
            clauses.append("t.compound_id IN (SELECT id FROM compounds WHERE ref = :compound)")
        else:
            clauses.append("ST_Intersects(t.geom, (SELECT ST_Union(geom) FROM compounds WHERE ref = :compound))")
        args["compound"] = compound
    if bbox is not None:
        clauses.append("t.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490)")
        args.update(x0=bbox[0], y0=bbox[1], x1=bbox[2], y1=bbox[3])
    if where:
        clauses.append(f"({where})")
    sql = (
        f"SELECT {', '.join('t.' + c for c in cols)}, ST_AsBinary(t.geom) AS geom FROM {layer.name} t"
        + (" WHERE " + " AND ".join(clauses) if clauses else "")
        + " ORDER BY t.id"
    )
    bind = engine if engine is not None else get_engine()
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            frame = pd.read_sql_query(text(sql), conn, params=args)
    else:
        frame = pd.read_sql_query(text(sql), bind, params=args)
    geoms = shapely.from_wkb(frame.pop("geom").map(bytes).to_numpy()) if len(frame) else np.array([], dtype=object)
    gdf = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=STORAGE_SRID), crs=STORAGE_SRID)
    if "id" in gdf.columns:
        gdf = gdf.set_index("id", drop=False)
        gdf.index.name = None
    return gdf


@dataclass
class WriteResult:
    inserted: int
    deleted: int


#: Rows per COPY write (bounded buffers for huge frames).
_COPY_CHUNK_ROWS = 20_000
_COPY_NULL = "\\N"
_JSON = json.JSONEncoder(ensure_ascii=False, default=str, check_circular=False)


def _copy_escape(text: str) -> str:
    """COPY text-format escaping: backslash, tab, newline and carriage return."""
    if "\\" in text:
        text = text.replace("\\", "\\\\")
    if "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def _copy_scalar(value: object, as_json: bool = False) -> str:
    """One value as COPY text (NULL for None/NaN/NaT/NA), formatted as psycopg would dump it."""
    if value is None or value is pd.NaT or value is pd.NA:
        return _COPY_NULL
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return _COPY_NULL
    if as_json:
        return _copy_escape(_JSON.encode(value))
    if isinstance(value, str):
        return _copy_escape(value)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return _copy_escape(str(value))


def _copy_column(series: pd.Series, *, as_json: bool = False) -> np.ndarray:
    """A frame column as an object array of COPY text cells (vectorised for numeric dtypes)."""
    dtype = series.dtype
    if not as_json and pd.api.types.is_float_dtype(dtype) and isinstance(dtype, np.dtype):
        v = series.to_numpy(dtype=float)
        out = np.array([repr(x) for x in v.tolist()], dtype=object) if len(v) else np.array([], dtype=object)
        out[np.isnan(v)] = _COPY_NULL
        return out
    if not as_json and pd.api.types.is_integer_dtype(dtype) and isinstance(dtype, np.dtype):
        return series.to_numpy().astype(str).astype(object)
    if not as_json and pd.api.types.is_bool_dtype(dtype) and isinstance(dtype, np.dtype):
        return np.where(series.to_numpy(), "t", "f").astype(object)
    kind = "json" if as_json else pd.api.types.infer_dtype(series, skipna=True)
    if kind in ("string", "empty"):  # text: escape only the cells that need it
        values = series.astype(object).to_numpy(dtype=object).copy()
        null = series.isna().to_numpy(dtype=bool)
        values[null] = ""
        special = np.fromiter(("\\" in v or "\t" in v or "\n" in v or "\r" in v for v in values.tolist()),
                              dtype=bool, count=len(values))
        for i in np.flatnonzero(special).tolist():
            values[i] = _copy_escape(values[i])
        values[null] = _COPY_NULL
        return values
    if kind == "boolean":  # True/False with gaps (object dtype)
        values = series.astype(object).to_numpy(dtype=object)
        null = pd.isna(values)
        truth = np.where(null, False, values).astype(bool)
        return np.where(null, _COPY_NULL, np.where(truth, "t", "f")).astype(object)
    return np.array([_copy_scalar(v, as_json) for v in series.astype(object).tolist()], dtype=object)


def _copy_extra(extras: list | None, n: int) -> np.ndarray:
    if extras is None:
        return np.full(n, "{}", dtype=object)
    return np.array([_copy_escape(_JSON.encode(e)) if isinstance(e, dict) and e else "{}" for e in extras],
                    dtype=object)


def write_frame(
    conn: Connection,
    layer: str | Layer,
    frame: gpd.GeoDataFrame,
    *,
    mode: str = "append",
    user: str | None = None,
) -> WriteResult:
    """Bulk-write a validated frame (storage CRS, layer columns, optional `extra` dicts) inside `conn`'s transaction.

    compound_id / compound_ref / street_code are derived in memory where the frame does not give them
    (`link_frame`), single parts are promoted to the layer's Multi type, and the rows are COPYed straight into
    the layer table (its statement-level audit trigger logs the batch).
    `mode="replace"` deletes the layer's rows first, in the same transaction.
    """
    layer = get_layer(layer) if isinstance(layer, str) else layer
    if user:
        conn.execute(text("SELECT set_config('firelane.user', :u, true)"), {"u": user})
    cols = [c for c in layer_columns(layer) if c in frame.columns]
    deleted = 0
    if mode == "replace":
        deleted = conn.execute(text(f"DELETE FROM {layer.name}")).rowcount
    elif mode != "append":
        raise ValueError(f"mode must be 'append' or 'replace', not {mode!r}")
    if len(frame) == 0:
        return WriteResult(inserted=0, deleted=deleted)
    frame = link_frame(conn, layer, frame)
    cols = [c for c in layer_columns(layer) if c in frame.columns]
    if "compound_id" in frame.columns and "compound_id" in TABLES[layer.name].c:
        cols.append("compound_id")
    geoms = _promote(np.asarray(frame.geometry.values), layer)
    srid_ewkb = shapely.to_wkb(shapely.set_srid(geoms, STORAGE_SRID), hex=True, include_srid=True)
    json_cols = {c for c in cols if c != "compound_id" and layer.field(c).type == "json"}
    columns = [_copy_column(frame[c], as_json=c in json_cols) for c in cols]
    extras = frame["extra"].tolist() if "extra" in frame.columns else None
    columns.append(_copy_extra(extras, len(frame)))
    columns.append(np.asarray(srid_ewkb, dtype=object))
    names = [*cols, "extra", "geom"]
    if user:
        columns.append(np.full(len(frame), _copy_escape(user), dtype=object))
        names.append("updated_by")
    raw = conn.connection.driver_connection
    statement = f"COPY {layer.name} ({', '.join(names)}) FROM STDIN"
    try:
        with raw.cursor() as cur:
            # straight into the layer table: its statement-level audit trigger sees the whole batch at once
            with cur.copy(statement) as copy:
                for start in range(0, len(frame), _COPY_CHUNK_ROWS):
                    chunk = [c[start:start + _COPY_CHUNK_ROWS] for c in columns]
                    copy.write("".join(["\t".join(row) + "\n" for row in zip(*chunk, strict=True)]).encode("utf-8"))
    except psycopg.Error as exc:  # the same exception types as every other statement (IntegrityError, ...)
        raise sqlalchemy.exc.DBAPIError.instance(statement, None, exc, psycopg.Error) from exc
    return WriteResult(inserted=len(frame), deleted=deleted)


def _promote(geoms: np.ndarray, layer: Layer) -> np.ndarray:
    """Single parts to the layer's Multi type (Polygon → MultiPolygon, LineString → MultiLineString), vectorised."""
    single = {"MULTIPOLYGON": (3, shapely.multipolygons), "MULTILINESTRING": (1, shapely.multilinestrings)}
    if layer.geometry not in single:
        return geoms
    type_id, make = single[layer.geometry]
    out = geoms.copy()
    mask = shapely.get_type_id(geoms) == type_id
    if mask.any():
        out[mask] = make(geoms[mask], indices=np.arange(int(mask.sum())))
    return out


def link_frame(conn: Connection, layer: Layer, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Fill compound_id, compound_ref and street_code in memory, by the same rule as `derive_links`.

    compound_id comes from compound_ref where given, else from the smallest compound that the feature's
    point-on-surface intersects; compound_ref and street_code follow from that compound, and street_code
    falls back to the smallest street office containing the point. One STRtree query per table over the whole
    frame replaces per-row spatial subqueries in the database.
    """
    links = _link_columns(layer)
    if not links or len(frame) == 0:
        return frame
    out = frame.copy()
    n = len(out)
    points = None

    def column(name: str) -> np.ndarray:
        return (out[name].to_numpy(dtype=object).copy() if name in out.columns
                else np.full(n, None, dtype=object))

    def smallest_containing(table: str, extra_col: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        nonlocal points
        if points is None:
            points = shapely.point_on_surface(np.asarray(out.geometry.values))
        minx, miny, maxx, maxy = shapely.total_bounds(points)
        rows = conn.execute(text(
            f"SELECT id, ref, {extra_col}, ST_AsBinary(geom), ST_Area(geom) FROM {table} "
            "WHERE geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490)"),
            dict(x0=minx, y0=miny, x1=maxx, y1=maxy)).all()
        hit = np.full(n, -1)
        if rows:
            areas = np.array([r[4] for r in rows], dtype=float)
            tree = shapely.STRtree(shapely.from_wkb([bytes(r[3]) for r in rows]))
            p_idx, t_idx = tree.query(points, predicate="intersects")
            order = np.lexsort((areas[t_idx], p_idx))  # per point, the smallest polygon first
            p_idx, t_idx = p_idx[order], t_idx[order]
            first = np.r_[True, p_idx[1:] != p_idx[:-1]] if p_idx.size else np.array([], dtype=bool)
            hit[p_idx[first]] = t_idx[first]
        ids = np.array([r[0] for r in rows] + [None], dtype=object)
        refs = np.array([r[1] for r in rows] + [None], dtype=object)
        extra = np.array([r[2] for r in rows] + [None], dtype=object)
        return ids[hit], refs[hit], extra[hit]  # -1 picks the trailing None

    if "compound_id" in links:
        compound_ref = column("compound_ref")
        compound_id = np.full(n, None, dtype=object)
        compound_street = np.full(n, None, dtype=object)
        given = pd.notna(compound_ref)
        if given.any():
            known = conn.execute(text("SELECT ref, id, street_code FROM compounds WHERE ref = ANY(:refs)"),
                                 {"refs": sorted(set(compound_ref[given].tolist()))}).all()
            by_ref = {r[0]: (r[1], r[2]) for r in known}
            for i in np.flatnonzero(given).tolist():
                compound_id[i], compound_street[i] = by_ref.get(compound_ref[i], (None, None))
        todo = ~given
        if todo.any():
            ids, refs, streets = smallest_containing("compounds", "street_code")
            compound_id[todo], compound_ref[todo], compound_street[todo] = ids[todo], refs[todo], streets[todo]
        out["compound_id"] = compound_id
        out["compound_ref"] = compound_ref
    if "street_code" in links:
        street_code = column("street_code")
        if "compound_id" in links:
            fill = pd.isna(street_code) & pd.notna(compound_street)
            street_code[fill] = compound_street[fill]
        todo = pd.isna(street_code)
        if todo.any():
            _, refs, _ = smallest_containing("streets", "name")
            street_code[todo] = refs[todo]
        out["street_code"] = street_code
    return out


_LINK_TYPES = {"compound_id": "bigint", "compound_ref": "varchar(200)", "street_code": "varchar(12)"}


def _link_columns(layer: Layer) -> list[str]:
    table = TABLES[layer.name]
    return [c for c in _LINK_TYPES if c in table.c]


def derive_links(conn: Connection, layer: Layer, *, table: str | None = None) -> None:
    """Fill compound_id (from compound_ref, else spatially), compound_ref and street_code where missing.

    The SQL twin of `link_frame`, for rows already in a table: `table` is a staging table (the ledger's, the OSM
    sync's) that is linked before its rows move into the layer, so derived links cost no extra versions or audit
    rows; by default the layer's own table.
    """
    target = table or layer.name
    links = _link_columns(layer)
    if "compound_id" in links:
        conn.execute(text(
            f"UPDATE {target} t SET compound_id = c.id FROM compounds c "
            f"WHERE t.compound_id IS NULL AND t.compound_ref IS NOT NULL AND c.ref = t.compound_ref"
        ))
        conn.execute(text(
            f"""UPDATE {target} t SET compound_id = (
                    SELECT c.id FROM compounds c
                    WHERE ST_Intersects(c.geom, ST_PointOnSurface(t.geom))
                    ORDER BY ST_Area(c.geom) LIMIT 1)
                WHERE t.compound_id IS NULL"""
        ))
        conn.execute(text(
            f"UPDATE {target} t SET compound_ref = c.ref FROM compounds c "
            f"WHERE t.compound_ref IS NULL AND c.id = t.compound_id"
        ))
    if "street_code" in links:
        if "compound_id" in links:
            conn.execute(text(
                f"UPDATE {target} t SET street_code = c.street_code FROM compounds c "
                f"WHERE t.street_code IS NULL AND c.id = t.compound_id AND c.street_code IS NOT NULL"
            ))
        conn.execute(text(
            f"""UPDATE {target} t SET street_code = (
                    SELECT s.ref FROM streets s WHERE ST_Intersects(s.geom, ST_PointOnSurface(t.geom))
                    ORDER BY ST_Area(s.geom) LIMIT 1)
                WHERE t.street_code IS NULL"""
        ))


def count(layer: str, *, engine: Engine | None = None) -> int:
    with (engine or get_engine()).connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {get_layer(layer).name}")).scalar_one()
