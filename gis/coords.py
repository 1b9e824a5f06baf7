"""Coordinates: GCJ-02/BD-09 shifts, CRS parsing, storage transforms, extent checks and local metric CRSs."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt
import pyproj
import shapely
from pyproj.exceptions import CRSError as _PyprojCRSError
from shapely.geometry.base import BaseGeometry

__all__ = [
    "CHINA_BOUNDS",
    "DEFAULT_MARGIN_KM",
    "STORAGE_EPSG",
    "CrsError",
    "CrsSpec",
    "ExtentCheck",
    "as_bounds",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "check_datum",
    "check_extent",
    "crs_hint",
    "datum_gap",
    "detect_swapped_latlon",
    "extent_problems",
    "fitting_crs",
    "from_storage",
    "gauss_kruger_candidates",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "in_bounds",
    "in_china_rough",
    "in_survey_order",
    "local_metric_crs",
    "metric_crs_for_bounds",
    "parse_crs",
    "project_local",
    "to_storage",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

Bounds = tuple[float, float, float, float]
FloatOrArray = float | np.ndarray
Shift = Literal["gcj02", "bd09"]

#: Storage CRS of every layer: CGCS2000 geographic, stored lon/lat (x=lon, y=lat).
STORAGE_EPSG = 4490
#: Rough lon/lat box of mainland China (minx, miny, maxx, maxy): the fallback when no district extent is known.
CHINA_BOUNDS: Bounds = (73.5, 18.0, 135.1, 53.6)
#: How far (km) outside the expected extent a feature may lie before it is reported.
DEFAULT_MARGIN_KM = 10.0

# GCJ-02 constants: Krasovsky 1940 ellipsoid semi-major axis and first eccentricity squared.
_KRASOVSKY_A = 6378245.0
_KRASOVSKY_EE = 0.00669342162296594323
# The box outside which GCJ-02 is conventionally the identity (the usual rough "out of China" test).
_GCJ_BOX: Bounds = (72.004, 0.8293, 137.8347, 55.8271)
# BD-09 constants.
_BD_X_PI = math.pi * 3000.0 / 180.0
_BD_DX, _BD_DY = 0.0065, 0.006
# Iterative inverse: stop when |forward(result) - target| < tolerance (degrees) in both axes.
_INVERSE_TOL_DEG = 1e-9
_INVERSE_MAX_ITER = 30
# Mean length of a degree (km) for the rough extent arithmetic.
_KM_PER_DEG_LAT = 110.574
_KM_PER_DEG_LON_EQUATOR = 111.320


class CrsError(ValueError):
    """An unknown, invalid or unusable coordinate reference system (messages are "中文 English")."""


# ---------------------------------------------------------------------------------------------------------
# GCJ-02 / BD-09
# ---------------------------------------------------------------------------------------------------------


def _as_float_arrays(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray, bool]:
    """Broadcast lon/lat to float64 arrays; also report whether both inputs were scalars."""
    x = np.asarray(lon, dtype=np.float64)
    y = np.asarray(lat, dtype=np.float64)
    scalar = x.ndim == 0 and y.ndim == 0
    x, y = np.broadcast_arrays(x, y)
    return x, y, scalar


def _result(x: np.ndarray, y: np.ndarray, scalar: bool) -> tuple[FloatOrArray, FloatOrArray]:
    if scalar:
        return float(x), float(y)
    return x, y


def in_china_rough(lon: npt.ArrayLike, lat: npt.ArrayLike) -> np.ndarray | bool:
    """Whether points fall in the rough box where GCJ-02 applies (the conventional "out of China" test)."""
    x, y, scalar = _as_float_arrays(lon, lat)
    minx, miny, maxx, maxy = _GCJ_BOX
    inside = (x >= minx) & (x <= maxx) & (y >= miny) & (y <= maxy)
    return bool(inside) if scalar else inside


def _gcj_dlat_raw(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Latitude perturbation (in metres on the Krasovsky ellipsoid) of the published GCJ-02 formula."""
    pi = math.pi
    out = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    out += (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    out += (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
    out += (160.0 * np.sin(y / 12.0 * pi) + 320.0 * np.sin(y * pi / 30.0)) * 2.0 / 3.0
    return out


def _gcj_dlon_raw(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Longitude perturbation (in metres on the Krasovsky ellipsoid) of the published GCJ-02 formula."""
    pi = math.pi
    out = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    out += (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    out += (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
    out += (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0
    return out


def _gcj_forward(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 -> GCJ-02 on float arrays (identity outside the rough China box)."""
    x = lon - 105.0
    y = lat - 35.0
    dlat = _gcj_dlat_raw(x, y)
    dlon = _gcj_dlon_raw(x, y)
    phi = np.radians(lat)
    w = 1.0 - _KRASOVSKY_EE * np.sin(phi) ** 2
    sqrt_w = np.sqrt(w)
    # metres -> degrees: meridian radius of curvature M = a(1-e²)/W³, prime vertical N = a/W.
    dlat = dlat * 180.0 / ((_KRASOVSKY_A * (1.0 - _KRASOVSKY_EE)) / (w * sqrt_w) * math.pi)
    dlon = dlon * 180.0 / (_KRASOVSKY_A / sqrt_w * np.cos(phi) * math.pi)
    minx, miny, maxx, maxy = _GCJ_BOX
    outside = (lon < minx) | (lon > maxx) | (lat < miny) | (lat > maxy)
    return np.where(outside, lon, lon + dlon), np.where(outside, lat, lat + dlat)


def _bd_forward(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 -> BD-09 on float arrays (the published closed form; applied everywhere)."""
    z = np.hypot(lon, lat) + 0.00002 * np.sin(lat * _BD_X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _BD_X_PI)
    return z * np.cos(theta) + _BD_DX, z * np.sin(theta) + _BD_DY


def _bd_inverse_guess(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The usual closed-form approximate BD-09 -> GCJ-02 (centimetre-level), used as a starting point."""
    x = lon - _BD_DX
    y = lat - _BD_DY
    z = np.hypot(x, y) - 0.00002 * np.sin(y * _BD_X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _BD_X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def _invert(
    forward: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    lon: np.ndarray,
    lat: np.ndarray,
    *,
    guess: tuple[np.ndarray, np.ndarray] | None = None,
    tol: float = _INVERSE_TOL_DEG,
    max_iter: int = _INVERSE_MAX_ITER,
) -> tuple[np.ndarray, np.ndarray]:
    """Invert a near-identity forward shift by fixed-point iteration over whole arrays.

    Each step corrects every point by its residual ``target - forward(estimate)``; as the shift's
    Jacobian differs from the identity by ~1e-5, each step gains about five orders of magnitude.
    Iteration stops once every finite residual is below ``tol`` degrees.
    """
    if guess is None:
        fx, fy = forward(lon, lat)
        ex, ey = lon - (fx - lon), lat - (fy - lat)
    else:
        ex, ey = guess
    ex = np.array(ex, dtype=np.float64, copy=True)
    ey = np.array(ey, dtype=np.float64, copy=True)
    for _ in range(max_iter):
        fx, fy = forward(ex, ey)
        rx = lon - fx
        ry = lat - fy
        # NaN residuals compare False: missing coordinates never block convergence.
        if not ((np.abs(rx) >= tol) | (np.abs(ry) >= tol)).any():
            break
        ex += rx
        ey += ry
    return ex, ey


def wgs84_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatOrArray, FloatOrArray]:
    """Shift WGS84 lon/lat to GCJ-02 ("Mars coordinates", AMap/Tencent); identity outside China.

    Parameters
    ----------
    lon, lat : array_like
        Longitudes and latitudes in degrees; broadcast against each other.

    Returns
    -------
    lon, lat : float or ndarray
        Floats when both inputs are scalars, otherwise arrays of the broadcast shape.
    """
    x, y, scalar = _as_float_arrays(lon, lat)
    return _result(*_gcj_forward(x, y), scalar)


def gcj02_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatOrArray, FloatOrArray]:
    """Unshift GCJ-02 lon/lat to WGS84 by iterating the forward transform (residual < 1e-9°, sub-millimetre)."""
    x, y, scalar = _as_float_arrays(lon, lat)
    return _result(*_invert(_gcj_forward, x, y), scalar)


def gcj02_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatOrArray, FloatOrArray]:
    """Shift GCJ-02 lon/lat to BD-09 (Baidu)."""
    x, y, scalar = _as_float_arrays(lon, lat)
    return _result(*_bd_forward(x, y), scalar)


def bd09_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatOrArray, FloatOrArray]:
    """Unshift BD-09 lon/lat to GCJ-02: the closed-form guess refined by iteration (residual < 1e-9°)."""
    x, y, scalar = _as_float_arrays(lon, lat)
    return _result(*_invert(_bd_forward, x, y, guess=_bd_inverse_guess(x, y)), scalar)


def wgs84_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatOrArray, FloatOrArray]:
    """Shift WGS84 lon/lat to BD-09 (via GCJ-02)."""
    x, y, scalar = _as_float_arrays(lon, lat)
    return _result(*_bd_forward(*_gcj_forward(x, y)), scalar)


