"""User management (admin only): create, list, change, disable users and issue API tokens; routes and CLI share it."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from api.auth import (
    ROLES,
    CurrentUser,
    Principal,
    forget_tokens,
    hash_password,
    issue_token,
    require_role,
)
from api.database import db_engine
from api.errors import BadRequest, Conflict, NotFound
from gis.text_rules import why_refused

Role = Literal["admin", "planner", "street_office", "traffic_brigade", "demolition", "fire_brigade", "viewer",
               "property"]
Username = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[\w.@\-]+$")]
StreetCode = Annotated[str, Field(min_length=1, max_length=12, pattern=r"^[0-9A-Za-z]+$")]
CompoundRef = Annotated[str, Field(min_length=1, max_length=200)]
MIN_PASSWORD = 8


def _check(role: str, street_codes: list[str] | tuple[str, ...], password: str | None,
           compound_refs: list[str] | tuple[str, ...] = ()) -> None:
    if role not in ROLES:
        raise BadRequest(f"未知角色 unknown role {role!r}; roles: {', '.join(ROLES)}")
    if role == "street_office" and not street_codes:
        raise BadRequest("街道办用户须指定街道代码 a street_office user needs at least one street code")
    if role == "property" and not compound_refs:
        raise BadRequest("物业用户须绑定小区 a property user needs at least one compound (compound_refs)")
    if compound_refs:
        with db_engine().connect() as conn:
            known = set(conn.execute(text("SELECT ref FROM compounds WHERE ref = ANY(:r)"),
                                     {"r": list(compound_refs)}).scalars())
        unknown = sorted(set(compound_refs) - known)
        if unknown:
            raise BadRequest(f"compound_refs: 没有小区 no compound {unknown[0]!r}")
    if password is not None and len(password) < MIN_PASSWORD:
        raise BadRequest(f"密码至少 {MIN_PASSWORD} 位 password must have at least {MIN_PASSWORD} characters")


def _check_names(username: str | None, display_name: str | None) -> None:
    """A user name is an identifier (one visible line: "admin" and "admin" with a zero-width joiner are not two
    users), a display name free text (gis.text_rules); the command line passes them unchecked by pydantic."""
    for field, value, identifier in (("username", username, True), ("display_name", display_name, False)):
        why = why_refused(value, identifier=identifier)
        if why is not None:
            raise BadRequest(f"{field}: {why}")


def _public(row: Any) -> dict[str, Any]:
    return {"username": row.username, "display_name": row.display_name, "role": row.role,
            "street_codes": list(row.street_codes or []), "compound_refs": list(row.compound_refs or []),
            "active": row.active,
            "created_at": row.created_at.isoformat() if row.created_at else None}


_COLUMNS = "id, username, display_name, role, street_codes, compound_refs, active, created_at"


def create_user(username: str, password: str, *, role: str, street_codes: list[str] | tuple[str, ...] = (),
                display_name: str | None = None, compound_refs: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Add a user with an argon2-hashed password; 409 when the name is taken. Property users (物业) are bound
    to `compound_refs`, which must exist."""
    _check(role, street_codes, password, compound_refs)
    _check_names(username, display_name)
    try:
        with db_engine().begin() as conn:
            row = conn.execute(text(
                f"INSERT INTO users (username, display_name, password_hash, role, street_codes, compound_refs) "
                f"VALUES (:u, :d, :p, :r, CAST(:s AS jsonb), CAST(:c AS jsonb)) RETURNING {_COLUMNS}"
            ), {"u": username, "d": display_name, "p": hash_password(password), "r": role,
                "s": json.dumps(sorted(set(street_codes))),
                "c": json.dumps(sorted(set(compound_refs)), ensure_ascii=False)}).one()
    except IntegrityError as exc:
        raise Conflict(f"用户已存在 user {username!r} already exists") from exc
    return _public(row)


def list_users() -> list[dict[str, Any]]:
    with db_engine().connect() as conn:
        rows = conn.execute(text(f"SELECT {_COLUMNS} FROM users ORDER BY username")).all()
    return [_public(r) for r in rows]


def get_user(username: str) -> dict[str, Any]:
    with db_engine().connect() as conn:
        row = conn.execute(text(f"SELECT {_COLUMNS} FROM users WHERE username = :u"), {"u": username}).first()
    if row is None:
        raise NotFound(f"用户不存在 no user {username!r}")
    return _public(row)


