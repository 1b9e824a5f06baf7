"""Cross-site request forgery guard: a cookie-authenticated write must come from this site's own pages."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from gis.config import auth_settings

#: Methods that change something; GET/HEAD/OPTIONS never do.
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def foreign_write(scope: Scope) -> str | None:
    """Why this request is a cross-site write riding on the login cookie (None when it is not one).

    Only cookie-authenticated writes are judged: a bearer token is never sent by a browser on its own. The
    browser's Sec-Fetch-Site must say same-origin (or none: typed by the user); without it, an Origin header
    must name this host (as the client reached it: Host, or the proxy's X-Forwarded-Host). A request with
    neither header comes from no browser that could be tricked into sending it.
    """
    if scope.get("method") not in UNSAFE or _header(scope, b"authorization"):
        return None
    cookies = _header(scope, b"cookie") or ""
    if f"{auth_settings().cookie_name}=" not in cookies:
        return None
    site = _header(scope, b"sec-fetch-site")
    if site is not None:
        return None if site in ("same-origin", "none") else f"Sec-Fetch-Site: {site}"
    origin = _header(scope, b"origin")
    if origin is None:
        return None
    hosts = {h for h in (_header(scope, b"host"), _header(scope, b"x-forwarded-host")) if h}
    if origin == "null" or urlsplit(origin).netloc not in hosts:
        return f"Origin: {origin}"
    return None


class CsrfMiddleware:
    """403 for a cookie-authenticated write from another site (`foreign_write`), before any route runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        reason = foreign_write(scope) if scope["type"] == "http" else None
        if reason is None:
            await self.app(scope, receive, send)
            return
        body = json.dumps({"code": "Forbidden", "description": f"跨站写请求被拒绝 cross-site write refused ({reason}); "
                           "use the site's own pages or an Authorization: Bearer token"},
                          ensure_ascii=False).encode()
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
