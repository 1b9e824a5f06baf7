"""`firelane user`: the HTTP service's users, roles and API tokens."""

from __future__ import annotations

import click

from api.cli_errors import FirelaneError
from api.cli_schema import ensure_schema
from api.errors import ApiError
from api.users import create_user, disable_user, list_users, user_token
from gis.terminal_safety import terminal_text


@click.group()
def user() -> None:
    """用户管理 users, roles and API tokens of the HTTP service."""


@user.command("add")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(
    ["admin", "planner", "street_office", "traffic_brigade", "demolition", "fire_brigade", "viewer", "property"]))
@click.option("--street", "streets", multiple=True, help="street code 街道代码 (street_office; repeatable)")
@click.option("--compound", "compounds", multiple=True, help="compound ref 小区编号 (property; repeatable)")
@click.option("--password", default=None, help="default: prompt")
@click.option("--display-name", default=None)
def user_add(username: str, role: str, streets: tuple[str, ...], compounds: tuple[str, ...], password: str | None,
             display_name: str | None) -> None:
    """Add a user (password hashed with argon2)."""
    ensure_schema()
    if password is None:
        password = click.prompt("密码 password", hide_input=True, confirmation_prompt=True)
    try:
        created = create_user(username, password, role=role, street_codes=list(streets), display_name=display_name,
                              compound_refs=list(compounds))
    except ApiError as exc:
        raise FirelaneError(exc.description) from exc
    click.echo(f"added 已添加 {created['username']} ({created['role']})")


@user.command("list")
def user_list() -> None:
    """List users with role, streets and state."""
    ensure_schema()
    for u in list_users():
        state = "active" if u["active"] else "disabled"
        scope = terminal_text(",".join(u["street_codes"] + u["compound_refs"]) or "-")
        click.echo(f"{terminal_text(u['username'])}\t{u['role']}\t{scope}\t{state}")


@user.command("disable")
@click.argument("username")
def user_disable(username: str) -> None:
    """Disable a user and revoke its tokens (kept for the audit trail)."""
    ensure_schema()
    try:
        disable_user(username)
    except ApiError as exc:
        raise FirelaneError(exc.description) from exc
    click.echo(f"disabled 已停用 {username}")


@user.command("token")
@click.argument("username")
@click.option("--name", default="cli", show_default=True, help="label of the token")
@click.option("--days", type=float, default=90, show_default=True, help="lifetime")
def user_token_cmd(username: str, name: str, days: float) -> None:
    """Issue an API token (printed once; only its hash is stored), e.g. for QGIS or GDAL."""
    ensure_schema()
    try:
        token, expires = user_token(username, name=name, ttl_hours=days * 24)
    except ApiError as exc:
        raise FirelaneError(exc.description) from exc
    click.echo(f"expires 过期 {expires}", err=True)
    click.echo(token)