def bd09_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatOrArray, FloatOrArray]:
    """Unshift BD-09 lon/lat to WGS84 (via GCJ-02), both steps iterated to < 1e-9°."""
    x, y, scalar = _as_float_arrays(lon, lat)
    gx, gy = _invert(_bd_forward, x, y, guess=_bd_inverse_guess(x, y))
    return _result(*_invert(_gcj_forward, gx, gy), scalar)


_SHIFT_TO_WGS84: dict[str, Callable[[np.ndarray, np.ndarray], tuple[Any, Any]]] = {
    "gcj02": gcj02_to_wgs84,
    "bd09": bd09_to_wgs84,
}
_SHIFT_FROM_WGS84: dict[str, Callable[[np.ndarray, np.ndarray], tuple[Any, Any]]] = {
    "gcj02": wgs84_to_gcj02,
    "bd09": wgs84_to_bd09,
}


# ---------------------------------------------------------------------------------------------------------
# CRS parsing
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CrsSpec:
    """A parsed CRS: its normalised ``name``, the pyproj CRS of the underlying datum, and an optional shift.

    For ``gcj02``/``bd09`` the ``pyproj_crs`` is geographic WGS84 (EPSG:4326) and ``shift`` names the
    obfuscation applied on top of it; for everything else ``shift`` is ``None``.
    """

    name: str
    pyproj_crs: pyproj.CRS
    shift: Shift | None = None

    def __str__(self) -> str:
        return self.name


