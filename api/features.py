"""OGC API Features logic, framework-free: parse item queries and answer them with GeoJSON built in SQL."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from api.aio import ReadPool
from api.auth import Principal
from api.crs import (
    DEFAULT,
    OutputCrs,
    bbox_storage_sql,
    geometry_sql,
    parse_bbox,
    parse_crs,
    same_coordinates,
    split_antimeridian,
)
from api.errors import BadRequest
from gis import scope as gis_scope
from gis.config import api_settings, server_settings
from gis.layers import Layer
from gis.schema import TABLES
from gis.store import layer_columns

#: Query parameters of /items that are not property filters.
RESERVED: frozenset[str] = frozenset({"f", "limit", "offset", "bbox", "bbox-crs", "crs", "datetime"})
#: Store-managed columns reported as properties (after the user fields).
MANAGED_PROPERTIES: tuple[str, ...] = ("extra", "version", "created_at", "updated_at", "updated_by")
#: Decimal places of coordinates in degrees (~1 cm).
DECIMALS = 7


def property_columns(layer: Layer) -> list[str]:
    """The columns a feature's `properties` carry, in order: user fields, compound_id, managed columns."""
    cols = list(layer_columns(layer))
    if "compound_id" in TABLES[layer.name].c:
        cols.append("compound_id")
    return cols + list(MANAGED_PROPERTIES)


def filterable(layer: Layer) -> dict[str, str]:
    """Property filters an items request accepts: column → declared type."""
    out = {name: layer.field(name).type for name in layer_columns(layer)}
    if "compound_id" in TABLES[layer.name].c:
        out["compound_id"] = "int"
    return {k: v for k, v in out.items() if v not in ("json", "timestamp")}


def _property_value_sql(layer: Layer, column: str, alias: str) -> str:
    """A property's JSON value, typed as declared: floats always carry a decimal point (4.0, never 4, which GDAL
    and QGIS would take for an integer field and truncate or null the next 4.5), JSON objects and arrays (extra,
    other_refs) as JSON text in a string, which every desktop format can hold (a GeoPackage has no JSON type)."""
    ref = f"{alias}.{column}"
    kind = "json" if column == "extra" else _declared_type(layer, column)
    if kind == "float":
        # a whole double as numeric(17,1) prints as 4.0; others (fractions, huge, NaN) are printed as they are
        return f"CASE WHEN abs({ref}) < 1e15 AND {ref} = trunc({ref}) THEN to_json({ref}::numeric(17,1)) " \
               f"ELSE to_json({ref}) END"
    if kind == "json":
        return f"{ref}::text"
    return ref


def _declared_type(layer: Layer, column: str) -> str | None:
    try:
        return layer.field(column).type
    except KeyError:
        return None


def _properties_sql(layer: Layer, alias: str) -> str:
    pairs = [f"'{c}', {_property_value_sql(layer, c, alias)}" for c in property_columns(layer)]
    if len(pairs) <= 48:  # json_build_object takes at most 100 arguments
        return f"json_build_object({', '.join(pairs)})"
    chunks = [pairs[i:i + 48] for i in range(0, len(pairs), 48)]
    return "(" + " || ".join(f"jsonb_build_object({', '.join(c)})" for c in chunks) + ")::json"


def _geometry(alias: str, crs: OutputCrs, multi: bool) -> str:
    return geometry_sql(f"ST_Multi({alias}.geom)" if multi else f"{alias}.geom", crs)


def feature_sql(layer: Layer, crs: OutputCrs = DEFAULT, *, alias: str = "t", multi: bool = False) -> str:
    """SQL for one GeoJSON Feature (json) of a row aliased `alias`, geometry in `crs` with 7 decimals
    (promoted to its Multi* type with `multi`, as the parts of a mixed-geometry layer serve it)."""
    geom = _geometry(alias, crs, multi)
    return (f"json_build_object('type', 'Feature', 'id', {alias}.id, "
            f"'geometry', ST_AsGeoJSON({geom}, {DECIMALS}, 0)::json, "
            f"'properties', {_properties_sql(layer, alias)})")


