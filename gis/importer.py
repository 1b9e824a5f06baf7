"""All-or-nothing file import: read, validate every row, then write one layer in one transaction."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
import sqlalchemy.exc
from sqlalchemy import Connection, Engine, text

from gis.coords import CHINA_BOUNDS, CrsError, CrsSpec, as_bounds, check_datum, crs_hint, in_bounds, parse_crs
from gis.db import get_engine, transaction
from gis.gcpause import paused_gc
from gis.layers import Layer, UnknownLayerError, get_layer
from gis.placement import PlacementError
from gis.readers import ReadError, Source, parse_wkb, read_source, survey_order
from gis.store import write_frame, write_frames
from gis.validate import Problem, Validated, duplicate_ref_problems, validate_chunks, validate_frame

__all__ = ["ImportFailed", "ImportReport", "Problem", "import_file", "source_crs"]

#: Files of at least this many features are validated and written chunk by chunk (`_import_streamed`), in
#: chunks of STREAM_CHUNK_ROWS after a first chunk of STREAM_FIRST_ROWS (sizes doubling in between, so that
#: PostgreSQL starts on the first rows early); smaller files and dry runs are validated whole.
STREAM_CHUNK_ROWS = 8_192
STREAM_FIRST_ROWS = 1_024
STREAM_MIN_ROWS = 2 * STREAM_CHUNK_ROWS

#: Formats whose files may lack a CRS and then mean WGS84 lon/lat (RFC 7946 GeoJSON, KML, CSV/XLSX lon/lat).
_WGS84 = "EPSG:4326"


class ImportFailed(Exception):
    """An import refused as a whole: every problem found, each with its row (1-based) and field."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass
class ImportReport:
    """What an import read, kept and wrote."""

    path: Path
    layer: str
    format: str
    crs: str
    features: int
    inserted: int = 0
    deleted: int = 0
    mode: str = "append"
    dry_run: bool = False
    columns: dict[str, str] = field(default_factory=dict)
    extra_columns: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: seconds per phase: read, validate, write (link + COPY + insert + audit); on a streamed import (large files)
    #: validate runs until the last chunk is validated, the writes of the chunks before it overlapping
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """A short bilingual account with counts."""
        layer = get_layer(self.layer)
        lines = [f"导入 import {self.path.name} → {layer.label_zh} {self.layer} "
                 f"({self.format}, 坐标系 CRS {self.crs})",
                 f"读取要素 features read: {self.features}"]
        if self.dry_run:
            lines.append(f"试运行, 全部有效, 未写入 dry run: all {self.features} valid, nothing written")
        else:
            lines.append(f"写入 inserted: {self.inserted}" +
                         (f", 替换删除 deleted (replace): {self.deleted}" if self.mode == "replace" else ""))
        if self.columns:
            lines.append("字段 fields: " + ", ".join(f"{c}→{f}" if c != f else f for c, f in self.columns.items()))
        if self.extra_columns:
            lines.append("附加列 (保存在 extra) extra columns kept: " + ", ".join(self.extra_columns))
        if self.ignored_columns:
            lines.append("忽略的列 ignored columns: " + ", ".join(self.ignored_columns))
        lines.extend(f"注意 note: {n}" for n in self.notes)
        lines.append(f"用时 time: {self.seconds:.2f} s")
        return "\n".join(lines)


def source_crs(source: Source, crs: str | int | CrsSpec | None,
               bounds: tuple[float, float, float, float] = CHINA_BOUNDS) -> tuple[CrsSpec, list[str]]:
    """The CRS to read `source` in: --crs, else the file's own, else WGS84 where the format allows it.

    Raises ImportFailed when the CRS is unknown, or missing for a format that cannot default to WGS84 (naming
    the Gauss-Krüger CRS the coordinates fit in `bounds`, when one does), or on a datum no known transformation
    takes to CGCS2000 (`gis.coords.check_datum`: Xian 1980, Beijing 1954 without TOWGS84).
    """
    spec, notes = _given_crs(source, crs, bounds)
    try:
        check_datum(spec)
    except CrsError as exc:
        raise ImportFailed([Problem(None, "crs", str(exc))]) from exc
    return spec, notes


