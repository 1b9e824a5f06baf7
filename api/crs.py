"""OGC API Features Part 2 CRS handling: the supported CRSs, their axis order, and SQL to convert geometries."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from api.errors import BadRequest
from gis.layers import STORAGE_SRID

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{}"


@dataclass(frozen=True)
class OutputCrs:
    """A CRS the API offers: its URI, SRID and whether its axis order is latitude first (EPSG:4326, 4490)."""

    uri: str
    srid: int
    latlon: bool

    @property
    def header(self) -> str:
        """The Content-Crs / Content-Crs header value."""
        return f"<{self.uri}>"


SUPPORTED: dict[str, OutputCrs] = {
    CRS84: OutputCrs(CRS84, 4326, False),
    EPSG_URI.format(4326): OutputCrs(EPSG_URI.format(4326), 4326, True),
    EPSG_URI.format(STORAGE_SRID): OutputCrs(EPSG_URI.format(STORAGE_SRID), STORAGE_SRID, True),
}
DEFAULT = SUPPORTED[CRS84]
STORAGE = SUPPORTED[EPSG_URI.format(STORAGE_SRID)]
CRS_LIST: list[str] = list(SUPPORTED)

_ALIASES = {
    "crs84": CRS84, "ogc:crs84": CRS84, "[ogc:crs84]": CRS84,
    "http://www.opengis.net/def/crs/ogc/1.3/crs84": CRS84,
    "epsg:4326": EPSG_URI.format(4326), "[epsg:4326]": EPSG_URI.format(4326),
    "urn:ogc:def:crs:epsg::4326": EPSG_URI.format(4326),
    f"epsg:{STORAGE_SRID}": EPSG_URI.format(STORAGE_SRID), f"[epsg:{STORAGE_SRID}]": EPSG_URI.format(STORAGE_SRID),
    f"urn:ogc:def:crs:epsg::{STORAGE_SRID}": EPSG_URI.format(STORAGE_SRID),
}


def parse_crs(value: str | None, *, param: str = "crs") -> OutputCrs:
    """The supported CRS named by a URI, safe CURIE ([EPSG:4326]) or EPSG:nnnn; None → CRS84; else 400."""
    if value is None:
        return DEFAULT
    text = value.strip().strip("<>")
    if text in SUPPORTED:
        return SUPPORTED[text]
    key = _ALIASES.get(text.lower()) or _ALIASES.get(text.lower().replace("https://", "http://"))
    if key is None and text.lower().startswith("http://www.opengis.net/def/crs/epsg/0/"):
        key = EPSG_URI.format(text.rsplit("/", 1)[-1])
    if key in SUPPORTED:
        return SUPPORTED[key]
    raise BadRequest(f"不支持的坐标系 unsupported {param} {value!r}; supported: {', '.join(CRS_LIST)}",
                     code_param=param)


#: SRIDs whose transformations to and from the storage CRS PostGIS performs as an exact numerical identity
#: (PROJ relates CGCS2000 and WGS 84 by a null "ballpark" transformation), learned from the database once per
#: process; until then, and for any SRID that is not, geometries go through ST_Transform.
_identity: dict[int, bool] = {}

IDENTITY_PROBE_SQL = f"""
SELECT bool_and(ST_AsBinary(ST_Transform(p, :srid)) = ST_AsBinary(p)
                AND ST_AsBinary(ST_Transform(ST_SetSRID(p, :srid), {STORAGE_SRID})) = ST_AsBinary(p))
FROM (SELECT ST_SetSRID(ST_MakePoint(x + 0.123456789012, y / 2.0 + 0.987654321098), {STORAGE_SRID}) AS p
      FROM generate_series(-179, 178, 3) x, generate_series(-178, 176, 3) y) g
