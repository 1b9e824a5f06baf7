"""OGC API – Features routes: landing page, conformance, OpenAPI 3.0, collections, items (JSON and HTML)."""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, FastAPI, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from api.auth import CurrentUser, Principal
from api.collections import COLLECTIONS, LISTED, Collection, geometry_part_sql
from api.crs import CRS_LIST, STORAGE, parse_crs
from api.database import db_engine, hot_reads, read_connection
from api.errors import BadRequest, NotFound, wants_html
from api.features import ItemsQuery, item, items_page, layer_extent, parse_items_query, property_columns
from api.views import render
from gis.config import server_settings
from gis.layers import Layer

GEOJSON = "application/geo+json"
OPENAPI_30 = "application/vnd.oai.openapi+json;version=3.0"
SCHEMA_JSON = "application/schema+json"
CONFORMANCE: list[str] = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/update",
    "http://www.opengis.net/spec/ogcapi-features-5/1.0/conf/schemas",
]

router = APIRouter(tags=["OGC API Features"])
CollectionId = Annotated[str, Path(description="collection (layer) id", max_length=100)]
FeatureId = Annotated[str, Path(description="feature id", max_length=40)]


def root_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def check_format(request: Request) -> bool:
    """True for HTML; 400 for an unknown ?f=."""
    f = request.query_params.get("f")
    if f is not None and f.lower() not in ("json", "html", "geojson"):
        raise BadRequest(f"不支持的格式 unsupported f={f!r}; use json or html")
    return wants_html(request)


def get_view(collection_id: str) -> Collection:
    """The collection `collection_id` (a layer, or one geometry part of a mixed layer), or 404."""
    found = COLLECTIONS.get(collection_id)
    if found is None:
        raise NotFound(f"没有图层 no collection {collection_id!r}")
    return found


def get_collection(collection_id: str) -> Layer:
    """The layer a collection serves, or 404."""
    return get_view(collection_id).layer


def cached_json(request: Request, payload: Any, *, media_type: str = "application/json") -> Response:
    """JSON with an ETag (hash of the body), private caching revalidated on every use, and 304 on a matching
    If-None-Match."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    etag = '"' + hashlib.sha1(body).hexdigest()[:20] + '"'
    # no-cache, not max-age: a desktop client's disk cache (QGIS ignores Vary: Authorization) must ask again, so a
    # revoked token or a wrong password meets its 401 at once; the ETag keeps the revalidation a cheap 304
    headers = {"ETag": etag, "Cache-Control": "private, no-cache",
               "Vary": "Accept, Authorization, Cookie"}
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


# --- landing, conformance, API description ----------------------------------------------------------------------


def landing_document(request: Request) -> dict[str, Any]:
    root = root_url(request)
    return {
        "title": "firelane 消防车道与小区消防隐患整治",
        "description": "住宅小区消防安全地图与隐患台账 fire-lane and compound hazard mapping: OGC API – Features "
                       "(Parts 1, 2, 4), vector tiles, rule checks and the hazards ledger.",
        "links": [
            {"rel": "self", "type": "application/json", "title": "本页 this document", "href": f"{root}/"},
            {"rel": "alternate", "type": "text/html", "title": "网页 as HTML", "href": f"{root}/?f=html"},
            {"rel": "service-desc", "type": OPENAPI_30, "title": "OpenAPI 3.0", "href": f"{root}/api"},
            {"rel": "service-doc", "type": "text/html", "title": "API 文档 API documentation",
             "href": f"{root}/api.html"},
            {"rel": "conformance", "type": "application/json", "title": "符合性 conformance",
             "href": f"{root}/conformance"},
            {"rel": "data", "type": "application/json", "title": "图层 collections", "href": f"{root}/collections"},
            {"rel": "login", "type": "text/html", "title": "登录 log in", "href": f"{root}/login"},
        ],
    }


@router.get("/", summary="Landing page")
def landing(request: Request) -> Response:
    doc = landing_document(request)
    if request.query_params.get("f") is None and wants_html(request):
        return RedirectResponse("/map", status_code=303)  # a browser: the map pages (?f=html is this page)
    if check_format(request):
        return HTMLResponse(render(request, "landing.html", doc=doc))
    return JSONResponse(doc)


@router.get("/conformance", summary="Conformance classes")
def conformance(request: Request) -> Response:
    if check_format(request):
        return HTMLResponse(render(request, "conformance.html", classes=CONFORMANCE))
    return JSONResponse({"conformsTo": CONFORMANCE})


def _downgrade(node: Any) -> Any:
    """Rewrite the JSON-Schema-2020 constructs FastAPI emits into their OpenAPI 3.0 forms."""
    if isinstance(node, list):
        return [_downgrade(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _downgrade(v) for k, v in node.items()}
    for key in ("anyOf", "oneOf"):
        options = out.get(key)
        if isinstance(options, list) and any(o == {"type": "null"} for o in options):
            rest = [o for o in options if o != {"type": "null"}]
            del out[key]
            if len(rest) == 1:
                out.update(rest[0])
            else:
                out[key] = rest
            out["nullable"] = True
    if isinstance(out.get("type"), list):
        types = [t for t in out["type"] if t != "null"]
        if len(types) < len(out["type"]):
            out["nullable"] = True
        out["type"] = types[0] if len(types) == 1 else "string"
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if isinstance(out.get("examples"), list):
        examples = out.pop("examples")
        if examples:
            out["example"] = examples[0]
    for bound, flag in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), int | float) and not isinstance(out.get(bound), bool):
            out[flag] = out.pop(bound)
            out[bound] = True
    for drop in ("contentMediaType", "$schema", "prefixItems"):
        out.pop(drop, None)
    return out


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI description as OpenAPI 3.0.3 (OGC oas30), collection ids enumerated."""
    cached = getattr(app.state, "openapi30", None)
    if cached is not None:
        return cached
    doc = _downgrade(copy.deepcopy(app.openapi()))
    doc["openapi"] = "3.0.3"
    for ops in doc.get("paths", {}).values():
        for op in ops.values():
            for param in op.get("parameters", []) if isinstance(op, dict) else []:
                if param.get("name") == "collectionId":
                    param["schema"] = {"type": "string", "enum": sorted(COLLECTIONS)}
    doc.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
        "type": "http", "scheme": "bearer"}
    doc["security"] = [{"bearer": []}]
    app.state.openapi30 = doc
    return doc


