"""The one scoped query path: whose rows a database session may see, carried to PostgreSQL as session settings.

Row-level security (gis.jurisdiction) filters every layer, the ledger and its events by three settings:
`firelane.scope` (`all`, `streets` or `compounds`; anything else, unset included, sees nothing),
`firelane.streets` (comma-separated street codes) and `firelane.compounds` (a JSON array of compound refs: refs
are the users' own identifiers and may hold commas), plus `firelane.role`
for the record. The scope of the code running now lives in a context variable (set per request from the
principal, by the CLI for its commands, by the checks runner); every connection gis.db's engine hands out and every
read of the async pool (api.aio) carries it, set on the session before use (`apply`). Code that sets no scope
runs with none: it sees nothing.

Application filters (`filter_sql`) are still written for the planner's sake (an index on street_code) and for
tables without policies: they come from the same Scope.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from gis.schema import metadata


@dataclass(frozen=True)
class Scope:
    """What a session may see: everything (`all`), some streets, or some compounds (by ref)."""

    kind: str
    role: str = ""
    streets: tuple[str, ...] = ()
    compounds: tuple[str, ...] = ()

    def settings(self) -> dict[str, str]:
        """The session settings (GUCs) that carry this scope to the row-level security policies."""
        return {"firelane.scope": self.kind, "firelane.role": self.role,
                "firelane.streets": ",".join(self.streets),
                "firelane.compounds": json.dumps(list(self.compounds), ensure_ascii=False)}

    @property
    def unscoped(self) -> bool:
        return self.kind == "all"


#: Command-line tools, the checks runner, migrations' data steps: every row (an explicit choice, never a default).
SYSTEM = Scope(kind="all", role="system")
#: No scope: sees nothing (what a connection gets when the running code set none).
NOTHING = Scope(kind="none")

_current: ContextVar[Scope | None] = ContextVar("firelane_scope", default=None)


def for_streets(role: str, streets: tuple[str, ...] | list[str]) -> Scope:
    return Scope(kind="streets", role=role, streets=tuple(sorted(set(streets))))


def for_compounds(role: str, compounds: tuple[str, ...] | list[str]) -> Scope:
    return Scope(kind="compounds", role=role, compounds=tuple(sorted(set(compounds))))


def unscoped(role: str) -> Scope:
    return Scope(kind="all", role=role)


def current() -> Scope:
    """The scope of the code running now (NOTHING when none was set)."""
    return _current.get() or NOTHING


def enter(scope: Scope) -> None:
    """Set the scope for the rest of this context (a request's task, a CLI command)."""
    _current.set(scope)


@contextmanager
def scoped(scope: Scope) -> Iterator[Scope]:
    """Run a block with `scope`, restoring the previous one after it."""
    token = _current.set(scope)
    try:
        yield scope
    finally:
        _current.reset(token)


SET_SQL = ("SELECT set_config('firelane.scope', %(scope)s, false), set_config('firelane.role', %(role)s, false), "
           "set_config('firelane.streets', %(streets)s, false), set_config('firelane.compounds', %(compounds)s, false)")


def set_params(scope: Scope) -> dict[str, str]:
    s = scope.settings()
    return {"scope": s["firelane.scope"], "role": s["firelane.role"], "streets": s["firelane.streets"],
            "compounds": s["firelane.compounds"]}


def apply(dbapi_connection: Any, scope: Scope) -> None:
    """Put `scope` on a psycopg connection's session (committed at once, so no later rollback undoes it), unless
    it is already there; the connection remembers the scope it carries."""
    if getattr(dbapi_connection, "_firelane_scope", None) == scope:
        return
    forget(dbapi_connection)  # until the new scope is known to be there, the connection carries none we know of
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True  # one round trip, outside any transaction: nothing can roll it back
    try:
        with dbapi_connection.cursor() as cur:
            cur.execute(SET_SQL, set_params(scope))
    finally:
        dbapi_connection.autocommit = autocommit
    dbapi_connection._firelane_scope = scope


async def apply_async(conn: Any, scope: Scope) -> None:
    """`apply` for an autocommit psycopg AsyncConnection (the read pool's)."""
    if getattr(conn, "_firelane_scope", None) == scope:
        return
    forget(conn)
    await conn.execute(SET_SQL, set_params(scope))
    conn._firelane_scope = scope


@contextmanager
def unscoped_lookup(conn: Any) -> Iterator[None]:
    """Inside `conn`'s transaction, see every row for the block (deriving where a feature lands must not depend
    on what the caller may see), then the caller's scope again (so the write itself is checked against it)."""
    conn.execute(text("SELECT set_config('firelane.scope', 'all', true)"))
    try:
        yield
    finally:
        conn.execute(text("SELECT set_config('firelane.scope', :s, true)"), {"s": current().kind})


def forget(dbapi_connection: Any) -> None:
    """The connection's session state is unknown (a reset, a failed set): set the scope again before next use."""
    if hasattr(dbapi_connection, "_firelane_scope"):
        del dbapi_connection._firelane_scope


def filter_sql(layer_name: str, scope: Scope, *, alias: str = "t") -> tuple[str | None, dict[str, Any]]:
    """The application filter matching the row-level policy of a layer (None: no filter needed).

    Row-level security already enforces it; the explicit predicate lets the planner use the street_code index
    and keeps answers right on a database without policies.
    """
    if scope.kind == "all":
        return None, {}
    table = metadata.tables.get(layer_name)
    columns = table.c if table is not None else ()
    if scope.kind == "streets":
        params: dict[str, Any] = {"scope_streets": list(scope.streets)}
        if "street_code" in columns:
            return f"{alias}.street_code = ANY(:scope_streets)", params
        if layer_name == "streets":
            return f"{alias}.ref = ANY(:scope_streets)", params
        return (f"{alias}.compound_id IN (SELECT id FROM compounds WHERE street_code = ANY(:scope_streets))",
                params)
    if scope.kind == "compounds":
        params = {"scope_compounds": list(scope.compounds)}
        if layer_name == "compounds":
            return f"{alias}.ref = ANY(:scope_compounds)", params
        if layer_name == "streets":
            return f"{alias}.ref IN (SELECT street_code FROM compounds WHERE ref = ANY(:scope_compounds))", params
        if "compound_ref" in columns:
            return f"{alias}.compound_ref = ANY(:scope_compounds)", params
    return "false", {}
