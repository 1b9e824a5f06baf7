"""Validating source rows against a layer declaration: column mapping, types, constraints, geometry and refs."""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from gis.config import limit_settings
from gis.coords import CHINA_BOUNDS, CrsError, CrsSpec, extent_problems, to_storage
from gis.layers import STORAGE_SRID, Field, Layer
from gis.limits import LimitExceeded, check_extra
from gis.store import layer_columns
from gis.text_rules import (
    IDENTIFIER_REFUSED,
    TEXT_REFUSED,
    json_refusal,
    refusal,
    refused_char,
    shown,
    why_refused,
)

__all__ = [
    "DEFAULT_MAX_TEXT",
    "MANAGED_SOURCE_COLUMNS",
    "ColumnMap",
    "Problem",
    "Validated",
    "duplicate_ref_problems",
    "map_columns",
    "string_problems",
    "validate_frame",
    "validate_geometry",
]

#: Longest string accepted in a text field that declares no max_length, and in any extra column.
DEFAULT_MAX_TEXT = 10_000
#: Source columns named like store-managed columns are not data: they are dropped (and listed in the report).
MANAGED_SOURCE_COLUMNS = ("compound_id", "version", "created_at", "updated_at", "updated_by")
#: The zone in which naive timestamps are read.
LOCAL_TZ = "Asia/Shanghai"

_NULL_TOKENS = ("", "null", "none", "nan", "n/a", "na", "#n/a", "-", "—", "--")
_TRUE = ("true", "t", "yes", "y", "1", "是", "有", "对", "√", "✓", "1.0")
_FALSE = ("false", "f", "no", "n", "0", "否", "无", "错", "×", "✗", "0.0")
_CN_DIGITS = {"一": "1", "二": "2", "三": "3", "四": "4", "五": "5", "壹": "1", "贰": "2", "叁": "3", "肆": "4",
              "i": "1", "ii": "2", "iii": "3", "iv": "4", "v": "5", "ⅰ": "1", "ⅱ": "2", "ⅲ": "3", "ⅳ": "4"}
#: Plain-language variants of choice values (Chinese first) that are unambiguous whatever the field.
_CHOICE_SYNONYMS = {"其他": "other", "其它": "other", "未知": "unknown", "住宅": "residential", "商业": "commercial",
                    "车辆": "vehicle", "机动车": "vehicle", "行人": "pedestrian", "人行": "pedestrian"}
_UNIT_SUFFIX = re.compile(r"\s*(m|米|%|mpa|l/s|mm|毫米|层|户)$", re.IGNORECASE)


@dataclass(frozen=True)
class Problem:
    """One reason a file cannot be imported: the 1-based data row (None: the whole file), field and message."""

    row: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = " ".join(p for p in (f"第{self.row}行" if self.row is not None else "", self.field or "") if p)
        return f"{where}: {self.message}" if where else self.message

    @property
    def sort_key(self) -> tuple:
        return (self.row if self.row is not None else -1, self.field or "", self.message)


@dataclass
class ColumnMap:
    """How the columns of a file map onto a layer: declared fields, extra (kept) and ignored columns."""

    fields: dict[str, str]
    extra: list[str]
    ignored: list[str]
    problems: list[Problem] = field(default_factory=list)


@dataclass
class Validated:
    """A frame ready for `gis.store.write_frame` (storage CRS, declared columns, `extra` dicts) and its problems."""

    frame: gpd.GeoDataFrame
    problems: list[Problem]
    columns: ColumnMap
    notes: list[str] = field(default_factory=list)


# --- column mapping -----------------------------------------------------------------------------------------------


def _key(name: object) -> str:
    return str(name).strip().lower()


def _without_unit(name: str) -> str:
    """"建筑高度(m)" / "高度（米）" / "height [m]" -> the name without its bracketed unit."""
    return re.sub(r"\s*[（(\[【][^）)\]】]*[）)\]】]\s*$", "", name)