@router.get("/api", summary="OpenAPI 3.0 description of this service", include_in_schema=True)
def api_description(request: Request) -> Response:
    doc = openapi_document(request.app)
    if request.query_params.get("f") == "html":
        return HTMLResponse(render(request, "api.html", doc=doc))
    return Response(json.dumps(doc, ensure_ascii=False), media_type=OPENAPI_30)


@router.get("/api.html", summary="API documentation (HTML)", response_class=HTMLResponse)
def api_html(request: Request) -> HTMLResponse:
    return HTMLResponse(render(request, "api.html", doc=openapi_document(request.app)))


# --- collections ------------------------------------------------------------------------------------------------


def collection_document(request: Request, view: Collection, principal: Principal, conn: Any) -> dict[str, Any]:
    root = root_url(request)
    layer = view.layer
    base = f"{root}/collections/{view.id}"
    return {
        "id": view.id,
        "title": view.title,
        "description": layer.description,
        "itemType": "feature",
        "links": [
            {"rel": "self", "type": "application/json", "title": "本图层 this collection", "href": base},
            {"rel": "alternate", "type": "text/html", "title": "网页 as HTML", "href": f"{base}?f=html"},
            {"rel": "items", "type": GEOJSON, "title": "要素 items", "href": f"{base}/items"},
            {"rel": "items", "type": "text/html", "title": "要素网页 items as HTML", "href": f"{base}/items?f=html"},
            {"rel": "describedby", "type": SCHEMA_JSON, "title": "要素模式 feature schema (JSON Schema, Part 5)",
             "href": f"{base}/schema"},
            # the schema of the GeoJSON encoding, Feature and all, under the spelling GDAL (3.6) reads: how
            # it types fields (a float 4.0 a Real, a date never seen on a page still a Date) before any page
            {"rel": "describedBy", "type": SCHEMA_JSON, "title": "GeoJSON 要素模式 GeoJSON feature schema",
             "href": f"{base}/schema/geojson"},
            {"rel": "http://www.opengis.net/def/rel/ogc/1.0/schema", "type": SCHEMA_JSON,
             "title": "要素模式 feature schema (JSON Schema)", "href": f"{base}/schema"},
            {"rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables", "type": SCHEMA_JSON,
             "title": "可查询属性 queryables", "href": f"{base}/queryables"},
            {"rel": "tiles", "type": "application/vnd.mapbox-vector-tile", "title": "矢量瓦片 vector tiles",
             "href": f"{root}/tiles/{layer.name}/{{z}}/{{x}}/{{y}}.mvt", "templated": True},
        ],
        "extent": layer_extent(conn, layer, principal),
        "crs": CRS_LIST,
        "storageCrs": STORAGE.uri,
        "editable": view.editable and principal.can_edit(layer.name),
    }


