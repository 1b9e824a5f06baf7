"""OGC API Features Part 4: create, replace, update (merge patch) and delete features, with ETag/If-Match."""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

import shapely
from fastapi import APIRouter, Header, Request
from fastapi.responses import Response
from sqlalchemy import Connection, text
from sqlalchemy import exc as sa_exc
from starlette.concurrency import run_in_threadpool

from api.auth import CurrentUser, Principal
from api.bodies import json_body
from api.changefeed import changed
from api.collections import Collection, geometry_part_sql
from api.crs import DEFAULT, OutputCrs, parse_crs
from api.database import db_engine
from api.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    Unprocessable,
    UnsupportedMediaType,
)
from api.features import feature_sql, scope_sql
from api.ogc import GEOJSON, CollectionId, FeatureId, get_view, parse_fid, root_url
from api.validation import Problems, ValidFeature, validate_feature
from gis import scope
from gis.checks.context import build_contexts
from gis.checks.profiles import load_profile
from gis.checks.runner import MissingChecksError, read_scope, run_contexts
from gis.config import CheckSettings, api_settings
from gis.db import transaction
from gis.layers import STORAGE_SRID, Layer
from gis.limits import check_extra
from gis.placement import PlacementError, place
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


def _json_media_type(request: Request) -> None:
    """415 unless the body is declared JSON (application/json, geo+json, merge-patch+json, any +json): a form or
    text/plain body is what a cross-site page can send without asking."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        raise UnsupportedMediaType(f"请求体须为 JSON body must be sent as application/json, application/geo+json "
                                   f"or application/merge-patch+json, not {media or 'no Content-Type'!r}")


async def _json_body(request: Request) -> Any:
    _json_media_type(request)
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


def _input_crs(request: Request) -> OutputCrs:
    return parse_crs(request.headers.get("content-crs"), param="Content-Crs") if request.headers.get(
        "content-crs") else DEFAULT


def derive_links(conn: Connection, layer: Layer, geom_hex: str, values: dict[str, Any], principal: Principal,
                 *, stored_ref: str | None = None) -> dict[str, Any]:
    """compound_id / compound_ref / street_code of a feature as it will be stored (gis.placement: from its
    geometry and any compound_ref, whatever street_code the client claims), authorised for `principal`: 403 when
    a street it lands in is not the caller's, 422 naming compound_ref when the claim disagrees."""
    try:
        placement = place(conn, layer, geom_hex, compound_ref=values.get("compound_ref"),
                          street_code=values.get("street_code"), stored_ref=stored_ref)
    except PlacementError as exc:
        raise Unprocessable(f"{exc.field}: {exc.message}", problems=[str(exc)]) from None
    for code in sorted(placement.streets, key=str):
        if not principal.in_scope(code):
            raise Forbidden(f"要素不在您的辖区 the feature would be outside your jurisdiction (street {code!r})")
    return placement.links


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
        exprs["geom"] = f"ST_Multi({geom})" if layer.multi else geom
        params["geom"] = _ewkb(valid.geometry)
    return exprs, params


def _ewkb(geom: shapely.Geometry) -> str:
    return shapely.to_wkb(shapely.set_srid(geom, STORAGE_SRID), hex=True, include_srid=True)


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


def _returning(layer: Layer) -> str:
    """RETURNING list of a write: the feature as this statement wrote it (GeoJSON text, CRS84) and its version."""
    return f"t.id, t.version, {feature_sql(layer, DEFAULT)}::text AS f"


def _feature_response(request: Request, layer: Layer, row: Any, *, status: int,
                      feedback: list[dict[str, Any]] | None = None) -> Response:
    """The feature and ETag this request wrote (never a later version another client wrote meanwhile)."""
    body = row.f
    if feedback is not None:
        body = body[:-1] + ',"checks":' + json.dumps(feedback, ensure_ascii=False, default=str) + "}"
    headers = {"ETag": f'"{row.version}"', "Content-Crs": DEFAULT.header,
               "Location": f"{root_url(request)}/collections/{layer.name}/items/{row.id}"}
    return Response(body, status_code=status, media_type=GEOJSON, headers=headers)


