"""Who runs the command line: the OS user, or the firelane user named by `--as USER`, as one Actor."""

from __future__ import annotations

import getpass

from sqlalchemy import Connection, text

from api.cli_errors import FirelaneError
from gis.campaign.actors import Actor
from gis.db import get_engine


class ActorRefused(FirelaneError):
    """`--as USER` names no firelane user, or a disabled one: one line, exit status 1."""


def os_user() -> str:
    """The OS user's name ("cli" where the process has no passwd entry, as in some containers)."""
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - getpass raises OSError or KeyError depending on the platform
        return "cli"


def cli_actor(username: str | None, *, conn: Connection | None = None) -> Actor:
    """Who acts for a command run `--as USERNAME` (None: the OS user).

    A firelane user acts with its role and jurisdiction (streets for a street office, compounds for a property
    company). A name given with --as that is no firelane user is refused, naming it; the OS user who is none is the
    operator of the database itself and acts as admin, recorded under that name. A disabled user is refused.
    """
    name = username or os_user()
    sql = text("SELECT role, street_codes, compound_refs, active FROM users WHERE username = :u")
    if conn is None:
        with get_engine().connect() as own:
            row = own.execute(sql, {"u": name}).first()
    else:
        row = conn.execute(sql, {"u": name}).first()
    if row is None:
        if username is not None:
            raise ActorRefused(f"没有用户 no user {username!r}: add it with `firelane user add`, or leave out --as "
                               "to act as the local operator")
        return Actor(username=name, role="admin")
    if not row.active:
        raise ActorRefused(f"用户已停用 user {name!r} is disabled")
    return Actor(username=name, role=row.role,
                 streets=tuple(row.street_codes or ()) if row.role == "street_office" else None,
                 compounds=tuple(row.compound_refs or ()) if row.role == "property" else None)