@router.get("/collections", summary="The layers (collections)")
def collections(request: Request, principal: CurrentUser) -> Response:
    html = check_format(request)
    with db_engine().connect() as conn:
        docs = [collection_document(request, view, principal, conn) for view in LISTED]
    root = root_url(request)
    payload = {
        "links": [
            {"rel": "self", "type": "application/json", "href": f"{root}/collections"},
            {"rel": "alternate", "type": "text/html", "href": f"{root}/collections?f=html"},
        ],
        "collections": docs,
        "crs": CRS_LIST,
    }
    if html:
        return HTMLResponse(render(request, "collections.html", collections=docs))
    return cached_json(request, payload)


@router.get("/collections/{collectionId}", summary="One layer's metadata")
def collection(request: Request, collectionId: CollectionId,  # noqa: N803 - OGC path parameter name
               principal: CurrentUser) -> Response:
    view = get_view(collectionId)
    layer = view.layer
    html = check_format(request)
    with db_engine().connect() as conn:
        doc = collection_document(request, view, principal, conn)
    if html:
        fields = [layer.field(n) for n in property_columns(layer) if _declared(layer, n)]
        return HTMLResponse(render(request, "collection.html", c=doc, fields=fields))
    return cached_json(request, doc)


def _declared(layer: Layer, name: str) -> bool:
    try:
        layer.field(name)
    except KeyError:
        return False
    return True


# --- items ------------------------------------------------------------------------------------------------------


def _param(name: str, description: str, schema: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema, **kw}


def items_parameters() -> list[dict[str, Any]]:
    """OpenAPI declarations of the standard /items parameters (limit bounds tell clients the page size)."""
    settings = server_settings()
    return [
        _param("limit", "page size, at least 1; above the maximum it is clamped to it", {"type": "integer", "minimum": 1,
               "maximum": settings.max_limit, "default": settings.default_limit}),
        _param("offset", "features to skip (paging)", {"type": "integer", "minimum": 0, "default": 0}),
        _param("bbox", "minx,miny,maxx,maxy in bbox-crs (CRS84 by default)",
               {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}},
               style="form", explode=False),
        _param("bbox-crs", "CRS of bbox", {"type": "string", "enum": CRS_LIST}),
        _param("crs", "CRS of the response geometries", {"type": "string", "enum": CRS_LIST}),
        _param("datetime", "instant or interval (a/b, ../b, a/..) on updated_at", {"type": "string"}),
        _param("f", "response format", {"type": "string", "enum": ["json", "html"]}),
    ]


class _Query:
    """A request's query parameters, parsed once, for the paging links (the same hrefs Starlette's
    URL.include_query_params / remove_query_params give: replaced keys move to the end)."""

    def __init__(self, query: str, **updates: Any) -> None:
        self.pairs = self._updated(parse_qsl(query, keep_blank_values=True), updates)

    @staticmethod
    def _updated(pairs: list[tuple[str, str]], updates: dict[str, Any]) -> list[tuple[str, str]]:
        return [(k, v) for k, v in pairs if k not in updates] + [(k, str(v)) for k, v in updates.items()]

    def href(self, base: str, *, drop: str | None = None, **updates: Any) -> str:
        pairs = [(k, v) for k, v in self.pairs if k != drop] if drop else self._updated(self.pairs, updates)
        return f"{base}?{urlencode(pairs)}" if pairs else base


def _link(href: str, rel: str, media: str, title: str) -> dict[str, str]:
    return {"href": href, "rel": rel, "type": media, "title": title}


