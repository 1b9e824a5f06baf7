"""Each collection's feature schema (OGC API Features Part 5) and queryables (Part 3), from the layer declarations."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.auth import CurrentUser
from api.collections import Collection
from api.features import filterable, property_columns
from api.ogc import SCHEMA_JSON, CollectionId, cached_json, get_view, root_url
from gis.layers import Field, Layer

router = APIRouter(tags=["OGC API Features"])
JSON_SCHEMA = "https://json-schema.org/draft/2020-12/schema"

#: JSON Schema of each declared field type, as the GeoJSON output writes it (JSON fields as JSON text).
_TYPES: dict[str, dict[str, Any]] = {
    "text": {"type": "string"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "bool": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "timestamp": {"type": "string", "format": "date-time"},
    "json": {"type": "string", "contentMediaType": "application/json"},
}

#: Store-managed properties every feature carries (features.MANAGED_PROPERTIES, compound_id).
_MANAGED: dict[str, dict[str, Any]] = {
    "compound_id": {"title": "所属小区 ID Compound id", "type": "integer", "readOnly": True,
                    "description": "id of the compound the feature lies in (derived from its geometry)"},
    "extra": {"title": "其他属性 Extra columns", "type": "string", "contentMediaType": "application/json",
              "description": "columns of the source file that firelane does not model, as a JSON object in text"},
    "version": {"title": "版本 Version", "type": "integer", "readOnly": True,
                "description": "the feature's version; its ETag"},
    "created_at": {"title": "创建时间 Created", "type": "string", "format": "date-time", "readOnly": True},
    "updated_at": {"title": "修改时间 Updated", "type": "string", "format": "date-time", "readOnly": True,
                   "x-ogc-role": "primary-instant"},
    "updated_by": {"title": "修改人 Updated by", "type": "string", "maxLength": 100, "readOnly": True},
}

#: Part 5 geometry formats of the GeoJSON types a collection serves.
_GEOMETRY_FORMATS: dict[str, str] = {
    "Point": "geometry-point", "MultiPoint": "geometry-multipoint", "MultiLineString": "geometry-multilinestring",
    "MultiPolygon": "geometry-multipolygon", "Geometry": "geometry-any",
}


def field_schema(f: Field) -> dict[str, Any]:
    """One declared field as a JSON Schema property: type, format, bounds, enum, length, unit, bilingual title."""
    out: dict[str, Any] = {"title": f"{f.label_zh} {f.label_en}".strip() or f.name, **_TYPES[f.type]}
    if f.description:
        out["description"] = f.description
    if f.choices:
        out["enum"] = list(f.choices)
    if f.max_length and f.type == "text":
        out["maxLength"] = f.max_length
    if f.minimum is not None and f.type in ("int", "float"):
        out["minimum"] = int(f.minimum) if f.type == "int" else float(f.minimum)
    if f.maximum is not None and f.type in ("int", "float"):
        out["maximum"] = int(f.maximum) if f.type == "int" else float(f.maximum)
    if f.unit:
        out["x-ogc-unit"] = f.unit
    if f.default is not None:
        out["default"] = f.default
    return out


def _property(layer: Layer, name: str) -> dict[str, Any]:
    if name in _MANAGED:
        return dict(_MANAGED[name])
    return field_schema(layer.field(name))


def feature_schema(view: Collection, base: str) -> dict[str, Any]:
    """The Part 5 schema of a collection's features: every property the GeoJSON output carries, in its order."""
    layer = view.layer
    properties: dict[str, Any] = {}
    for name in property_columns(layer):
        properties[name] = _property(layer, name)
    properties["geometry"] = {"title": "几何 Geometry", "format": _GEOMETRY_FORMATS[view.geometry_type],
                              "x-ogc-role": "primary-geometry"}
    required = [f.name for f in layer.fields if f.required]
    doc: dict[str, Any] = {
        "$schema": JSON_SCHEMA,
        "$id": f"{base}/schema",
        "type": "object",
        "title": view.title,
        "description": layer.description,
        "properties": properties,
    }
    if required:
        doc["required"] = required
    return doc


def geojson_feature_schema(view: Collection, base: str) -> dict[str, Any]:
    """The JSON Schema of one GeoJSON Feature of the collection (type, id, geometry, properties)."""
    flat = feature_schema(view, base)
    properties = {k: v for k, v in flat["properties"].items() if k != "geometry"}
    geometry: dict[str, Any] = {"type": "object", "title": f"几何 Geometry ({view.geometry_type})"}
    if view.geometry_type != "Geometry":
        geometry["properties"] = {"type": {"type": "string", "enum": [view.geometry_type]}}
    return {
        "$schema": JSON_SCHEMA,
        "$id": f"{base}/schema/geojson",
        "title": view.title,
        "type": "object",
        "required": ["type", "geometry", "properties"],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "id": {"type": "integer"},
            "geometry": geometry,
            "properties": {"type": "object", "properties": properties},
        },
    }


def queryables_schema(view: Collection, base: str) -> dict[str, Any]:
    """Part 3 queryables: the properties /items filters on (`name=value`), the geometry (bbox) and the
    timestamp the `datetime` parameter filters."""
    layer = view.layer
    properties: dict[str, Any] = {name: _property(layer, name) for name in filterable(layer)}
    properties["geometry"] = {"title": "几何 Geometry", "format": _GEOMETRY_FORMATS[view.geometry_type],
                              "x-ogc-role": "primary-geometry"}
    if layer.datetime_field:
        properties[layer.datetime_field] = _property(layer, layer.datetime_field)
    return {
        "$schema": JSON_SCHEMA,
        "$id": f"{base}/queryables",
        "type": "object",
        "title": view.title,
        "properties": properties,
        "additionalProperties": False,
    }


@router.get("/collections/{collectionId}/schema", summary="The collection's feature schema (JSON Schema, Part 5)",
            responses={200: {"content": {SCHEMA_JSON: {}}}})
def schema(request: Request, collectionId: CollectionId, principal: CurrentUser) -> Response:  # noqa: N803
    view = get_view(collectionId)
    base = f"{root_url(request)}/collections/{view.id}"
    return cached_json(request, feature_schema(view, base), media_type=SCHEMA_JSON)


@router.get("/collections/{collectionId}/schema/geojson",
            summary="The JSON Schema of the collection's GeoJSON features", responses={200: {"content": {SCHEMA_JSON: {}}}})
def geojson_schema(request: Request, collectionId: CollectionId, principal: CurrentUser) -> Response:  # noqa: N803
    view = get_view(collectionId)
    base = f"{root_url(request)}/collections/{view.id}"
    return cached_json(request, geojson_feature_schema(view, base), media_type=SCHEMA_JSON)


@router.get("/collections/{collectionId}/queryables", summary="The collection's queryables (Part 3)",
            responses={200: {"content": {SCHEMA_JSON: {}}}})
def queryables(request: Request, collectionId: CollectionId, principal: CurrentUser) -> Response:  # noqa: N803
    view = get_view(collectionId)
    base = f"{root_url(request)}/collections/{view.id}"
    return cached_json(request, queryables_schema(view, base), media_type=SCHEMA_JSON)
