"""Routes of the map pages (/map/...), the login page (/login) and the vendored static assets (/static/...)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pandas as pd
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from api.auth import ANONYMOUS, Principal, enter_scope, optional_principal
from api.errors import Forbidden, NotFound, Unauthorized, set_html_error_page
from gis.config import server_settings
from gis.db import get_engine
from web import basemap, exports, i18n, pages
from web.assets import STATIC_DIR
from web.basemap import choose_basemap, tile_hosts
from web.data import NotInScope
from web.i18n import parse_lang, set_lang, tr

router = APIRouter(tags=["pages"])

_HTML_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                 "Referrer-Policy": "same-origin"}


def _headers() -> dict[str, str]:
    """Page headers, with a Content-Security-Policy that lets the page reach only this server (and the
    configured basemap's tile host): a second line of defence behind the escaping."""
    return {**_HTML_HEADERS, "Content-Security-Policy": content_security_policy()}


def content_security_policy() -> str:
    tiles = " ".join(tile_hosts())
    return ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            f"img-src 'self' data: blob: {tiles}".rstrip() + "; connect-src 'self'; worker-src 'self' blob:; "
            "font-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; "
            "frame-ancestors 'self'")


def _preferences(request: Request) -> None:
    """The page language and basemap of this request: ?lang= / ?basemap= first, then the cookies."""
    q, c = request.query_params, request.cookies
    set_lang(parse_lang(q.get("lang")) or parse_lang(c.get(i18n.COOKIE)) or "zh")
    choose_basemap(q.get("basemap") or c.get(basemap.COOKIE))


def _login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse("/login?next=" + quote(target, safe=""), status_code=303)


def _viewer(request: Request) -> pages.Viewer | None:
    """The signed-in user as a page viewer (street offices limited to their streets), None when not signed in."""
    try:
        principal: Principal | None = optional_principal(request)
    except Unauthorized:
        return None  # expired or revoked cookie: sign in again
    if principal is None:
        if not server_settings().allow_anonymous:
            return None
        principal = ANONYMOUS
    enter_scope(principal)
    # property companies see the phone report page only: the map pages know streets, not compounds (yet)
    return pages.Viewer(username=principal.username, role=principal.role,
                        streets=tuple(principal.street_codes) if principal.scoped else
                        (() if principal.compound_bound else None))


def _page(request: Request, build: Callable[[pages.Viewer], str]) -> Response:
    viewer = _viewer(request)
    if viewer is None:
        return _login_redirect(request)
    _preferences(request)
    try:
        html = build(viewer)
    except NotInScope as exc:
        raise NotFound(f"{tr('未找到或不在辖区内', 'not found or outside your jurisdiction')}: {exc.args[0]}") from None
    except pages.OutOfJurisdiction as exc:
        raise Forbidden(f"{tr('不在您的辖区或权限内', 'outside your jurisdiction or role')}: {exc.args[0]}") from None
    return _html(request, html)


def _html(request: Request, html: str, status: int = 200) -> HTMLResponse:
    response = HTMLResponse(html, status_code=status, headers=_headers())
    chosen = parse_lang(request.query_params.get("lang"))
    if chosen:  # ?lang= is remembered, so every later page (and error page) speaks it
        response.set_cookie(i18n.COOKIE, chosen, max_age=365 * 86400, samesite="lax", path="/")
    return response


def error_page(request: Request, status: int, code: str, description: str) -> str:
    """A browser's error page in the pages' look: who is signed in, what happened, a way home."""
    _preferences(request)
    return pages.error_page(status=status, code=code, description=description, viewer=_viewer(request),
                            next_path=request.url.path + (f"?{request.url.query}" if request.url.query else ""))


set_html_error_page(error_page)


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_page(request: Request, next: str = "/map") -> HTMLResponse:  # noqa: A002 - the conventional name
    _preferences(request)
    safe = next if next.startswith("/") and not next.startswith("//") and "\\" not in next else "/map"
    return _html(request, pages.login_page(next_path=safe))


@router.get("/map", response_class=HTMLResponse, summary="地图首页 Map pages index")
def index(request: Request) -> Response:
    return _page(request, lambda v: pages.index_page(engine=get_engine(), viewer=v))


