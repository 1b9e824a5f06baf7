"""Writing derived OSM layers into PostGIS without overwriting what users edited (idempotent re-imports)."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import Connection, text

from gis.layers import STORAGE_SRID, get_layer
from gis.osm.derive import SOURCE
from gis.schema import TABLES
from gis.store import derive_links, layer_columns, write_frame

#: `extra` key: the row's `version` right after the importer last wrote it. A row whose version differs was
#: changed since by someone (API, web, SQL: every update bumps the version) and is never overwritten.
IMPORT_VERSION_KEY = "osm_import_version"
#: `extra` key: digest of what the importer wrote (values + geometry), to tell changed OSM data from unchanged.
DIGEST_KEY = "osm_digest"
_LINKS = ("compound_id", "compound_ref", "street_code")


@dataclass
class LayerSync:
    """What a re-import did to one layer."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    #: refs of features users edited since the last import: kept as they are
    skipped_edited: list[str] = field(default_factory=list)
    #: refs of OSM features users deleted: not brought back
    skipped_deleted: list[str] = field(default_factory=list)
    #: unedited features of earlier imports that this file does not have (kept; another extract may hold them)
    not_in_file: int = 0


def _plain(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 9)
    return value


def feature_digests(frame: gpd.GeoDataFrame, columns: list[str]) -> list[str]:
    """A digest per row of the written values and geometry (WKB), stable across runs on the same data."""
    wkb = shapely.to_wkb(np.asarray(frame.geometry.values, dtype=object), hex=True)
    values = [frame[c].tolist() for c in columns]
    extras = frame["extra"].tolist()
    out = []
    for i in range(len(frame)):
        payload = [[_plain(v[i]) for v in values], extras[i], wkb[i]]
        out.append(hashlib.sha1(json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False)
                                .encode()).hexdigest())
    return out


def sync_layer(conn: Connection, layer_name: str, frame: gpd.GeoDataFrame, *, user: str | None) -> LayerSync:
    """Insert new OSM features, update unedited ones whose OSM data changed, keep everything users touched.

    A stored feature counts as the importer's own when its `source` is 'osm' and its `version` still equals
    the version the importer gave it (``extra.osm_import_version``); those are updated in place when their
    derived values or geometry changed (same id, version + 1, audited) and left alone otherwise. Features
    edited since, features whose source a user changed, and OSM features users deleted (audit log) are
    reported and not touched. Nothing is deleted: features absent from this file are counted as not_in_file.
    """
    layer = get_layer(layer_name)
    result = LayerSync()
    columns = [c for c in layer_columns(layer) if c in frame.columns]
    existing = conn.execute(text(
        f"SELECT id, ref, version, source, extra->>'{IMPORT_VERSION_KEY}' AS iv, extra->>'{DIGEST_KEY}' AS dg "
        f"FROM {layer.name} WHERE source = :src OR ref LIKE 'osm:%' FOR UPDATE"
    ), {"src": SOURCE}).all()
    deleted = set(conn.execute(text(
        "SELECT DISTINCT before->>'ref' FROM audit_log "
        "WHERE layer = :layer AND action = 'delete' AND before->>'source' = :src"
    ), {"layer": layer.name, "src": SOURCE}).scalars())
    by_ref = {row.ref: row for row in existing}
    refs = frame["ref"].tolist()
    incoming = set(refs)
    digests = feature_digests(frame, columns)

    new_rows, changed_rows, changed_ids = [], [], []
    for i, ref in enumerate(refs):
        row = by_ref.get(ref)
        if row is None:
            if ref in deleted:
                result.skipped_deleted.append(ref)
            else:
                new_rows.append(i)
        elif row.source != SOURCE or row.iv is None or int(row.iv) != row.version:
            result.skipped_edited.append(ref)
        elif row.dg == digests[i]:
            result.unchanged += 1
        else:
            changed_rows.append(i)
            changed_ids.append(row.id)
    result.not_in_file = sum(
        1 for row in existing
        if row.ref not in incoming and row.source == SOURCE and row.iv is not None and int(row.iv) == row.version
    )

    stamped = frame.copy()
    stamped["extra"] = [{**extra, DIGEST_KEY: digests[i], IMPORT_VERSION_KEY: 1}
                        for i, extra in enumerate(frame["extra"].tolist())]
    if new_rows:
        result.inserted = write_frame(conn, layer, stamped.iloc[new_rows], user=user).inserted
    if changed_rows:
        result.updated = _update_rows(conn, layer.name, stamped.iloc[changed_rows], changed_ids, columns)
    return result


def _update_rows(conn: Connection, layer_name: str, frame: gpd.GeoDataFrame, ids: list[int],
                 columns: list[str]) -> int:
    """Update rows `ids` in place from `frame`: staged, links re-derived spatially, one UPDATE … FROM."""
    layer = get_layer(layer_name)
    table = TABLES[layer.name]
    links = [c for c in _LINKS if c in table.c and c not in columns]
    stage = f"_osm_update_{layer.name}"
    staged_cols = [*columns, *links]
    conn.execute(text(
        f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT id, {', '.join(staged_cols)}, extra, geom "
        f"FROM {layer.name} WITH NO DATA"
    ))
    conn.execute(text(f"ALTER TABLE {stage} ALTER COLUMN geom TYPE geometry USING geom::geometry"))
    wkb = shapely.to_wkb(np.asarray(frame.geometry.values, dtype=object), hex=True)
    values = {c: frame[c].tolist() for c in columns}
    extras = frame["extra"].tolist()
    params = [
        {"id": ids[i], **{c: _plain(values[c][i]) for c in columns},
         "extra": json.dumps(extras[i], ensure_ascii=False, default=str), "geom": wkb[i]}
        for i in range(len(frame))
    ]
    conn.execute(text(
        f"INSERT INTO {stage} (id, {', '.join(columns)}, extra, geom) VALUES (:id, "
        + "".join(f":{c}, " for c in columns)
        + f"CAST(:extra AS jsonb), ST_SetSRID(ST_GeomFromWKB(decode(:geom, 'hex')), {STORAGE_SRID}))"
    ), params)
    derive_links(conn, layer, table=stage)
    geom_sql = "ST_Multi(s.geom)" if layer.multi else "s.geom"
    assignments = [f"{c} = s.{c}" for c in staged_cols]
    assignments.append(f"geom = {geom_sql}")
    assignments.append(f"extra = s.extra || jsonb_build_object('{IMPORT_VERSION_KEY}', t.version + 1)")
    updated = conn.execute(text(
        f"UPDATE {layer.name} t SET {', '.join(assignments)} FROM {stage} s WHERE t.id = s.id"
    )).rowcount
    conn.execute(text(f"DROP TABLE {stage}"))
    return updated