def _truncate_bytes(name: str, limit: int) -> str:
    return name.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def map_columns(columns: Iterable[object], layer: Layer, *, name_limit: int | None = None) -> ColumnMap:
    """Map source columns case-insensitively onto the layer's fields through `Field.column_names()`.

    A field's own name wins over aliases and zh/en labels; a trailing bracketed unit ("高度(m)") is ignored;
    with `name_limit` (shapefiles: 10 bytes) a truncated field name matches when it is unambiguous.
    """
    targets = [layer.field(c) for c in layer_columns(layer)]
    lookup: dict[str, str] = {f.name.lower(): f.name for f in targets}
    for f in targets:
        for n in f.column_names():
            lookup.setdefault(n, f.name)
    if name_limit:
        short: dict[str, list[str]] = {}
        for f in targets:
            short.setdefault(_truncate_bytes(f.name.lower(), name_limit), []).append(f.name)
        for k, names in short.items():
            if len(names) == 1:
                lookup.setdefault(k, names[0])
    mapped: dict[str, str] = {}
    extra, ignored = [], []
    for col in columns:
        key = _key(col)
        target = lookup.get(key) or lookup.get(_without_unit(key))
        if target is not None:
            mapped[str(col)] = target
        elif key in MANAGED_SOURCE_COLUMNS or key == "extra":
            ignored.append(str(col))
        else:
            extra.append(str(col))
    problems = []
    by_field: dict[str, list[str]] = {}
    for col, name in mapped.items():
        by_field.setdefault(name, []).append(col)
    for name, cols in by_field.items():
        if len(cols) > 1:
            problems.append(Problem(None, name, f"多个列对应同一字段 several columns map to this field: {', '.join(cols)}"))
    for f in targets:
        if f.required and f.name not in by_field:
            accepted = ", ".join(f.column_names())
            problems.append(Problem(None, f.name, f"缺少必填列 required column missing (accepted names: {accepted})"))
    return ColumnMap(fields=mapped, extra=extra, ignored=ignored, problems=problems)


# --- value conversion (vectorised per column) ---------------------------------------------------------------------


def _show(value: object) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _as_text(s: pd.Series) -> pd.Series:
    """Any column as strings (object dtype, None for missing); integral floats print without '.0'."""
    if pd.api.types.is_bool_dtype(s.dtype):
        out = s.astype(object).map({True: "true", False: "false"}, na_action="ignore")
    elif pd.api.types.is_integer_dtype(s.dtype):
        out = pd.Series(s.astype("Int64").astype("string").to_numpy(dtype=object, na_value=None), index=s.index)
    elif pd.api.types.is_float_dtype(s.dtype):
        v = s.to_numpy(dtype=float, na_value=np.nan)
        finite = np.isfinite(v)
        integral = finite & (np.floor(v) == v) & (np.abs(v) < 2**53)
        text = v.astype(str).astype(object)
        text[integral] = v[integral].astype(np.int64).astype(str)
        text[~finite] = None
        out = pd.Series(text, index=s.index, dtype=object)
    elif pd.api.types.is_datetime64_any_dtype(s.dtype):
        out = s.astype(object).where(s.notna(), None).map(lambda v: v.isoformat(), na_action="ignore")
    else:
        obj = s.astype(object)
        if s.dtype == object and pd.api.types.infer_dtype(obj, skipna=True) not in ("string", "empty"):
            obj = obj.map(_python_text, na_action="ignore")
        out = obj.where(s.notna(), None)
    return out.astype(object)


def _python_text(v: object) -> object:
    if isinstance(v, str) or v is None:
        return v
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v)
    if isinstance(v, dt.date | pd.Timestamp):
        return v.isoformat()
    return str(v)


_STR = pd.StringDtype("pyarrow")


def _arrow(text: pd.Series) -> pd.Series:
    """Strings in Arrow storage: the .str methods below then run in Arrow's C++ kernels."""
    return text.astype(_STR)


def _nfkc(text: pd.Series) -> pd.Series:
    """NFKC-normalised (full-width digits and letters to ASCII), Arrow-backed."""
    arr = pa.array(text.astype(object).where(text.notna(), None).tolist(), type=pa.string())
    return pd.Series(pd.arrays.ArrowStringArray(pc.utf8_normalize(arr, "NFKC")), index=text.index)


def _lookup(text: pd.Series, key: Callable[[Any], str], table: Mapping[str, object]) -> np.ndarray:
    """table[key(cell)] per cell (None when absent), computed once per distinct value."""
    codes, uniques = pd.factorize(text.astype(object), use_na_sentinel=True)
    mapped = np.array([table.get(key(u)) for u in uniques] + [None], dtype=object)
    return mapped[codes]  # code -1 (missing) picks the trailing None


def _missing(text: pd.Series, arrow: pd.Series | None = None) -> np.ndarray:
    """Null or blank cells (`arrow`: the same cells already in Arrow storage, if the caller has them)."""
    arrow = _arrow(text) if arrow is None else arrow
    return arrow.isna().to_numpy(dtype=bool) | arrow.str.strip().eq("").fillna(False).to_numpy(dtype=bool)