def rule_feedback(layer: Layer, fid: int) -> list[dict[str, Any]] | None:
    """The findings of the rules that judge this fire lane / aerial area (None for a layer no rule judges).

    Runs the layer's rule families on the feature's compound (no ledger writes, no check run recorded).
    """
    families = FEEDBACK_FAMILIES.get(layer.name)
    if families is None:
        return None
    with scope.scoped(scope.SYSTEM):  # the rules judge the compound as it is, neighbours included
        return _rule_feedback(layer, fid, families)


def _rule_feedback(layer: Layer, fid: int, families: tuple[str, ...]) -> list[dict[str, Any]] | None:
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


def _ref_taken(exc: sa_exc.IntegrityError, layer: Layer, ref: Any, fid: int | None,
               principal: Principal) -> Exception:
    """A 409 saying which feature already uses the ref when the layer's unique index refused the write (two tabs
    saving one ref: the second one gets this), else the database error itself (mapped by api.errors)."""
    diag = getattr(exc.orig, "diag", None)
    if diag is None or diag.constraint_name != f"ix_{layer.name}_ref" or ref is None:
        return exc
    table = TABLES[layer.name].c
    cols = ["t.id", "t.ref"] + [f"t.{c}" for c in ("name", "compound_ref", "street_code") if c in table]
    scope, params = scope_sql(layer, principal)
    with db_engine().connect() as conn:
        other = conn.execute(text(
            f"SELECT {', '.join(cols)} FROM {layer.name} t WHERE t.ref = :ref AND t.id IS DISTINCT FROM :fid"
            + (f" AND {scope}" if scope else "") + " LIMIT 1"), {**params, "ref": ref, "fid": fid}).first()
    if other is None:  # the holder is outside the caller's jurisdiction: say so, name nothing of it
        return Conflict(f"编号 {ref!r} 已被您辖区外的{layer.label_zh}使用, 编号在本图层中唯一 ref {ref!r} is already used "
                        f"by a feature of {layer.name} outside your jurisdiction: refs are unique per layer",
                        ref=ref, collection=layer.name, used_by=None)
    used = dict(other._mapping)
    where = f", 小区 compound {used['compound_ref']}" if used.get("compound_ref") else ""
    used["href"] = f"/collections/{layer.name}/items/{used['id']}"
    return Conflict(f"编号 {ref!r} 已被{layer.label_zh} #{used['id']}{where} 使用, 编号在本图层中唯一 ref {ref!r} is "
                    f"already used by {layer.label_en.lower()} #{used['id']}{where}: refs are unique per layer",
                    ref=ref, collection=layer.name, used_by=used)


def _user_row_values(layer: Layer, row: Any) -> dict[str, Any]:
    return {name: getattr(row, name) for name in layer_columns(layer)}


@router.post("/collections/{collectionId}/items", status_code=201, summary="Create a feature",
             openapi_extra={"requestBody": _FEATURE_BODY})
async def create(request: Request, collectionId: CollectionId,  # noqa: N803
                 principal: CurrentUser) -> Response:
    view = get_view(collectionId)
    layer = view.layer
    _editable(layer, principal)
    body = await _json_body(request)
    valid = validate_feature(layer, body, crs=_input_crs(request))
    _check_part(view, valid)
    return await run_in_threadpool(_create, request, layer, valid, principal)