# Keys are lower-cased with '-', '_' and spaces removed.
_NAMED: dict[str, tuple[str, int | str, Shift | None]] = {
    "gcj02": ("gcj02", 4326, "gcj02"),
    "bd09": ("bd09", 4326, "bd09"),
    "bd09ll": ("bd09", 4326, "bd09"),
    "wgs84": ("EPSG:4326", 4326, None),
    "cgcs2000": ("EPSG:4490", 4490, None),
    "crs84": ("OGC:CRS84", "OGC:CRS84", None),
}


def _unknown(value: object, reason: str) -> CrsError:
    return CrsError(f"无法识别的坐标系 unknown CRS {value!r}: {reason}")


def _spec_from_pyproj(crs: pyproj.CRS, value: object) -> CrsSpec:
    if not (crs.is_geographic or crs.is_projected):
        raise _unknown(
            value, f"不是平面或地理坐标系 not a horizontal (geographic or projected) CRS ({crs.type_name})"
        )
    authority = crs.to_authority(min_confidence=100)
    if authority:
        name = f"{authority[0]}:{authority[1]}"
    else:  # a custom WKT keeps its own name; a PROJ string without one is named by itself
        name = crs.name if crs.name and crs.name != "unknown" else crs.srs
    return CrsSpec(name=name, pyproj_crs=crs, shift=None)


def parse_crs(value: str | int | pyproj.CRS | CrsSpec | None) -> CrsSpec:
    """Parse a user-supplied CRS.

    Accepts EPSG codes (``"EPSG:4490"``, ``"4326"``, ``4326``), OGC URIs and URNs
    (``http://www.opengis.net/def/crs/OGC/1.3/CRS84``, ``http://www.opengis.net/def/crs/EPSG/0/4490``),
    ``"CRS84"``, WKT and PROJ strings, and the names ``gcj02``/``gcj-02``, ``bd09``/``bd-09``,
    ``wgs84`` and ``cgcs2000`` (case-insensitive). ``None`` means WGS84, the GeoJSON (RFC 7946) default.

    Raises
    ------
    CrsError
        For anything unknown, empty or not a horizontal CRS; the message names the value.
    """
    if isinstance(value, CrsSpec):
        return value
    if value is None:
        return CrsSpec(name="EPSG:4326", pyproj_crs=_crs(4326), shift=None)
    if isinstance(value, pyproj.CRS):
        return _spec_from_pyproj(value, value)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _unknown(
            value, f"应为字符串或 EPSG 代码 expected a string or an EPSG code, got {type(value).__name__}"
        )
    if isinstance(value, int):
        if value <= 0:
            raise _unknown(value, "EPSG 代码须为正整数 an EPSG code must be a positive integer")
        user_input: int | str = value
    else:
        text = value.strip()
        if not text:
            raise _unknown(value, "坐标系为空 empty value")
        key = text.lower().replace("-", "").replace("_", "").replace(" ", "")
        if key in _NAMED:
            name, code, shift = _NAMED[key]
            return CrsSpec(name=name, pyproj_crs=_crs(code), shift=shift)
        user_input = f"EPSG:{text}" if text.isdigit() else text
    try:
        crs = pyproj.CRS.from_user_input(user_input)
    except _PyprojCRSError as exc:
        raise _unknown(value, str(exc)) from None
    return _spec_from_pyproj(crs, value)


@functools.lru_cache(maxsize=256)
def _crs(code: int | str) -> pyproj.CRS:
    return pyproj.CRS.from_user_input(code)


# ---------------------------------------------------------------------------------------------------------
# Storage transforms
# ---------------------------------------------------------------------------------------------------------


#: Coordinate operations another process chose (`operation_json`), by (source, target) CRS: a transformer built from
#: its operation skips PROJ's search among the candidates (about 0.1 s for CGCS2000 to a WGS 84 UTM zone).
_ADOPTED: dict[tuple[pyproj.CRS, pyproj.CRS], str] = {}


@functools.lru_cache(maxsize=128)
def cached_transformer(src: pyproj.CRS, dst: pyproj.CRS) -> pyproj.Transformer | None:
    """A lon/lat-ordered transformer cached per process (building one is costly), or ``None`` when source and
    target are the same CRS."""
    if src == dst:
        return None
    adopted = _ADOPTED.get((src, dst))
    if adopted is not None:
        try:
            return pyproj.Transformer.from_pipeline(adopted)
        except pyproj.exceptions.ProjError:  # e.g. a remote worker's older PROJ: its own search, as without adoption
            pass
    return pyproj.Transformer.from_crs(src, dst, always_xy=True)