def feature_text_sql(layer: Layer, crs: OutputCrs = DEFAULT, *, alias: str = "t", multi: bool = False) -> str:
    """SQL for one GeoJSON Feature as text, the same document as feature_sql without the json type's parse of
    every geometry (pages of features are assembled as text)."""
    geom = _geometry(alias, crs, multi)
    return (f"'{{\"type\":\"Feature\",\"id\":' || {alias}.id || ',\"geometry\":' || "
            f"coalesce(ST_AsGeoJSON({geom}, {DECIMALS}, 0), 'null') || ',\"properties\":' || "
            f"{_properties_sql(layer, alias)}::text || '}}'")


def scope_sql(layer: Layer, principal: Principal, *, alias: str = "t") -> tuple[str | None, dict[str, Any]]:
    """The jurisdiction filter of the caller (None for unscoped roles): gis.scope's, the application twin of the
    row-level security policy (which filters anyway), kept so the planner can use the street_code index."""
    return gis_scope.filter_sql(layer.name, principal.db_scope, alias=alias)


def scope_tables(layer: Layer, principal: Principal) -> tuple[str, ...]:
    """The tables a caller's view of `layer` is read from (scope_sql may look up compounds)."""
    if principal.scoped and "street_code" not in TABLES[layer.name].c and layer.name != "streets":
        return layer.name, "compounds"
    if principal.compound_bound and layer.name == "streets":
        return layer.name, "compounds"
    return (layer.name,)


# --- parsing ----------------------------------------------------------------------------------------------------


@dataclass
class ItemsQuery:
    """A parsed /items request: paging, spatial/temporal/property filters and output CRS."""

    limit: int
    offset: int = 0
    crs: OutputCrs = DEFAULT
    bbox: tuple[float, float, float, float] | None = None
    bbox_crs: OutputCrs = DEFAULT
    where: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    #: costly exact predicates (ST_Intersects), evaluated in id order only until the page is full
    exact: list[str] = field(default_factory=list)
    #: geometries promoted to their Multi* type (the parts of a mixed-geometry layer)
    multi: bool = False


def _int(value: str, name: str) -> int:
    try:
        number = float(value)
    except ValueError:
        raise BadRequest(f"{name} 应为整数 {name} must be an integer, got {value!r}") from None
    if not math.isfinite(number) or number != int(number):
        raise BadRequest(f"{name} 应为整数 {name} must be an integer, got {value!r}")
    return int(number)


def clamp_limit(value: str | None) -> int:
    """`limit`: above max_limit it is clamped to it (OGC API Features 1, /req/core/fc-limit-response-1: a larger
    value is not an error); below 1 it is outside the declared range (minimum 1), a 400 as pygeoapi answers,
    never a silent page of one; absent, the default page size."""
    settings = server_settings()
    if value is None or value == "":
        return settings.default_limit
    limit = _int(value, "limit")
    if limit < 1:
        raise BadRequest(f"limit 须为正整数 limit must be at least 1, got {value!r}")
    return min(settings.max_limit, limit)


