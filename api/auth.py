"""Authentication (bearer tokens, login cookie, argon2 passwords) and the role/jurisdiction permission model."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, Request
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from api.changefeed import change_feed
from api.database import db_engine, hot_reads, read_connection
from api.errors import Forbidden, Unauthorized
from api.loginguard import hashing_slot, login_limiter
from gis import scope
from gis.config import auth_settings, server_settings
from gis.layers import LAYERS
from gis.signin_tables import ADMIN_TABLES

ROLES: tuple[str, ...] = (
    "admin", "planner", "street_office", "traffic_brigade", "demolition", "fire_brigade", "viewer", "property",
)

#: Layers each role may create/replace/update/delete (street offices only inside their streets).
EDIT_LAYERS: dict[str, frozenset[str]] = {
    "admin": frozenset(n for n, lay in LAYERS.items() if lay.editable),
    "planner": frozenset(n for n, lay in LAYERS.items() if lay.editable),
    "street_office": frozenset(n for n, lay in LAYERS.items() if lay.editable and n != "streets"),
    "traffic_brigade": frozenset({"parking", "obstructions"}),
    "demolition": frozenset({"illegal_structures"}),
    "fire_brigade": frozenset({"hydrants"}),
    "viewer": frozenset(),
    "property": frozenset(),
}

#: Roles that may start check runs (street offices for their own streets only).
CHECK_ROLES: frozenset[str] = frozenset({"admin", "planner", "street_office", "fire_brigade"})

#: Hazard transitions and the roles that may take each live in gis.campaign.lifecycle (the one role table).


@dataclass(frozen=True)
class Principal:
    """Who is asking: user name, role and, for street offices, the street codes they cover (for property
    companies, the compounds they are bound to)."""

    username: str
    role: str
    street_codes: tuple[str, ...] = ()
    user_id: int | None = None
    token_hash: str | None = field(default=None, repr=False)
    compound_refs: tuple[str, ...] = ()

    @property
    def compound_bound(self) -> bool:
        """Whether reads and writes are limited to `compound_refs` (property companies, 物业)."""
        return self.role == "property"

    @property
    def scope_key(self) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
        """What the caller's view depends on (cache keys): its streets and its compounds, None when unlimited."""
        return (self.street_codes if self.scoped else None, self.compound_refs if self.compound_bound else None)

    @property
    def scoped(self) -> bool:
        """Whether reads and writes are limited to `street_codes` (street offices)."""
        return self.role == "street_office"

    def can_edit(self, layer: str) -> bool:
        return layer in EDIT_LAYERS.get(self.role, frozenset())

    def in_scope(self, street_code: str | None) -> bool:
        return not self.scoped or (street_code is not None and street_code in self.street_codes)

    @property
    def db_scope(self) -> scope.Scope:
        """What the database lets this caller see (row-level security, gis.scope)."""
        if self.scoped:
            return scope.for_streets(self.role, self.street_codes)
        if self.compound_bound:
            return scope.for_compounds(self.role, self.compound_refs)
        return scope.unscoped(self.role)


def enter_scope(principal: Principal) -> Principal:
    """Make `principal`'s scope the database scope of the rest of this request (every connection it uses)."""
    scope.enter(principal.db_scope)
    return principal


ANONYMOUS = Principal(username="anonymous", role="viewer")

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("firelane-dummy-password")


def hash_password(password: str) -> str:
    """An argon2id hash of `password` (in one of the process's hashing slots)."""
    with hashing_slot():
        return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches; always spends one argon2 verification (no user-enumeration timing)."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def token_hash(token: str) -> str:
    """The stored form of a bearer token (SHA-256; tokens are 256-bit random, so no salt is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "fl_" + secrets.token_urlsafe(32)


# --- token lookup (with an in-process cache kept exact by the change feed) ---------------------------------------
# A token looked up less than token_cache_s (default 5 s) ago is answered without a database round trip, while
# this process's change feed (api.changefeed) is live and no user or token row has changed since the lookup began:
# revoking a token, disabling a user or changing a role or jurisdiction takes effect at once in every server
# process, whichever did it (the API, `firelane user`, psql). Only a token's expiry may be noticed up to
# token_cache_s late. While the feed is down nothing is cached. FIRELANE_AUTH_TOKEN_CACHE_S=0 looks every request up.

_cache: dict[str, tuple[tuple[int, ...], float, Principal]] = {}
_cache_lock = threading.Lock()


def forget_tokens() -> None:
    """Drop cached token lookups (after a user is disabled or a token revoked)."""
    with _cache_lock:
        _cache.clear()


def _signin_generations() -> tuple[int, ...] | None:
    """The change feed's generations of the sign-in tables (None while it is not live: cache nothing)."""
    if auth_settings().token_cache_s <= 0:
        return None
    return change_feed(db_engine()).generations(ADMIN_TABLES)


