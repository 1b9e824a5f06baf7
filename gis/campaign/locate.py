"""Where a reported point or polygon lies: parsed and bounded, then its compound and street derived in PostGIS."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry import shape
from sqlalchemy import Connection, text

from gis import scope
from gis.campaign.field_errors import InvalidInput
from gis.coords import parse_crs, to_storage
from gis.layers import STORAGE_SRID

#: a reported polygon is a spot on site (a blocked stairwell, a shed), not a district
MAX_VERTICES = 2000
MAX_AREA_DEG2 = 1e-4  # ~ 1 km² here


def parse_lonlat(value: str, *, field: str = "lonlat") -> shapely.Point:
    """'LON,LAT' in degrees → a point; the error names the field."""
    parts = [p.strip() for p in str(value).split(",")]
    if len(parts) != 2:
        raise InvalidInput(f"应为 经度,纬度 expected LON,LAT, got {value!r}", field=field)
    try:
        lon, lat = float(parts[0]), float(parts[1])
    except ValueError:
        raise InvalidInput(f"经纬度应为数字 LON,LAT must be numbers, got {value!r}", field=field) from None
    return point(lon, lat, field=field)


def point(lon: float, lat: float, *, field: str = "lonlat") -> shapely.Point:
    if not (math.isfinite(lon) and math.isfinite(lat)) or not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise InvalidInput(f"经纬度超出范围 longitude/latitude out of range: {lon}, {lat}", field=field)
    if -90 <= lon <= 90 and 70 <= lat <= 140:
        raise InvalidInput(f"经纬度可能颠倒 latitude and longitude look swapped ({lon}, {lat}): give LON,LAT",
                           field=field)
    return shapely.Point(lon, lat)


def parse_geometry(obj: Any, *, field: str = "geometry") -> shapely.Geometry:
    """A GeoJSON Point/Polygon/MultiPolygon (bare, or a Feature, or a one-feature FeatureCollection), bounded."""
    if isinstance(obj, str | bytes):
        try:
            obj = json.loads(obj)
        except ValueError as exc:
            raise InvalidInput(f"不是有效的 GeoJSON not valid GeoJSON: {exc}", field=field) from None
    if isinstance(obj, dict) and obj.get("type") == "FeatureCollection":
        feats = obj.get("features") or []
        if len(feats) != 1:
            raise InvalidInput(f"应只含一个要素 expected exactly one feature, got {len(feats)}", field=field)
        obj = feats[0]
    if isinstance(obj, dict) and obj.get("type") == "Feature":
        obj = obj.get("geometry")
    if not isinstance(obj, dict) or obj.get("type") not in ("Point", "Polygon", "MultiPolygon"):
        raise InvalidInput("只接受点或面 expected a GeoJSON Point, Polygon or MultiPolygon", field=field)
    try:
        geom = shape(obj)
    except Exception as exc:  # noqa: BLE001 - shapely raises several types for malformed coordinates
        raise InvalidInput(f"几何无效 malformed coordinates: {type(exc).__name__}", field=field) from None
    if geom.is_empty or shapely.get_num_coordinates(geom) > MAX_VERTICES:
        raise InvalidInput(f"几何为空或顶点过多 empty geometry or more than {MAX_VERTICES} vertices", field=field)
    if not bool(shapely.is_valid(geom)):
        raise InvalidInput(f"几何无效 invalid geometry: {shapely.is_valid_reason(geom)}", field=field)
    minx, miny, maxx, maxy = geom.bounds
    point(minx, miny, field=field)
    point(maxx, maxy, field=field)
    if geom.area > MAX_AREA_DEG2:
        raise InvalidInput("面积过大 the polygon is larger than a reported spot can be (~1 km²)", field=field)
    if geom.geom_type == "Polygon":
        geom = shapely.MultiPolygon([geom])
    return geom


def to_stored(geom: shapely.Geometry, crs: str | None) -> shapely.Geometry:
    """The geometry in the storage CRS from `crs` (default CGCS2000/WGS 84 degrees; gcj02 and bd09 accepted)."""
    if not crs:
        return geom
    try:
        return to_storage(geom, parse_crs(crs))
    except Exception as exc:  # noqa: BLE001 - any CRS failure is the client's crs value
        raise InvalidInput(f"坐标系无效 unknown or unusable CRS {crs!r}: {exc}", field="crs") from None


@dataclass(frozen=True)
class Place:
    """The compound (if any) and street a geometry lies in, derived in PostGIS."""

    compound_id: int | None
    compound_ref: str | None
    compound_name: str | None
    street_code: str | None


def locate(conn: Connection, geom: shapely.Geometry) -> Place:
    """The smallest compound and street containing the geometry's point on surface (as gis.store.derive_links)."""
    ewkt = f"SRID={STORAGE_SRID};{geom.wkt}"
    with scope.unscoped_lookup(conn):  # where a feature lies must not depend on what the caller may see
        row = _smallest(conn, ewkt)
    return Place(compound_id=row.id, compound_ref=row.ref, compound_name=row.name, street_code=row.street_code)


def _smallest(conn: Connection, ewkt: str) -> Any:
    return conn.execute(text(
        """WITH g AS (SELECT ST_PointOnSurface(ST_GeomFromEWKT(:g)) AS p)
           SELECT c.id, c.ref, c.name,
                  coalesce(c.street_code, (SELECT s.ref FROM streets s, g WHERE ST_Intersects(s.geom, g.p)
                                           ORDER BY ST_Area(s.geom) LIMIT 1)) AS street_code
           FROM g LEFT JOIN LATERAL (
               SELECT c.id, c.ref, c.name, c.street_code FROM compounds c
               WHERE ST_Intersects(c.geom, g.p) ORDER BY ST_Area(c.geom) LIMIT 1) c ON true"""),
        {"g": ewkt}).one()
