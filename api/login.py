"""Login, logout and who-am-I routes: bearer token for API clients, HttpOnly cookie for the web pages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.auth import CurrentUser, login, revoke_token
from api.bodies import InvalidText, parse_json, read_body
from api.errors import BadRequest
from api.loginguard import client_address
from gis.config import auth_settings

router = APIRouter(prefix="/auth", tags=["auth"])

_LOGIN_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": {
            "type": "object", "required": ["username", "password"],
            "properties": {"username": {"type": "string", "maxLength": 100},
                           "password": {"type": "string", "maxLength": 1000}}}},
        "application/x-www-form-urlencoded": {"schema": {
            "type": "object", "required": ["username", "password"],
            "properties": {"username": {"type": "string", "maxLength": 100},
                           "password": {"type": "string", "maxLength": 1000},
                           "next": {"type": "string"}}}},
    },
}


def _safe_next(value: str | None) -> str:
    """Only same-site relative paths are followed after a form login (no open redirect)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


async def _credentials(request: Request) -> tuple[str, str, str | None, bool]:
    body = await read_body(request, limit=10_000)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        data = parse_json(body or b"{}")
        if not isinstance(data, dict):
            raise BadRequest("请求体应为对象 body must be a JSON object")
        form = False
    else:
        data = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if any("\x00" in k or "\x00" in v for k, v in data.items()):
            raise InvalidText("表单含 NUL 字符 the form contains a NUL character")
        form = True
    username, password = data.get("username"), data.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
        raise BadRequest("需要用户名和密码 username and password are required")
    nxt = data.get("next") if isinstance(data.get("next"), str) else None
    return username[:100], password[:1000], nxt, form


@router.get("/login", response_class=HTMLResponse, summary="Login form (HTML)")
def login_form(request: Request, next: str | None = None) -> Response:  # noqa: A002 - OGC-style name
    """One login form for the whole site: the map pages' /login (which returns to `next`)."""
    return RedirectResponse("/login?next=" + quote(_safe_next(next), safe=""), status_code=303)


@router.post("/login", summary="Log in: bearer token (JSON) and a session cookie",
             openapi_extra={"requestBody": _LOGIN_BODY})
async def login_route(request: Request) -> Response:
    username, password, nxt, form = await _credentials(request)
    address = client_address(request)
    token, expires, principal = await run_in_threadpool(login, username, password, address=address)
    request.state.user = principal.username
    settings = auth_settings()
    payload: dict[str, Any] = {
        "access_token": token, "token_type": "bearer", "expires_at": expires.isoformat(),
        "expires_in": max(1, int((expires - datetime.now(UTC)).total_seconds())),
        "user": {"username": principal.username, "role": principal.role,
                 "street_codes": list(principal.street_codes)},
    }
    response: Response
    if form and "text/html" in request.headers.get("accept", ""):
        response = RedirectResponse(_safe_next(nxt), status_code=303)
    else:
        response = JSONResponse(payload)
    response.set_cookie(settings.cookie_name, token, max_age=int(settings.token_ttl_hours * 3600),
                        httponly=True, samesite="lax", secure=settings.cookie_secure, path="/")
    return response


@router.post("/logout", summary="Revoke the current token and clear the cookie")
def logout_route(principal: CurrentUser) -> Response:
    if principal.token_hash:
        revoke_token(principal.token_hash)
    response = JSONResponse({"logged_out": True})
    response.delete_cookie(auth_settings().cookie_name, path="/")
    return response


@router.get("/me", summary="The authenticated user")
def me_route(principal: CurrentUser) -> dict[str, Any]:
    return {"username": principal.username, "role": principal.role, "street_codes": list(principal.street_codes)}