def _given_crs(source: Source, crs: str | int | CrsSpec | None,
               bounds: tuple[float, float, float, float]) -> tuple[CrsSpec, list[str]]:
    notes: list[str] = []
    try:
        if crs is not None:
            spec = parse_crs(crs)
            if source.crs and not spec.shift:
                own = parse_crs(source.crs)
                if own.pyproj_crs != spec.pyproj_crs:
                    notes.append(f"按 --crs {spec} 读取, 文件声明 {own} used --crs {spec}, the file says {own}")
            return spec, notes
        if source.crs:
            return parse_crs(source.crs), notes
    except CrsError as exc:
        raise ImportFailed([Problem(None, "crs", str(exc))]) from exc
    if source.lonlat_default:
        source.parse()
        b = shapely.bounds(source.geometry[~shapely.is_missing(source.geometry)]) if len(source.geometry) else None
        if b is not None and len(b) and not (np.all(np.abs(b[:, [0, 2]]) <= 180) and np.all(np.abs(b[:, [1, 3]]) <= 90)):
            hint = _fit_hint(source, bounds)
            raise ImportFailed([Problem(None, "crs",
                                        "文件未声明坐标系且坐标不是经纬度, 请用 --crs 指定 the file declares no CRS and "
                                        "its coordinates are not longitude/latitude: give --crs "
                                        + (f"({hint})" if hint else "(e.g. EPSG:4549)"))])
        notes.append("文件未声明坐标系, 按 WGS84 经纬度 (EPSG:4326) 读取 the file declares no CRS: "
                     "assumed EPSG:4326 (WGS84 longitude/latitude); use --crs gcj02 for AMap/Tencent picks")
        return parse_crs(_WGS84), notes
    hint = _fit_hint(source, bounds)
    raise ImportFailed([Problem(None, "crs",
                                f"文件未声明坐标系, 请用 --crs 指定 the file declares no CRS ({source.format}): give --crs"
                                + (f" ({hint})" if hint else ", e.g. --crs EPSG:4549 (CGCS2000 3° GK CM 120E) or "
                                   "--crs EPSG:4490"))])


def _sample_xy(source: Source, n: int = 200) -> np.ndarray:
    """The first vertex of up to `n` of the source's features (parsing only those when its WKB is deferred)."""
    geoms = shapely.from_wkb(source.wkb[:n], on_invalid="ignore") if source.wkb is not None else source.geometry[:n]
    geoms = geoms[~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)]
    if not len(geoms):
        return np.empty((0, 2))
    xy, owner = shapely.get_coordinates(geoms, return_index=True)
    return xy[np.unique(owner, return_index=True)[1]]


def _fit_hint(source: Source, bounds: tuple[float, float, float, float]) -> str | None:
    """The Gauss-Krüger CRS the source's sampled coordinates fit in `bounds` (`gis.coords.crs_hint`), or None."""
    xy = _sample_xy(source)
    return crs_hint(xy[:, 0], xy[:, 1], bounds)


def crs_problem(source: Source, spec: CrsSpec, bounds: tuple[float, float, float, float]) -> Problem | None:
    """When none of the source's sampled features lies in `bounds` as `spec` reads them, but a Gauss-Krüger CRS
    would put them all there: a file-level problem naming it (a refusal's first line), else None."""
    xy = _sample_xy(source)
    if not len(xy) or in_bounds(shapely.points(xy), spec, bounds).any():
        return None
    hint = crs_hint(xy[:, 0], xy[:, 1], bounds)
    return None if hint is None else Problem(None, "crs", f"按 {spec} 读取, 要素均不在辖区内 read as {spec}, no "
                                                         f"feature lies in the district; {hint}")


def expected_bounds(conn: Connection, layer: Layer) -> tuple[float, float, float, float]:
    """The streets layer's extent when the database has streets (and the import is not of streets), else China."""
    if layer.name == "streets":
        return CHINA_BOUNDS
    try:
        row = conn.execute(text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) AS e FROM streets) s"
        )).one()
    except sqlalchemy.exc.ProgrammingError:  # a dry run before `firelane init`: no tables yet
        return CHINA_BOUNDS
    return CHINA_BOUNDS if row[0] is None else as_bounds(row)


def existing_ref_problems(conn: Connection, layer: Layer, refs: np.ndarray, *, first_row: int = 1) -> list[Problem]:
    """Rows whose ref is already used in a unique-ref layer (every layer but the ledger); `first_row` numbers
    the first of `refs` (a chunk of a streamed file)."""
    present = [r for r in dict.fromkeys(refs.tolist()) if r is not None]
    if not present:
        return []
    try:
        found = set(conn.execute(text(f"SELECT ref FROM {layer.name} WHERE ref = ANY(:refs)"),
                                 {"refs": present}).scalars())
    except sqlalchemy.exc.ProgrammingError:  # no tables yet (dry run before `firelane init`)
        return []
    return [Problem(first_row + i, "ref", f"编号已存在于数据库 ref {r!r} already exists in {layer.name}")
            for i, r in enumerate(refs.tolist()) if r in found]


