"""Structured JSON request logs and the request-size guard, as plain ASGI middleware (cheap per request)."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import PayloadTooLarge

access_log = logging.getLogger("firelane.access")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any `fields` passed in `extra`."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if fields:
            payload.update(fields)
        else:
            payload["message"] = record.getMessage()
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False, default=str)


def configure_logging(level: int = logging.INFO) -> None:
    """Send firelane's loggers to stderr as JSON lines (idempotent)."""
    for name in ("firelane.access", "firelane.api"):
        logger = logging.getLogger(name)
        if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(JsonFormatter())
            logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False


class AccessLogMiddleware:
    """Log method, path, status, duration_ms and user of every HTTP request as one JSON line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            state = scope.get("state") or {}
            access_log.info("request", extra={"fields": {
                "method": scope["method"],
                "path": scope["path"],
                "status": status["code"],
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "user": state.get("user"),
                **({"precondition": state["precondition"]} if "precondition" in state else {}),
                "client": (scope.get("client") or ("", 0))[0],
            }})


class BodyLimitMiddleware:
    """Refuse request bodies over `max_bytes` with 413 (declared Content-Length or counted while streaming)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers", ()):
            if key == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._too_large(send)
                return
        seen = {"n": 0}
        started = {"response": False}

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen["n"] += len(message.get("body", b""))
                if seen["n"] > self.max_bytes:
                    raise PayloadTooLarge(f"请求体过大 request body larger than {self.max_bytes} bytes")
            return message

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                started["response"] = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except PayloadTooLarge:
            if not started["response"]:
                await self._too_large(send)

    async def _too_large(self, send: Send) -> None:
        body = json.dumps({"code": "PayloadTooLarge",
                           "description": f"请求体过大 request body larger than {self.max_bytes} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