def _null_token(text: pd.Series) -> np.ndarray:
    return text.isna().to_numpy(dtype=bool) | pd.notna(_lookup(text, lambda v: str(v).strip().lower(),
                                                               dict.fromkeys(_NULL_TOKENS, True)))


def _numbers(s: pd.Series, f: Field) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(float values, missing, unparsable) of a numeric field."""
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        v = s.to_numpy(dtype=float, na_value=np.nan)
        missing = np.isnan(v)
        return v, missing, ~missing & ~np.isfinite(v)
    text = _as_text(s)
    missing = _null_token(text)
    clean = _nfkc(text.where(~missing, None)).str.strip()
    clean = clean.str.replace(_UNIT_SUFFIX, "", regex=True)
    v = pd.to_numeric(clean, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return v, missing, ~missing & ~np.isfinite(v)


def _choice_key(value: object) -> str:
    """How choice and yes/no cells are compared: NFKC, trimmed, lower case, runs of space/'-' as '_'."""
    return re.sub(r"[\s\-]+", "_", unicodedata.normalize("NFKC", str(value)).strip().lower())


def _choice_lookup(f: Field) -> dict[str, str]:
    out: dict[str, str] = {}
    for c in f.choices or ():
        low = c.lower()
        for k in (low, low.replace("_", " "), low.replace("_", "-"), low.replace("_", "")):
            out[k] = c
    if f.choices and all(c.isdigit() for c in f.choices):  # grades: 一级 / 二 / II / 2.0 / 2级
        for c in f.choices:
            out[f"{c}.0"] = c
            out[f"{c}级"] = c
        for k, digit in _CN_DIGITS.items():
            if digit in f.choices:
                out[k] = digit
                out[f"{k}级"] = digit
    for k, v in _CHOICE_SYNONYMS.items():
        if f.choices and v in f.choices:
            out.setdefault(k, v)
    return out


def _to_datetime(text: pd.Series, fmt: str) -> pd.Series:
    try:
        return pd.to_datetime(text, errors="coerce", format=fmt)
    except (ValueError, TypeError):  # mixed UTC offsets
        return pd.to_datetime(text, errors="coerce", format=fmt, utc=True)


def _local(ts: pd.Series) -> pd.Series:
    return ts.dt.tz_localize(LOCAL_TZ) if ts.dt.tz is None else ts.dt.tz_convert(LOCAL_TZ)


def _parse_datetimes(text: pd.Series) -> pd.Series:
    """ISO dates/times, 2024/5/1, 2024.5.1, 2024年5月1日; naive stays naive unless some value has an offset."""
    norm = (_nfkc(text).str.strip()
            .str.replace(r"^(\d{4})年(\d{1,2})月(\d{1,2})日?", r"\1-\2-\3", regex=True)
            .str.replace(r"^(\d{4})[/.](\d{1,2})[/.](\d{1,2})", r"\1-\2-\3", regex=True)
            .str.replace(r"^(\d{4})-(\d)(?=\D|$)", r"\1-0\2", regex=True)
            .str.replace(r"^(\d{4}-\d{2})-(\d)(?=\D|$)", r"\1-0\2", regex=True))
    ts = _to_datetime(norm, "ISO8601")
    retry = (ts.isna() & norm.notna()).to_numpy(dtype=bool)
    if retry.any():
        again = _to_datetime(norm[retry], "mixed")
        if (ts.dt.tz is None) != (again.dt.tz is None):
            ts, again = _local(ts), _local(again)
        ts = ts.copy()
        ts[retry] = again
    return ts


@dataclass
class _Column:
    values: np.ndarray  # python values (object) or float64 with NaN
    problems: list[Problem]


def _convert(raw: pd.Series, f: Field, rows: np.ndarray) -> _Column:
    """Convert one source column to field `f`'s python values, collecting one problem per bad cell."""
    problems: list[Problem] = []

    def bad(mask: np.ndarray, message: str) -> None:  # the cell as the file has it, formatted for bad rows only
        for i in np.flatnonzero(mask).tolist():
            problems.append(Problem(int(rows[i]), f.name, f"{message} ({_show(_python_text(raw.iloc[i]))})"))

    n = len(raw)
    if f.type in ("int", "float"):
        v, missing, unparsable = _numbers(raw, f)
        bad(unparsable, "不是数字 not a number")
        ok = ~missing & ~unparsable
        if f.type == "int":
            frac = ok & (np.floor(np.where(ok, v, 0)) != np.where(ok, v, 0))
            bad(frac, "不是整数 not an integer")
            ok &= ~frac
        if f.minimum is not None:
            low = ok & (v < f.minimum)
            if f.minimum == 0:
                bad(low, "不能为负数 must not be negative")
            else:
                bad(low, f"小于最小值 {f.minimum:g} below the minimum {f.minimum:g}")
        if f.maximum is not None:
            bad(ok & (v > f.maximum), f"超过最大值 {f.maximum:g} above the maximum {f.maximum:g}")
        if f.type == "float":
            values = np.where(ok, v, np.nan)
        else:
            values = np.full(n, None, dtype=object)
            values[ok] = v[ok].astype(np.int64).tolist()
        return _Column(values, problems)
    if f.type == "bool":
        if pd.api.types.is_bool_dtype(raw.dtype):
            values = raw.astype(object).where(raw.notna(), None).to_numpy(dtype=object)
            return _Column(values, problems)
        shown = _as_text(raw).to_numpy(dtype=object)
        text = pd.Series(shown, dtype=object)
        missing = _null_token(text)
        truth = _lookup(text, _choice_key, {**dict.fromkeys(_TRUE, True), **dict.fromkeys(_FALSE, False)})
        is_true, is_false = truth == True, truth == False  # noqa: E712 - elementwise on an object array
        bad(~missing & ~is_true & ~is_false, "不是是/否值 not a yes/no value")
        values = np.full(n, None, dtype=object)
        values[is_true] = True
        values[is_false & ~is_true] = False
        return _Column(values, problems)
    if f.type in ("date", "timestamp"):
        shown = _as_text(raw).to_numpy(dtype=object)
        text = pd.Series(shown, dtype=object)
        missing = _null_token(text)
        if missing.all():  # an empty column: nothing to parse
            return _Column(np.full(n, None, dtype=object), problems)
        ts = _parse_datetimes(text.where(~missing, None))
        unparsable = ~missing & ts.isna().to_numpy()
        bad(unparsable, "不是日期 not a date")
        values = np.full(n, None, dtype=object)
        ok = ~missing & ~unparsable
        if ok.any():
            good = ts[ok]
            if f.type == "date":
                values[ok] = list(good.dt.date)
            else:
                if good.dt.tz is None:
                    good = good.dt.tz_localize(LOCAL_TZ)
                values[ok] = list(good.dt.to_pydatetime())
        return _Column(values, problems)
    if f.type == "json":
        values = np.full(n, None, dtype=object)
        for i, v in enumerate(raw.astype(object).tolist()):
            if v is None or (isinstance(v, float) and np.isnan(v)):
                continue
            if isinstance(v, str):
                try:
                    values[i] = json.loads(v) if v.strip() else None
                except ValueError:
                    problems.append(Problem(int(rows[i]), f.name, f"不是 JSON not valid JSON ({_show(v)})"))
            else:
                values[i] = v
        return _Column(values, problems)
    # text
    text = pd.Series(_as_text(raw).to_numpy(dtype=object), dtype=object)
    # a column read as strings is in Arrow already: no round trip through Python objects for the .str kernels
    arrow = raw.reset_index(drop=True).astype(_STR) if isinstance(raw.dtype, pd.StringDtype) else _arrow(text)
    missing = _missing(text, arrow)
    values = text.where(~missing, None).to_numpy(dtype=object)
    if f.choices:
        canon = _lookup(text, _choice_key, _choice_lookup(f))
        unknown = ~missing & pd.isna(canon)
        bad(unknown, f"不在可选值中 not one of {', '.join(f.choices)}")
        values = np.where(~missing & ~unknown, canon, None)  # type: ignore[call-overload]  # numpy stub refuses None
        return _Column(values, problems)
    problems.extend(string_problems(text, f.name, rows, f.max_length or DEFAULT_MAX_TEXT, arrow=arrow,
                                    identifier=f.identifier))
    return _Column(values, problems)