def operation_json(src: pyproj.CRS, dst: pyproj.CRS) -> str | None:
    """The coordinate operation `cached_transformer(src, dst)` uses, as PROJ JSON (None: the same CRS), for
    `adopt_operation` in another process."""
    move = cached_transformer(src, dst)
    return None if move is None else move.to_json()


def adopt_operation(src: pyproj.CRS, dst: pyproj.CRS, operation: str) -> None:
    """Let this process's `cached_transformer(src, dst)` use `operation` (`operation_json` of another process: the
    same operation, the same coordinates) instead of searching PROJ's candidates again."""
    _ADOPTED[(src, dst)] = operation


_SHAPELY_KEEPS_Z = tuple(int(p) for p in shapely.__version__.split(".")[:2]) >= (2, 1)


def transform_xy(geoms: Any, fn: Callable[[np.ndarray, np.ndarray], tuple[Any, Any]]) -> Any:
    """Apply a vectorised ``fn(x, y) -> (x, y)`` to every vertex of every geometry, keeping any Z."""

    def on_coords(coords: np.ndarray) -> np.ndarray:
        out = np.array(coords, dtype=np.float64, copy=True)
        x, y = fn(coords[:, 0], coords[:, 1])
        out[:, 0] = x
        out[:, 1] = y
        failed = (
            ~(np.isfinite(out[:, 0]) & np.isfinite(out[:, 1]))
            & np.isfinite(coords[:, 0])
            & np.isfinite(coords[:, 1])
        )
        if failed.any():
            i = int(np.flatnonzero(failed)[0])
            raise CrsError(
                f"坐标转换失败 coordinate transformation failed for {int(failed.sum())} vertex(es), "
                f"e.g. (x={coords[i, 0]}, y={coords[i, 1]})"
            )
        return out

    if _SHAPELY_KEEPS_Z:
        return shapely.transform(geoms, on_coords, include_z=None)
    return shapely.transform(geoms, on_coords, include_z=False)


def _geometry_input(geoms: Any) -> tuple[Any, bool]:
    """A numpy object array of geometries (or a single geometry) and whether the input was a single geometry."""
    if isinstance(geoms, BaseGeometry):
        return geoms, True
    geometry = getattr(geoms, "geometry", None)
    if geometry is not None and hasattr(geoms, "columns"):  # a GeoDataFrame: use its active geometry
        geoms = geometry
    return np.asarray(geoms, dtype=object), False


def to_storage(geoms: Any, crs: CrsSpec | str | int, *, storage_epsg: int = STORAGE_EPSG) -> Any:
    """Transform geometries given in ``crs`` into the storage CRS (default EPSG:4490, lon/lat order).

    GCJ-02/BD-09 inputs are first unshifted to WGS84 with the accurate iterative inverse, then pyproj
    carries them to the storage CRS (``always_xy=True``: x is always longitude/easting).

    Parameters
    ----------
    geoms : array_like of shapely geometries, GeoSeries, or a single geometry
    crs : CrsSpec (or anything :func:`parse_crs` accepts)
        The CRS the coordinates are in.
    storage_epsg : int
        The target EPSG code.

    Returns
    -------
    numpy.ndarray of shapely geometries (a single geometry for a single-geometry input).
    """
    spec = parse_crs(crs)
    arr, single = _geometry_input(geoms)
    if spec.shift is not None:
        arr = transform_xy(arr, _SHIFT_TO_WGS84[spec.shift])
    for transformer in _legs(spec.pyproj_crs, _crs(storage_epsg)):
        arr = transform_xy(arr, transformer.transform)
    return arr if single else np.asarray(arr, dtype=object)


def from_storage(geoms: Any, crs: CrsSpec | str | int, *, storage_epsg: int = STORAGE_EPSG) -> Any:
    """Transform geometries from the storage CRS into ``crs`` (e.g. GCJ-02 for AMap basemaps, or an export CRS).

    The reverse of :func:`to_storage`: pyproj to the datum of ``crs``, then the GCJ-02/BD-09 shift if any.
    """
    spec = parse_crs(crs)
    arr, single = _geometry_input(geoms)
    for transformer in _legs(_crs(storage_epsg), spec.pyproj_crs):
        arr = transform_xy(arr, transformer.transform)
    if spec.shift is not None:
        arr = transform_xy(arr, _SHIFT_FROM_WGS84[spec.shift])
    return arr if single else np.asarray(arr, dtype=object)


def _legs(src: pyproj.CRS, dst: pyproj.CRS) -> list[pyproj.Transformer]:
    """The transformers from `src` to `dst`: through WGS 84 when either is bound to it (a CRS given with
    TOWGS84: PROJ applies those parameters only on the way to WGS 84 itself), else directly."""
    wgs84 = _crs(4326)
    if (src.is_bound or dst.is_bound) and wgs84 not in (src, dst):
        legs = [cached_transformer(src, wgs84), cached_transformer(wgs84, dst)]
    else:
        legs = [cached_transformer(src, dst)]
    return [t for t in legs if t is not None]