def _refused(exc: sqlalchemy.exc.DBAPIError, layer: Layer, refs: np.ndarray | None, *,
             engine: Engine | None = None) -> ImportFailed:
    """The import refused by the database, nothing written (the transaction rolled back). A ref its unique index
    found taken is named with its rows: from PostgreSQL's detail, else (under row-level security it says nothing)
    by looking the file's refs up once the write's locks are gone; a holder the caller cannot see stays unnamed."""
    orig = exc.orig
    diag = getattr(orig, "diag", None)
    if diag is not None and diag.constraint_name == f"ix_{layer.name}_ref":
        taken = (diag.message_detail or "").partition("=(")[2].rpartition(") already")[0]
        rows = [i + 1 for i, r in enumerate(refs.tolist()) if r == taken] if taken and refs is not None else []
        if rows:
            return ImportFailed([Problem(r, "ref", f"编号已被使用 ref {taken!r} is already used in {layer.name} "
                                                   f"(数据库唯一约束 the database's unique index), 未写入任何数据 "
                                                   f"nothing written") for r in rows])
        if engine is not None and refs is not None:
            with engine.connect() as conn:
                found = existing_ref_problems(conn, layer, refs)
            if found:
                return ImportFailed(found)
        return ImportFailed([Problem(None, "ref", f"编号已被使用 a ref of this file is already used in {layer.name}, "
                                                  f"可能是您辖区外的要素 perhaps by a feature outside your jurisdiction "
                                                  f"(数据库唯一约束 the database's unique index), 未写入任何数据 "
                                                  f"nothing written")])
    message = str(orig).strip().splitlines()[0] if orig else str(exc)
    return ImportFailed([Problem(None, None, f"数据库拒绝写入, 未写入任何数据 the database refused the write, "
                                             f"nothing written: {message}")])


@paused_gc()  # full collections would walk every parsed geometry: ~0.1 s stalls, COPY writer included
def import_file(
    path: str | Path,
    *,
    layer: str,
    crs: str | int | CrsSpec | None = None,
    mode: str = "append",
    dry_run: bool = False,
    source_layer: str | None = None,
    user: str | None = None,
    engine: Engine | None = None,
) -> ImportReport:
    """Import a GeoJSON / GeoPackage / Shapefile / KML / DXF / CSV / XLSX file into `layer`, all or nothing.

    Every row is validated first; any problem raises ImportFailed with all problems (row, field, message) and
    nothing is written. Otherwise the rows go through `gis.store.write_frame` in one transaction as `user`.
    `dry_run` validates (against the database too) and writes nothing. `mode="replace"` empties the layer first.
    """
    started = time.perf_counter()
    path = Path(path)
    try:
        target = get_layer(layer)
    except UnknownLayerError as exc:
        raise ImportFailed([Problem(None, "layer", str(exc))]) from exc
    if mode not in ("append", "replace"):
        raise ImportFailed([Problem(None, "mode", f"模式无效 mode must be append or replace, not {mode!r}")])
    try:
        source = read_source(path, layer=target, source_layer=source_layer, defer_geometry=True)
    except ReadError as exc:
        raise ImportFailed([Problem(*p) for p in exc.problems] or [Problem(None, None, str(exc))]) from exc
    timings = {"read": time.perf_counter() - started}
    engine = engine or get_engine()
    with engine.connect() as conn:
        bounds = expected_bounds(conn, target)
    spec, notes = source_crs(source, crs, bounds)
    notes += survey_order(source, spec, bounds)

    def misread() -> Problem | None:  # (looked for only when the import is refused)
        return crs_problem(source, spec, bounds)

    if not dry_run and source.rows >= STREAM_MIN_ROWS:
        return _import_streamed(path, target, source, spec, bounds, mode=mode, user=user, engine=engine,
                                notes=[*source.notes, *notes], started=started, timings=timings, misread=misread)
    source.parse()
    checked = validate_frame(source.frame, source.geometry, layer=target, crs=spec, bounds=bounds,
                             geometry_errors=source.geometry_errors, name_limit=source.name_limit)
    problems = list(checked.problems)
    if target.unique_ref and mode == "append" and "ref" in checked.frame.columns:
        with engine.connect() as conn:
            problems.extend(existing_ref_problems(conn, target, checked.frame["ref"].to_numpy(dtype=object)))
    if problems:
        hint = misread()
        raise ImportFailed(sorted([*problems, *([hint] if hint else [])], key=lambda p: p.sort_key))
    timings["validate"] = time.perf_counter() - started - timings["read"]
    report = _report(path, target, source, spec, checked, mode=mode, dry_run=dry_run, notes=[*source.notes, *notes])
    if not dry_run:
        try:
            with transaction(user=user, engine=engine) as conn:
                result = write_frame(conn, target, checked.frame, mode=mode, user=user)
        except PlacementError as exc:
            raise ImportFailed([Problem(None, exc.field, exc.message)]) from exc
        except sqlalchemy.exc.DBAPIError as exc:  # a constraint validation did not foresee: still all-or-nothing
            refs = checked.frame["ref"].to_numpy(dtype=object) if "ref" in checked.frame.columns else None
            raise _refused(exc, target, refs) from exc
        report.inserted, report.deleted = result.inserted, result.deleted
    report.seconds = time.perf_counter() - started
    timings["write"] = report.seconds - timings["read"] - timings["validate"]
    report.timings = timings
    return report


