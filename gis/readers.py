"""Reading source files (GeoJSON, GeoPackage, Shapefile, KML, DXF, CSV, XLSX) into raw attributes and geometries."""

from __future__ import annotations

import codecs
import csv
import json
import re
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
import shapely
from charset_normalizer import from_bytes

from gis import limits
from gis.config import limit_settings
from gis.coords import Bounds, CrsSpec, in_survey_order
from gis.layers import LAYERS, Layer
from gis.spreadsheet_safety import csv_unquote

if TYPE_CHECKING:
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

__all__ = [
    "CAD_LAYER_NAMES",
    "FIELDNAMES_SUFFIX",
    "GEOMETRY_COLUMN_NAMES",
    "ReadError",
    "Source",
    "cad_layer_target",
    "detect_encoding",
    "read_source",
]

#: Sidecar written next to an exported shapefile: {"short dbf name": "full column name"} (DBF names are <= 10 bytes).
FIELDNAMES_SUFFIX = ".fieldnames.json"

#: CAD layer names (upper-cased, without spaces, '-', '_') that planners use for each firelane layer; a DXF layer
#: maps to the firelane layer whose longest name it contains (so 违章建筑 is illegal_structures, not buildings).
CAD_LAYER_NAMES: dict[str, tuple[str, ...]] = {
    "streets": ("街道", "STREET", "JD"),
    "compounds": ("小区", "用地红线", "红线", "小区边界", "COMPOUND", "BOUNDARY", "XQ"),
    "buildings": ("建筑", "建筑轮廓", "楼栋", "房屋", "BUILDING", "BLDG", "JZ"),
    "fire_lanes": ("消防车道", "FIRELANE", "FIRE_LANE", "XFCD"),
    "aerial_areas": ("登高场地", "登高操作场地", "消防登高", "AERIAL", "DGCD"),
    "hydrants": ("消火栓", "消防栓", "HYDRANT", "XHS"),
    "entrances": ("出入口", "大门", "ENTRANCE", "CRK"),
    "roads": ("道路", "道路中心线", "ROAD", "DL"),
    "obstructions": ("障碍物", "堵塞物", "占用", "OBSTRUCTION"),
    "illegal_structures": ("违建", "违章建筑", "违法建筑", "ILLEGAL", "WJ"),
    "parking": ("停车", "车位", "PARKING", "TCW"),
    "ebike_sites": ("电动车", "电动自行车", "非机动车", "EBIKE"),
}

#: CAD layer names (upper-cased) of centre lines: closed polylines there stay lines (a ring road), not outlines.
CENTRE_LINE_CAD_NAMES: tuple[str, ...] = ("中心线", "CENTERLINE", "CENTRELINE", "CENTER_LINE", "CENTRE_LINE", "ZXX")

# Column names (lower-case) that hold geometry in CSV/XLSX files.
_WKT_NAMES = ("wkt", "geometry", "geom", "the_geom", "shape", "几何", "几何图形", "坐标串")
_LON_NAMES = ("lon", "lng", "long", "longitude", "经度", "x_wgs84", "lon_wgs84")
_LAT_NAMES = ("lat", "latitude", "纬度", "y_wgs84", "lat_wgs84")
_X_NAMES = ("x", "easting", "x坐标", "东坐标")
_Y_NAMES = ("y", "northing", "y坐标", "北坐标")
#: Every column name that CSV/XLSX reading takes as geometry (lower case).
GEOMETRY_COLUMN_NAMES = (*_WKT_NAMES, *_LON_NAMES, *_LAT_NAMES, *_X_NAMES, *_Y_NAMES)

# Columns that GDAL's KML drivers add to every placemark; dropped when they carry nothing.
_KML_AUX = ("id", "description", "timestamp", "begin", "end", "altitudeMode", "tessellate", "extrude",
            "visibility", "drawOrder", "icon", "snippet")
_KML_AUX_DEFAULTS = {"tessellate": -1, "extrude": 0, "visibility": -1}

_VECTOR_EXT = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GPKG", ".shp": "ESRI Shapefile",
               ".kml": "KML", ".kmz": "KML", ".dxf": "DXF", ".fgb": "FlatGeobuf", ".gml": "GML"}
_GEOM_SUFFIX = re.compile(r"_(points?|lines?|polygons?)$", re.IGNORECASE)
_ARROW_INTS = {t: d for t, d in ((pa.int8(), pd.Int8Dtype()), (pa.int16(), pd.Int16Dtype()),
                                 (pa.int32(), pd.Int32Dtype()), (pa.int64(), pd.Int64Dtype()),
                                 (pa.uint8(), pd.UInt8Dtype()), (pa.uint16(), pd.UInt16Dtype()),
                                 (pa.uint32(), pd.UInt32Dtype()), (pa.uint64(), pd.UInt64Dtype()))}