def cached_principal(token: str) -> Principal | None:
    """The caller of a token looked up less than `token_cache_s` ago with no user or token changed since (no
    database access), else None."""
    h = token_hash(token)
    with _cache_lock:
        hit = _cache.get(h)
    if hit is None or time.monotonic() - hit[1] >= auth_settings().token_cache_s:
        return None
    return hit[2] if hit[0] == _signin_generations() else None


def principal_for_token(token: str) -> Principal | None:
    """The active user a valid, unexpired, unrevoked token belongs to, else None."""
    hit = cached_principal(token)
    if hit is not None:
        return hit
    h = token_hash(token)
    now, generations = time.monotonic(), _signin_generations()
    with read_connection() as conn:
        row = conn.execute(text(_TOKEN_SQL), {"h": h}).first()
    return _remember(h, now, generations, row)


#: The active user of an unexpired, unrevoked token (by its hash): the owner's function (gis.signin_tables), the
#: sign-in tables being admin paths' only.
_TOKEN_SQL = "SELECT id, username, role, street_codes, compound_refs FROM firelane_token_user(:h)"


async def principal_for_token_async(token: str) -> Principal | None:
    """principal_for_token on the event loop's async read pool: no worker thread, and no wait behind the
    requests holding the SQLAlchemy pool (after a database restart they all reconnect at once)."""
    hit = cached_principal(token)
    if hit is not None:
        return hit
    h = token_hash(token)
    now, generations = time.monotonic(), _signin_generations()
    return _remember(h, now, generations, await (await hot_reads()).fetchone(_TOKEN_SQL, {"h": h}))


def _remember(h: str, now: float, generations: tuple[int, ...] | None, row: Sequence | None) -> Principal | None:
    """The principal of a token lookup's row (id, username, role, street codes, compound refs), cached with the
    sign-in tables' generations read before the lookup began (a change during it leaves the entry stale)."""
    if row is None:
        with _cache_lock:
            _cache.pop(h, None)
        return None
    user_id, username, role, streets, compounds = row
    principal = Principal(username=username, role=role, street_codes=tuple(streets or ()), user_id=user_id,
                          token_hash=h, compound_refs=tuple(compounds or ()))
    if generations is not None:
        with _cache_lock:
            if len(_cache) > 10_000:
                _cache.clear()
            _cache[h] = (generations, now, principal)
    return principal