def string_problems(text: pd.Series, name: str, rows: np.ndarray, max_length: int, *,
                    arrow: pd.Series | None = None, identifier: bool = False) -> list[Problem]:
    """Characters the text may not hold (gis.text_rules: free text, or an identifier) and over-long strings;
    everything else is kept verbatim."""
    s = _arrow(text) if arrow is None else arrow
    problems = []
    pattern = IDENTIFIER_REFUSED if identifier else TEXT_REFUSED
    refused = s.str.contains(pattern, regex=True).fillna(False).to_numpy(dtype=bool)
    for i in np.flatnonzero(refused).tolist():
        ch = refused_char(s.iloc[i], identifier=identifier)  # the cell matched above (re and RE2 agree: tested)
        if ch is not None:
            problems.append(Problem(int(rows[i]), name, refusal(ch)))
    lengths = s.str.len().fillna(0).to_numpy(dtype=np.int64)
    for i in np.flatnonzero(lengths > max_length).tolist():
        problems.append(Problem(int(rows[i]), name,
                                f"过长 too long: {lengths[i]} 个字符 characters, 最多 at most {max_length}"))
    return problems


def _json_value(v: object) -> object:
    if isinstance(v, str | bool | int | float | dict | list):
        return v
    if isinstance(v, np.generic):
        return v.item()
    return _python_text(v)


