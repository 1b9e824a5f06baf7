"""OGC API Features Part 4: create, replace, update (merge patch) and delete features, with ETag/If-Match."""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

import shapely
from fastapi import APIRouter, Header, Request
from fastapi.responses import Response
from sqlalchemy import Connection, text

from api.auth import CurrentUser, Principal
from api.bodies import json_body
from api.collections import Collection, geometry_part_sql
from api.crs import DEFAULT, parse_crs
from api.database import db_engine
from api.errors import (
    ApiError,
    BadRequest,
    Forbidden,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
)
from api.features import feature_sql, scope_sql
from api.ogc import GEOJSON, CollectionId, FeatureId, get_view, parse_fid, root_url
from api.tilecache import changed
from api.validation import Problems, ValidFeature, validate_feature
from gis.config import api_settings
from gis.db import transaction
from gis.layers import STORAGE_SRID, Layer
from gis.limits import check_extra
from gis.schema import TABLES
from gis.store import layer_columns

log = logging.getLogger("firelane.api")
router = APIRouter(tags=["OGC API Features Part 4 (edits)"])

#: Layers whose create/edit responses carry instant rule feedback, and the rule families that judge them.
FEEDBACK_FAMILIES: dict[str, tuple[str, ...]] = {"fire_lanes": ("lanes",), "aerial_areas": ("aerial",)}

_FEATURE_BODY = {
    "required": True,
    "content": {
        GEOJSON: {"schema": {"type": "object", "required": ["type", "geometry", "properties"], "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "geometry": {"type": "object", "nullable": True},
            "properties": {"type": "object", "nullable": True}}}},
        "application/json": {"schema": {"type": "object"}},
    },
}
_PATCH_BODY = {
    "required": True,
    "content": {"application/merge-patch+json": {"schema": {"type": "object"}},
                "application/json": {"schema": {"type": "object"}}},
}


class MethodNotAllowed(ApiError):
    status, code = 405, "MethodNotAllowed"


def _editable(layer: Layer, principal: Principal) -> None:
    if not layer.editable:
        raise MethodNotAllowed(f"图层 {layer.name} 只读 layer {layer.name!r} is read-only"
                               + ("; 请用 /hazards/{id}/transition use /hazards/{id}/transition"
                                  if layer.name == "hazards" else ""), headers={"Allow": "GET, HEAD, OPTIONS"})
    if not principal.can_edit(layer.name):
        raise Forbidden(f"无权编辑 role {principal.role!r} may not edit {layer.name}")


async def _json_body(request: Request) -> Any:
    return await json_body(request)


def _if_match(request: Request, value: str | None) -> set[str] | None:
    """The versions an If-Match header allows: None for any (`*`, or no header: an unconditional write, which
    the desktop clients planners use always make; recorded as such in the access log). With
    FIRELANE_API_REQUIRE_IF_MATCH a missing header is 428. Weak tags (W/"3") never match: If-Match compares
    strongly (RFC 9110 13.1.1), so a write with only weak tags is 412."""
    if value is None or not value.strip():
        if api_settings().require_if_match:
            raise PreconditionRequired("需要 If-Match 头 (要素的 ETag) If-Match header with the feature's ETag "
                                       "required")
        request.state.precondition = "none"
        return None
    tags = set()
    for part in value.split(","):
        tag = part.strip()
        if tag == "*":
            request.state.precondition = "*"
            return None
        if tag.startswith("W/"):
            continue
        tags.add(tag.strip('"'))
    request.state.precondition = "if-match"
    return tags


def _input_crs(request: Request):
    return parse_crs(request.headers.get("content-crs"), param="Content-Crs") if request.headers.get(
        "content-crs") else DEFAULT


def derive_links(conn: Connection, layer: Layer, geom_hex: str, values: dict[str, Any]) -> dict[str, Any]:
    """compound_id / compound_ref / street_code for a single feature (given values win; else spatially)."""
    table = TABLES[layer.name]
    out: dict[str, Any] = {}
    compound_id = None
    if "compound_id" in table.c:
        ref = values.get("compound_ref")
        if ref:
            compound_id = conn.execute(text("SELECT id FROM compounds WHERE ref = :r"), {"r": ref}).scalar()
        if compound_id is None:
            compound_id = conn.execute(text(
                "SELECT c.id FROM compounds c WHERE ST_Intersects(c.geom, ST_PointOnSurface(CAST(:g AS geometry))) "
                "ORDER BY ST_Area(c.geom) LIMIT 1"), {"g": geom_hex}).scalar()
        out["compound_id"] = compound_id
        if not ref and compound_id is not None:
            ref = conn.execute(text("SELECT ref FROM compounds WHERE id = :i"), {"i": compound_id}).scalar()
        out["compound_ref"] = ref
    if "street_code" in table.c:
        code = values.get("street_code")
        if not code and compound_id is not None:
            code = conn.execute(text("SELECT street_code FROM compounds WHERE id = :i"), {"i": compound_id}).scalar()
        if not code:
            code = conn.execute(text(
                "SELECT s.ref FROM streets s WHERE ST_Intersects(s.geom, ST_PointOnSurface(CAST(:g AS geometry))) "
                "ORDER BY ST_Area(s.geom) LIMIT 1"), {"g": geom_hex}).scalar()
        out["street_code"] = code
    return out


