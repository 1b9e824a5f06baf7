"""Mapbox vector tiles for every layer, built in PostGIS (ST_AsMVT), scoped by the caller's jurisdiction."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from api.auth import CurrentUser, Principal
from api.database import db_engine, hot_reads
from api.errors import BadRequest
from api.features import scope_sql, scope_tables
from api.ogc import get_collection
from api.tilecache import tile_cache
from gis.config import api_settings
from gis.layers import STORAGE_SRID, Layer
from gis.store import layer_columns

MVT = "application/vnd.mapbox-vector-tile"
MAX_ZOOM = 24
router = APIRouter(tags=["vector tiles"])


def _attribute_sql(layer: Layer) -> str:
    """Tile attributes: id, version and the scalar user fields (dates as text; JSON fields left out)."""
    cols = ["t.id", "t.version"]
    for name in layer_columns(layer):
        kind = layer.field(name).type
        if kind == "json":
            continue
        cols.append(f"t.{name}::text AS {name}" if kind in ("date", "timestamp") else f"t.{name}")
    return ", ".join(cols)


def tile_sql(layer: Layer, scope: str | None) -> str:
    """One MVT layer named after the collection; features cut to the tile with a buffer, in Web Mercator."""
    settings = api_settings()
    margin = settings.tile_buffer / settings.tile_extent
    return (
        f"WITH b AS (SELECT ST_TileEnvelope(:z, :x, :y) AS env, "
        f"ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => {margin}), {STORAGE_SRID}) AS env_s) "
        f"SELECT ST_AsMVT(q, '{layer.name}', {settings.tile_extent}, 'geom', 'id') FROM ("
        f"SELECT {_attribute_sql(layer)}, ST_AsMVTGeom(ST_Transform(t.geom, 3857), b.env, "
        f"{settings.tile_extent}, {settings.tile_buffer}, true) AS geom "
        f"FROM {layer.name} t, b WHERE t.geom && b.env_s" + (f" AND {scope}" if scope else "") + ") q "
        "WHERE q.geom IS NOT NULL"
    )


def _coords(z: int, x: int, y: int) -> None:
    if not 0 <= z <= MAX_ZOOM:
        raise BadRequest(f"缩放级别超出范围 zoom must be 0..{MAX_ZOOM}")
    n = 1 << z
    if not (0 <= x < n and 0 <= y < n):
        raise BadRequest(f"瓦片坐标超出范围 tile x, y must be in 0..{n - 1} at zoom {z}")


async def _build(layer: Layer, principal: Principal, z: int, x: int, y: int) -> tuple[bytes, str | None]:
    """The tile from PostGIS and its ETag (None for an empty tile)."""
    scope, params = scope_sql(layer, principal)
    (data,) = await (await hot_reads()).one(tile_sql(layer, scope), {**params, "z": z, "x": x, "y": y})
    body = bytes(data or b"")
    return body, ('"' + hashlib.sha1(body).hexdigest()[:20] + '"' if body else None)


@router.get("/tiles/{collectionId}/{z}/{x}/{y}.mvt", summary="Vector tile of a layer (Mapbox Vector Tile)",
            responses={200: {"content": {MVT: {}}, "description": "the tile (empty body: no features)"}})
async def tile(request: Request, collectionId: Annotated[str, Path(max_length=100)],  # noqa: N803
               z: Annotated[int, Path(ge=0, le=MAX_ZOOM)], x: Annotated[int, Path(ge=0)],
               y: Annotated[int, Path(ge=0)], principal: CurrentUser) -> Response:
    """A cached tile is answered from memory; a miss is built by PostGIS (both on the event loop)."""
    layer = get_collection(collectionId)
    _coords(z, x, y)
    cache = tile_cache(db_engine())
    key = (layer.name, z, x, y, principal.db_scope)
    generations = cache[0].generations(scope_tables(layer, principal)) if cache is not None else None
    found = cache[1].get(key, generations) if cache is not None and generations is not None else None
    if found is not None:
        body, etag = found
    else:
        body, etag = await _build(layer, principal, z, x, y)
        if cache is not None and generations is not None:
            cache[1].put(key, generations, body, etag)
    settings = api_settings()
    headers = {"Cache-Control": f"private, max-age={settings.cache_max_age_s}",
               "Vary": "Authorization, Cookie"}
    if cache is not None:
        headers["X-Cache"] = "hit" if found is not None else "miss"
    if not body:  # an empty tile is a valid MVT of no layers: 200 (GDAL's MVT driver cannot open a 204)
        return Response(b"", media_type=MVT, headers=headers)
    if etag is not None:  # always, for a tile with a body
        headers["ETag"] = etag
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=MVT, headers=headers)
