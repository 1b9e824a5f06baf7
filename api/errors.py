"""Typed API errors (pygeoapi style) and their mapping to HTTP status codes and JSON/HTML bodies."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import psycopg
import psycopg.errors as pge
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.views import render
from gis import jobs
from gis.campaign import campaigns as cp
from gis.campaign import field_errors as fe
from gis.campaign import lifecycle as lc
from gis.campaign import spotchecks as sc
from gis.pgcluster import ClusterError

log = logging.getLogger("firelane.api")


class ApiError(Exception):
    """An error the client can act on; `status` is the HTTP code, `code` a stable machine-readable name."""

    status: int = 500
    code: str = "ServerError"

    def __init__(self, description: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(description)
        self.description = description
        self.headers = headers or {}
        self.extra = extra


class BadRequest(ApiError):
    status, code = 400, "InvalidParameterValue"


class Unauthorized(ApiError):
    status, code = 401, "NotAuthenticated"

    def __init__(self, description: str = "需要登录 authentication required", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="firelane"'})
        super().__init__(description, **kw)


class Forbidden(ApiError):
    status, code = 403, "Forbidden"


class NotFound(ApiError):
    status, code = 404, "NotFound"


class Conflict(ApiError):
    status, code = 409, "Conflict"


class PreconditionFailed(ApiError):
    status, code = 412, "PreconditionFailed"


class PayloadTooLarge(ApiError):
    status, code = 413, "PayloadTooLarge"


class UnsupportedMediaType(ApiError):
    status, code = 415, "UnsupportedMediaType"


class Unprocessable(ApiError):
    status, code = 422, "UnprocessableFeature"


class PreconditionRequired(ApiError):
    status, code = 428, "PreconditionRequired"


class TooManyRequests(ApiError):
    status, code = 429, "TooManyRequests"


#: Seconds a 503 asks the client to wait (a database back from a restart answers within them; the soak measures it).
RETRY_AFTER_S = 5


class ServiceUnavailable(ApiError):
    status, code = 503, "ServiceUnavailable"

    def __init__(self, description: str, **kw: Any) -> None:
        kw["headers"] = {"Retry-After": str(RETRY_AFTER_S), **(kw.get("headers") or {})}  # every 503 says when to come back
        super().__init__(description, **kw)


#: Domain errors (raised by gis/ without any HTTP in them) → HTTP status and code: the one table.
DOMAIN_ERRORS: dict[type[Exception], tuple[int, str]] = {
    lc.HazardNotFound: (404, "NotFound"),
    lc.InvalidField: (400, "InvalidParameterValue"),
    lc.RoleRefused: (403, "Forbidden"),
    lc.TransitionRefused: (409, "Conflict"),
    lc.StaleVersion: (412, "PreconditionFailed"),
    fe.InvalidInput: (400, "InvalidParameterValue"),
    fe.NotPermitted: (403, "Forbidden"),
    fe.NotVisible: (404, "NotFound"),
    fe.StateConflict: (409, "Conflict"),
    fe.TooLarge: (413, "PayloadTooLarge"),
    fe.UnsupportedMedia: (415, "UnsupportedMediaType"),
    fe.RateLimited: (429, "TooManyRequests"),
    cp.CampaignError: (400, "InvalidParameterValue"),
    cp.CalendarError: (400, "InvalidParameterValue"),
    cp.CampaignNotFound: (404, "NotFound"),
    sc.SpotCheckNotFound: (404, "NotFound"),
    cp.CompoundNotFound: (404, "NotFound"),
    jobs.JobError: (400, "InvalidParameterValue"),
    jobs.UnknownJob: (404, "NotFound"),
}


def domain_status(exc: Exception) -> tuple[int, str]:
    """The status and code of a domain error (the most specific entry of DOMAIN_ERRORS)."""
    for cls in type(exc).__mro__:
        if cls in DOMAIN_ERRORS:
            return DOMAIN_ERRORS[cls]
    return 400, "InvalidParameterValue"


def wants_html(request: Request) -> bool:
    """A browser asked (Accept: text/html before any JSON type) or the client said ?f=html."""
    f = request.query_params.get("f")
    if f:
        return f.lower() == "html"
    accept = request.headers.get("accept", "")
    if "text/html" not in accept:
        return False
    html_at = accept.find("text/html")
    json_at = min((i for i in (accept.find("json"),) if i >= 0), default=len(accept))
    return html_at < json_at


#: renders a browser's error page in the map pages' look (status, code, description) → HTML; set by api.web_routes
HtmlErrorPage = Callable[[Request, int, str, str], str]
_html_error_page: list[HtmlErrorPage] = []


def set_html_error_page(render_page: HtmlErrorPage) -> None:
    """Browsers' error pages come from `render_page` (the map pages' look) instead of the API's plain page."""
    _html_error_page[:] = [render_page]


