"""Exporting a layer to GeoJSON, GeoPackage, Shapefile, KML, CSV or XLSX, with its extra columns, for round trips."""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from sqlalchemy import Engine

from gis.campaign.history_export import events_frame, write_history
from gis.config import limit_settings
from gis.coords import CrsError, CrsSpec, check_datum, from_storage, parse_crs
from gis.db import get_engine
from gis.layers import Layer, get_layer
from gis.readers import FIELDNAMES_SUFFIX, GEOMETRY_COLUMN_NAMES
from gis.spreadsheet_safety import csv_frame, xlsx_cell
from gis.store import layer_columns, read_layer

__all__ = ["FORMATS", "ExportError", "export_frame", "export_layer", "export_table", "shapefile_names"]

FORMATS = ("geojson", "gpkg", "shp", "kml", "csv", "xlsx")
#: CRS written when none is asked for: WGS84 where the format or its users expect lon/lat, else the storage CRS.
DEFAULT_CRS = {"geojson": "EPSG:4326", "kml": "EPSG:4326", "csv": "EPSG:4326", "xlsx": "EPSG:4326",
               "gpkg": "EPSG:4490", "shp": "EPSG:4490"}
#: Digits after the point for WKT/lon-lat columns (1e-9 degree is about 0.1 mm).
WKT_DECIMALS = 9
#: Excel's limit on the characters in one cell.
XLSX_CELL_LIMIT = 32767


class ExportError(ValueError):
    """A layer that cannot be written in the asked format (messages are "中文 English")."""


def export_layer(
    layer: str | Layer,
    *,
    fmt: str,
    path: str | Path,
    street: str | None = None,
    compound: str | None = None,
    crs: str | int | CrsSpec | None = None,
    engine: Engine | None = None,
) -> int:
    """Write a layer (optionally one street's or one compound's features) to `path`; returns the feature count.

    Formats: geojson (RFC 7946, WGS84, 7 decimals), gpkg, shp (a .zip path zips the sidecar files), kml,
    csv (UTF-8 with BOM, WKT column plus lon/lat for points), xlsx (WKT column). The columns are the common
    fields (ref, compound_ref, street_code, ...), the layer's own fields, then the keys of `extra`, so that
    `gis.importer.import_file` reads the file back to the same rows. A hazards export also carries the hazards'
    events (gis.campaign.history_export).
    """
    layer = get_layer(layer) if isinstance(layer, str) else layer
    frame = read_layer(layer, engine=engine, street=street, compound=compound)
    n = export_frame(export_table(layer, frame), layer=layer, fmt=fmt, path=path, crs=crs)
    if layer.name == "hazards":  # the history as its own table: XLSX sheet, GPKG table, else <stem>_events.csv
        write_history(events_frame(engine or get_engine(), frame["id"].tolist() if len(frame) else []),
                      fmt=fmt.lower(), path=Path(path))
    return n


def export_table(layer: Layer, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """A stored layer frame as export columns: declared fields (typed for writers) plus one column per extra key."""
    out: dict[str, object] = {}
    for name in layer_columns(layer):
        if name not in frame.columns:
            continue
        f = layer.field(name)
        s = frame[name].reset_index(drop=True)
        if f.type == "int":
            out[name] = pd.array(s.astype(object).where(s.notna(), None).tolist(), dtype="Int64")
        elif f.type == "bool":
            out[name] = pd.array(s.astype(object).where(s.notna(), None).tolist(), dtype="boolean")
        elif f.type == "float":
            out[name] = pd.to_numeric(s, errors="coerce").astype(float)
        elif f.type == "date":
            out[name] = pd.Series([v if pd.notna(v) else None for v in s], dtype=object)
        elif f.type == "timestamp":
            out[name] = pd.to_datetime(s, utc=True)
        elif f.type == "json":
            out[name] = pd.Series([json.dumps(v, ensure_ascii=False) if v is not None else None for v in s],
                                  dtype=object)
        else:
            out[name] = pd.Series([v if isinstance(v, str) else None for v in s], dtype=object)
    data = pd.DataFrame(out)
    extras = frame["extra"].tolist() if "extra" in frame.columns else []
    keys = list(dict.fromkeys(k for e in extras if isinstance(e, dict) for k in e))
    columns, folded = extra_layout(keys, taken=list(data.columns))
    for key, col in columns.items():
        data[col] = _extra_column([e.get(key) if isinstance(e, dict) else None for e in extras])
    if folded:  # the importer merges an `extra` JSON column back into each row's extra
        data["extra"] = pd.Series([_folded_json(e, folded) for e in extras], dtype=object)
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(frame.geometry.to_numpy(), crs=frame.crs), crs=frame.crs)