class ReadError(ValueError):
    """A file that cannot be read at all (messages are "中文 English").

    `problems` lists (data row 1-based, field, message) when the reason lies in particular cells.
    """

    def __init__(self, message: str, problems: list[tuple[int | None, str | None, str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


@dataclass
class Source:
    """What a file holds, before any validation: raw attribute columns and one geometry (or None) per row."""

    path: Path
    format: str
    frame: pd.DataFrame
    geometry: np.ndarray
    crs: str | None = None
    #: a file without CRS may be taken as WGS84 lon/lat (GeoJSON, KML, CSV/XLSX coordinates)
    lonlat_default: bool = False
    #: row position -> bilingual reason why that row's geometry could not be read
    geometry_errors: dict[int, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    source_layer: str | None = None
    #: DBF limit on column names (shapefiles without our sidecar): truncated names of declared fields still match
    name_limit: int | None = None
    #: the rows' WKB, not yet parsed (`read_source(defer_geometry=True)`): `geometry` is empty until `parse()`
    wkb: np.ndarray | None = None
    #: rows whose point came from columns named only x / y (X坐标 / Y坐标): which axis is north depends on the
    #: convention (a Chinese survey puts the northing in X), settled once the CRS is known (`survey_order`)
    plain_xy: np.ndarray | None = None

    @property
    def rows(self) -> int:
        """How many features (rows) the file holds, parsed or not."""
        return len(self.wkb) if self.wkb is not None else len(self.geometry)

    def parse(self) -> Source:
        """Parse deferred WKB into `geometry` and `geometry_errors` (once; a no-op when already parsed)."""
        if self.wkb is not None:
            self.geometry, self.geometry_errors = parse_wkb(self.wkb)
            self.wkb = None
        return self


def read_source(path: str | Path, *, layer: Layer | None = None, source_layer: str | None = None,
                defer_geometry: bool = False) -> Source:
    """Read a GeoJSON / GeoPackage / Shapefile (.shp, .zip, folder) / KML / DXF / CSV / XLSX file.

    `layer` (the target firelane layer) picks the matching layers of multi-layer files and the CAD layers of a
    DXF; `source_layer` names a layer (GeoPackage, shapefile set), CAD layer (DXF) or sheet (XLSX) explicitly.
    `defer_geometry` leaves the WKB of GDAL-read formats unparsed (`Source.wkb`), for a caller that parses it
    chunk by chunk (`parse_wkb`) or calls `Source.parse()`; other formats come parsed either way.
    Raises ReadError for files that cannot be read at all.
    """
    path = Path(path)
    if not path.exists():
        raise ReadError(f"文件不存在 file not found: {path}")
    suffix = path.suffix.lower()
    try:
        limits.check_file(path)
        if path.is_file() and zipfile.is_zipfile(path):
            limits.check_archive(path)
        if suffix in (".csv", ".txt", ".tsv"):
            return _read_csv(path)
        if suffix in (".xlsx", ".xlsm"):
            try:
                return _read_xlsx(path, sheet=source_layer)
            except (ElementTree.ParseError, KeyError, IndexError, TypeError, AttributeError) as exc:
                # malformed or hostile XML parts (DTDs, entities: defusedxml refuses them)
                raise ReadError(f"无法读取工作簿 cannot read the workbook {path.name}: "
                                f"{type(exc).__name__}: {exc}") from exc
        if suffix == ".xls":
            raise ReadError("不支持旧版 .xls 文件, 请另存为 .xlsx legacy .xls is not supported: save it as .xlsx")
        if suffix == ".dxf":
            return _read_dxf(path, layer=layer, cad_layer=source_layer)
        return _read_vector(path, layer=layer, source_layer=source_layer, defer_geometry=defer_geometry)
    except ReadError:
        raise
    except limits.LimitExceeded as exc:
        raise ReadError(str(exc)) from exc
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise ReadError(f"无法读取文件 cannot read {path.name}: {exc}") from exc
    except (OSError, ValueError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise ReadError(f"无法读取文件 cannot read {path.name}: {exc}") from exc


# --- GDAL vector formats ------------------------------------------------------------------------------------------


@contextmanager
def _gdal_config(**options: str | None) -> Iterator[None]:
    old = {k: pyogrio.get_gdal_config_option(k) for k in options}
    pyogrio.set_gdal_config_options(options)
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options(old)


def _gdal_path(path: Path) -> str:
    """GDAL's path: a .zip opens at the folder holding its shapefiles (or at its one other vector file)."""
    if path.suffix.lower() != ".zip":
        return str(path)
    with zipfile.ZipFile(path) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
    shp_dirs = {str(Path(n).parent) for n in names if n.lower().endswith(".shp")}
    if len(shp_dirs) == 1:
        folder = shp_dirs.pop()
        return f"/vsizip/{path}" + ("" if folder == "." else f"/{folder}")
    others = [n for n in names if Path(n).suffix.lower() in (".gpkg", ".geojson", ".json", ".kml")]
    if not shp_dirs and len(others) == 1:
        return f"/vsizip/{path}/{others[0]}"
    return f"/vsizip/{path}"


def _format_of(path: Path) -> str:
    if path.is_dir():
        return "ESRI Shapefile"
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as zf:
            exts = {Path(n).suffix.lower() for n in zf.namelist()}
        for ext in (".shp", ".gpkg", ".geojson", ".json", ".kml"):
            if ext in exts:
                return _VECTOR_EXT[ext]
        raise ReadError(f"压缩包中没有可读的矢量文件 no shapefile or other vector file inside {path.name}")
    return _VECTOR_EXT.get(path.suffix.lower(), path.suffix.lstrip(".").upper() or "vector")


def _pick_layers(available: list[str], *, layer: Layer | None, source_layer: str | None, path: Path) -> list[str]:
    if source_layer is not None:
        for name in available:
            if name.lower() == source_layer.lower():
                return [name]
        raise ReadError(f"文件中没有图层 {source_layer!r} no layer {source_layer!r} in {path.name}; "
                        f"layers: {', '.join(available)}")
    if len(available) == 1:
        return available
    if layer is not None:
        matching = [n for n in available
                    if _GEOM_SUFFIX.sub("", n).lower() in (layer.name, layer.label_zh.lower(), layer.label_en.lower())]
        if matching:
            return matching
    raise ReadError(f"文件有多个图层, 请用 --source-layer 指定 {path.name} has several layers, "
                    f"give --source-layer: {', '.join(available)}")


def _arrow_frame(table: pa.Table) -> pd.DataFrame:
    """Attributes as pandas, integer columns as nullable ints (never 12.0 for an int with gaps)."""
    return table.to_pandas(types_mapper=_ARROW_INTS.get, date_as_object=True)


def parse_wkb(wkb: np.ndarray) -> tuple[np.ndarray, dict[int, str]]:
    """Parse WKB; rows GEOS refuses (unclosed rings, too few points) become None with a reason (by position)."""
    geoms = shapely.from_wkb(wkb, on_invalid="ignore")
    bad = np.flatnonzero(pd.notna(wkb) & pd.isna(geoms))
    errors: dict[int, str] = {}
    if bad.size:
        fixed = shapely.from_wkb(wkb[bad], on_invalid="fix")
        for i, f in zip(bad.tolist(), fixed, strict=True):
            errors[i] = (_UNCLOSED if f is not None else
                         "几何无法解析 geometry cannot be parsed")
    return geoms, errors


_UNCLOSED = "几何无效: 环未闭合或点数不足 invalid geometry: ring not closed or too few points (never repaired silently)"


#: Features per Arrow batch of a GDAL read: the row limit is checked after each one.
_GDAL_BATCH_ROWS = 65_536


def _read_layer_arrow(gdal_path: str, name: str, *, encoding: str | None = None) -> tuple[dict, pd.DataFrame, np.ndarray]:
    """One layer as attributes and WKB, streamed in Arrow batches: reading stops at the batch that crosses the
    row limit, whatever feature count the file declares (or does not: GML, DXF), so memory follows the limit."""
    row_limit = limit_settings().rows
    batches: list[pa.RecordBatch] = []
    rows = 0
    batch_size = min(_GDAL_BATCH_ROWS, row_limit + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pyogrio.open_arrow(gdal_path, layer=name, encoding=encoding, use_pyarrow=True,
                                batch_size=batch_size) as (meta, reader):
            for batch in reader:
                rows += batch.num_rows
                # a full batch may not be the last: the file holds at least `rows`
                limits.check_rows(rows, f"要素数 features in {name}" + (" (至少 at least)" if batch.num_rows
                                                                     == batch_size else ""))
                batches.append(batch)
            table = pa.Table.from_batches(batches, schema=reader.schema)
    gcol = meta.get("geometry_name") or "wkb_geometry"
    if gcol in table.column_names:
        wkb = table.column(gcol).to_numpy(zero_copy_only=False)
        table = table.drop_columns([gcol])
    else:  # a table without geometry
        wkb = np.full(table.num_rows, None, dtype=object)
    return meta, _arrow_frame(table), np.asarray(wkb, dtype=object)


def _shapefile_sidecars(path: Path, layer_name: str) -> dict[str, bytes | None]:
    """The .dbf bytes and whether a .cpg exists for one shapefile of a folder, .shp or .zip."""
    wanted = {f"{layer_name}.dbf".lower(): "dbf", f"{layer_name}.cpg".lower(): "cpg"}
    found: dict[str, bytes | None] = {"dbf": None, "cpg": None}
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as zf:
            for n in zf.namelist():
                key = wanted.get(Path(n).name.lower())
                if key:
                    with zf.open(n) as f:
                        found[key] = f.read(_DBF_SAMPLE)
        return found
    folder = path if path.is_dir() else path.parent
    for p in folder.iterdir():
        key = wanted.get(p.name.lower())
        if key:
            with p.open("rb") as f:
                found[key] = f.read(_DBF_SAMPLE)
    return found


#: How much of a .dbf the encoding guess reads (header, field names and the first records).
_DBF_SAMPLE = 8 * 1024 * 1024


def _shapefile_encoding(path: Path, layer_name: str) -> str | None:
    """The DBF's text encoding when neither a .cpg nor the DBF's language byte tells GDAL (else None).

    Chinese shapefiles without .cpg are usually GBK: UTF-8 is tried first, then GB18030 (a superset of GBK).
    """
    files = _shapefile_sidecars(path, layer_name)
    dbf = files["dbf"]
    if files["cpg"] is not None or dbf is None or len(dbf) < 32 or dbf[29] != 0:
        return None
    header = int.from_bytes(dbf[8:10], "little")
    names = b"".join(dbf[i:i + 11] for i in range(32, max(header - 1, 32), 32))
    text = names + dbf[header:]
    if text.isascii():
        return None
    for encoding in ("UTF-8", "GB18030"):
        try:  # the sample may end inside a character: an incremental decoder does not call that an error
            codecs.getincrementaldecoder(encoding)().decode(text, final=len(dbf) < _DBF_SAMPLE)
            return encoding
        except UnicodeDecodeError:
            continue
    return None


def _shapefile_names(path: Path, layer_name: str) -> dict[str, str] | None:
    """The {short: full} column names our exporter stored beside a shapefile (folder, .shp or .zip)."""
    target = f"{layer_name}{FIELDNAMES_SUFFIX}".lower()
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as zf:
            for n in zf.namelist():
                if Path(n).name.lower() == target:
                    return json.loads(zf.read(n).decode("utf-8"))
        return None
    folder = path if path.is_dir() else path.parent
    for p in folder.glob(f"*{FIELDNAMES_SUFFIX}"):
        if p.name.lower() == target:
            return json.loads(p.read_text(encoding="utf-8"))
    return None


def _read_vector(path: Path, *, layer: Layer | None, source_layer: str | None, defer_geometry: bool = False) -> Source:
    fmt = _format_of(path)
    gdal_path = _gdal_path(path)
    available = [str(n) for n, _ in pyogrio.list_layers(gdal_path)]
    if not available:
        raise ReadError(f"文件中没有图层 no layers in {path.name}")
    chosen = _pick_layers(available, layer=layer, source_layer=source_layer, path=path)
    frames, wkbs, crss, notes = [], [], [], []
    name_limit = None
    for name in chosen:
        info = pyogrio.read_info(gdal_path, layer=name)
        limits.check_rows(int(info.get("features") or 0), f"要素数 features in {name}")
        limits.check_columns(len(info.get("fields", ())), f"字段数 fields in {name}")
        encoding = _shapefile_encoding(path, name) if fmt == "ESRI Shapefile" else None
        if encoding and encoding != "UTF-8":
            notes.append(f"shapefile 无 .cpg, 按 {encoding} 读取 no .cpg beside {name}.dbf: read as {encoding}")
        meta, frame, wkb = _read_layer_arrow(gdal_path, name, encoding=encoding)
        if fmt == "ESRI Shapefile":
            names = _shapefile_names(path, name)
            if names:
                frame = frame.rename(columns=names)
            else:
                name_limit = 10
        if fmt == "KML":
            frame = _drop_kml_aux(frame)
        frames.append(frame)
        wkbs.append(wkb)
        crss.append(meta.get("crs"))
    if len({c for c in crss}) > 1:
        raise ReadError(f"各图层坐标系不同 the layers {', '.join(chosen)} have different CRSs: {crss}")
    if len(chosen) > 1:
        notes.append(f"合并图层 merged layers {', '.join(chosen)}")
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    source = Source(path=path, format=fmt, frame=frame.reset_index(drop=True), geometry=np.empty(0, dtype=object),
                    crs=crss[0], lonlat_default=fmt in ("GeoJSON", "KML"), notes=notes,
                    source_layer=chosen[0] if len(chosen) == 1 else None, name_limit=name_limit,
                    wkb=np.concatenate(wkbs) if len(wkbs) > 1 else wkbs[0])
    return source if defer_geometry else source.parse()


def _drop_kml_aux(frame: pd.DataFrame) -> pd.DataFrame:
    drop = []
    for col in _KML_AUX:
        if col not in frame.columns:
            continue
        s = frame[col]
        default = _KML_AUX_DEFAULTS.get(col)
        empty = s.isna() | (s.astype(object) == default) if default is not None else s.isna()
        if col == "id" or bool(empty.all()):
            drop.append(col)
    return frame.drop(columns=drop)


# --- DXF (planners' CAD drawings) ---------------------------------------------------------------------------------


def _cad_key(name: str) -> str:
    return re.sub(r"[\s\-_.]+", "", str(name)).upper()


def cad_layer_target(cad_layer: str) -> str | None:
    """The firelane layer a CAD layer name stands for (longest known name it contains), or None."""
    key = _cad_key(cad_layer)
    best, best_len = None, 0
    for target, names in CAD_LAYER_NAMES.items():
        layer = LAYERS[target]
        for n in (*names, target, layer.label_zh, layer.label_en):
            k = _cad_key(n)
            if not k:
                continue
            exact = key == k
            if (exact or (len(k) >= 3 and k in key) or (len(k) >= 2 and not k.isascii() and k in key)) \
                    and (len(k) + (100 if exact else 0)) > best_len:
                best, best_len = target, len(k) + (100 if exact else 0)
    return best


def _dxf_encoding(path: Path) -> str | None:
    """DXF R2007+ (AC1021 and later) is UTF-8 whatever $DWGCODEPAGE says; older files use the code page."""
    head = path.open("rb").read(20000)
    m = re.search(rb"\$ACADVER\s*\r?\n\s*1\s*\r?\n\s*AC(\d{4})", head)
    if m and int(m.group(1)) >= 1021:
        return "UTF-8"
    return None


def _read_dxf(path: Path, *, layer: Layer | None, cad_layer: str | None) -> Source:
    with _gdal_config(DXF_ENCODING=_dxf_encoding(path)):
        meta, frame, wkb = _read_layer_arrow(str(path), "entities")
    geoms, errors = parse_wkb(wkb)
    cad = frame["Layer"].astype(object).where(frame["Layer"].notna(), "0").astype(str).to_numpy(dtype=object)
    keep = np.ones(len(frame), dtype=bool)
    if "PaperSpace" in frame.columns:  # layout sheets (title blocks, legends) are not the drawing
        keep &= ~frame["PaperSpace"].fillna(False).astype(bool).to_numpy()
    if "SubClasses" in frame.columns:  # labels are annotations, not features
        sub = frame["SubClasses"].fillna("").astype(str)
        keep &= ~sub.str.contains("AcDbText|AcDbMText|AcDbAttribute", regex=True).to_numpy()
    in_use = list(dict.fromkeys(cad[keep].tolist()))
    notes = []
    if cad_layer is not None:
        wanted = {c for c in in_use if c.lower() == cad_layer.lower()}
        if not wanted:
            raise ReadError(f"DXF 中没有图层 {cad_layer!r} no CAD layer {cad_layer!r}; layers: {', '.join(in_use)}")
    elif layer is not None:
        wanted = {c for c in in_use if cad_layer_target(c) == layer.name}
        if not wanted:
            if len(in_use) == 1:
                wanted = set(in_use)
            else:
                mapped = ", ".join(f"{c}→{cad_layer_target(c) or '?'}" for c in in_use)
                raise ReadError(
                    f"DXF 中没有对应 {layer.name} 的图层, 请用 --source-layer 指定 no CAD layer maps to "
                    f"{layer.name}; give --source-layer (layers: {mapped})")
    else:
        wanted = set(in_use)
    keep &= np.isin(cad, list(wanted))
    notes.append(f"CAD 图层 CAD layers: {', '.join(sorted(wanted))}")
    idx = np.flatnonzero(keep)
    geoms = shapely.force_2d(geoms[idx])
    if layer is not None and "Polygon" in layer.accepted_geometries:
        # a closed polyline is an outline (a road surface on the roads layer), except on a centre-line CAD layer
        # (a ring road's centre line closes on itself)
        centre = pd.Series(cad[idx], dtype=object).astype(str).str.upper().str.contains(
            "|".join(CENTRE_LINE_CAD_NAMES), regex=True).to_numpy(dtype=bool)
        outline = ~centre
        geoms[outline] = _closed_lines_as_polygons(geoms[outline])
    out = pd.DataFrame({"cad_layer": cad[idx]})
    errors = {int(np.searchsorted(idx, i)): m for i, m in errors.items() if keep[i]}
    return Source(path=path, format="DXF", frame=out, geometry=geoms, crs=meta.get("crs"), lonlat_default=False,
                  geometry_errors=errors, notes=notes, source_layer=None)


def _closed_lines_as_polygons(geoms: np.ndarray) -> np.ndarray:
    """Closed polylines (LWPOLYLINE with the closed flag, or ending where they start) become polygons."""
    is_line = shapely.get_type_id(geoms) == shapely.GeometryType.LINESTRING
    closed = np.zeros(len(geoms), dtype=bool)
    closed[is_line] = shapely.is_closed(geoms[is_line]) & (shapely.get_num_coordinates(geoms[is_line]) >= 4)
    out = geoms.copy()
    if closed.any():
        out[closed] = shapely.polygons(shapely.linearrings(shapely.get_coordinates(geoms[closed]),
                                                           indices=_owner(geoms[closed])))
    return out


def _owner(geoms: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(geoms)), shapely.get_num_coordinates(geoms))


# --- CSV / XLSX with coordinate columns ---------------------------------------------------------------------------


def detect_encoding(data: bytes) -> str:
    """The text encoding of a CSV: UTF-8 (with or without BOM) when it decodes, else charset-normalizer's guess.

    Chinese guesses (GBK, GB2312) are widened to GB18030, their superset.
    """
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        return _guess_encoding(data[:_ENCODING_SAMPLE_BYTES])


#: How much of a text file that is not UTF-8 charset-normalizer looks at.
_ENCODING_SAMPLE_BYTES = 1_000_000


def _guess_encoding(sample: bytes) -> str:
    """charset-normalizer's guess on whole lines of `sample`, GBK-family guesses widened to GB18030."""
    cut = sample.rfind(b"\n")
    best = from_bytes(sample[: cut + 1] if cut > 0 else sample).best()
    if best is None:
        raise ReadError("无法识别文件编码 cannot detect the file's text encoding (save it as UTF-8)")
    enc = best.encoding.lower().replace("-", "_")
    if enc in ("gbk", "gb2312", "hz", "cp936", "gb18030", "big5", "big5hkscs", "euc_jp"):
        # CJK guesses on Chinese government data are nearly always GBK-family.
        return "gb18030" if enc not in ("big5", "big5hkscs") else best.encoding
    return best.encoding


def _file_encoding(path: Path, block: int = 1 << 20) -> str:
    """`detect_encoding` of a file without reading it whole: UTF-8 is validated block by block, any other
    encoding guessed from the first `_ENCODING_SAMPLE_BYTES`."""
    with path.open("rb") as f:
        head = f.read(max(block, _ENCODING_SAMPLE_BYTES))
        if head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            chunk = head
            while chunk:
                decoder.decode(chunk)
                chunk = f.read(block)
            decoder.decode(b"", final=True)
            return "utf-8"
        except UnicodeDecodeError:
            return _guess_encoding(head[:_ENCODING_SAMPLE_BYTES])


#: CSVs larger than this are scanned for NUL bytes before they are read (a binary file is refused at its first).
_NUL_SCAN_BYTES = 1 << 20
#: Rows of a CSV parsed at a time (the row limit is checked after each chunk).
_CSV_CHUNK_ROWS = 50_000
#: Longest CSV header line read (characters).
_CSV_HEADER_CHARS = 8 << 20


def _nul_cell(path: Path, line: int, offset: int) -> tuple[int, str | None]:
    """(data row, column name) of the NUL at `offset` on `line`: only the header and that line's start are read."""
    with path.open("rb") as f:
        header = f.readline(1 << 20).decode("utf-8", "replace").lstrip("\ufeff").rstrip("\r\n")
        if line <= 1:
            return 1, None
        f.seek(max(0, offset - (1 << 20)))
        before = f.read(offset - f.tell())
    start = before.rfind(b"\n") + 1
    prefix = before[start:].decode("utf-8", "replace")
    sep = _sniff_separator(header)
    names = next(csv.reader([header], delimiter=sep), [])
    index = len(next(csv.reader([prefix + "x"], delimiter=sep), [""])) - 1
    return line - 1, names[index] if index < len(names) else None


def _sniff_separator(first_line: str) -> str:
    counts = {sep: first_line.count(sep) for sep in (",", "\t", ";", "|")}
    sep = max(counts, key=counts.__getitem__)
    return sep if counts[sep] > 0 else ","


def _read_csv(path: Path) -> Source:
    with path.open("rb") as f:
        utf16 = f.read(2) in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
    if not utf16 and path.stat().st_size > _NUL_SCAN_BYTES and (nul := limits.first_nul(path)) is not None:
        # binary data (a file of NULs) is refused before it is read whole; smaller files are read and every
        # control character reported by the validator, cell by cell
        row, field = _nul_cell(path, *nul)
        raise ReadError(f"第{row}行 {field or ''}: 含 NUL 字节, 不是文本文件 data row {row} contains a NUL byte "
                        "(U+0000): not a text CSV",
                        problems=[(row, field, "含控制字符 contains a control character (U+0000); 不是文本文件 "
                                               "not a text CSV")])
    encoding = _file_encoding(path)
    with path.open(encoding=encoding, newline="") as f:
        try:
            first = f.readline(_CSV_HEADER_CHARS).lstrip("\ufeff")
        except UnicodeDecodeError as exc:
            raise ReadError(f"文件编码错误 the file is not valid {encoding}: {exc}") from exc
    sep = _sniff_separator(first)
    limits.check_columns(first.count(sep) + 1, "表头列数 columns in the header")
    if len(first) >= _CSV_HEADER_CHARS and not first.endswith(("\n", "\r")):
        raise ReadError(f"表头行过长 the header line is longer than {_CSV_HEADER_CHARS:,} characters")
    row_limit = limit_settings().rows
    chunk_rows = min(_CSV_CHUNK_ROWS, row_limit + 1)
    options = {"sep": sep, "encoding": encoding, "dtype": str, "keep_default_na": False, "na_values": [""],
               "skipinitialspace": False, "index_col": False}
    chunks: list[pd.DataFrame] = []
    rows = 0
    try:
        with warnings.catch_warnings():  # never a silent implicit index from rows longer than the header
            warnings.simplefilter("error", pd.errors.ParserWarning)
            # parsed chunk by chunk, the row limit checked after each: memory follows the limit, not the file
            with pd.read_csv(path, chunksize=chunk_rows, **options) as reader:
                for chunk in reader:
                    rows += len(chunk)
                    if rows > row_limit:
                        limits.check_rows(rows, "行数 rows" if _exhausted(reader) else "行数 rows (至少 at least)")
                    chunks.append(chunk.apply(csv_unquote))  # cells our exports quoted read back as written
            frame = pd.concat(chunks, ignore_index=True) if chunks else pd.read_csv(path, nrows=0, **options)
    except pd.errors.EmptyDataError:
        return _table_source(path, "CSV", pd.DataFrame(), notes=[])
    except UnicodeDecodeError as exc:
        raise ReadError(f"文件编码错误 the file is not valid {encoding}: {exc}") from exc
    except (pd.errors.ParserError, pd.errors.ParserWarning) as exc:
        raise ReadError(f"CSV 格式错误, 某行字段数多于表头 malformed CSV (a row has more fields than the header): "
                        f"{exc}") from exc
    notes = [] if encoding.startswith("utf") else [f"文件编码 file encoding: {encoding}"]
    return _table_source(path, "CSV", frame, notes=notes)


def _exhausted(reader: pd.io.parsers.TextFileReader) -> bool:
    """Whether a chunked CSV reader has no row left (reads at most one more)."""
    try:
        reader.get_chunk(1)
    except StopIteration:
        return True
    return False


def _read_xlsx(path: Path, *, sheet: str | None) -> Source:
    """Stream the sheet row by row (openpyxl read-only: memory follows the rows kept, not the XML's size).

    Formula cells are read as their cached values; a formula without one (a file written by a program, never
    opened in Excel/WPS) is refused naming its cell, row and column rather than read as empty.
    """
    import openpyxl  # noqa: PLC0415 (heavy: only XLSX imports need it)

    wb = openpyxl.load_workbook(path, read_only=True, data_only=True, keep_links=False)
    try:
        sheets = wb.sheetnames
        name = sheets[0]
        if sheet is not None:
            matches = [s for s in sheets if s.lower() == sheet.lower()]
            if not matches:
                raise ReadError(f"工作簿中没有工作表 {sheet!r} no sheet {sheet!r}; sheets: {', '.join(sheets)}")
            name = matches[0]
        ws = wb[name]
        ws.reset_dimensions()  # the declared dimension may claim a huge range: read the cells that are there
        rows = _sheet_rows(ws)
        header = next(rows, None)
        if header is None:
            return _table_source(path, "XLSX", pd.DataFrame(), notes=[], source_layer=name)
        limits.check_columns(len(header), "表头列数 columns in the header")
        columns = _header_names(header)
        data: list[tuple] = []
        for i, row in enumerate(rows, start=1):
            limits.check_rows(i)
            limits.check_columns(len(row), f"第{i}行列数 columns in data row {i}")
            data.append(row)
    finally:
        wb.close()
    missing = _uncached_formulas(path, name, columns) if data and _has_formulas(path, name) else []
    if missing:
        shown = "; ".join(f"第{r}行 {c} ({cell}: {f})" for r, c, cell, f in missing[:20])
        raise ReadError(f"公式没有缓存值 (请在 Excel/WPS 中打开并保存, 或粘贴为数值) formula cells without a cached value "
                        f"(open and save the file in Excel/WPS, or paste values): {shown}"
                        + (f" … and {len(missing) - 20} more" if len(missing) > 20 else ""),
                        problems=[(r, c, f"公式没有缓存值 formula without a cached value in {cell}: {f}")
                                  for r, c, cell, f in missing])
    width = len(columns)
    frame = pd.DataFrame([(*r[:width], *(None,) * (width - len(r))) for r in data], columns=columns, dtype=object)
    for col in frame.columns:
        frame[col] = frame[col].map(_cell_text, na_action="ignore")
    return _table_source(path, "XLSX", frame, notes=[], source_layer=name)


def _sheet_rows(ws: ReadOnlyWorksheet) -> Iterator[tuple[Any, ...]]:
    """Rows as value tuples without trailing empty cells."""
    for row in ws.iter_rows(values_only=True):
        end = len(row)
        while end and row[end - 1] is None:
            end -= 1
        yield row[:end]


def _header_names(header: tuple) -> list[str]:
    """Column names as pandas names them: empty headers "Unnamed: i", repeats "name.1"."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for i, v in enumerate(header):
        name = f"Unnamed: {i}" if v is None or (isinstance(v, str) and not v.strip()) else str(_cell_text(v))
        if name in seen:
            seen[name] += 1
            name = f"{name}.{seen[name]}"
        else:
            seen[name] = 0
        names.append(name)
    return names


def _cell_text(v: object) -> object:
    """A cell value as the text the validator parses (integral floats without ".0", like pandas.read_excel)."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return v if isinstance(v, str) else str(v)


def _sheet_member(path: Path, sheet: str) -> str | None:
    """The zip member holding a sheet's XML (through the workbook's relationships), or None."""
    import openpyxl  # noqa: PLC0415 (heavy: only XLSX imports need it)

    wb = openpyxl.load_workbook(path, read_only=True, keep_links=False)
    try:
        return getattr(wb[sheet], "_worksheet_path", None) or getattr(wb[sheet], "worksheet_path", None)
    finally:
        wb.close()


def _has_formulas(path: Path, sheet: str) -> bool:
    """Whether the sheet's XML has any formula element (a streamed byte scan: no XML parsed)."""
    member = _sheet_member(path, sheet)
    with zipfile.ZipFile(path) as zf:
        if member is None or member.lstrip("/") not in zf.namelist():
            return True  # cannot tell: let the formula pass look
        with zf.open(member.lstrip("/")) as f:
            tail = b""
            while block := f.read(1 << 20):
                chunk = tail + block
                if re.search(rb"<(\w+:)?f[ >/]", chunk):
                    return True
                tail = block[-16:]
    return False


def _uncached_formulas(path: Path, sheet: str, columns: list[str]) -> list[tuple[int, str, str, str]]:
    """(data row, column, cell, formula) of formula cells that carry no cached value."""
    import openpyxl  # noqa: PLC0415 (heavy: only XLSX imports need it)
    from openpyxl.utils import get_column_letter  # noqa: PLC0415 (as above)

    values = openpyxl.load_workbook(path, read_only=True, data_only=True, keep_links=False)
    formulas = openpyxl.load_workbook(path, read_only=True, data_only=False, keep_links=False)
    out: list[tuple[int, str, str, str]] = []
    try:
        wv, wf = values[sheet], formulas[sheet]
        wv.reset_dimensions()
        wf.reset_dimensions()
        for r, (vrow, frow) in enumerate(zip(wv.iter_rows(values_only=True), wf.iter_rows(values_only=True),
                                             strict=False)):
            for c, (v, f) in enumerate(zip(vrow, frow, strict=False)):
                if v is None and isinstance(f, str) and f.startswith("="):
                    col = columns[c] if c < len(columns) else get_column_letter(c + 1)
                    out.append((r, col, f"{get_column_letter(c + 1)}{r + 1}", f[:60]))
    finally:
        values.close()
        formulas.close()
    return [o for o in out if o[0] >= 1]


def _find(columns: dict[str, str], names: tuple[str, ...]) -> str | None:
    for n in names:
        if n in columns:
            return columns[n]
    return None


def _table_source(path: Path, fmt: str, frame: pd.DataFrame, *, notes: list[str],
                  source_layer: str | None = None) -> Source:
    """Geometry from a WKT column and/or lon/lat (x/y) columns; the other columns are attributes."""
    frame = frame.loc[:, [not str(c).startswith("Unnamed: ") or frame[c].notna().any() for c in frame.columns]]
    frame = frame.dropna(how="all").reset_index(drop=True)
    lower = {str(c).strip().lower(): c for c in frame.columns}
    wkt_col = _find(lower, _WKT_NAMES)
    x_col, y_col = _find(lower, _LON_NAMES), _find(lower, _LAT_NAMES)
    if x_col is None or y_col is None:
        x_col, y_col = _find(lower, _X_NAMES), _find(lower, _Y_NAMES)
    n = len(frame)
    if n and wkt_col is None and (x_col is None or y_col is None):
        raise ReadError("找不到坐标列 no coordinate columns: give lon/lat (经度/纬度), x/y or a WKT column")
    geoms = np.full(n, None, dtype=object)
    errors: dict[int, str] = {}
    has_wkt = np.zeros(n, dtype=bool)
    wkt_geoms = geoms
    if wkt_col is not None:
        raw = frame[wkt_col].astype(object).where(frame[wkt_col].notna(), None).to_numpy(dtype=object)
        has_wkt = pd.notna(raw)
        wkt_geoms = shapely.from_wkt(raw, on_invalid="ignore")
        bad = np.flatnonzero(has_wkt & pd.isna(wkt_geoms))
        if bad.size:
            fixed = shapely.from_wkt(raw[bad], on_invalid="fix")
            for i, f in zip(bad.tolist(), fixed, strict=True):
                errors[i] = _UNCLOSED if f is not None else f"WKT 无法解析 WKT cannot be parsed ({str(raw[i])[:60]!r})"
    if x_col is not None and y_col is not None:
        xs, ys = frame[x_col], frame[y_col]
        x = pd.to_numeric(xs.str.strip(), errors="coerce").to_numpy(dtype=float)
        y = pd.to_numeric(ys.str.strip(), errors="coerce").to_numpy(dtype=float)
        given = (xs.notna() | ys.notna()).to_numpy()
        ok = np.isfinite(x) & np.isfinite(y)
        geoms[ok] = shapely.points(x[ok], y[ok])
        for i in np.flatnonzero(given & ~ok & ~has_wkt).tolist():
            errors[i] = f"坐标不是数字 coordinates are not numbers ({xs.iloc[i]!r}, {ys.iloc[i]!r})"
        both = has_wkt & ok & pd.notna(wkt_geoms)
        if both.any():  # points exported with WKT and lon/lat: an edit to one of them must not go unnoticed
            rows = np.flatnonzero(both)
            same = shapely.equals_exact(geoms[rows], wkt_geoms[rows], tolerance=1e-6)
            for i in rows[~same].tolist():
                errors[i] = "WKT 与坐标列不一致 the WKT and coordinate columns disagree"
    geoms = np.where(has_wkt, wkt_geoms, geoms)
    attrs = frame.drop(columns=[c for c in (wkt_col, x_col, y_col) if c is not None])
    plain = x_col is not None and {str(x_col).strip().lower(), str(y_col).strip().lower()} <= set(_PLAIN_XY)
    return Source(path=path, format=fmt, frame=attrs, geometry=geoms, crs=None, lonlat_default=True,
                  geometry_errors=errors, notes=notes, source_layer=source_layer,
                  plain_xy=~has_wkt & pd.notna(geoms) if plain else None)


#: Coordinate column names that do not say which axis is north (easting/northing, 东坐标/北坐标 do).
_PLAIN_XY = ("x", "y", "x坐标", "y坐标")


def survey_order(source: Source, crs: CrsSpec, bounds: Bounds) -> list[str]:
    """Read `source`'s plain x / y points northing first when they lie in `bounds` only that way (a Chinese
    survey's X is its north axis: `gis.coords.in_survey_order`); returns the note that says so, or nothing."""
    rows = np.flatnonzero(source.plain_xy) if source.plain_xy is not None else np.empty(0, dtype=np.int64)
    if not len(rows):
        return []
    xy = shapely.get_coordinates(source.geometry[rows])
    if not in_survey_order(xy[:, 0], xy[:, 1], crs, bounds=bounds):
        return []
    source.geometry[rows] = shapely.points(xy[:, 1], xy[:, 0])
    return [f"X 列为北坐标 (测量坐标系), 按 Y=东, X=北 读取 the X column holds northings (a Chinese survey's X axis points "
            f"north): read X as northing, Y as easting ({crs})"]