def error_response(request: Request, status: int, code: str, description: str,
                   headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> Response:
    """The error as JSON ({code, description}) or, for browsers, as an escaped HTML page."""
    if wants_html(request):
        if _html_error_page:
            try:
                body = _html_error_page[0](request, status, code, description)
            except Exception:  # noqa: BLE001 - an error page must not fail: fall back to the plain one
                log.exception("error page failed on %s", request.url.path)
            else:
                return HTMLResponse(body, status_code=status, headers=headers)

        body = render(request, "error.html", status=status, code=code, description=description,
                      login=status == 401)
        return HTMLResponse(body, status_code=status, headers=headers)
    payload: dict[str, Any] = {"code": code, "description": description}
    if extra:
        payload.update(extra)
    return JSONResponse(payload, status_code=status, headers=headers)


_DB_DOWN = "数据库暂不可用, 请稍后重试 database unavailable, try again shortly"

#: SQLSTATE classes and codes that say the database cannot serve now, whatever the request: connection exception
#: (08), insufficient resources (53), operator intervention (57: shutdown, crash, cannot connect now), system
#: error (58); a transaction rolled back for a deadlock or serialization (40), a lock not available (55P03),
#: an idle transaction or session killed (25P03), a read-only transaction (25006: a standby after a failover).
OUTAGE_SQLSTATE_CLASSES = ("08", "40", "53", "57", "58")
OUTAGE_SQLSTATES = ("25P03", "25006", "55P03")


def _db_error(exc: sa_exc.DBAPIError) -> tuple[int, str, str]:
    """Status, code and message for a database error: connection trouble → 503, bad data → 400/409."""
    orig = getattr(exc, "orig", None)
    disconnected = isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError) or exc.connection_invalidated
    return _driver_error(orig, disconnected=disconnected)


def _outage(orig: BaseException | None) -> bool:
    """A driver error that says the database cannot serve now (not that this request was wrong): an operational
    or interface error (connection lost, refused, closed; the pool's timeouts), an outage SQLSTATE, or a client-side
    failure with no SQLSTATE at all (the server never answered)."""
    if isinstance(orig, psycopg.OperationalError | psycopg.InterfaceError):
        return True
    if not isinstance(orig, psycopg.Error):
        return False
    state = orig.sqlstate or ""
    if state:
        return state[:2] in OUTAGE_SQLSTATE_CLASSES or state in OUTAGE_SQLSTATES
    return not isinstance(orig, psycopg.ProgrammingError | psycopg.DataError | psycopg.IntegrityError
                          | psycopg.NotSupportedError)