def _extra_values(raw: pd.Series, name: str, rows: np.ndarray) -> tuple[np.ndarray, list[Problem]]:
    """An unknown column's cells as JSON-ready python values (None for missing or blank)."""
    if pd.api.types.is_float_dtype(raw.dtype):
        v = raw.to_numpy(dtype=float, na_value=np.nan)
        out = v.astype(object)
        out[~np.isfinite(v)] = None
        return out, []
    values = np.array(raw.astype(object).to_numpy(dtype=object), dtype=object, copy=True)
    values[pd.isna(raw).to_numpy(dtype=bool)] = None
    if pd.api.types.is_bool_dtype(raw.dtype) or pd.api.types.is_integer_dtype(raw.dtype):
        return np.array([None if v is None else _json_value(v) for v in values], dtype=object), []
    is_str = np.fromiter((isinstance(v, str) for v in values), dtype=bool, count=len(values))
    if not is_str.all():
        values = np.array([v if v is None or is_str[i] else _json_value(v) for i, v in enumerate(values)],
                          dtype=object)
    strings = pd.Series(np.where(is_str, values, None), dtype=object)  # type: ignore[call-overload]  # numpy stub refuses None
    problems = string_problems(strings, name, rows, DEFAULT_MAX_TEXT)
    for i in np.flatnonzero(~is_str).tolist():  # objects and lists a reader gave: their keys and strings
        if isinstance(values[i], dict | list) and (why := json_refusal(values[i])) is not None:
            problems.append(Problem(int(rows[i]), name, why))
    values[is_str & _arrow(strings).str.strip().eq("").fillna(False).to_numpy(dtype=bool)] = None
    return values, problems


def _extra_dicts(frame: pd.DataFrame, columns: Sequence[str], ignored: Sequence[str],
                 rows: np.ndarray) -> tuple[Sequence[dict[str, Any] | None], list[Problem]]:
    arrays, problems = [], []
    settings = limit_settings()
    if len(columns) > settings.extra_keys:  # refused before n dicts of thousands of keys are built
        return [None] * len(frame), [Problem(None, "extra", str(LimitExceeded("附加列数 extra columns", len(columns), "extra_keys",
                                                            settings.extra_keys)))]
    long = [c for c in columns if len(str(c)) > settings.extra_key_chars]
    if long:
        return [None] * len(frame), [Problem(None, str(long[0])[:40] + "…", str(LimitExceeded(
            "列名长度 column name length", len(str(long[0])), "extra_key_chars", settings.extra_key_chars)))]
    for col in columns:  # a column name becomes a key of every row's `extra`: one visible line
        if (why := why_refused(str(col), identifier=True)) is not None:
            return [None] * len(frame), [Problem(None, shown(str(col))[:60], f"列名 column name: {why}")]
    for col in columns:
        values, probs = _extra_values(frame[col], col, rows)
        arrays.append(values)
        problems.extend(probs)
    n = len(frame)
    if not arrays and "extra" not in [_key(c) for c in ignored]:
        return [], problems  # no extra column at all: validate_frame adds none (and builds no n empty dicts)
    dicts: list[dict[str, Any]]
    if not arrays:
        dicts = [{} for _ in range(n)]
    elif len(arrays) == 1:
        dicts = [{} if v is None else {columns[0]: v} for v in arrays[0]]
    else:
        dicts = [{k: v for k, v in zip(columns, vals, strict=True) if v is not None} for vals in zip(*arrays, strict=True)]
    if "extra" in [_key(c) for c in ignored]:  # an `extra` JSON column (e.g. dumped from PostGIS): merge it back
        col = next(c for c in ignored if _key(c) == "extra")
        for i, v in enumerate(frame[col].astype(object).tolist()):
            if isinstance(v, str) and v.strip().startswith("{"):
                try:
                    merged = json.loads(v)
                except (ValueError, RecursionError):
                    problems.append(Problem(int(rows[i]), "extra", f"不是 JSON not valid JSON ({_show(v)})"))
                    continue
                if not isinstance(merged, dict):
                    problems.append(Problem(int(rows[i]), "extra", f"应为 JSON 对象 must be a JSON object ({_show(v)})"))
                    continue
                dicts[i] = {**merged, **dicts[i]}
                why = check_extra(dicts[i])
                if why:
                    problems.append(Problem(int(rows[i]), "extra", why))
    return dicts, problems