def _create(request: Request, layer: Layer, valid: ValidFeature, principal: Principal) -> Response:
    try:
        with transaction(user=principal.username, engine=db_engine()) as conn:
            links = derive_links(conn, layer, _ewkb(valid.geometry), valid.values, principal)
            exprs, params = _bind(layer, valid, links)
            row = conn.execute(text(
                f"INSERT INTO {layer.name} AS t ({', '.join(exprs)}) VALUES ({', '.join(exprs.values())}) "
                f"RETURNING {_returning(layer)}"), params).one()
    except sa_exc.IntegrityError as exc:
        raise _ref_taken(exc, layer, valid.values.get("ref"), None, principal) from exc
    changed(layer.name)
    return _after_write(request, layer, row, status=201)


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
    view, fid, tags, body = await _edit_request(request, collectionId, featureId, principal, if_match)
    if not isinstance(body, dict):
        raise BadRequest("请求体应为对象 body must be a JSON object")
    return await run_in_threadpool(_patch, request, view, fid, body, principal, tags)


def _stored_columns(layer: Layer, *more: str) -> str:
    """What an edit reads of the row it locks: version, geometry (EWKB hex) and compound_ref where there is one."""
    cols = ["t.version", "encode(ST_AsEWKB(t.geom), 'hex') AS geom_hex", *more]
    if "compound_ref" in TABLES[layer.name].c and "t.compound_ref" not in more:
        cols.append("t.compound_ref")
    return ", ".join(cols)


def _patch(request: Request, view: Collection, fid: int, body: dict[str, Any], principal: Principal,
           tags: set[str] | None) -> Response:
    layer = view.layer
    cols = [f"t.{c}" for c in layer_columns(layer)]
    crs = _input_crs(request)
    valid = None
    try:
        with transaction(user=principal.username, engine=db_engine()) as conn:
            row = _locked(conn, layer, fid, principal, tags, columns=_stored_columns(layer, "t.extra", *cols),
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
            written = _write_update(conn, layer, fid, valid, principal, body.get("properties") or {}, row)
    except sa_exc.IntegrityError as exc:
        raise _ref_taken(exc, layer, valid.values.get("ref") if valid else None, fid, principal) from exc
    changed(layer.name)
    return _after_write(request, layer, written, status=200)


def _update(request: Request, view: Collection, fid: int, valid: ValidFeature, principal: Principal,
            tags: set[str] | None) -> Response:
    layer = view.layer
    try:
        with transaction(user=principal.username, engine=db_engine()) as conn:
            stored = _locked(conn, layer, fid, principal, tags, columns=_stored_columns(layer),
                             part=geometry_part_sql(view))
            written = _write_update(conn, layer, fid, valid, principal, valid.values, stored)
    except sa_exc.IntegrityError as exc:
        raise _ref_taken(exc, layer, valid.values.get("ref"), fid, principal) from exc
    changed(layer.name)
    return _after_write(request, layer, written, status=200)


def _after_write(request: Request, layer: Layer, row: Any, *, status: int) -> Response:
    """The feature as written (CRS84) with its ETag and, for lanes and aerial areas, the rule feedback (run after
    the commit, on the compound as it is then)."""
    return _feature_response(request, layer, row, status=status, feedback=rule_feedback(layer, row.id))


def _write_update(conn: Connection, layer: Layer, fid: int, valid: ValidFeature,
                  principal: Principal, given: dict[str, Any], stored: Any) -> Any:
    """UPDATE the row with `valid`, its links derived again from the resulting geometry (the new one or the
    stored one) and any compound_ref the request names, authorised on where the feature ends up; returns the
    written row (`_returning`)."""
    geom_hex = _ewkb(valid.geometry) if valid.geometry is not None else stored.geom_hex
    links = derive_links(conn, layer, geom_hex, {k: given.get(k) for k in ("compound_ref", "street_code")},
                         principal, stored_ref=getattr(stored, "compound_ref", None))
    exprs, params = _bind(layer, valid, links)
    return conn.execute(text(
        f"UPDATE {layer.name} t SET {', '.join(f'{k} = {v}' for k, v in exprs.items())} WHERE t.id = :fid "
        f"RETURNING {_returning(layer)}"), {**params, "fid": fid}).one()


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