@router.get("/map/streets/{street_code}", response_class=HTMLResponse, summary="街道隐患热力图 Street heatmap")
def street(request: Request, street_code: str) -> Response:
    return _page(request, lambda v: pages.street_page(street_code, engine=get_engine(), viewer=v))


@router.get("/map/compounds/{ref:path}", response_class=HTMLResponse, summary="一小区一档 Compound file")
def compound(request: Request, ref: str) -> Response:
    return _page(request, lambda v: pages.compound_page(ref, engine=get_engine(), viewer=v))


@router.get("/map/traffic", response_class=HTMLResponse, summary="交警 停车冲突 Parking conflicts")
def traffic(request: Request, street: str | None = None) -> Response:
    return _page(request, lambda v: pages.traffic_page(engine=get_engine(), viewer=v, street=street))


def _download(request: Request, build: Callable[[pages.Viewer], bytes], media_type: str, filename: str) -> Response:
    viewer = _viewer(request)
    if viewer is None:
        return _login_redirect(request)
    _preferences(request)
    try:
        body = build(viewer)
    except pages.OutOfJurisdiction as exc:
        raise Forbidden(f"{tr('不在您的辖区或权限内', 'outside your jurisdiction or role')}: {exc.args[0]}") from None
    return Response(body, media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff"})


def _stalls(v: pages.Viewer, street: str | None) -> pd.DataFrame:
    engine = get_engine()
    return pages.traffic_list(pages.traffic_rows(engine=engine, viewer=v, street=street), engine=engine)


@router.get("/map/traffic.csv", summary="需清移的车位 Stalls to remove or move (CSV)")
def traffic_csv(request: Request, street: str | None = None) -> Response:
    return _download(request, lambda v: exports.traffic_csv(_stalls(v, street)), "text/csv; charset=utf-8",
                     "firelane-stalls.csv")


@router.get("/map/traffic.xlsx", summary="需清移的车位 Stalls to remove or move (XLSX)")
def traffic_xlsx(request: Request, street: str | None = None) -> Response:
    return _download(request, lambda v: exports.traffic_xlsx(_stalls(v, street)),
                     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "firelane-stalls.xlsx")


@router.get("/map/demolition.kml", summary="违建位置 Illegal structures (KML)")
def demolition_kml(request: Request) -> Response:
    return _download(request, lambda v: exports.demolition_kml(pages.demolition_rows(engine=get_engine(), viewer=v)[1]),
                     "application/vnd.google-earth.kml+xml", "firelane-structures.kml")


@router.get("/map/demolition.gpx", summary="违建位置 Illegal structures (GPX)")
def demolition_gpx(request: Request) -> Response:
    return _download(request, lambda v: exports.demolition_gpx(pages.demolition_rows(engine=get_engine(), viewer=v)[1]),
                     "application/gpx+xml", "firelane-structures.gpx")


@router.get("/map/demolition", response_class=HTMLResponse, summary="拆违清单 Illegal structures")
def demolition(request: Request) -> Response:
    return _page(request, lambda v: pages.demolition_page(engine=get_engine(), viewer=v))


@router.get("/map/draw", response_class=HTMLResponse, summary="绘制消防车道 Draw fire lanes")
def draw(request: Request) -> Response:
    return _page(request, lambda v: pages.draw_page(engine=get_engine(), viewer=v))


_STATIC_ROOT = STATIC_DIR.resolve()


@router.get("/static/{path:path}", include_in_schema=False)
def static(path: str) -> FileResponse:
    """The vendored Leaflet assets and firelane's page CSS/JS (no CDN: pages work offline)."""
    target = (_STATIC_ROOT / path).resolve()
    if not target.is_relative_to(_STATIC_ROOT) or not target.is_file() or target.name.startswith("."):
        raise NotFound("未找到 not found")
    return FileResponse(target, headers={"Cache-Control": "public, max-age=3600",
                                         "X-Content-Type-Options": "nosniff"},
                        media_type=_media_type(target))


def _media_type(path: Path) -> str | None:
    return {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
            ".svg": "image/svg+xml", ".png": "image/png", ".md": "text/plain; charset=utf-8",
            "": "text/plain; charset=utf-8"}.get(path.suffix)