# --- geometry -----------------------------------------------------------------------------------------------------

_TYPE_IDS = {"Point": 0, "LineString": 1, "Polygon": 3, "MultiPoint": 4, "MultiLineString": 5, "MultiPolygon": 6,
             "GeometryCollection": 7}
_TYPE_NAMES = {v: k for k, v in _TYPE_IDS.items()}


def _flatten_collections(geoms: np.ndarray) -> np.ndarray:
    """GeometryCollections of one kind (KML MultiGeometry, DXF blocks) become that kind's Multi type."""
    out = geoms.copy()
    for i in np.flatnonzero(shapely.get_type_id(geoms) == 7).tolist():
        parts = shapely.get_parts(geoms[i])
        kinds = {p.geom_type.removeprefix("Multi") for p in parts}
        if len(kinds) != 1 or not len(parts):
            continue
        kind = kinds.pop()
        flat = np.concatenate([shapely.get_parts(p) for p in parts])
        if kind == "Polygon":
            out[i] = shapely.multipolygons(flat)
        elif kind == "LineString":
            out[i] = shapely.multilinestrings(flat)
        else:
            out[i] = shapely.multipoints(flat)
    return out


def validate_geometry(
    geoms: np.ndarray,
    *,
    layer: Layer,
    crs: CrsSpec,
    bounds: tuple[float, float, float, float] = CHINA_BOUNDS,
    errors: dict[int, str] | None = None,
    rows: np.ndarray | None = None,
) -> tuple[np.ndarray, list[Problem]]:
    """Check and transform geometries to the storage CRS; never repairs anything.

    Parameters
    ----------
    geoms : ndarray of shapely geometries (None for missing), in `crs`.
    layer : the target layer (its accepted geometry types).
    crs : the CRS of `geoms` (GCJ-02/BD-09 by name are unshifted).
    bounds : lon/lat box the features are expected in (the district's streets, else China).
    errors : row position -> reason the reader could not parse that row's geometry.
    rows : 1-based row numbers for the messages (default: position + 1).

    Returns
    -------
    (stored, problems)
        `stored` holds the geometries in EPSG:4490 (None where a row has a geometry problem).
    """
    n = len(geoms)
    rows = np.arange(1, n + 1) if rows is None else rows
    problems: list[Problem] = []
    flagged = np.zeros(n, dtype=bool)
    for i, message in (errors or {}).items():
        problems.append(Problem(int(rows[i]), "geometry", message))
        flagged[i] = True
    geoms = np.asarray(geoms, dtype=object)
    if shapely.has_z(geoms).any():  # storage is 2D: KML/DXF heights (usually 0) are dropped
        geoms = shapely.force_2d(geoms)
    geoms = _flatten_collections(geoms)
    types = shapely.get_type_id(geoms)
    if layer.geometry == "POINT":  # a one-point MultiPoint is a point
        single = np.flatnonzero((types == 4) & (shapely.get_num_geometries(geoms) == 1))
        geoms[single] = shapely.get_geometry(geoms[single], 0)
        types[single] = 0
    empty = ~flagged & (pd.isna(geoms) | shapely.is_empty(geoms))
    for i in np.flatnonzero(empty).tolist():
        problems.append(Problem(int(rows[i]), "geometry", "缺少几何或几何为空 geometry missing or empty"))
    flagged |= empty
    accepted = [_TYPE_IDS[t] for t in layer.accepted_geometries]
    wrong = ~flagged & ~np.isin(types, accepted)
    for i in np.flatnonzero(wrong).tolist():
        problems.append(Problem(int(rows[i]), "geometry",
                                f"几何类型错误 wrong geometry type {_TYPE_NAMES.get(int(types[i]), '?')}: "
                                f"{layer.label_zh} {layer.name} 只接受 accepts {', '.join(layer.accepted_geometries)}"))
    flagged |= wrong
    stored = np.full(n, None, dtype=object)
    geographic = crs.shift is not None or crs.pyproj_crs.is_geographic
    if geographic:  # swapped/out-of-extent rows are judged on the lon/lat as given (they would not transform)
        flagged |= _extent(geoms, flagged, bounds, rows, problems)
    todo = np.flatnonzero(~flagged)
    if todo.size:
        try:
            stored[todo] = to_storage(geoms[todo], crs)
        except CrsError:
            for i in todo.tolist():  # slow path, only when some vertex fails to transform: find the rows
                try:
                    stored[i] = to_storage(geoms[i], crs)
                except CrsError as exc:
                    problems.append(Problem(int(rows[i]), "geometry", str(exc)))
                    flagged[i] = True
    if not geographic:
        flagged |= _extent(stored, flagged, bounds, rows, problems)
    todo = np.flatnonzero(~flagged)
    valid = shapely.is_valid(stored[todo])
    invalid = todo[~valid]
    if invalid.size:
        reasons = shapely.is_valid_reason(stored[invalid])
        for i, reason in zip(invalid.tolist(), reasons, strict=True):
            problems.append(Problem(int(rows[i]), "geometry",
                                    f"几何无效 invalid geometry: {reason} (不会自动修复 never repaired silently)"))
        flagged[invalid] = True
    stored[flagged] = None
    return stored, problems