def _bind(layer: Layer, valid: ValidFeature, links: dict[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    """Column → SQL expression and the bind parameters for an INSERT/UPDATE of `valid`."""
    exprs: dict[str, str] = {}
    params: dict[str, Any] = {}
    values = {**valid.values, **links}
    for i, (name, value) in enumerate(values.items()):
        key = f"v{i}"
        if name in layer_columns(layer) and layer.field(name).type == "json":
            exprs[name] = f"CAST(:{key} AS jsonb)"
            params[key] = None if value is None else json.dumps(value, ensure_ascii=False)
        else:
            exprs[name] = f":{key}"
            params[key] = value
    if valid.extra is not None:
        exprs["extra"] = "CAST(:extra AS jsonb)"
        params["extra"] = json.dumps(valid.extra, ensure_ascii=False, default=str)
    if valid.geometry is not None:
        geom = "CAST(:geom AS geometry)"
        exprs["geom"] = f"ST_Multi({geom})" if layer.geometry.startswith("MULTI") else geom
        params["geom"] = _ewkb(valid.geometry)
    return exprs, params


def _ewkb(geom: shapely.Geometry) -> str:
    return shapely.to_wkb(shapely.set_srid(geom, STORAGE_SRID), hex=True, include_srid=True)


def _check_scope(principal: Principal, layer: Layer, row: Any) -> None:
    code = getattr(row, "street_code", None) if "street_code" in TABLES[layer.name].c else getattr(row, "ref", None)
    if not principal.in_scope(code):
        raise Forbidden(f"要素不在您的辖区 the feature would be outside your jurisdiction (street {code!r})")


def _locked(conn: Connection, layer: Layer, fid: int, principal: Principal, if_match: set[str] | None,
            columns: str = "t.version", part: str | None = None) -> Any:
    """The row (locked FOR UPDATE) when visible to the caller (and of the collection's geometry `part`) and its
    version matches If-Match."""
    scope, params = scope_sql(layer, principal)
    row = conn.execute(text(
        f"SELECT {columns} FROM {layer.name} t WHERE t.id = :fid" + (f" AND {scope}" if scope else "")
        + (f" AND {part}" if part else "") + " FOR UPDATE"), {**params, "fid": fid}).first()
    if row is None:
        raise NotFound(f"没有要素 no feature {fid} in {layer.name}")
    if if_match is not None and str(row.version) not in if_match:
        raise PreconditionFailed(f"要素已被他人修改 the feature changed meanwhile: current ETag \"{row.version}\"",
                                 headers={"ETag": f'"{row.version}"'})
    return row


def _feature_response(request: Request, conn: Connection, layer: Layer, fid: int, *, status: int,
                      feedback: list[dict[str, Any]] | None = None) -> Response:
    row = conn.execute(text(f"SELECT {feature_sql(layer, DEFAULT)}::text AS f, t.version FROM {layer.name} t "
                            f"WHERE t.id = :fid"), {"fid": fid}).one()
    body = row.f
    if feedback is not None:
        body = body[:-1] + ',"checks":' + json.dumps(feedback, ensure_ascii=False, default=str) + "}"
    headers = {"ETag": f'"{row.version}"', "Content-Crs": DEFAULT.header,
               "Location": f"{root_url(request)}/collections/{layer.name}/items/{fid}"}
    return Response(body, status_code=status, media_type=GEOJSON, headers=headers)


def rule_feedback(layer: Layer, fid: int) -> list[dict[str, Any]] | None:
    """The findings of the rules that judge this fire lane / aerial area (None when the checks are unavailable).

    Runs the layer's rule families on the feature's compound (no ledger writes, no check run recorded).
    """
    families = FEEDBACK_FAMILIES.get(layer.name)
    if families is None:
        return None
    try:
        from gis.checks.context import build_contexts
        from gis.checks.profiles import load_profile
        from gis.checks.runner import MissingChecksError, read_scope, run_contexts
    except ImportError:
        return None
    from gis.config import CheckSettings

    engine = db_engine()
    with engine.connect() as conn:
        row = conn.execute(text(f"SELECT ref, compound_ref FROM {layer.name} WHERE id = :i"), {"i": fid}).one()
    if row.compound_ref is None:
        return []
    try:
        profile = load_profile(CheckSettings().profile)
        layers, refs = read_scope(engine=engine, compound=row.compound_ref, profile=profile)
        contexts = build_contexts(layers, profile=profile, compounds=refs)
        findings = run_contexts(contexts, families=families)
    except MissingChecksError:
        return None
    except Exception:  # noqa: BLE001 - feedback is advisory: a failing check must not undo a valid edit
        log.exception("rule feedback failed for %s/%s", layer.name, fid)
        return None
    subject = {str(row.ref) if row.ref is not None else str(fid), str(fid)}
    mine = findings[(findings["subject_layer"] == layer.name) & findings["subject_ref"].astype(str).isin(subject)]
    keep = ["rule", "clause", "verdict", "strength", "severity", "measured", "required", "unit", "message",
            "message_en", "department", "other_refs"]
    records = mine[[c for c in keep if c in mine.columns]].to_dict(orient="records")
    return [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()} for r in records]


def _user_row_values(layer: Layer, row: Any) -> dict[str, Any]:
    return {name: getattr(row, name) for name in layer_columns(layer)}


@router.post("/collections/{collectionId}/items", status_code=201, summary="Create a feature",
             openapi_extra={"requestBody": _FEATURE_BODY})
async def create(request: Request, collectionId: CollectionId,  # noqa: N803
                 principal: CurrentUser) -> Response:
    from starlette.concurrency import run_in_threadpool

    view = get_view(collectionId)
    layer = view.layer
    _editable(layer, principal)
    body = await _json_body(request)
    valid = validate_feature(layer, body, crs=_input_crs(request))
    _check_part(view, valid)
    return await run_in_threadpool(_create, request, layer, valid, principal)


def _create(request: Request, layer: Layer, valid: ValidFeature, principal: Principal) -> Response:
    with transaction(user=principal.username, engine=db_engine()) as conn:
        links = derive_links(conn, layer, _ewkb(valid.geometry), valid.values)
        exprs, params = _bind(layer, valid, links)
        returning = "id, version" + (", street_code" if "street_code" in TABLES[layer.name].c else ", ref")
        row = conn.execute(text(
            f"INSERT INTO {layer.name} ({', '.join(exprs)}) VALUES ({', '.join(exprs.values())}) "
            f"RETURNING {returning}"), params).one()
        _check_scope(principal, layer, row)
    changed(layer.name)
    return _after_write(request, layer, row.id, status=201)


IfMatch = Annotated[str | None, Header(alias="If-Match", description="the feature's ETag")]


async def _edit_request(request: Request, collection_id: str, feature_id: str, principal: Principal,
                        if_match: str | None) -> tuple[Collection, int, set[str] | None, Any]:
    """The parts every replace/update starts from: an editable collection, the feature id, the If-Match tags,
    the body."""
    view = get_view(collection_id)
    _editable(view.layer, principal)
    fid = parse_fid(feature_id)
    tags = _if_match(request, if_match)
    return view, fid, tags, await _json_body(request)


def _check_part(view: Collection, valid: ValidFeature) -> None:
    """A feature written through one geometry part of a mixed layer keeps that part's geometry dimension."""
    if view.dimension is None or valid.geometry is None:
        return
    if int(shapely.get_dimensions(valid.geometry)) != view.dimension:
        raise BadRequest(f"geometry: {view.id} 只收 {view.geometry_type} collection {view.id!r} holds "
                         f"{view.geometry_type} geometries only; use {view.layer.name}_points/_lines/_polygons")


@router.put("/collections/{collectionId}/items/{featureId}", summary="Replace a feature (If-Match optional; a stale one is 412)",
            openapi_extra={"requestBody": _FEATURE_BODY})
async def replace(request: Request, collectionId: CollectionId, featureId: FeatureId,  # noqa: N803
                  principal: CurrentUser, if_match: IfMatch = None) -> Response:
    from starlette.concurrency import run_in_threadpool

    view, fid, tags, body = await _edit_request(request, collectionId, featureId, principal, if_match)
    valid = validate_feature(view.layer, body, crs=_input_crs(request))
    _check_part(view, valid)
    if valid.extra is None:
        valid.extra = {}
    return await run_in_threadpool(_update, request, view, fid, valid, principal, tags)


@router.patch("/collections/{collectionId}/items/{featureId}",
              summary="Update a feature (JSON merge patch of properties and/or geometry; If-Match optional)",
              openapi_extra={"requestBody": _PATCH_BODY})
async def update(request: Request, collectionId: CollectionId, featureId: FeatureId,  # noqa: N803
                 principal: CurrentUser, if_match: IfMatch = None) -> Response:
    from starlette.concurrency import run_in_threadpool

    view, fid, tags, body = await _edit_request(request, collectionId, featureId, principal, if_match)
    if not isinstance(body, dict):
        raise BadRequest("请求体应为对象 body must be a JSON object")
    return await run_in_threadpool(_patch, request, view, fid, body, principal, tags)


def _patch(request: Request, view: Collection, fid: int, body: dict[str, Any], principal: Principal,
           tags: set[str] | None) -> Response:
    layer = view.layer
    cols = ", ".join(f"t.{c}" for c in layer_columns(layer))
    crs = _input_crs(request)
    with transaction(user=principal.username, engine=db_engine()) as conn:
        row = _locked(conn, layer, fid, principal, tags, columns=f"t.version, t.extra, {cols}",
                      part=geometry_part_sql(view))
        base = _user_row_values(layer, row)
        valid = validate_feature(layer, {**body, "type": "Feature"}, crs=crs, require_geometry=False, base=base)
        _check_part(view, valid)
        if valid.extra is not None:
            merged = dict(row.extra or {})
            for k, v in valid.extra.items():
                if v is None:
                    merged.pop(k, None)
                else:
                    merged[k] = v
            why = check_extra(merged)
            if why is not None:  # each patch may be small while their sum is not
                raise Problems([f"extra: {why}"])
            valid.extra = merged
        _write_update(conn, layer, fid, valid, principal, body.get("properties") or {})
    changed(layer.name)
    return _after_write(request, layer, fid, status=200)


def _update(request: Request, view: Collection, fid: int, valid: ValidFeature, principal: Principal,
            tags: set[str] | None) -> Response:
    layer = view.layer
    with transaction(user=principal.username, engine=db_engine()) as conn:
        _locked(conn, layer, fid, principal, tags, part=geometry_part_sql(view))
        _write_update(conn, layer, fid, valid, principal, valid.values)
    changed(layer.name)
    return _after_write(request, layer, fid, status=200)


def _after_write(request: Request, layer: Layer, fid: int, *, status: int) -> Response:
    """The stored feature (CRS84) with its new ETag and, for lanes and aerial areas, the rule feedback."""
    feedback = rule_feedback(layer, fid)
    with transaction(engine=db_engine()) as conn:
        return _feature_response(request, conn, layer, fid, status=status, feedback=feedback)


def _write_update(conn: Connection, layer: Layer, fid: int, valid: ValidFeature,
                  principal: Principal, given: dict[str, Any]) -> None:
    links: dict[str, Any] = {}
    if valid.geometry is not None:
        # moved: derive the compound and street again unless the request named them
        named = {k: given.get(k) for k in ("compound_ref", "street_code") if given.get(k)}
        links = derive_links(conn, layer, _ewkb(valid.geometry), named)
    exprs, params = _bind(layer, valid, links)
    returning = "id, version" + (", street_code" if "street_code" in TABLES[layer.name].c else ", ref")
    row = conn.execute(text(
        f"UPDATE {layer.name} SET {', '.join(f'{k} = {v}' for k, v in exprs.items())} WHERE id = :fid "
        f"RETURNING {returning}"), {**params, "fid": fid}).one()
    _check_scope(principal, layer, row)


@router.delete("/collections/{collectionId}/items/{featureId}", status_code=204,
               summary="Delete a feature (If-Match optional; a stale one is 412)")
def delete(request: Request, collectionId: CollectionId, featureId: FeatureId,  # noqa: N803
           principal: CurrentUser, if_match: IfMatch = None) -> Response:
    view = get_view(collectionId)
    layer = view.layer
    _editable(layer, principal)
    fid = parse_fid(featureId)
    tags = _if_match(request, if_match)
    with transaction(user=principal.username, engine=db_engine()) as conn:
        _locked(conn, layer, fid, principal, tags, part=geometry_part_sql(view))
        conn.execute(text(f"DELETE FROM {layer.name} WHERE id = :fid"), {"fid": fid})
    changed(layer.name)
    return Response(status_code=204)
