"""Request bodies parsed once, bounded: size counted while streaming, JSON nesting depth, text PostgreSQL can store."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import BadRequest, PayloadTooLarge
from gis.config import limit_settings, server_settings

__all__ = ["InvalidText", "TooDeep", "UrlGuardMiddleware", "json_body", "parse_json", "read_body"]

_BAD_TEXT = re.compile(r"[\x00\ud800-\udfff]")


class TooDeep(BadRequest):
    code = "NestingTooDeep"


class InvalidText(BadRequest):
    code = "InvalidText"


async def read_body(request: Request, limit: int | None = None) -> bytes:
    """The body, refused with 413 as soon as the declared or streamed size passes `limit` (never buffered whole)."""
    limit = server_settings().max_upload_bytes if limit is None else limit
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"请求体过大 body of {int(declared):,} bytes > limit {limit:,} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"请求体过大 body larger than the limit of {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _max_depth(data: bytes, limit: int) -> int:
    """The bracket nesting of a JSON text (strings skipped), stopping once past `limit`: no parser recursion."""
    depth = deepest = 0
    # Only brackets and string delimiters matter; a regex finds them at C speed.
    for m in re.finditer(rb'"(?:[^"\\]|\\.)*"|[\[{]|[\]}]', data):
        tok = m.group(0)
        if tok[0] in b"[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif tok[0] in b"]}":
            depth -= 1
    return deepest


def _check_text(value: Any, path: str) -> None:
    """Refuse strings PostgreSQL cannot store (NUL) or UTF-8 cannot encode (lone surrogates), naming the field."""
    stack = [(value, path)]
    while stack:
        v, where = stack.pop()
        if isinstance(v, str):
            m = _BAD_TEXT.search(v)
            if m:
                what = "NUL 字符 a NUL character" if m.group(0) == "\x00" else \
                    f"孤立代理项 a lone surrogate (U+{ord(m.group(0)):04X})"
                raise InvalidText(f"{where or 'body'}: 文本含 {what} text contains {what.split(' ', 1)[1]}",
                                  field=where or None)
        elif isinstance(v, dict):
            for k, item in v.items():
                key_path = f"{where}.{k}" if where else str(k)
                if _BAD_TEXT.search(k):
                    raise InvalidText(f"{where or 'body'}: 键名含无效字符 a key contains a NUL or lone surrogate",
                                      field=where or None)
                stack.append((item, key_path))
        elif isinstance(v, list):
            stack.extend((item, f"{where}[{i}]") for i, item in enumerate(v))


def parse_json(body: bytes) -> Any:
    """A JSON body as Python values: 400 for invalid JSON, nesting deeper than FIRELANE_LIMIT_JSON_DEPTH, or text
    holding NUL characters or lone surrogates (each naming the field)."""
    limit = limit_settings().json_depth
    depth = _max_depth(body, limit)
    if depth > limit:
        raise TooDeep(f"JSON 嵌套过深 JSON nested deeper than FIRELANE_LIMIT_JSON_DEPTH={limit} (at least {depth})")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise BadRequest("请求体不是有效 JSON body is not valid JSON") from None
    _check_text(data, "")
    return data


async def json_body(request: Request, limit: int | None = None) -> Any:
    """`read_body` then `parse_json`."""
    return parse_json(await read_body(request, limit))


class UrlGuardMiddleware:
    """400 for a NUL character (%00) in the path or query string, before any route sees it (PostgreSQL cannot store
    NUL in text, and no firelane name or parameter holds one); names the parameter."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            field = _nul_field(scope)
            if field is not None:
                body = json.dumps({"code": "InvalidText", "field": field,
                                   "description": f"{field}: 含 NUL 字符 contains a NUL character (%00)"}).encode()
                await send({"type": "http.response.start", "status": 400,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def _nul_field(scope: Scope) -> str | None:
    if "\x00" in scope.get("path", ""):
        return "path"
    query = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if "\x00" in name or "\x00" in value:
                return name.replace("\x00", "\\0") or "query"
        return "query"
    return None