def update_user(username: str, *, role: str | None = None, street_codes: list[str] | None = None,
                active: bool | None = None, password: str | None = None,
                display_name: str | None = None, compound_refs: list[str] | None = None) -> dict[str, Any]:
    """Change a user's role, streets, compounds, password or active flag; disabling revokes every token."""
    current = get_user(username)
    new_role = role or current["role"]
    new_streets = street_codes if street_codes is not None else current["street_codes"]
    new_compounds = compound_refs if compound_refs is not None else current["compound_refs"]
    _check(new_role, new_streets, password, new_compounds)
    _check_names(None, display_name)
    sets = ["role = :r", "street_codes = CAST(:s AS jsonb)", "compound_refs = CAST(:c AS jsonb)"]
    args: dict[str, Any] = {"u": username, "r": new_role, "s": json.dumps(sorted(set(new_streets))),
                            "c": json.dumps(sorted(set(new_compounds)), ensure_ascii=False)}
    if active is not None:
        sets.append("active = :a")
        args["a"] = active
    if password is not None:
        sets.append("password_hash = :p")
        args["p"] = hash_password(password)
    if display_name is not None:
        sets.append("display_name = :d")
        args["d"] = display_name
    with db_engine().begin() as conn:
        row = conn.execute(text(f"UPDATE users SET {', '.join(sets)} WHERE username = :u RETURNING {_COLUMNS}"),
                           args).one()
        if active is False or password is not None:
            conn.execute(text("UPDATE api_tokens SET revoked = true WHERE user_id = :i"), {"i": row.id})
    forget_tokens()
    return _public(row)


def disable_user(username: str) -> dict[str, Any]:
    return update_user(username, active=False)


def user_token(username: str, *, name: str = "api", ttl_hours: float | None = None) -> tuple[str, str]:
    """A new API token for an active user; returns (token, expires_at ISO)."""
    with db_engine().connect() as conn:
        row = conn.execute(text("SELECT id, active FROM users WHERE username = :u"), {"u": username}).first()
    if row is None:
        raise NotFound(f"用户不存在 no user {username!r}")
    if not row.active:
        raise Conflict(f"用户已停用 user {username!r} is disabled")
    token, expires = issue_token(row.id, name=name, ttl_hours=ttl_hours)
    return token, expires.isoformat()


# --- routes -----------------------------------------------------------------------------------------------------


class UserIn(BaseModel):
    username: Username
    password: str = Field(min_length=MIN_PASSWORD, max_length=1000)
    role: Role
    street_codes: list[StreetCode] = Field(default_factory=list, max_length=1000)
    compound_refs: list[CompoundRef] = Field(default_factory=list, max_length=1000)
    display_name: str | None = Field(default=None, max_length=200)


class UserPatch(BaseModel):
    role: Role | None = None
    street_codes: list[StreetCode] | None = Field(default=None, max_length=1000)
    compound_refs: list[CompoundRef] | None = Field(default=None, max_length=1000)
    active: bool | None = None
    password: str | None = Field(default=None, min_length=MIN_PASSWORD, max_length=1000)
    display_name: str | None = Field(default=None, max_length=200)


class TokenIn(BaseModel):
    name: str = Field(default="api", max_length=100)
    ttl_hours: float = Field(default=24 * 90, gt=0, le=24 * 3650)


router = APIRouter(prefix="/users", tags=["users"])
UserName = Annotated[str, Path(min_length=1, max_length=100)]


def _admin(principal: CurrentUser) -> Principal:
    require_role(principal, {"admin"}, "管理用户 manage users")
    return principal


Admin = Annotated[Principal, Depends(_admin)]


@router.get("", summary="List users")
def list_route(_: Admin) -> list[dict[str, Any]]:
    return list_users()


@router.post("", status_code=201, summary="Create a user")
def create_route(body: UserIn, _: Admin) -> dict[str, Any]:
    return create_user(body.username, body.password, role=body.role, street_codes=body.street_codes,
                       display_name=body.display_name, compound_refs=body.compound_refs)


@router.get("/{username}", summary="One user")
def get_route(username: UserName, _: Admin) -> dict[str, Any]:
    return get_user(username)


@router.patch("/{username}", summary="Change role, streets, password or active flag")
def patch_route(username: UserName, body: UserPatch, _: Admin) -> dict[str, Any]:
    return update_user(username, role=body.role, street_codes=body.street_codes, active=body.active,
                       password=body.password, display_name=body.display_name, compound_refs=body.compound_refs)


@router.delete("/{username}", summary="Disable a user (kept for the audit trail) and revoke its tokens")
def delete_route(username: UserName, _: Admin) -> dict[str, Any]:
    return disable_user(username)


@router.post("/{username}/tokens", status_code=201, summary="Issue an API token for a user")
def token_route(username: UserName, body: TokenIn, _: Admin) -> dict[str, Any]:
    token, expires = user_token(username, name=body.name, ttl_hours=body.ttl_hours)
    return {"access_token": token, "token_type": "bearer", "expires_at": expires}