def _import_streamed(path: Path, target: Layer, source: Source, spec: CrsSpec, bounds: tuple, *, mode: str,
                     user: str | None, engine: Engine, notes: list[str], started: float,
                     timings: dict[str, float],
                     misread: Callable[[], Problem | None] = lambda: None) -> ImportReport:
    """Validate and write chunk by chunk in one transaction: PostgreSQL writes chunk k while Python validates k + 1.

    WKB the reader left unparsed is parsed chunk by chunk as well, so the first rows reach PostgreSQL early.

    Still all or nothing: once a chunk has a problem no further chunk is written, every remaining chunk is still
    validated (so that every problem is reported, exactly as `validate_frame` on the whole file would), and
    ImportFailed then rolls the transaction back. Refs repeated across chunks are checked at the end.
    """
    n = source.rows
    problems: list[Problem] = []
    refs: list[np.ndarray] = []
    first: list[Validated] = []

    def chunks() -> Iterator[gpd.GeoDataFrame]:
        deferred = source.wkb is not None
        geometry = source.wkb if source.wkb is not None else source.geometry
        for checked in validate_chunks(source.frame, geometry, layer=target,
                                       crs=spec, bounds=bounds, geometry_errors=source.geometry_errors,
                                       name_limit=source.name_limit, chunk_rows=STREAM_CHUNK_ROWS,
                                       first_chunk_rows=STREAM_FIRST_ROWS, parse=parse_wkb if deferred else None):
            if not first:
                first.append(checked)
            problems.extend(checked.problems)
            if "ref" in checked.frame.columns:
                refs.append(checked.frame["ref"].to_numpy(dtype=object))
            if not problems:
                yield checked.frame
        if refs:
            problems.extend(duplicate_ref_problems(np.concatenate(refs)))
        timings["validate"] = time.perf_counter() - started - timings["read"]
        if problems:  # file-level problems (e.g. too many extra columns) come once per chunk: reported once
            hint = misread()
            raise ImportFailed(sorted(set(problems) | ({hint} if hint else set()), key=lambda p: p.sort_key))

    try:
        with transaction(user=user, engine=engine) as conn:
            result = write_frames(conn, target, chunks(), rows=n, mode=mode, user=user)
    except PlacementError as exc:
        raise ImportFailed([Problem(None, exc.field, exc.message)]) from exc
    except sqlalchemy.exc.DBAPIError as exc:  # a constraint validation did not foresee: still all-or-nothing
        # refs already used: the unique index refuses the COPY; the rows are named after the rollback
        raise _refused(exc, target, np.concatenate(refs) if refs else None, engine=engine) from exc
    report = _report(path, target, source, spec, first[0], mode=mode, dry_run=False, notes=notes)
    report.features, report.inserted, report.deleted = n, result.inserted, result.deleted
    report.seconds = time.perf_counter() - started
    timings["write"] = report.seconds - timings["read"] - timings["validate"]  # the writes overlap validation
    report.timings = timings
    return report


def _report(path: Path, layer: Layer, source: Source, spec: CrsSpec, checked: Validated, *, mode: str,
            dry_run: bool, notes: list[str]) -> ImportReport:
    return ImportReport(path=path, layer=layer.name, format=source.format, crs=str(spec),
                        features=len(checked.frame), mode=mode, dry_run=dry_run,
                        columns=dict(checked.columns.fields), extra_columns=list(checked.columns.extra),
                        ignored_columns=list(checked.columns.ignored), notes=notes)
