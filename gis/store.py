"""Reading layers from PostGIS into GeoDataFrames and bulk-writing validated frames with COPY."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
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


def _copy_value(value: object) -> object:
    if value is None:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    if value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_frame(
    conn: Connection,
    layer: str | Layer,
    frame: gpd.GeoDataFrame,
    *,
    mode: str = "append",
    user: str | None = None,
) -> WriteResult:
    """Bulk-write a validated frame (storage CRS, layer columns, optional `extra` dicts) inside `conn`'s transaction.

    Rows go through COPY into a temporary staging table and one INSERT … SELECT (promoting to Multi types),
    then compound_id / street_code / compound_ref are derived spatially where the file did not give them.
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
    stage = f"_stage_{layer.name}"
    conn.execute(text(
        f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {', '.join(cols) + ', ' if cols else ''}"
        f"extra, geom FROM {layer.name} WITH NO DATA"
    ))
    conn.execute(text(f"ALTER TABLE {stage} ALTER COLUMN geom TYPE geometry USING geom::geometry"))
    conn.execute(text(f"ALTER TABLE {stage} ADD COLUMN _row integer"))
    for col in _link_columns(layer):
        if col not in cols:
            conn.execute(text(f"ALTER TABLE {stage} ADD COLUMN {col} {_LINK_TYPES[col]}"))
    srid_ewkb = shapely.to_wkb(
        shapely.set_srid(np.asarray(frame.geometry.values), STORAGE_SRID), hex=True, include_srid=True
    )
    extras = frame["extra"] if "extra" in frame.columns else pd.Series([{}] * len(frame), index=frame.index)
    values = [frame[c].astype(object).tolist() for c in cols]
    json_cols = {c for c in cols if layer.field(c).type == "json"} if cols else set()
    raw = conn.connection.driver_connection
    with raw.cursor() as cur:
        with cur.copy(f"COPY {stage} ({', '.join([*cols, 'extra', 'geom', '_row'])}) FROM STDIN") as copy:
            for i in range(len(frame)):
                row = [_copy_value(v[i]) for v in values]
                for j, c in enumerate(cols):
                    if c in json_cols and row[j] is not None:
                        row[j] = json.dumps(row[j], ensure_ascii=False)
                extra = extras.iloc[i]
                row.append(json.dumps(extra if isinstance(extra, dict) else {}, ensure_ascii=False, default=str))
                row.append(srid_ewkb[i])
                row.append(i)
                copy.write_row(row)
    derive_links(conn, layer, table=stage)
    geom_sql = "ST_Multi(geom)" if layer.geometry.startswith("MULTI") else "geom"
    insert_cols = [*_link_columns(layer), *cols, "extra", "geom"]
    insert_cols = list(dict.fromkeys(insert_cols))
    select_cols = [geom_sql if c == "geom" else c for c in insert_cols]
    if user:
        insert_cols.append("updated_by")
        select_cols.append(":user")
    inserted_ids = conn.execute(
        text(f"INSERT INTO {layer.name} ({', '.join(insert_cols)}) "
             f"SELECT {', '.join(select_cols)} FROM {stage} ORDER BY _row RETURNING id"),
        {"user": user} if user else {},
    ).scalars().all()
    conn.execute(text(f"DROP TABLE {stage}"))
    return WriteResult(inserted=len(inserted_ids), deleted=deleted)


_LINK_TYPES = {"compound_id": "bigint", "compound_ref": "varchar(200)", "street_code": "varchar(12)"}


def _link_columns(layer: Layer) -> list[str]:
    table = TABLES[layer.name]
    return [c for c in _LINK_TYPES if c in table.c]


def derive_links(conn: Connection, layer: Layer, *, table: str | None = None) -> None:
    """Fill compound_id (from compound_ref, else spatially), compound_ref and street_code where missing.

    Runs on `table` (the staging table of a write, by default the layer's own table) before rows are inserted,
    so derived links cost no extra versions or audit rows.
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