def extra_layout(keys: list, *, taken: list[str]) -> tuple[dict[str, str], list]:
    """({extra key: its own column}, keys folded into one `extra` JSON column).

    A key gets its own column while there are at most FIRELANE_LIMIT_EXTRA_KEYS of them and it makes a column every
    format can hold (a non-empty string of at most extra_key_chars characters, unique ignoring case, as GeoPackage
    and shapefile names are); the rest, and every key once there are too many, travel as JSON.
    """
    settings = limit_settings()
    if len(keys) > settings.extra_keys:
        return {}, list(keys)
    declared = {str(c) for c in taken}
    used = {c.lower() for c in declared} | {"extra"}
    columns: dict[str, str] = {}
    folded: list = []
    for key in keys:
        col = f"extra_{key}" if key in declared else key  # as before: a key named like a field keeps a prefix
        if (not isinstance(key, str) or not key.strip() or len(col) > settings.extra_key_chars
                or col.lower() in used or any(ch in key for ch in "\x00\n\r")):
            folded.append(key)
            continue
        used.add(col.lower())
        columns[key] = col
    return columns, folded


def _folded_json(extra: object, keys: list) -> str | None:
    if not isinstance(extra, dict):
        return None
    part = {k: extra[k] for k in keys if k in extra}
    return json.dumps(part, ensure_ascii=False, default=str) if part else None


def _extra_column(values: list) -> pd.Series:
    """One extra key as a typed column when its values agree (all bool, all int, all numbers), else text."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return pd.Series(pd.array(values, dtype="boolean"))
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return pd.Series(pd.array(values, dtype="Int64"))
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return pd.Series([np.nan if v is None else float(v) for v in values], dtype=float)
    return pd.Series([None if v is None else v if isinstance(v, str) else
                      json.dumps(v, ensure_ascii=False) for v in values], dtype=object)


def export_frame(
    table: gpd.GeoDataFrame,
    *,
    layer: Layer,
    fmt: str,
    path: str | Path,
    crs: str | int | CrsSpec | None = None,
) -> int:
    """Write an export table (see `export_table`, storage CRS) in `fmt`; returns the number of features."""
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise ExportError(f"不支持的格式 unsupported format {fmt!r}; formats: {', '.join(FORMATS)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        spec = parse_crs(crs if crs is not None else DEFAULT_CRS[fmt])
        check_datum(spec)  # (the way out of CGCS2000 needs a known transformation as much as the way in)
    except CrsError as exc:
        raise ExportError(str(exc)) from exc
    if fmt == "kml" and (spec.shift is not None or spec.pyproj_crs != parse_crs("EPSG:4326").pyproj_crs):
        raise ExportError("KML 只能是 WGS84 经纬度 KML is always WGS84 longitude/latitude (leave --crs out)")
    geoms = from_storage(table.geometry.to_numpy(), spec) if len(table) else np.array([], dtype=object)
    # GCJ-02/BD-09 are not EPSG CRSs: such files carry no CRS and must be imported with --crs gcj02/bd09.
    out_crs = None if spec.shift is not None else spec.pyproj_crs
    gdf = gpd.GeoDataFrame(table.drop(columns=table.geometry.name),
                           geometry=gpd.GeoSeries(geoms, crs=out_crs), crs=out_crs)
    if path.exists():
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    writer = {"geojson": _write_geojson, "gpkg": _write_gpkg, "shp": _write_shapefile, "kml": _write_kml,
              "csv": _write_csv, "xlsx": _write_xlsx}[fmt]
    writer(gdf, path, layer)
    notice = attribution(table)
    sidecar = attribution_path(path)
    if notice:  # ODbL: derived data carry their attribution wherever they go
        sidecar.write_text(notice + "\n", encoding="utf-8")
    elif sidecar.exists():
        sidecar.unlink()
    return len(gdf)


OSM_ATTRIBUTION = "© OpenStreetMap contributors (ODbL): data derived from OpenStreetMap, openstreetmap.org/copyright"


def attribution(table: pd.DataFrame) -> str | None:
    """The attribution an export must carry: OpenStreetMap's when any feature was derived from OSM (source=osm)."""
    if "source" in table.columns and (table["source"].astype(object) == "osm").any():
        return OSM_ATTRIBUTION
    return None


