"""HTTP methods on every path: OPTIONS and 405 answer with the full `Allow`, HEAD is a GET without its body."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.collections import COLLECTIONS

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(scope: Scope) -> set[str]:
    """Every method some route of the app answers on this path (empty: no route has the path); a read-only
    collection (hazards, changed through /hazards/{id}/transition) allows no writes."""
    methods: set[str] = set()
    collection = None
    for route in _leaf_routes(scope["app"].routes):
        match, child = route.matches(scope)
        if match == Match.NONE:
            continue
        methods |= set(route.methods)
        collection = collection or child.get("path_params", {}).get("collectionId")
    if not methods:
        return methods
    view = COLLECTIONS.get(collection) if collection else None
    if view is not None and not view.editable:
        methods -= WRITES
    if "GET" in methods:
        methods.add("HEAD")
    methods.add("OPTIONS")
    return methods


def _leaf_routes(routes: Iterable[Any]) -> Iterator[Any]:
    """The routes with methods, through FastAPI's included routers (the app includes them without a prefix)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _leaf_routes(inner.routes)
        elif getattr(route, "methods", None):
            yield route


def allow_header(methods: set[str]) -> str:
    return ", ".join(m for m in _ORDER if m in methods)


class MethodsMiddleware:
    """OPTIONS on any path is 204 with `Allow` (no credentials needed: it says what the resource supports, as
    the OpenAPI description does); HEAD runs the GET and sends its headers only (GDAL's /vsicurl sends HEAD
    before a tile); a method the path does not support is 405 with the whole `Allow`, not just one route's."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method not in ("OPTIONS", "HEAD"):  # the common path: the routes answer; a 405 gets the whole Allow
            await self.app(scope, receive, _full_allow_on_405(scope, send))
            return
        methods = allowed_methods(scope)
        if not methods:
            await self.app(scope, receive, send)
        elif method == "OPTIONS":
            await _empty(send, 204, {"allow": allow_header(methods)})
        else:
            await self.app({**scope, "method": "GET"}, receive, _headers_only(send))


async def _empty(send: Send, status: int, headers: dict[str, str], body: bytes = b"") -> None:
    raw = [(k.encode(), v.encode()) for k, v in headers.items()] + [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _full_allow_on_405(scope: Scope, send: Send) -> Send:
    async def sender(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] == 405:
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
            headers.append((b"allow", allow_header(allowed_methods(scope)).encode()))
            message = {**message, "headers": headers}
        await send(message)
    return sender


def _headers_only(send: Send) -> Send:
    async def sender(message: Message) -> None:
        if message["type"] == "http.response.start":
            await send(message)
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            await send({"type": "http.response.body", "body": b"", "more_body": False})
    return sender