async def items_response(request: Request, layer: Layer, q: ItemsQuery, principal: Principal, *,
                         html: bool, path: str | None = None, collection_id: str | None = None) -> Response:
    """Answer a parsed items query as GeoJSON (built in SQL, read on the event loop) or as an HTML table."""
    page = await items_page(await hot_reads(), layer, q, principal)
    url = request.url
    if path is not None:
        url = url.replace(path=path)
    query = _Query(url.query, limit=q.limit)
    base = str(url.replace(query=""))
    links = [
        _link(query.href(base, drop="f"), "self", GEOJSON, "本页 this page"),
        _link(query.href(base, f="html"), "alternate", "text/html", "网页 as HTML"),
        _link(f"{root_url(request)}/collections/{collection_id or layer.name}", "collection", "application/json",
              "图层 collection"),
    ]
    if page.has_next:
        links.append(_link(query.href(base, offset=q.offset + q.limit), "next", GEOJSON, "下一页 next page"))
    if q.offset > 0:
        links.append(_link(query.href(base, offset=max(0, q.offset - q.limit)), "prev", GEOJSON,
                           "上一页 previous page"))
    meta: dict[str, Any] = {"numberReturned": page.returned}
    if page.matched is not None:
        meta["numberMatched"] = page.matched
    meta["timeStamp"] = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    meta["links"] = links
    if html:
        fc = {"type": "FeatureCollection", "features": json.loads(page.features), **meta}
        columns = [c for c in property_columns(layer) if c not in ("extra", "created_at")]
        return HTMLResponse(render(request, "items.html", fc=fc, columns=columns, collection=layer.name,
                                   title=f"{layer.label_zh} {layer.label_en}"))
    body = '{"type":"FeatureCollection","features":' + page.features + "," + json.dumps(
        meta, ensure_ascii=False, separators=(",", ":"))[1:]
    return Response(body, media_type=GEOJSON, headers={"Content-Crs": q.crs.header})


@router.get("/collections/{collectionId}/items", summary="Features of a layer (GeoJSON)",
            openapi_extra={"parameters": items_parameters()},
            responses={200: {"content": {GEOJSON: {}}}})
async def items(request: Request, collectionId: CollectionId,  # noqa: N803
                principal: CurrentUser) -> Response:
    view = get_view(collectionId)
    html = check_format(request)
    q = parse_items_query(view.layer, request.query_params)
    part = geometry_part_sql(view)
    if part is not None:
        q.where.append(part)
        q.multi = True
    return await items_response(request, view.layer, q, principal, html=html, collection_id=view.id)


def parse_fid(value: str) -> int:
    try:
        fid = int(value)
    except ValueError:
        raise NotFound(f"没有要素 no feature {value!r}") from None
    if not 0 < fid < 2**63:
        raise NotFound(f"没有要素 no feature {value!r}")
    return fid


@router.get("/collections/{collectionId}/items/{featureId}", summary="One feature",
            openapi_extra={"parameters": [
                _param("crs", "CRS of the response geometry", {"type": "string", "enum": CRS_LIST}),
                _param("f", "response format", {"type": "string", "enum": ["json", "html"]})]},
            responses={200: {"content": {GEOJSON: {}}}})
def feature(request: Request, collectionId: CollectionId, featureId: FeatureId,  # noqa: N803
            principal: CurrentUser) -> Response:
    view = get_view(collectionId)
    layer = view.layer
    html = check_format(request)
    unknown = set(request.query_params) - {"crs", "f"}
    if unknown:
        raise BadRequest(f"未知查询参数 unknown query parameter(s): {', '.join(sorted(unknown))}")
    crs = parse_crs(request.query_params.get("crs"))
    with read_connection() as conn:
        found = item(conn, layer, parse_fid(featureId), principal, crs, part=geometry_part_sql(view))
    if found is None:
        raise NotFound(f"没有要素 no feature {featureId!r} in {view.id}")
    body, version = found
    headers = {"ETag": f'"{version}"', "Content-Crs": crs.header, "Vary": "Accept, Authorization, Cookie"}
    if not html and etag_matches(request.headers.get("if-none-match"), headers["ETag"], weak=True):
        return Response(status_code=304, headers=headers)
    if html:
        return HTMLResponse(render(request, "item.html", feature=json.loads(body), collection=view.id,
                                   title=f"{view.title} #{featureId}"), headers=headers)
    root = root_url(request)
    links = json.dumps([
        _link(f"{root}/collections/{view.id}/items/{featureId}", "self", GEOJSON, "本要素 this feature"),
        _link(f"{root}/collections/{view.id}", "collection", "application/json", "图层 collection"),
    ])
    return Response(body[:-1] + ',"links":' + links + "}", media_type=GEOJSON, headers=headers)


def etag_matches(header: str | None, etag: str, *, weak: bool) -> bool:
    """Whether an If-Match (strong comparison: a W/ tag never matches) or If-None-Match (weak comparison)
    header lists `etag` or `*` (RFC 9110 13.1.1, 13.1.2, 8.8.3.2)."""
    if not header:
        return False
    for part in header.split(","):
        tag = part.strip()
        if tag == "*":
            return True
        if tag.startswith("W/"):
            if not weak:
                continue
            tag = tag[2:]
        if tag == etag:
            return True
    return False