#: Datums that sit within centimetres to decimetres of CGCS2000's (geocentric, ITRF-aligned): a PROJ "ballpark"
#: between them and CGCS2000 loses nothing the checks resolve.
_GEOCENTRIC = ("China Geodetic Coordinate System 2000", "China 2000", "WGS 84", "World Geodetic System 1984", "ITRF")
_BALLPARK = re.compile(r"Ballpark geographic offset from (.+?) to ")


def datum_gap(crs: CrsSpec, *, storage_epsg: int = STORAGE_EPSG) -> str | None:
    """The datum of `crs` that PROJ would not transform to the storage CRS's but take as it (a "ballpark": no
    transformation is known, Xian 1980 and Beijing 1954 among them, off by tens of metres or more), else None."""
    if crs.shift is not None:
        return None  # (GCJ-02 and BD-09 sit on WGS 84)
    for leg in _legs(crs.pyproj_crs, _crs(storage_epsg)):
        for name in _BALLPARK.findall(leg.description):
            if not name.startswith(_GEOCENTRIC) and not (name == "unknown" and _geocentric_ellipsoid(crs.pyproj_crs)):
                return str(name)
    return None


def _geocentric_ellipsoid(crs: pyproj.CRS) -> bool:
    """Whether an unnamed datum is on the GRS 80 / WGS 84 ellipsoid (a city's own Gauss-Krüger grid written as a
    PROJ string on CGCS2000's ellipsoid), not on Krassovsky's or IAG 75's (Beijing 1954, Xian 1980)."""
    ellipsoid = crs.ellipsoid
    return ellipsoid is not None and abs(ellipsoid.semi_major_metre - 6_378_137.0) < 0.01 and \
        abs(ellipsoid.inverse_flattening - 298.2572) < 0.001


def check_datum(crs: CrsSpec) -> None:
    """Raise CrsError when reading `crs` into storage would ignore its datum (`datum_gap`), saying what to do."""
    datum = datum_gap(crs)
    if datum is not None:
        raise CrsError(
            f"{crs} 的基准 ({datum}) 到 CGCS2000 没有已知的转换, 坐标会被直接当作 CGCS2000 (偏差可达数十米以上): 请先用"
            f"本地转换参数 (七参数) 转到 CGCS2000, 或以带 TOWGS84 的 WKT / PROJ 字符串给出 --crs | no transformation "
            f"from {crs}'s datum ({datum}) to CGCS2000 is known: its coordinates would be taken as CGCS2000's, tens of "
            f"metres or more off. Convert them with your local (7-parameter) transformation first, or give --crs as "
            f"WKT or PROJ with TOWGS84")


# ---------------------------------------------------------------------------------------------------------
# Extent checks (swapped lat/lon, far outside the jurisdiction)
# ---------------------------------------------------------------------------------------------------------


class ExtentCheck(NamedTuple):
    """Positional indices of features that look lat/lon-swapped, and of those far outside the expected extent."""

    swapped: np.ndarray
    outside: np.ndarray


def _expanded(bounds: Bounds, margin_km: float) -> Bounds:
    minx, miny, maxx, maxy = (float(b) for b in bounds)
    if not (minx <= maxx and miny <= maxy):
        raise ValueError(f"范围无效 invalid bounds {bounds!r}: expected (minx, miny, maxx, maxy)")
    dlat = margin_km / _KM_PER_DEG_LAT
    coslat = max(math.cos(math.radians(max(abs(miny), abs(maxy)))), 0.01)
    dlon = margin_km / (_KM_PER_DEG_LON_EQUATOR * coslat)
    return minx - dlon, miny - dlat, maxx + dlon, maxy + dlat


def _boxes_intersect(
    minx: np.ndarray, miny: np.ndarray, maxx: np.ndarray, maxy: np.ndarray, box: Bounds
) -> np.ndarray:
    bx0, by0, bx1, by1 = box
    return (maxx >= bx0) & (minx <= bx1) & (maxy >= by0) & (miny <= by1)


def detect_swapped_latlon(
    x: npt.ArrayLike, y: npt.ArrayLike, *, bounds: Bounds = CHINA_BOUNDS, margin_km: float = 0.0
) -> np.ndarray:
    """Positional indices of points whose (y, x) falls inside ``bounds`` while (x, y) does not.

    ``bounds`` is the expected lon/lat box ``(minx, miny, maxx, maxy)``, optionally widened by ``margin_km``.
    """
    xa, ya, _ = _as_float_arrays(x, y)
    xa, ya = np.ravel(xa), np.ravel(ya)
    box = _expanded(bounds, margin_km)
    as_given = _boxes_intersect(xa, ya, xa, ya, box)
    as_swapped = _boxes_intersect(ya, xa, ya, xa, box)
    return np.flatnonzero(as_swapped & ~as_given)