def attribution_path(path: Path) -> Path:
    """The attribution file written beside an export (`<file>.ATTRIBUTION.txt`)."""
    return path.with_name(path.name + ".ATTRIBUTION.txt")


_GDAL_TYPES = {"POINT": "Point", "MULTILINESTRING": "MultiLineString", "MULTIPOLYGON": "MultiPolygon",
               "GEOMETRY": "Unknown"}


def _write(gdf: gpd.GeoDataFrame, path: Path | str, *, kind: str = "GEOMETRY", **kwargs: Any) -> None:
    if len(gdf) == 0:  # nothing to infer the geometry type from
        kwargs.setdefault("geometry_type", _GDAL_TYPES[kind])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        pyogrio.write_dataframe(gdf, str(path), use_arrow=True, **kwargs)


def _over_dbf_width(gdf: gpd.GeoDataFrame) -> list[str]:
    out = []
    for col in gdf.columns:
        if col != gdf.geometry.name and gdf[col].dtype == object:
            lengths = [len(v.encode("utf-8")) for v in gdf[col] if isinstance(v, str)]
            if lengths and max(lengths) > 254:
                out.append(str(col))
    return out


def _write_geojson(gdf: gpd.GeoDataFrame, path: Path, layer: Layer) -> None:
    rfc = gdf.crs is not None and gdf.crs.to_epsg() == 4326
    options = {"RFC7946": "YES"} if rfc else {}
    _write(gdf, path, driver="GeoJSON", layer=layer.name, kind=layer.geometry,
           layer_options={**options, "COORDINATE_PRECISION": "7", "WRITE_NAME": "NO"})


def _write_gpkg(gdf: gpd.GeoDataFrame, path: Path, layer: Layer) -> None:
    _write(gdf, path, driver="GPKG", layer=layer.name, kind=layer.geometry)


def _write_kml(gdf: gpd.GeoDataFrame, path: Path, layer: Layer) -> None:
    _write(gdf, path, driver="LIBKML", layer=layer.name, kind=layer.geometry)