"""


def identity_known() -> bool:
    return len(_identity) == len({c.srid for c in SUPPORTED.values()} - {STORAGE_SRID})


def learn_identity(conn: Any) -> None:
    """Ask PostGIS (a SQLAlchemy connection) which supported SRIDs transform to and from storage as identity."""
    for srid in {c.srid for c in SUPPORTED.values()} - {STORAGE_SRID}:
        _identity[srid] = bool(conn.execute(text(IDENTITY_PROBE_SQL), {"srid": srid}).scalar())


def forget_identity() -> None:
    _identity.clear()


def same_coordinates(srid: int) -> bool:
    """Whether storage coordinates are `srid` coordinates as they are (no ST_Transform needed)."""
    return srid == STORAGE_SRID or _identity.get(srid, False)


def geometry_sql(expr: str, crs: OutputCrs) -> str:
    """SQL turning a storage-CRS geometry into `crs` with its axis order (CCW exteriors before any flip)."""
    out = f"ST_ForcePolygonCCW({expr})"
    if not same_coordinates(crs.srid):
        out = f"ST_Transform({out}, {crs.srid})"
    if crs.latlon:
        out = f"ST_FlipCoordinates({out})"
    return out


def parse_bbox(value: str, *, latlon: bool = False) -> tuple[float, float, float, float]:
    """Four (or six, with heights) comma-separated numbers → (x0, y0, x1, y1) in the CRS's axis order.

    A west edge east of the east edge is a box across the antimeridian (OGC API Features 1, 7.15.3); a south edge
    north of the north edge is an error.
    """
    parts = [p.strip() for p in value.split(",")]
    if len(parts) not in (4, 6):
        raise BadRequest("bbox 应为 4 或 6 个数 bbox must have 4 or 6 comma-separated numbers")
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        raise BadRequest(f"bbox 含非数字 bbox has a value that is not a number: {value!r}") from None
    if not all(math.isfinite(n) for n in nums):
        raise BadRequest("bbox 须为有限数 bbox values must be finite")
    x0, y0, x1, y1 = (nums[0], nums[1], nums[3], nums[4]) if len(nums) == 6 else nums
    south, north = (x0, x1) if latlon else (y0, y1)
    if south > north:
        raise BadRequest("bbox 南边界大于北边界 bbox south edge is north of its north edge")
    return x0, y0, x1, y1


def split_antimeridian(bbox: tuple[float, float, float, float], crs: OutputCrs
                       ) -> list[tuple[float, float, float, float]]:
    """A box across the antimeridian (west > east) as its two halves, east and west of it; others unchanged."""
    x0, y0, x1, y1 = bbox
    if crs.latlon:
        if y0 <= y1:
            return [bbox]
        return [(x0, y0, x1, 180.0), (x0, -180.0, x1, y1)]
    if x0 <= x1:
        return [bbox]
    return [(x0, y0, 180.0, y1), (-180.0, y0, x1, y1)]


def bbox_storage_sql(bbox: tuple[float, float, float, float], crs: OutputCrs, *,
                     key: str = "b") -> tuple[str, dict[str, float]]:
    """SQL for the bbox as a storage-CRS envelope (lat/lon input swapped to x/y first), and its parameters."""
    x0, y0, x1, y1 = bbox
    if crs.latlon:
        x0, y0, x1, y1 = y0, x0, y1, x1
    if crs.srid in (4326, STORAGE_SRID):  # degrees: clamp so the transformation never sees impossible latitudes
        x0, x1 = max(x0, -180.0), min(x1, 180.0)
        y0, y1 = max(y0, -90.0), min(y1, 90.0)
        if x0 > x1 or y0 > y1:
            x0 = x1 = y0 = y1 = 0.0
    if same_coordinates(crs.srid):
        env = f"ST_MakeEnvelope(:{key}x0, :{key}y0, :{key}x1, :{key}y1, {STORAGE_SRID})"
    else:
        env = f"ST_Transform(ST_MakeEnvelope(:{key}x0, :{key}y0, :{key}x1, :{key}y1, {crs.srid}), {STORAGE_SRID})"
    return env, {f"{key}x0": x0, f"{key}y0": y0, f"{key}x1": x1, f"{key}y1": y1}