def in_survey_order(x: np.ndarray, y: np.ndarray, crs: CrsSpec, *, bounds: Bounds = CHINA_BOUNDS,
                    margin_km: float = DEFAULT_MARGIN_KM) -> bool:
    """Whether projected coordinates read as (x, y) are in the Chinese surveying order, northing first: a
    测量坐标系 names its north axis X. True when the CRS is projected, no point lies in ``bounds`` (lon/lat, widened
    by ``margin_km``) as given, and every point does with the two exchanged."""
    ok = np.isfinite(x) & np.isfinite(y)
    if crs.shift is not None or not crs.pyproj_crs.is_projected or not ok.any():
        return False
    box = _expanded(bounds, margin_km)
    as_given, exchanged = _inside(crs.pyproj_crs, x[ok], y[ok], box), _inside(crs.pyproj_crs, y[ok], x[ok], box)
    return bool(not as_given.any() and exchanged.all())


def _inside(crs: pyproj.CRS, x: np.ndarray, y: np.ndarray, box: Bounds) -> np.ndarray:
    """Per point (x, y) given in `crs`: whether it lies in the lon/lat `box` once in storage."""
    for transformer in _legs(crs, _crs(STORAGE_EPSG)):
        x, y = (np.asarray(v, dtype=float) for v in transformer.transform(x, y))
    return _boxes_intersect(x, y, x, y, box)


def in_bounds(geoms: Any, crs: CrsSpec, bounds: Bounds, *, margin_km: float = DEFAULT_MARGIN_KM) -> np.ndarray:
    """Per geometry given in `crs`: whether its box meets `bounds` (lon/lat, widened by `margin_km`) in storage;
    False where it cannot be transformed."""
    arr = _geometry_array_1d(geoms)
    try:
        stored = _geometry_array_1d(to_storage(arr, crs))
    except CrsError:  # some cannot be transformed: each on its own
        stored = np.array([_transformed_or_none(g, crs) for g in arr], dtype=object)
    b = shapely.bounds(stored)
    box = _expanded(bounds, margin_km)
    return np.isfinite(b).all(axis=1) & _boxes_intersect(b[:, 0], b[:, 1], b[:, 2], b[:, 3], box)


def _transformed_or_none(geom: Any, crs: CrsSpec) -> Any:
    try:
        return to_storage(geom, crs)
    except CrsError:
        return None