def _driver_error(orig: BaseException | None, *, disconnected: bool) -> tuple[int, str, str]:
    """Status, code and message for a psycopg error (raised directly by api.aio or wrapped by SQLAlchemy)."""
    if disconnected or _outage(orig):
        if isinstance(orig, pge.QueryCanceled):
            return 503, "Timeout", "查询超时 query took too long"
        return 503, "ServiceUnavailable", _DB_DOWN
    if isinstance(orig, pge.UniqueViolation):
        return 409, "Conflict", f"与已有要素冲突 conflicts with an existing feature: {orig.diag.message_detail or orig}"
    if isinstance(orig, pge.ForeignKeyViolation):
        return 409, "Conflict", f"引用冲突 reference conflict: {orig.diag.message_detail or orig}"
    if isinstance(orig, pge.InsufficientPrivilege):  # row-level security refused a row outside the caller's scope
        return 403, "Forbidden", "不在您的辖区 outside your jurisdiction: the database refused the row"
    if isinstance(orig, pge.ExclusionViolation):
        return 409, "Conflict", f"与已有要素冲突 conflicts with an existing feature: {orig.diag.message_primary}"
    if isinstance(orig, pge.CheckViolation):
        return 400, "InvalidValue", f"数值不符合约束 value violates a constraint: {orig.diag.constraint_name}"
    if isinstance(orig, pge.DataError):
        return 400, "InvalidValue", f"数据无效 invalid data: {str(orig).splitlines()[0]}"
    return 500, "ServerError", "服务器内部错误 internal server error"


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc`, the members of an exception group (a task group in a middleware), and what each was raised from or
    while handling, breadth first, each once."""
    out: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo and len(out) < 32:
        e = todo.pop(0)
        if e is None or any(e is seen for seen in out):
            continue
        out.append(e)
        if isinstance(e, BaseExceptionGroup):
            todo.extend(e.exceptions)
        todo.extend((e.__cause__, e.__context__))
    return out


def error_status(exc: BaseException) -> tuple[int, str, str, dict[str, str] | None] | None:
    """The one table of errors the app answers itself, wherever they were raised (a route, a dependency such
    as the token lookup, a middleware, a response body): (status, code, message, headers), or None for a defect
    (500). An error is judged by the first link of its chain (`_chain`) that says something: a database error
    raised from, or while handling, another still says the database."""
    for e in _chain(exc):
        if isinstance(e, ApiError):
            return e.status, e.code, e.description, e.headers or None
        if isinstance(e, sa_exc.TimeoutError):  # SQLAlchemy's pool: every connection busy
            return 503, "ServiceUnavailable", "服务繁忙 server busy: no database connection free", {"Retry-After": "2"}
        if isinstance(e, sa_exc.DBAPIError):
            status, code, text = _db_error(e)
        elif isinstance(e, psycopg.Error):
            status, code, text = _driver_error(e, disconnected=False)
        elif isinstance(e, sa_exc.PendingRollbackError | ClusterError):
            # a connection lost inside a transaction that was used again / the managed cluster not running
            status, code, text = 503, "ServiceUnavailable", _DB_DOWN
        else:
            continue
        if status == 500:
            continue  # e.g. a programming error raised while handling an outage: the outage may still be found
        return status, code, text, {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
    return None


def install_handlers(app: FastAPI) -> None:
    """Map ApiError, request validation, HTTP and database errors to clean JSON/HTML responses."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return error_response(request, exc.status, exc.code, exc.description, exc.headers, exc.extra)

    async def _domain_error(request: Request, exc: Exception) -> Response:
        status, code = domain_status(exc)
        field = getattr(exc, "field", None)
        message = getattr(exc, "message", str(exc))
        if field and field not in message:
            message = f"{field}: {message}"
        extra = {k: v for k, v in {"field": field, **getattr(exc, "extra", {})}.items() if v is not None}
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, fe.RateLimited) else None
        return error_response(request, status, code, message, headers, extra)

    app.add_exception_handler(lc.WorkflowError, _domain_error)
    app.add_exception_handler(cp.CampaignError, _domain_error)
    app.add_exception_handler(jobs.JobError, _domain_error)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
            parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return error_response(request, 400, "InvalidParameterValue",
                              "参数无效 invalid parameters: " + "; ".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        codes = {404: "NotFound", 405: "MethodNotAllowed", 401: "NotAuthenticated", 403: "Forbidden"}
        text = str(exc.detail) if exc.detail else codes.get(exc.status_code, "error")
        if exc.status_code == 404 and text == "Not Found":
            text = "未找到 not found"
        return error_response(request, exc.status_code, codes.get(exc.status_code, "HTTPError"), text,
                              getattr(exc, "headers", None))

    def database_response(request: Request, exc: Exception) -> Response:
        found = error_status(exc)
        if found is None:
            log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
            return error_response(request, 500, "ServerError", "服务器内部错误 internal server error")
        status, code, text, headers = found
        if status >= 500:
            log.warning("database error on %s %s: %s", request.method, request.url.path,
                        " <- ".join(type(e).__name__ for e in _chain(exc)))
        return error_response(request, status, code, text, headers)

    @app.exception_handler(sa_exc.DBAPIError)
    async def _dbapi(request: Request, exc: sa_exc.DBAPIError) -> Response:
        return database_response(request, exc)

    @app.exception_handler(psycopg.Error)
    async def _psycopg(request: Request, exc: psycopg.Error) -> Response:
        return database_response(request, exc)

    @app.exception_handler(sa_exc.TimeoutError)
    async def _pool_timeout(request: Request, exc: sa_exc.TimeoutError) -> Response:
        return database_response(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # Starlette's outermost handler: errors no inner handler took, and every error raised in a middleware
        if isinstance(exc, RecursionError):  # input nested past what a parser or walker could follow
            return error_response(request, 400, "NestingTooDeep", "输入嵌套过深 input nested too deeply")
        if isinstance(exc, UnicodeEncodeError) or isinstance(exc.__cause__, UnicodeEncodeError):  # a lone surrogate
            return error_response(request, 400, "InvalidText", "文本含无效字符 text holds a character that cannot be "
                                  "encoded (a lone surrogate?)")
        return database_response(request, exc)