def _extent(geoms: np.ndarray, flagged: np.ndarray, bounds: tuple, rows: np.ndarray,
            problems: list[Problem]) -> np.ndarray:
    idx = np.flatnonzero(~flagged)
    out = np.zeros(len(geoms), dtype=bool)
    for pos, message in extent_problems(geoms[idx], bounds=bounds, field="geometry"):
        i = int(idx[pos])
        problems.append(Problem(int(rows[i]), "geometry", message.split(": ", 1)[1]))
        out[i] = True
    return out


def duplicate_ref_problems(refs: np.ndarray, rows: np.ndarray | None = None) -> list[Problem]:
    """Every row whose ref repeats an earlier row's ref (refs compared verbatim)."""
    rows = np.arange(1, len(refs) + 1) if rows is None else rows
    s = pd.Series(refs, dtype=object)
    present = s.notna()
    if not present.any():
        return []
    dup = s.duplicated(keep="first") & present
    if not dup.any():
        return []
    first = pd.Series(np.arange(len(s)))[present].groupby(s[present].to_numpy()).transform("min")
    return [Problem(int(rows[i]), "ref", f"编号重复 duplicate ref {_show(refs[i])!r} (同 same as 第{int(rows[first[i]])}行 row "
                                         f"{int(rows[first[i]])})")
            for i in np.flatnonzero(dup.to_numpy()).tolist()]


# --- the whole frame ----------------------------------------------------------------------------------------------


