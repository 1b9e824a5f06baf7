"""OAuth 2.0 token endpoint (RFC 6749) for desktop clients: QGIS's OAuth2 auth method, GDAL, scripts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.auth import basic_credentials, login
from api.errors import ApiError, TooManyRequests, Unauthorized

router = APIRouter(prefix="/auth", tags=["auth"])

_TOKEN_BODY = {
    "required": True,
    "content": {"application/x-www-form-urlencoded": {"schema": {
        "type": "object", "required": ["grant_type"],
        "properties": {
            "grant_type": {"type": "string", "enum": ["password", "client_credentials"]},
            "username": {"type": "string", "maxLength": 100, "description": "grant_type=password"},
            "password": {"type": "string", "maxLength": 1000, "description": "grant_type=password"},
            "client_id": {"type": "string", "maxLength": 100,
                          "description": "client_credentials: the user name (or in Basic auth)"},
            "client_secret": {"type": "string", "maxLength": 1000,
                              "description": "client_credentials: the password (or in Basic auth)"},
            "scope": {"type": "string", "description": "ignored: a token carries its user's role"},
        }}}},
}
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(Exception):
    """An RFC 6749 section 5.2 error response."""

    def __init__(self, error: str, description: str, status: int = 400, headers: dict[str, str] | None = None):
        super().__init__(description)
        self.error, self.description, self.status, self.headers = error, description, status, headers or {}

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.error, "error_description": self.description}, status_code=self.status,
                            headers={**_NO_STORE, **self.headers})


def _form(body: bytes, content_type: str) -> dict[str, str]:
    if content_type.split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "body must be application/x-www-form-urlencoded (RFC 6749 4.3.2)")
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise OAuthError("invalid_request", "body is not UTF-8") from None
    repeated = [k for k, v in parsed.items() if len(v) > 1]
    if repeated:
        raise OAuthError("invalid_request", f"parameter sent more than once: {', '.join(sorted(repeated))}")
    return {k: v[0] for k, v in parsed.items()}


def _credentials(request: Request, form: dict[str, str]) -> tuple[str, str, bool]:
    """(username, password, is_client_authentication) for the grant."""
    grant = form.get("grant_type")
    if not grant:
        raise OAuthError("invalid_request", "grant_type is required")
    if grant == "password":
        username, password = form.get("username", ""), form.get("password", "")
        if not username or not password:
            raise OAuthError("invalid_request", "username and password are required for grant_type=password")
        return username[:100], password[:1000], False
    if grant == "client_credentials":
        try:
            basic = basic_credentials(request)
        except Unauthorized:
            raise OAuthError("invalid_client", "malformed client credentials", 401,
                             {"WWW-Authenticate": 'Basic realm="firelane"'}) from None
        if basic is not None:
            return basic[0], basic[1], True
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if not client_id or not secret:
            raise OAuthError("invalid_client", "client_id and client_secret (or Basic auth) are required", 401,
                             {"WWW-Authenticate": 'Basic realm="firelane"'})
        return client_id[:100], secret[:1000], True
    raise OAuthError("unsupported_grant_type", f"grant_type {grant[:40]!r} is not supported; use password or "
                                               "client_credentials")


@router.post("/token", summary="OAuth 2.0 token endpoint (RFC 6749: password and client_credentials grants)",
             openapi_extra={"requestBody": _TOKEN_BODY},
             responses={400: {"description": "RFC 6749 error: invalid_request, invalid_grant, "
                                             "unsupported_grant_type"},
                        401: {"description": "RFC 6749 error: invalid_client"}})
async def token(request: Request) -> JSONResponse:
    """A bearer token for a user's name and password (grant_type=password, QGIS's "Resource Owner" flow) or for
    client credentials (grant_type=client_credentials: client_id = user name, client_secret = password, in the
    form or as HTTP Basic). The answer carries `expires_in`, so a client renews the token before it runs out."""
    body = await request.body()
    try:
        if len(body) > 10_000:
            raise OAuthError("invalid_request", "request too large")
        form = _form(body, request.headers.get("content-type", ""))
        username, password, client = _credentials(request, form)
        address = request.client.host if request.client else "unknown"
        try:
            issued, expires, principal = await run_in_threadpool(login, username, password, address=address,
                                                                 name="oauth2")
        except Unauthorized:
            if client:
                raise OAuthError("invalid_client", "wrong client_id or client_secret", 401,
                                 {"WWW-Authenticate": 'Basic realm="firelane"'}) from None
            raise OAuthError("invalid_grant", "wrong user name or password") from None
        except TooManyRequests as exc:
            raise OAuthError("invalid_request", "too many sign-in attempts, try again later", 429,
                             exc.headers) from None
    except OAuthError as exc:
        return exc.response()
    except ApiError as exc:  # anything else the sign-in refuses, in the RFC 6749 shape
        return OAuthError("invalid_request", exc.description, exc.status, exc.headers).response()
    request.state.user = principal.username
    payload: dict[str, Any] = {
        "access_token": issued,
        "token_type": "Bearer",
        "expires_in": max(1, int((expires - datetime.now(UTC)).total_seconds())),
        "scope": principal.role,
    }
    return JSONResponse(payload, headers=_NO_STORE)
