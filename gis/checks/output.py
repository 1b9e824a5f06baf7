"""Rendering check results: an aligned bilingual table, one JSON array of findings, or a GeoJSON FeatureCollection."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis.checks.findings import FINDING_COLUMNS
from gis.terminal_safety import cut, display_width, pad, terminal_text

#: Coordinate decimals of GeoJSON output (~1 cm; RFC 7946 suggests no more than needed).
DECIMALS = 7

#: Table columns: (field, Chinese header, English header).
TABLE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("rule", "规则", "rule"), ("verdict", "结论", "verdict"), ("severity", "严重度", "severity"),
    ("compound_ref", "小区", "compound"), ("subject", "对象", "subject"), ("measured", "实测", "measured"),
    ("required", "要求", "required"), ("department", "责任部门", "department"), ("message", "说明", "message"),
)
FORMATS = ("table", "json", "geojson")


def _frame(result: Any) -> gpd.GeoDataFrame:
    return result.findings if hasattr(result, "findings") else result


def _clean(value: Any) -> Any:
    """A cell as JSON sees it: Python scalars, lists for sequences, None for missing (NaN, pd.NA)."""
    if value is None or type(value) in _PLAIN:
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, np.generic):
        return _clean(value.item())
    if isinstance(value, list | tuple | np.ndarray):
        return [_clean(v) for v in value]
    if value is pd.NA or value is pd.NaT:
        return None
    return value


#: Cells `_clean` returns as they are (most of a frame's).
_PLAIN = frozenset({str, int, bool})


def _columns(frame: pd.DataFrame, names: Sequence[str]) -> list[list[Any]]:
    """Each column of `names` as a list of cells `_clean`ed, one pass per column (all None where the frame has no
    such column)."""
    return [list(map(_clean, frame[n].astype(object).to_numpy())) if n in frame.columns else [None] * len(frame)
            for n in names]


def _geojson(geoms: np.ndarray) -> np.ndarray:
    """Each geometry as GeoJSON text (None when missing or empty), DECIMALS decimals (collections as they are),
    polygons oriented as RFC 7946 asks."""
    g = np.asarray(geoms, dtype=object).copy()
    keep = ~(shapely.is_missing(g) | shapely.is_empty(g))
    snap = keep & (shapely.get_type_id(g) != 7)
    g[snap] = shapely.set_precision(g[snap], 10 ** -DECIMALS)
    solid = keep & ~shapely.is_empty(g)
    g[solid] = shapely.orient_polygons(g[solid])
    text = np.full(len(g), None, dtype=object)
    text[keep] = shapely.to_geojson(g[keep])
    return text


def _rows(result: Any) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Findings as JSON-ready dicts (every FINDING_COLUMNS field), and each one's geometry as GeoJSON text in WGS84
    (None where it has none): the text goes into the output as GEOS wrote it, not parsed and written again."""
    frame = _frame(result)
    if frame.crs is not None and len(frame) and not frame.crs.equals("EPSG:4326"):
        frame = frame.to_crs(4326)
    cols = [c for c in FINDING_COLUMNS if c in frame.columns]
    out = ([dict(zip(cols, row, strict=True)) for row in zip(*_columns(frame, cols), strict=True)] if cols
           else [{} for _ in range(len(frame))])
    for rec in out:
        rec["other_refs"] = rec.get("other_refs") or []
    return out, _geojson(frame.geometry.values if len(frame) else np.empty(0, dtype=object))


def _with_geometry(rec: dict[str, Any], geometry: str | None) -> str:
    """`rec` as a JSON object with a last member "geometry": the GeoJSON text as it is."""
    body = json.dumps(rec, ensure_ascii=False)
    return f'{body[:-1]}{", " if rec else ""}"geometry": {geometry or "null"}}}'


def to_json(result: Any) -> str:
    """One JSON array of findings."""
    rows, geoms = _rows(result)
    return "[" + ", ".join(_with_geometry(rec, g) for rec, g in zip(rows, geoms, strict=True)) + "]"


