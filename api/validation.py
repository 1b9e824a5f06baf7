"""Validating one edited GeoJSON feature with the importer's validation (gis.validate), strict about names."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from api.crs import OutputCrs
from api.errors import BadRequest
from gis.coords import parse_crs as parse_source_crs
from gis.layers import Layer
from gis.limits import check_extra
from gis.store import layer_columns
from gis.validate import validate_frame

#: Properties the store manages: accepted in a request body (clients send back what they read) and ignored.
IGNORED_PROPERTIES: frozenset[str] = frozenset({"id", "version", "created_at", "updated_at", "updated_by",
                                                "compound_id"})


@dataclass
class ValidFeature:
    """A feature ready to write: column values (python), the `extra` dict, the geometry in the storage CRS."""

    values: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] | None = None
    geometry: BaseGeometry | None = None


class Problems(BadRequest):
    """Validation failed: one bilingual line per problem, nothing written."""

    code = "InvalidFeature"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("要素无效, 未写入 invalid feature, nothing written: " + "; ".join(problems),
                         problems=problems)


def _geojson_geometry(layer: Layer, geometry: Any, crs: OutputCrs) -> tuple[Any, list[str]]:
    """A GeoJSON geometry → shapely in x/y (lon/lat) order of `crs`, or a problem; the importer checks the rest."""
    if not isinstance(geometry, dict) or not isinstance(geometry.get("type"), str):
        return None, ["geometry: 缺少几何或格式无效 missing or not a GeoJSON geometry object"]
    if geometry["type"] == "GeometryCollection":  # no layer stores collections; what one holds is ambiguous
        return None, [f"geometry: 不接受 GeometryCollection, 请用 {layer.geometry.title()} 几何 a GeometryCollection "
                      f"is not accepted: send the {layer.geometry.title()} geometry itself"]
    try:
        geom = shapely.from_geojson(json.dumps(geometry))
    except (shapely.errors.GEOSException, ValueError, TypeError) as exc:
        return None, [f"geometry: 无法解析 cannot be parsed ({str(exc).splitlines()[0][:200]})"]
    if geom is None:
        return None, ["geometry: 缺少几何 geometry missing"]
    coords = shapely.get_coordinates(geom)
    if coords.size and not np.isfinite(coords).all():
        return None, ["geometry: 坐标须为有限数 coordinates must be finite numbers"]
    if crs.latlon:
        geom = shapely.transform(geom, lambda xy: xy[:, ::-1])
    return geom, []


def _python(value: Any) -> Any:
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


def _json_text(key: str, value: Any) -> tuple[Any, str | None]:
    if not isinstance(value, str):
        return value, None
    if not value.strip():
        return None, None
    try:
        return json.loads(value), None
    except ValueError:
        return None, f"{key}: 不是有效的 JSON 文本 is not valid JSON text"


def validate_feature(layer: Layer, feature: Any, *, crs: OutputCrs, require_geometry: bool = True,
                     base: dict[str, Any] | None = None) -> ValidFeature:
    """Validate a GeoJSON Feature for `layer` with gis.validate; `base` (PATCH) are the values it updates.

    Unknown property names are rejected (a typo must not vanish into `extra`; unmodelled values go inside an
    explicit `extra` object). Raises Problems (400) listing every problem; nothing is ever repaired.
    """
    if not isinstance(feature, dict):
        raise Problems(["请求体应为 GeoJSON Feature body must be a GeoJSON Feature object"])
    if feature.get("type", "Feature") != "Feature":
        raise Problems([f"type 应为 Feature type must be 'Feature', got {feature.get('type')!r}"])
    props = feature.get("properties") or {}
    if not isinstance(props, dict):
        raise Problems(["properties 应为对象 properties must be an object"])
    problems: list[str] = []
    out = ValidFeature()
    columns = layer_columns(layer)
    values: dict[str, Any] = dict(base) if base is not None else {}
    for key, value in props.items():
        if key in IGNORED_PROPERTIES:
            continue
        if key == "extra" or (key in columns and layer.field(key).type == "json"):
            # the API writes JSON-valued properties as JSON text (desktop formats have no JSON type):
            # what a client read and sends back is taken as the object it stands for
            value, problem = _json_text(key, value)
            if problem:
                problems.append(problem)
                continue
        if key == "extra":
            if value is not None and not isinstance(value, dict):
                problems.append("extra: 应为对象 must be an object")
            elif (why := check_extra(value or {})) is not None:
                problems.append(f"extra: {why}")
            else:
                out.extra = value or {}
        elif key not in columns:
            problems.append(f"{key}: 未知字段 unknown property for layer {layer.name} "
                            f"(fields: {', '.join(columns)})")
        elif isinstance(value, dict | list) and layer.field(key).type != "json":
            problems.append(f"{key}: 应为单个值 must be a single value, not {type(value).__name__}")
        else:
            values[key] = value
    given_geometry = feature.get("geometry") is not None
    geom = None
    if given_geometry:
        geom, geom_problems = _geojson_geometry(layer, feature["geometry"], crs)
        problems.extend(geom_problems)
    elif require_geometry:
        problems.append("geometry: 缺少几何 geometry is required")
    if problems:
        raise Problems(problems)
    frame = pd.DataFrame({name: pd.Series([values.get(name)], dtype=object) for name in columns if name in values})
    if frame.empty and not len(frame.columns):
        frame = pd.DataFrame(index=pd.RangeIndex(1))
    checked = validate_frame(frame, np.array([geom], dtype=object), layer=layer,
                             crs=parse_source_crs(f"EPSG:{crs.srid}"))
    for p in checked.problems:
        if p.field == "geometry" and not given_geometry:
            continue
        problems.append(f"{p.field}: {p.message}" if p.field else p.message)
    if problems:
        raise Problems(problems)
    row = checked.frame.iloc[0]
    out.values = {name: _python(row[name]) if name in checked.frame.columns else None for name in columns}
    if base is not None:  # a PATCH changes what it names: an empty field it does not name stays empty, no default
        out.values.update({name: None for name in columns if name not in props and base.get(name) is None})
    out.geometry = row.geometry if given_geometry else None
    return out