def shapefile_names(columns: list[str]) -> dict[str, str]:
    """{full column name: DBF name} with DBF names of at most 10 bytes (UTF-8), unique case-insensitively."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for col in columns:
        short = col.encode("utf-8")[:10].decode("utf-8", errors="ignore")
        k = 1
        while short.lower() in used:
            suffix = f"_{k}"
            short = col.encode("utf-8")[:10 - len(suffix)].decode("utf-8", errors="ignore") + suffix
            k += 1
        used.add(short.lower())
        out[col] = short
    return out


def _write_shapefile(gdf: gpd.GeoDataFrame, path: Path, layer: Layer) -> None:
    families = pd.Series(shapely.get_type_id(gdf.geometry.to_numpy())).map(
        {0: "point", 4: "point", 1: "line", 5: "line", 3: "polygon", 6: "polygon"}).to_numpy()
    kinds = list(dict.fromkeys(families.tolist()))
    zipped = path.suffix.lower() == ".zip"
    if len(kinds) > 1 and not zipped:
        raise ExportError(f"{layer.name} 含多种几何类型, shapefile 只能一种: 请导出为 .zip "
                          f"{layer.name} mixes {', '.join(kinds)}; a shapefile holds one type: use a .zip path")
    too_long = _over_dbf_width(gdf)
    if too_long:
        raise ExportError(f"shapefile 文本最多 254 字节, 以下列超出 a shapefile text field holds at most 254 bytes; "
                          f"too long in: {', '.join(too_long)} (use gpkg)")
    names = shapefile_names([c for c in gdf.columns if c != gdf.geometry.name])
    renamed = gdf.rename(columns=names)
    folder = Path(tempfile.mkdtemp(prefix="firelane-shp-")) if zipped else path.parent
    if not zipped:
        parts = [(path.stem, np.ones(len(gdf), dtype=bool))]
    elif len(kinds) <= 1:
        parts = [(layer.name, np.ones(len(gdf), dtype=bool))]
    else:  # one shapefile per geometry family; the importer reads <layer>_point/_line/_polygon back together
        parts = [(f"{layer.name}_{kind}", families == kind) for kind in kinds]
    try:
        for stem, mask in parts:
            for old in folder.glob(f"{stem}.*"):
                old.unlink()
            _write(renamed[mask], folder / f"{stem}.shp", driver="ESRI Shapefile", layer=stem,
                   layer_options={"ENCODING": "UTF-8"}, kind=layer.geometry)
            if any(k != v for k, v in names.items()):
                (folder / f"{stem}{FIELDNAMES_SUFFIX}").write_text(
                    json.dumps({v: k for k, v in names.items()}, ensure_ascii=False, indent=1), encoding="utf-8")
        if zipped:
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
                for f in sorted(folder.iterdir()):
                    zf.write(f, f.name)
    finally:
        if zipped:
            shutil.rmtree(folder, ignore_errors=True)


def _plain_table(gdf: gpd.GeoDataFrame) -> pd.DataFrame:
    """Attributes plus `wkt`, and `lon`/`lat` for point rows (coordinates in the export CRS)."""
    geoms = gdf.geometry.to_numpy()
    data = pd.DataFrame(gdf.drop(columns=gdf.geometry.name)).reset_index(drop=True)
    taken = {n.lower() for n in GEOMETRY_COLUMN_NAMES}  # an attribute named like a coordinate column is kept apart
    data = data.rename(columns={c: f"extra_{c}" for c in data.columns if str(c).strip().lower() in taken})
    for col in data.columns:
        if isinstance(data[col].dtype, pd.DatetimeTZDtype):
            data[col] = data[col].map(lambda v: v.isoformat() if pd.notna(v) else None).astype(object)
    data["wkt"] = shapely.to_wkt(geoms, rounding_precision=WKT_DECIMALS, trim=True)
    is_point = shapely.get_type_id(geoms) == 0
    if is_point.any():
        x = np.where(is_point, shapely.get_x(np.where(is_point, geoms, None)), np.nan)
        y = np.where(is_point, shapely.get_y(np.where(is_point, geoms, None)), np.nan)
        data["lon" if gdf.crs is None or gdf.crs.is_geographic else "x"] = np.round(x, WKT_DECIMALS)
        data["lat" if gdf.crs is None or gdf.crs.is_geographic else "y"] = np.round(y, WKT_DECIMALS)
    return data


def _write_csv(gdf: gpd.GeoDataFrame, path: Path, layer: Layer) -> None:
    csv_frame(_plain_table(gdf)).to_csv(path, index=False, encoding="utf-8-sig", lineterminator="\r\n")


def _write_xlsx(gdf: gpd.GeoDataFrame, path: Path, layer: Layer) -> None:
    from openpyxl import Workbook  # noqa: PLC0415 (heavy: only XLSX exports need it)

    data = _plain_table(gdf)
    too_long = np.flatnonzero(data["wkt"].str.len().to_numpy() > XLSX_CELL_LIMIT)
    if too_long.size:
        raise ExportError(f"第{too_long[0] + 1}行几何太复杂, 超出 Excel 单元格上限 the geometry of row "
                          f"{too_long[0] + 1} exceeds Excel's {XLSX_CELL_LIMIT} characters per cell: use gpkg")
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(layer.name)
    ws.append([xlsx_cell(ws, str(c)) for c in data.columns])
    columns = [data[c].astype(object).where(data[c].notna(), None).tolist() for c in data.columns]
    for row in zip(*columns, strict=True):
        ws.append([xlsx_cell(ws, v) for v in row])  # text typed as strings: "=..." is shown, never evaluated
    wb.save(path)