def to_geojson(result: Any) -> str:
    """A GeoJSON FeatureCollection of findings (properties: every finding field), with the run's metadata."""
    rows, geoms = _rows(result)
    features = []
    for rec, g in zip(rows, geoms, strict=True):
        head = json.dumps({"type": "Feature", "id": rec.get("key")}, ensure_ascii=False)
        features.append(f'{head[:-1]}, "geometry": {g or "null"}, "properties": '
                        f'{json.dumps(rec, ensure_ascii=False)}}}')
    tail = ""
    if hasattr(result, "run_id"):
        run = {"id": result.run_id, "profile": result.profile, "profile_version": result.profile_version,
               "scope": result.scope, "duration_s": round(result.duration_s, 3), "counts": result.counts}
        tail = f', "run": {json.dumps(run, ensure_ascii=False)}'
    return '{"type": "FeatureCollection", "features": [' + ", ".join(features) + "]" + tail + "}"


def _num(v: Any) -> str:
    v = _clean(v)
    if v is None:
        return ""
    return f"{v:.2f}".rstrip("0").rstrip(".") if isinstance(v, float) else terminal_text(v)


def to_table(result: Any, *, max_message: int = 80) -> str:
    """An aligned text table (headers in Chinese and English) plus a summary per rule and verdict."""
    frame = _frame(result)
    rows = []
    for rule, verdict, severity, cref, layer, ref, others, measured, required, unit, department, message in zip(
            *_columns(frame, ("rule", "verdict", "severity", "compound_ref", "subject_layer", "subject_ref",
                              "other_refs", "measured", "required", "unit", "department", "message")), strict=True):
        # (every value from the data as text: a control character in a ref or a message is shown, not run)
        subject = terminal_text(f"{layer}:{ref}")
        if others:
            subject += f" ({', '.join(map(terminal_text, others[:3]))}{', …' if len(others) > 3 else ''})"
        unit = terminal_text(unit or "")
        rows.append({
            "rule": terminal_text(rule), "verdict": terminal_text(verdict), "severity": _num(severity),
            "compound_ref": terminal_text(cref or ""), "subject": subject,
            "measured": (_num(measured) + f" {unit}").strip() if measured is not None else "",
            "required": (_num(required) + f" {unit}").strip() if required is not None else "",
            "department": terminal_text(department or ""),
            "message": cut(terminal_text(message or ""), max_message),
        })
    heads = {f: f"{zh} {en}" for f, zh, en in TABLE_COLUMNS}
    fields = [f for f, _, _ in TABLE_COLUMNS]
    sizes = {f: [display_width(r[f]) for r in rows] for f in fields}  # each cell measured once
    widths = {f: max([display_width(heads[f]), *sizes[f]]) for f in fields}
    lines = ["  ".join(pad(heads[f], widths[f]) for f in fields).rstrip(),
             "  ".join("-" * widths[f] for f in fields)]
    lines += ["  ".join(pad(r[f], widths[f], sizes[f][i]) for f in fields).rstrip() for i, r in enumerate(rows)]
    lines.append("")
    lines.append(_summary(result, frame))
    return "\n".join(lines)


def _summary(result: Any, frame: gpd.GeoDataFrame) -> str:
    n_fail = int((frame["verdict"] == "fail").sum()) if len(frame) else 0
    n_cj = int((frame["verdict"] == "cannot_judge").sum()) if len(frame) else 0
    head = f"共 {len(frame)} 条: 不合格 {n_fail}, 无法判定 {n_cj} | {len(frame)} findings: {n_fail} fail, " \
           f"{n_cj} cannot judge"
    if hasattr(result, "run_id"):
        head += (f"\n检查批次 run {result.run_id}; 规则配置 profile {result.profile} {result.profile_version}; "
                 f"用时 {result.duration_s:.2f} s")
        if getattr(result, "ledger", None) is not None:
            lg = result.ledger
            head += (f"\n台账 ledger: 新增 new {lg.inserted}, 仍存在 still failing {lg.updated}, "
                     f"重新打开 reopened {lg.reopened}, 复查通过 passed recheck {lg.verified}")
    if len(frame):
        counts = frame.groupby(["rule", "verdict"]).size().unstack(fill_value=0)
        parts = [f"{rule}: " + ", ".join(f"{v} {int(n)}" for v, n in row.items() if n) for rule, row in counts.iterrows()]
        head += "\n" + "; ".join(parts)
    return head


def render(result: Any, fmt: str = "table") -> str:
    """Render a CheckResult (or a findings frame) as `table`, `json` or `geojson`."""
    if fmt == "table":
        return to_table(result)
    if fmt == "json":
        return to_json(result)
    if fmt == "geojson":
        return to_geojson(result)
    raise ValueError(f"未知输出格式 unknown format {fmt!r}; formats: {', '.join(FORMATS)}")