def gauss_kruger_candidates(x: np.ndarray, bounds: Bounds) -> list[int]:
    """The CGCS2000 Gauss-Krüger CRSs (EPSG codes) eastings `x` may be in near `bounds`: the zone an 8-digit
    easting names by its prefix (3° zones 25-45, 6° zones 13-23), else the central meridians within a zone of the
    bounds' centre (3° and 6°)."""
    x = x[np.isfinite(x)]
    if not len(x):
        return []
    zone = int(np.median(x) // 1_000_000)
    if zone >= 10:
        return [4513 + zone - 25] if 25 <= zone <= 45 else [4491 + zone - 13] if 13 <= zone <= 23 else []
    lon = (bounds[0] + bounds[2]) / 2.0
    three = [4534 + (cm - 75) // 3 for cm in range(75, 136, 3) if abs(cm - lon) <= 3.0]
    six = [4502 + (cm - 75) // 6 for cm in range(75, 136, 6) if abs(cm - lon) <= 6.0]
    return three + six


def fitting_crs(x: np.ndarray, y: np.ndarray, bounds: Bounds, *, margin_km: float = DEFAULT_MARGIN_KM,
                sample: int = 200) -> list[tuple[int, bool]]:
    """The Gauss-Krüger CRSs (`gauss_kruger_candidates`) that put every point (up to `sample` of them) inside
    `bounds`, each as (EPSG code, whether the points are in survey order, northing first)."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok][:sample], y[ok][:sample]
    box = _expanded(bounds, margin_km)
    found = []
    for swapped, (a, b) in ((False, (x, y)), (True, (y, x))):
        for code in gauss_kruger_candidates(a, bounds):
            if len(a) and _inside(_crs(code), a, b, box).all():
                found.append((code, swapped))
    return found


def crs_hint(x: np.ndarray, y: np.ndarray, bounds: Bounds) -> str | None:
    """A bilingual hint naming the CRS the coordinates fit (`fitting_crs`), or None."""
    found = fitting_crs(x, y, bounds)
    if not found:
        return None
    names = [f"EPSG:{code} ({_crs(code).name}{', X 为北坐标 X is the northing' if swapped else ''})"
             for code, swapped in found]
    return "坐标符合 the coordinates fit " + " / ".join(names)


def _geometry_array_1d(geoms: Any) -> np.ndarray:
    arr, single = _geometry_input(geoms)
    return np.array([arr], dtype=object) if single else arr.ravel()


def _extent_flags(geoms: Any, bounds: Bounds, margin_km: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    b = shapely.bounds(
        _geometry_array_1d(geoms)
    )  # NaN for None/empty: those compare False and are left to other validators
    minx, miny, maxx, maxy = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    known = np.isfinite(b).all(axis=1)
    box = _expanded(bounds, margin_km)
    ok = _boxes_intersect(minx, miny, maxx, maxy, box)
    swapped = known & ~ok & _boxes_intersect(miny, minx, maxy, maxx, box)
    outside = known & ~ok & ~swapped
    return swapped, outside, b


def check_extent(
    geoms_in_storage: Any, *, bounds: Bounds = CHINA_BOUNDS, margin_km: float = DEFAULT_MARGIN_KM
) -> ExtentCheck:
    """Find features (in lon/lat storage coordinates) that look lat/lon-swapped or lie far outside ``bounds``.

    A feature is fine when its bounding box meets ``bounds`` widened by ``margin_km``; otherwise it is
    *swapped* when its bounding box with x and y exchanged meets the widened bounds, else *outside*.
    Null and empty geometries are in neither list. Use :data:`CHINA_BOUNDS` when no district extent is known.

    Returns
    -------
    ExtentCheck
        ``(swapped, outside)``: sorted positional indices (0-based) into ``geoms_in_storage``.
    """
    swapped, outside, _ = _extent_flags(geoms_in_storage, bounds, margin_km)
    return ExtentCheck(swapped=np.flatnonzero(swapped), outside=np.flatnonzero(outside))


def as_bounds(values: Any) -> Bounds:
    """(minx, miny, maxx, maxy) as floats from any four numbers (a database row, shapely's bounds)."""
    minx, miny, maxx, maxy = (float(v) for v in values)
    return minx, miny, maxx, maxy


def _fmt(v: float) -> str:
    return repr(round(float(v), 6))


def extent_problems(
    geoms: Any,
    *,
    bounds: Bounds = CHINA_BOUNDS,
    margin_km: float = DEFAULT_MARGIN_KM,
    field: str = "geometry",
) -> list[tuple[int, str]]:
    """Importer-ready ``(row_index, message)`` pairs for swapped or out-of-extent features.

    ``row_index`` is the 0-based position in ``geoms``; the bilingual message names the 1-based data row,
    the field and the feature's first vertex, e.g.
    ``"第3行 geometry: 经纬度疑似颠倒 latitude/longitude look swapped (x=29.8, y=121.5)"``.
    """
    swapped, outside, b = _extent_flags(geoms, bounds, margin_km)
    flagged = np.flatnonzero(swapped | outside)
    if flagged.size == 0:
        return []
    coords, owner = shapely.get_coordinates(_geometry_array_1d(geoms)[flagged], return_index=True)
    _, first = np.unique(owner, return_index=True)
    fx, fy = coords[first, 0], coords[first, 1]

    # Rough distance (km) from each flagged bounding box to the expected extent.
    bx0, by0, bx1, by1 = (float(v) for v in bounds)
    fb = b[flagged]
    gap_x = np.maximum.reduce([bx0 - fb[:, 2], fb[:, 0] - bx1, np.zeros(len(flagged))])
    gap_y = np.maximum.reduce([by0 - fb[:, 3], fb[:, 1] - by1, np.zeros(len(flagged))])
    coslat = np.cos(np.radians(np.clip((by0 + by1) / 2.0, -89.0, 89.0)))
    gap_km = np.hypot(gap_x * _KM_PER_DEG_LON_EQUATOR * coslat, gap_y * _KM_PER_DEG_LAT)
    not_lonlat = (np.abs(fb[:, [0, 2]]) > 180.0).any(axis=1) | (np.abs(fb[:, [1, 3]]) > 90.0).any(axis=1)

    problems: list[tuple[int, str]] = []
    for k, row in enumerate(flagged.tolist()):  # one message per flagged row: formatting only
        where = f"(x={_fmt(fx[k])}, y={_fmt(fy[k])})"
        if swapped[row]:
            text = f"经纬度疑似颠倒 latitude/longitude look swapped {where}"
        elif not_lonlat[k]:
            text = (
                f"坐标不是经纬度, 请指定坐标系 coordinates are not longitude/latitude, "
                f"give their CRS (e.g. EPSG:4549) {where}"
            )
        else:
            text = (
                f"超出预期范围约 {gap_km[k]:.0f} 公里 outside the expected extent by about "
                f"{gap_km[k]:.0f} km {where}"
            )
        problems.append((row, f"第{row + 1}行 {field}: {text}"))
    return problems


# ---------------------------------------------------------------------------------------------------------
# Local metric CRSs
# ---------------------------------------------------------------------------------------------------------

_GK3_FIRST_EPSG, _GK3_FIRST_CM, _GK3_LAST_CM = 4534, 75, 135  # CGCS2000 / 3-degree Gauss-Kruger CM 75E..135E


def local_metric_crs(lon: float, lat: float, *, kind: Literal["utm", "gk3"] = "utm") -> pyproj.CRS:
    """The metric CRS for a lon/lat point.

    ``kind="utm"``: the WGS84 UTM zone (EPSG:326xx north, 327xx south).
    ``kind="gk3"``: the CGCS2000 3-degree Gauss-Krüger zone by central meridian (EPSG:4534..4554, CM 75E..135E).
    """
    lon, lat = float(lon), float(lat)
    if not (math.isfinite(lon) and math.isfinite(lat) and -180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise CrsError(f"不是有效的经纬度 not a valid longitude/latitude (x={lon}, y={lat})")
    if kind == "utm":
        zone = min(int((lon + 180.0) // 6.0) + 1, 60)
        return _crs((32600 if lat >= 0.0 else 32700) + zone)
    if kind == "gk3":
        cm = 3 * math.floor(lon / 3.0 + 0.5)
        if not _GK3_FIRST_CM <= cm <= _GK3_LAST_CM:
            raise CrsError(
                f"超出 CGCS2000 三度带范围 longitude {lon} is outside the CGCS2000 3-degree Gauss-Krüger zones (75E-135E)"
            )
        return _crs(_GK3_FIRST_EPSG + (cm - _GK3_FIRST_CM) // 3)
    raise ValueError(f"未知的投影类型 unknown kind {kind!r}: expected 'utm' or 'gk3'")


def metric_crs_for_bounds(bounds: npt.ArrayLike, *, kind: Literal["utm", "gk3"] = "utm") -> pyproj.CRS:
    """The metric CRS (see :func:`local_metric_crs`) for the centre of a lon/lat box ``(minx, miny, maxx, maxy)``."""
    minx, miny, maxx, maxy = (float(v) for v in np.asarray(bounds, dtype=np.float64).ravel()[:4])
    if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)):
        raise ValueError(f"没有可投影的几何 no geometries to project (bounds {bounds!r})")
    return local_metric_crs((minx + maxx) / 2.0, (miny + maxy) / 2.0, kind=kind)


def _lonlat_bounds(total_bounds: np.ndarray, src: pyproj.CRS) -> np.ndarray:
    transformer = cached_transformer(src, _crs(4326))
    return total_bounds if transformer is None else np.asarray(transformer.transform_bounds(*total_bounds))


def project_local(
    data: Any,
    *,
    crs_from: CrsSpec | pyproj.CRS | str | int = STORAGE_EPSG,
    kind: Literal["utm", "gk3"] = "utm",
) -> tuple[Any, pyproj.CRS]:
    """Project data to the local metric CRS picked from the centre of its total bounds.

    Parameters
    ----------
    data : GeoDataFrame, GeoSeries or array_like of shapely geometries
        A frame or series uses its own ``crs`` when set; otherwise (and for arrays) ``crs_from`` applies.
    crs_from : CrsSpec, pyproj.CRS, str or int
        The CRS of ``data`` when it carries none (default: the storage CRS, EPSG:4490).
    kind : {"utm", "gk3"}
        Which family of metric CRS to use (see :func:`local_metric_crs`).

    Returns
    -------
    (projected, crs)
        ``projected`` is of the same type as ``data`` (frames keep their index); ``crs`` is the metric CRS.
    """
    import geopandas as gpd  # noqa: PLC0415 (lazily: the rest of this module needs shapely and pyproj)

    own = getattr(data, "crs", None)
    spec = parse_crs(own if own is not None else crs_from)
    is_frame = isinstance(data, gpd.GeoSeries | gpd.GeoDataFrame)
    if spec.shift is not None:  # GCJ-02/BD-09 (only possible via crs_from): unshift to the storage CRS first
        stored = to_storage(data, spec)
        if is_frame:
            data = _with_geometry(data, stored, crs=STORAGE_EPSG)
        else:
            data = stored
        spec = parse_crs(STORAGE_EPSG)
    src = spec.pyproj_crs
    if is_frame:
        if data.crs is None:
            data = data.set_crs(src)
        total = np.asarray(data.total_bounds, dtype=np.float64)
    else:
        data = _geometry_array_1d(data)
        b = shapely.bounds(data)
        b = b[np.isfinite(b).all(axis=1)]
        total = np.array([*b[:, :2].min(axis=0), *b[:, 2:].max(axis=0)]) if len(b) else np.full(4, np.nan)
    if not np.isfinite(total).all():
        raise ValueError("没有可投影的几何 no geometries to project")
    crs = metric_crs_for_bounds(_lonlat_bounds(total, src), kind=kind)
    if is_frame:
        return data.to_crs(crs), crs
    transformer = cached_transformer(src, crs)
    projected = data if transformer is None else transform_xy(data, transformer.transform)
    return np.asarray(projected, dtype=object), crs


def _with_geometry(data: Any, geoms: np.ndarray, *, crs: int) -> Any:
    """A copy of a GeoSeries/GeoDataFrame with its (active) geometry replaced and its CRS set."""
    import geopandas as gpd  # noqa: PLC0415 (lazily: the rest of this module needs shapely and pyproj)

    if isinstance(data, gpd.GeoDataFrame):
        out = data.copy()
        out[out.geometry.name] = gpd.GeoSeries(geoms, index=out.index)
        return out.set_crs(crs, allow_override=True)
    return gpd.GeoSeries(geoms, index=data.index, name=data.name, crs=crs)