def _datetime(value: str, *, end: bool) -> datetime:
    """An RFC 3339 instant (or a date: its first moment, or for an interval end, the next day's)."""
    text_value = value.strip()
    try:
        if len(text_value) == 10:
            day = date.fromisoformat(text_value)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return moment + timedelta(days=1) if end else moment
        moment = datetime.fromisoformat(text_value.replace("z", "Z"))
    except ValueError:
        raise BadRequest(f"datetime 格式无效 invalid datetime {value!r} (RFC 3339, e.g. 2024-05-01T00:00:00Z "
                         f"or an interval a/b with .. for open ends)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def datetime_sql(layer: Layer, value: str, *, alias: str = "t") -> tuple[list[str], dict[str, Any]]:
    """OGC `datetime` (instant, date or interval with `..` open ends) on the layer's timestamp field."""
    column = layer.datetime_field
    if column is None:
        raise BadRequest(f"图层 {layer.name} 不支持时间过滤 layer {layer.name!r} has no datetime field")
    col = f"{alias}.{column}"
    if "/" not in value:
        if len(value.strip()) == 10:
            return [f"{col} >= :dt0", f"{col} < :dt1"], {"dt0": _datetime(value, end=False),
                                                          "dt1": _datetime(value, end=True)}
        return [f"{col} = :dt0"], {"dt0": _datetime(value, end=False)}
    start, _, stop = value.partition("/")
    clauses, params = [], {}
    lo = None if start.strip() in ("", "..") else _datetime(start, end=False)
    hi = None if stop.strip() in ("", "..") else _datetime(stop, end=True)
    if lo is not None:
        clauses.append(f"{col} >= :dt0")
        params["dt0"] = lo
    if hi is not None:
        # a date end is exclusive of the next day; an instant end is inclusive
        clauses.append(f"{col} < :dt1" if len(stop.strip()) == 10 else f"{col} <= :dt1")
        params["dt1"] = hi
    if lo is not None and hi is not None and lo > _datetime(stop, end=False):
        raise BadRequest(f"datetime 区间起点晚于终点 interval start after its end: {value!r}")
    if not clauses:
        return [], {}
    return clauses, params


def _typed(value: str, kind: str, name: str) -> Any:
    if kind == "int":
        return _int(value, name)
    if kind == "float":
        try:
            number = float(value)
        except ValueError:
            raise BadRequest(f"{name} 应为数字 {name} must be a number, got {value!r}") from None
        if not math.isfinite(number):
            raise BadRequest(f"{name} 须为有限数 {name} must be finite")
        return number
    if kind == "bool":
        lowered = value.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise BadRequest(f"{name} 应为 true/false {name} must be true or false, got {value!r}")
    if kind == "date":
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise BadRequest(f"{name} 应为日期 {name} must be a date (YYYY-MM-DD), got {value!r}") from None
    if len(value) > 1000:
        raise BadRequest(f"{name} 过长 {name} is too long")
    return value.replace("\x00", "")


def parse_items_query(layer: Layer, query: Mapping[str, str] | Any, *,
                      extra_params: Sequence[str] = ()) -> ItemsQuery:
    """Parse /items query parameters (a Starlette QueryParams or a plain mapping); unknown names → 400."""
    getlist = query.getlist if hasattr(query, "getlist") else (lambda k: [query[k]])
    offset_raw = query.get("offset")
    offset = 0 if offset_raw in (None, "") else max(0, _int(offset_raw, "offset"))
    q = ItemsQuery(limit=clamp_limit(query.get("limit")), offset=offset,
                   crs=parse_crs(query.get("crs"), param="crs"),
                   bbox_crs=parse_crs(query.get("bbox-crs"), param="bbox-crs"))
    if query.get("bbox-crs") is not None and query.get("bbox") is None:
        raise BadRequest("bbox-crs 需与 bbox 一起使用 bbox-crs needs bbox")
    if query.get("bbox") is not None:
        q.bbox = parse_bbox(query["bbox"], latlon=q.bbox_crs.latlon)
        overlaps, exact = [], []
        for i, box in enumerate(split_antimeridian(q.bbox, q.bbox_crs)):
            env, params = bbox_storage_sql(box, q.bbox_crs, key=f"b{i}")
            overlaps.append(f"t.geom && {env}")
            if same_coordinates(q.bbox_crs.srid):  # env is an axis-aligned rectangle: inside its box means inside it
                exact.append(f"(t.geom @ {env} OR ST_Intersects(t.geom, {env}))")
            else:
                exact.append(f"ST_Intersects(t.geom, {env})")
            q.params.update(params)
        q.where.append(overlaps[0] if len(overlaps) == 1 else "(" + " OR ".join(overlaps) + ")")
        q.exact.append(exact[0] if len(exact) == 1 else "(" + " OR ".join(exact) + ")")
    if query.get("datetime") is not None:
        clauses, params = datetime_sql(layer, query["datetime"])
        q.where.extend(clauses)
        q.params.update(params)
    columns = filterable(layer)
    for name in dict.fromkeys(query.keys()):
        if name in RESERVED or name in extra_params:
            continue
        if name not in columns:
            raise BadRequest(f"未知查询参数 unknown query parameter {name!r}; filters for {layer.name}: "
                             f"{', '.join(sorted(columns))}")
        values = [_typed(v, columns[name], name) for v in getlist(name)]
        key = f"p_{name}"
        q.where.append(f"t.{name} = ANY(:{key})")
        q.params[key] = values
    return q


# --- answering --------------------------------------------------------------------------------------------------


@dataclass
class Page:
    """One page of features: the GeoJSON features array (text) and the paging facts."""

    features: str
    returned: int
    has_next: bool
    matched: int | None


def _where(layer: Layer, q: ItemsQuery, principal: Principal) -> tuple[str, dict[str, Any]]:
    clauses, params = list(q.where), dict(q.params)
    scope, scope_params = scope_sql(layer, principal)
    if scope:
        clauses.append(scope)
        params.update(scope_params)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _rows_sql(layer: Layer, where: str, exact: list[str]) -> str:
    """The page's rows in id order. Exact spatial tests run after the id sort, on candidates (bbox overlap)
    in id order, so a page of 100 tests about 100 geometries rather than every candidate in the bbox
    (OFFSET 0 keeps the planner from pushing them under the sort)."""
    if not exact:
        return f"SELECT t.* FROM {layer.name} t{where} ORDER BY t.id LIMIT :limit_plus OFFSET :offset"
    return (f"SELECT t.* FROM (SELECT t.* FROM {layer.name} t{where} ORDER BY t.id OFFSET 0) t "
            f"WHERE {' AND '.join(exact)} ORDER BY t.id LIMIT :limit_plus OFFSET :offset")


def page_sql(layer: Layer, q: ItemsQuery, principal: Principal) -> tuple[str, str, dict[str, Any]]:
    """The page query (features JSON text + rows fetched, limit+1 to detect a next page), the matching rows
    query (SELECT 1 ..., for counting), and their bind parameters."""
    where, params = _where(layer, q, principal)
    params.update(limit=q.limit, limit_plus=q.limit + 1, offset=q.offset)
    page = (
        f"SELECT '[' || coalesce(string_agg({feature_text_sql(layer, q.crs, multi=q.multi)}, ',' ORDER BY t.id) "
        f"FILTER (WHERE t._rn <= :limit), '') || ']' AS features, count(*) AS fetched "
        f"FROM (SELECT row_number() OVER (ORDER BY s.id) AS _rn, s.* FROM ({_rows_sql(layer, where, q.exact)}) s) t"
    )
    if q.exact:
        where += (" AND " if where else " WHERE ") + " AND ".join(q.exact)
    return page, f"SELECT 1 FROM {layer.name} t{where}", params


async def _capped_count(pool: ReadPool, matching: str, params: dict[str, Any], cap: int) -> int | None:
    (n,) = await pool.one(f"SELECT count(*) FROM ({matching} LIMIT :cap) c", {**params, "cap": cap + 1})
    return n if n <= cap else None


async def number_matched(pool: ReadPool, layer: Layer, matching: str, params: dict[str, Any], *,
                         filtered: bool) -> int | None:
    """numberMatched for a first page that has a next one, where it is cheap: counted exactly when at most
    count_exact_max rows can match (an unfiltered table by its planner row count, pg_class.reltuples kept by
    autovacuum; a filtered request by the planner's estimate of its matches); a bigger unfiltered table reports
    the planner's row count; a filtered request the planner expects to match more is left out (unknown, rather
    than a slow page)."""
    cap = api_settings().count_exact_max
    if not filtered:
        (rows,) = await pool.one("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(:t)",
                                      {"t": layer.name})
        if rows is not None and rows > cap:
            return int(rows)
    else:
        (plan,) = await pool.one(f"EXPLAIN (FORMAT JSON) {matching}", params)
        plan = json.loads(plan) if isinstance(plan, str) else plan
        if plan[0]["Plan"]["Plan Rows"] > cap:
            return None
    return await _capped_count(pool, matching, params, cap)


async def items_page(pool: ReadPool, layer: Layer, q: ItemsQuery, principal: Principal) -> Page:
    """A page of items ordered by id, in one statement; numberMatched when it is known for free (the last page),
    cheap (the first page: number_matched) or, with count_cap > 0, from a capped count on every page."""
    page_query, matching, params = page_sql(layer, q, principal)
    features, fetched = await pool.one(page_query, params)
    returned = min(fetched, q.limit)
    has_next = fetched > q.limit
    matched: int | None = None
    if not has_next and (returned > 0 or q.offset == 0):
        matched = q.offset + returned
    elif q.offset == 0:
        matched = await number_matched(pool, layer, matching, params, filtered=" WHERE " in matching)
    elif api_settings().count_cap > 0:
        matched = await _capped_count(pool, matching, params, api_settings().count_cap)
    return Page(features=features, returned=returned, has_next=has_next, matched=matched)


def item(conn: Connection, layer: Layer, fid: int, principal: Principal,
         crs: OutputCrs = DEFAULT, *, part: str | None = None) -> tuple[str, int] | None:
    """One feature as GeoJSON text and its version, or None when absent, outside the caller's scope or, for the
    part of a mixed-geometry layer, not of the `part` filter's geometry (then promoted to Multi*)."""
    scope, params = scope_sql(layer, principal)
    sql = (f"SELECT {feature_sql(layer, crs, multi=part is not None)}::text AS feature, t.version "
           f"FROM {layer.name} t WHERE t.id = :fid" + (f" AND {scope}" if scope else "")
           + (f" AND {part}" if part else ""))
    row = conn.execute(text(sql), {**params, "fid": fid}).first()
    return (row.feature, row.version) if row is not None else None


# --- collection metadata ----------------------------------------------------------------------------------------

_extent_cache: dict[tuple[str, gis_scope.Scope], tuple[float, dict[str, Any]]] = {}
_extent_lock = threading.Lock()


def forget_extents() -> None:
    with _extent_lock:
        _extent_cache.clear()


def layer_extent(conn: Connection, layer: Layer, principal: Principal) -> dict[str, Any]:
    """Spatial (CRS84 bbox) and temporal extent of the rows the caller may see, cached for a minute.

    Large unscoped tables use the planner's estimate (ST_EstimatedExtent) rather than a full scan.
    """
    key = (layer.name, principal.db_scope)
    now = time.monotonic()
    with _extent_lock:
        hit = _extent_cache.get(key)
    if hit is not None and now - hit[0] < api_settings().extent_cache_s:
        return hit[1]
    scope, params = scope_sql(layer, principal)
    where = f" WHERE {scope}" if scope else ""
    box = None
    if scope is None:
        rows = conn.execute(text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:t)"),
                            {"t": layer.name}).scalar()
        if rows is not None and rows > 100_000:
            box = conn.execute(text(
                "SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) "
                "FROM (SELECT ST_EstimatedExtent(:t, 'geom') AS b) x"), {"t": layer.name}).first()
            box = box if box is not None and box[0] is not None else None
    if box is None:
        box = conn.execute(text(
            f"SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) "
            f"FROM (SELECT ST_Extent(t.geom) AS b FROM {layer.name} t{where}) x"), params).first()
    spatial: dict[str, Any] = {"crs": DEFAULT.uri}
    if box is not None and box[0] is not None:
        spatial["bbox"] = [[round(float(v), DECIMALS) for v in box]]
    else:
        spatial["bbox"] = [[-180.0, -90.0, 180.0, 90.0]]
    extent: dict[str, Any] = {"spatial": spatial}
    if layer.datetime_field:
        col = layer.datetime_field
        lo, hi = conn.execute(text(f"SELECT min(t.{col}), max(t.{col}) FROM {layer.name} t{where}"), params).one()
        extent["temporal"] = {"interval": [[lo.isoformat() if lo else None, hi.isoformat() if hi else None]],
                              "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}
    with _extent_lock:
        _extent_cache[key] = (now, extent)
    return extent