def request_token(request: Request) -> str | None:
    """The bearer token from the Authorization header, else an API key (`X-API-Key: <token>`, for clients that
    can only add a fixed header), else the login cookie. Basic credentials are resolved by basic_principal."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic":
            return None
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("认证头格式应为 Authorization: Bearer <token> 或 Basic expected a bearer token or "
                               "Basic credentials")
        return value.strip()
    key = request.headers.get("x-api-key")
    if key and key.strip():
        return key.strip()
    return request.cookies.get(auth_settings().cookie_name) or None


#: A token that does not (or no longer) authenticates: 401 with a challenge that clients show (RFC 6750 3.1).
INVALID_TOKEN = {"WWW-Authenticate": 'Bearer realm="firelane", error="invalid_token", '
                                     'error_description="invalid, expired or revoked token"'}


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """(username, password) of an `Authorization: Basic` header (QGIS's Basic auth config, GDAL_HTTP_USERPWD),
    None for any other scheme; 401 when it cannot be decoded."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        username, sep, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        sep = ""
    if not sep or not username or not password:
        raise Unauthorized("Basic 认证格式无效 malformed Basic credentials",
                           headers={"WWW-Authenticate": 'Basic realm="firelane", charset="UTF-8"'})
    return username[:100], password[:1000]


_basic_key = secrets.token_bytes(32)
_basic_tokens: dict[bytes, str] = {}
_basic_lock = threading.Lock()


def basic_principal(username: str, password: str, *, address: str) -> Principal:
    """The user of Basic credentials. The first request signs in as /auth/login does (rate-limited, one argon2
    verification) and gets a token named `basic`; later requests with the same credentials reuse it (looked up
    as any token, so a disabled user or a revoked token is refused at once) until it expires, then sign in again.
    Credentials are keyed by an HMAC with a per-process random key, never kept in clear."""
    key = hmac.new(_basic_key, f"{username}\0{password}".encode(), hashlib.sha256).digest()
    with _basic_lock:
        token = _basic_tokens.get(key)
    principal = principal_for_token(token) if token is not None else None
    if principal is not None:
        return principal
    try:
        token, _, principal = login(username, password, address=address, name="basic")
    except Unauthorized as exc:
        raise Unauthorized(exc.description, headers={"WWW-Authenticate": 'Basic realm="firelane", charset="UTF-8"'}
                           ) from None
    with _basic_lock:
        if len(_basic_tokens) > 10_000:
            _basic_tokens.clear()
        _basic_tokens[key] = token
    return principal


def optional_principal(request: Request) -> Principal | None:
    """The caller, None when no credentials were sent; 401 for a bad token (blocking: may query the database)."""
    basic = basic_credentials(request)
    if basic is not None:
        principal = basic_principal(*basic, address=request.client.host if request.client else "unknown")
        request.state.user = principal.username
        return enter_scope(principal)
    token = request_token(request)
    if token is None:
        return None
    found = principal_for_token(token)
    if found is None:
        raise Unauthorized("令牌无效或已过期 invalid or expired token", headers=INVALID_TOKEN)
    request.state.user = found.username
    return enter_scope(found)


_lookups: dict[str, asyncio.Future[Principal | None]] = {}


async def _shared_lookup(token: str) -> Principal | None:
    """principal_for_token_async, one lookup per token at a time: when a token's cache entry expires under load,
    every request in flight with it waits for the same database round trip instead of each making one."""
    key = token_hash(token)
    loop = asyncio.get_running_loop()
    lookup = _lookups.get(key)
    if lookup is None or lookup.get_loop() is not loop:
        lookup = _lookups[key] = loop.create_task(principal_for_token_async(token))
        lookup.add_done_callback(lambda done: _lookups.pop(key) if _lookups.get(key) is done else None)
    return await asyncio.shield(lookup)  # a caller that goes away does not cancel the others' lookup


async def current_principal(request: Request) -> Principal:
    """FastAPI dependency: the authenticated caller (anonymous viewer only when allow_anonymous is set).

    A recently seen token is answered from the cache on the event loop; a miss goes to the async read pool, shared by
    the concurrent requests carrying the same token.
    """
    basic = basic_credentials(request)
    if basic is not None:
        address = request.client.host if request.client else "unknown"
        principal = await run_in_threadpool(basic_principal, *basic, address=address)
        request.state.user = principal.username
        return enter_scope(principal)
    token = request_token(request)
    if token is not None:
        found = cached_principal(token) or await _shared_lookup(token)
        if found is None:
            raise Unauthorized("令牌无效或已过期 invalid or expired token", headers=INVALID_TOKEN)
        request.state.user = found.username
        return enter_scope(found)
    if server_settings().allow_anonymous:
        request.state.user = ANONYMOUS.username
        return enter_scope(ANONYMOUS)
    raise Unauthorized()


def require_role(principal: Principal, roles: frozenset[str] | set[str], what: str) -> None:
    if principal.role not in roles:
        raise Forbidden(f"无权{what} role {principal.role!r} may not {what}")


# --- login ------------------------------------------------------------------------------------------------------


def login(username: str, password: str, *, address: str, ttl_hours: float | None = None,
          name: str = "login") -> tuple[str, datetime, Principal]:
    """Check the password (rate-limited) and issue a token; returns (token, expires_at, principal)."""
    login_limiter.hit(username, address)  # before any hashing: a throttled attempt costs no argon2
    with db_engine().connect() as conn:
        row = conn.execute(text(
            "SELECT id, username, role, street_codes, compound_refs, password_hash, active "
            "FROM firelane_login_user(:u)"), {"u": username}).first()
    with hashing_slot():
        ok = verify_password(row.password_hash if row is not None else None, password)
    if row is None or not ok or not row.active:
        raise Unauthorized("用户名或密码错误 wrong user name or password")
    login_limiter.reset(username)
    token, expires = issue_token(row.id, name=name, ttl_hours=ttl_hours)
    principal = Principal(username=row.username, role=row.role, street_codes=tuple(row.street_codes or ()),
                          user_id=row.id, token_hash=token_hash(token), compound_refs=tuple(row.compound_refs or ()))
    return token, expires, principal


def issue_token(user_id: int, *, name: str = "api", ttl_hours: float | None = None) -> tuple[str, datetime]:
    """A new random token for `user_id` (stored hashed); `ttl_hours` defaults to the login lifetime."""
    token = new_token()
    hours = auth_settings().token_ttl_hours if ttl_hours is None else ttl_hours
    expires = datetime.now(UTC) + timedelta(hours=hours)
    with db_engine().begin() as conn:
        conn.execute(text("SELECT firelane_issue_token(:u, :h, :n, :e)"),
                     {"u": user_id, "h": token_hash(token), "n": name[:100], "e": expires})
    return token, expires


def revoke_token(token_hash_value: str) -> None:
    with db_engine().begin() as conn:
        conn.execute(text("SELECT firelane_revoke_token(:h)"), {"h": token_hash_value})
    forget_tokens()


#: Route parameter type for the authenticated caller.
CurrentUser = Annotated[Principal, Depends(current_principal)]