def validate_frame(
    frame: pd.DataFrame,
    geometry: np.ndarray,
    *,
    layer: Layer,
    crs: CrsSpec,
    bounds: tuple[float, float, float, float] = CHINA_BOUNDS,
    geometry_errors: dict[int, str] | None = None,
    name_limit: int | None = None,
    first_row: int = 1,
    check_duplicates: bool = True,
) -> Validated:
    """Validate raw source rows for `layer` and convert them for the store, collecting every problem.

    Parameters
    ----------
    frame : raw attribute columns as read (strings or typed), one row per feature, positional index.
    geometry : shapely geometries (None for missing) in `crs`, aligned with `frame`.
    layer : the declaration that drives mapping, types, constraints and accepted geometries.
    crs : the CRS of `geometry`.
    bounds : expected lon/lat extent (the district's streets if known, else China).
    geometry_errors : reader-level geometry failures by row position.
    name_limit : DBF column-name limit (shapefiles): truncated field names still match.
    first_row : the file's row number of the frame's first row (a chunk of a larger file: see `validate_chunks`).
    check_duplicates : whether to report refs repeated within the frame (a chunk leaves that to its caller).

    Returns
    -------
    Validated
        The frame (storage CRS, declared columns as python values, `extra` dicts) and all problems; rows keep
        their positions (problem rows included), so row numbers are position + 1.
    """
    frame = frame.reset_index(drop=True)
    n = len(frame)
    rows = np.arange(first_row, first_row + n)
    columns = map_columns(frame.columns, layer, name_limit=name_limit)
    problems = list(columns.problems)
    if n == 0:
        problems.append(Problem(None, None, "文件中没有要素 the file has no features"))
        empty = gpd.GeoDataFrame({}, geometry=gpd.GeoSeries([], crs=STORAGE_SRID), crs=STORAGE_SRID)
        return Validated(frame=empty, problems=problems, columns=columns)
    out: dict[str, np.ndarray] = {}
    duplicated_fields = {p.field for p in columns.problems if p.field and "several columns" in p.message}
    for col, name in columns.fields.items():
        if name in duplicated_fields:
            continue
        f = layer.field(name)
        converted = _convert(frame[col], f, rows)
        problems.extend(converted.problems)
        out[name] = converted.values
    bad_cells = {(p.row, p.field) for p in problems if p.row is not None}  # already reported: not "missing"
    for name in layer_columns(layer):
        f = layer.field(name)
        values = out.get(name)
        missing = (pd.isna(values) if values is not None else np.ones(n, dtype=bool))
        if f.required:
            for i in np.flatnonzero(missing).tolist():
                if name in out and (int(rows[i]), name) not in bad_cells:
                    problems.append(Problem(int(rows[i]), name, "必填, 不能为空 required value missing"))
        elif f.default is not None and missing.any():
            if values is None:
                values = np.full(n, np.nan) if f.type == "float" else np.full(n, None, dtype=object)
            values = values.copy()
            values[missing] = f.default
            out[name] = values
    if "ref" in out and check_duplicates:
        problems.extend(duplicate_ref_problems(out["ref"], rows))
    stored, geom_problems = validate_geometry(geometry, layer=layer, crs=crs, bounds=bounds,
                                              errors=geometry_errors, rows=rows)
    problems.extend(geom_problems)
    extras, extra_problems = _extra_dicts(frame, columns.extra, columns.ignored, rows)
    problems.extend(extra_problems)
    data = pd.DataFrame(out, index=pd.RangeIndex(n))
    if columns.extra or any(_key(c) == "extra" for c in columns.ignored):
        data["extra"] = extras
    result = gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(stored, crs=STORAGE_SRID), crs=STORAGE_SRID)
    problems.sort(key=lambda p: p.sort_key)
    return Validated(frame=result, problems=problems, columns=columns)


def validate_chunks(
    frame: pd.DataFrame,
    geometry: np.ndarray,
    *,
    layer: Layer,
    crs: CrsSpec,
    bounds: tuple[float, float, float, float] = CHINA_BOUNDS,
    geometry_errors: dict[int, str] | None = None,
    name_limit: int | None = None,
    chunk_rows: int = 8_192,
    first_chunk_rows: int | None = None,
    parse: Callable[[np.ndarray], tuple[np.ndarray, dict[int, str]]] | None = None,
) -> Iterator[Validated]:
    """`validate_frame` chunk by chunk, so that a caller can write chunk k while chunk k + 1 is validated.

    Parameters
    ----------
    frame, geometry, layer, crs, bounds, geometry_errors, name_limit : as for `validate_frame`.
    chunk_rows : rows per chunk.
    first_chunk_rows : rows of the first chunk (default `chunk_rows`); chunk sizes then double up to
        `chunk_rows`, so that a consumer writing chunk k while k + 1 is validated starts early (slow start).
    parse : when given, `geometry` holds unparsed values (WKB) and `parse(chunk)` turns a chunk of them into
        (geometries, {position in the chunk: reason}), so parsing runs chunk by chunk too.

    Yields
    ------
    Validated
        One per chunk, problems numbered by the file's rows. Column problems (mapping) come with the first
        chunk only; refs repeated across the file are not checked here: `duplicate_ref_problems` over every
        chunk's refs, at the end, gives exactly the problems `validate_frame` would give.
    """
    frame = frame.reset_index(drop=True)
    errors = geometry_errors or {}
    start, size = 0, min(first_chunk_rows or chunk_rows, chunk_rows)
    while start == 0 or start < len(frame):
        stop = start + size
        geoms, chunk_errors = geometry[start:stop], {i - start: m for i, m in errors.items() if start <= i < stop}
        if parse is not None:
            geoms, parsed_errors = parse(geoms)
            chunk_errors.update(parsed_errors)
        checked = validate_frame(
            frame.iloc[start:stop], geoms, layer=layer, crs=crs, bounds=bounds, geometry_errors=chunk_errors,
            name_limit=name_limit, first_row=start + 1, check_duplicates=False)
        if start:
            checked.problems[:] = [p for p in checked.problems if p.row is not None]
        yield checked
        start, size = stop, min(size * 2, chunk_rows)
