"""The one scoped query path: whose rows a database session may see, carried to PostgreSQL as session settings.

Row-level security (gis.jurisdiction) filters every layer, the ledger and its events by three settings:
`firelane.scope` (`all`, `streets` or `compounds`; anything else, unset included, sees nothing),
`firelane.streets` (comma-separated street codes) and `firelane.compounds` (a JSON array of compound refs: refs
are the users' own identifiers and may hold commas), plus `firelane.role`
for the record. The scope of the code running now lives in a context variable (set per request from the
principal, by the CLI for its commands, by the checks runner); every connection gis.db's engine hands out and every
read of the async pool (api.aio) carries it, set on the session before use (`apply`). Code that sets no scope
runs with none: it sees nothing.

Application filters (`filter_sql`) are written for the planner's sake (an index on street_code): they come from the
same Scope and the same table list as the policies. Readers take them from here, never write their own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from gis.jurisdiction import SCOPED_TABLES, parent_of
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


async def fetchone_async(conn: Any, scope: Scope, sql: str, params: Any) -> tuple[Any, ...] | None:
    """The first row of one read on an autocommit psycopg AsyncConnection (the read pool's) under `scope`: the read
    alone when the connection carries `scope` already, else the set and the read in one round trip (a pipeline, one
    implicit transaction: a failed set runs no read, a failed read undoes the set, and until both succeed the
    connection carries no scope we know of)."""
    if getattr(conn, "_firelane_scope", None) == scope:
        return await (await conn.execute(sql, params)).fetchone()
    forget(conn)
    async with conn.pipeline():
        await conn.execute(SET_SQL, set_params(scope))
        cur = await conn.execute(sql, params)
    conn._firelane_scope = scope
    return await cur.fetchone()


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


def filter_sql(table: str, scope: Scope, *, alias: str = "t", key: str = "scope") -> tuple[str | None, dict[str, Any]]:
    """The application filter of `table` for `scope` (None: no filter needed), the twin of the table's row-level
    policy: both are made from the one table list, gis.jurisdiction.SCOPED_TABLES. Binds are named `key`_streets /
    `key`_compounds (two filters of one statement take two keys). Every reader of jurisdiction-bound rows takes
    its filter from here (gis.store.read_layer applies the running code's scope itself: `current_filter`).

    Row-level security already enforces it; the explicit predicate lets the planner use the street_code index
    and keeps answers right on a database without policies. A table outside the list is seen whole by the
    unscoped only.
    """
    if scope.kind == "all":
        return None, {}
    how = SCOPED_TABLES.get(table)
    if how is None or scope.kind not in ("streets", "compounds"):
        return "false", {}
    streets, compounds = f"{key}_streets", f"{key}_compounds"
    by_streets = scope.kind == "streets"
    params: dict[str, Any] = ({streets: list(scope.streets)} if by_streets
                              else {compounds: list(scope.compounds)})
    # the streets of a compound-bound caller's compounds
    own_streets = f"(SELECT c.street_code FROM compounds c WHERE c.ref = ANY(:{compounds}))"
    parent = parent_of(how)
    if parent is not None:
        inner, inner_params = filter_sql(parent[0], scope, alias="p", key=key)
        return f"{alias}.{parent[1]} IN (SELECT p.id FROM {parent[0]} p WHERE {inner})", inner_params
    if how == "street_ref":
        if by_streets:
            return f"{alias}.ref = ANY(:{streets})", params
        return f"{alias}.ref IN {own_streets}", params
    if how == "campaign":
        mine = f"CAST(:{streets} AS text[])" if by_streets else f"ARRAY{own_streets}"
        return f"({alias}.jurisdiction = '[]'::jsonb OR {alias}.jurisdiction ?| {mine})", params
    if how == "run":
        district = f"NOT ({alias}.scope ? 'street' OR {alias}.scope ? 'compound')"
        if by_streets:
            return (f"({district} OR {alias}.scope->>'street' = ANY(:{streets}) OR {alias}.scope->>'compound' IN "
                    f"(SELECT c.ref FROM compounds c WHERE c.street_code = ANY(:{streets})))"), params
        return (f"({district} OR {alias}.scope->>'compound' = ANY(:{compounds}) "
                f"OR {alias}.scope->>'street' IN {own_streets})"), params
    if how == "audit":
        if by_streets:
            return f"{alias}.street_codes && CAST(:{streets} AS text[])", params
        return f"{alias}.compound_refs && CAST(:{compounds} AS text[])", params
    if how == "job":
        compound = f"{alias}.params->'scope'->>'compound'"
        if not by_streets:
            return f"{compound} = ANY(:{compounds})", params
        return (f"({compound} IN (SELECT c.ref FROM compounds c WHERE c.street_code = ANY(:{streets})) "
                f"OR {alias}.params->'scope'->>'street' = ANY(:{streets}) OR {alias}.params->>'street' = ANY(:{streets}) "
                f"OR (jsonb_typeof({alias}.params->'streets') = 'array' AND {alias}.params->'streets' <> '[]'::jsonb "
                f"AND {alias}.params->'streets' <@ to_jsonb(CAST(:{streets} AS text[]))))"), params
    if by_streets:
        return f"{alias}.street_code = ANY(:{streets})", params
    by_compound = "ref" if table == "compounds" else "compound_ref"
    if table == "compounds" or by_compound in metadata.tables[table].c:
        return f"{alias}.{by_compound} = ANY(:{compounds})", params
    return "false", {}


def current_filter(table: str, *, alias: str = "t", key: str = "scope") -> tuple[str | None, dict[str, Any]]:
    """`filter_sql` for the scope of the code running now."""
    return filter_sql(table, current(), alias=alias, key=key)


def actor_filter(table: str, streets: Sequence[str] | None, compounds: Sequence[str] | None, *,
                 alias: str = "t") -> tuple[str | None, dict[str, Any]]:
    """The filter of an actor limited to `streets` and/or `compounds` (None: not limited that way), such as a
    command-line `--as USER` whose session runs unscoped: the same rule as the policies, from `filter_sql`."""
    parts, params = [], {}
    for limited, key in ((streets is not None and for_streets("", tuple(streets or ())), "actor"),
                         (compounds is not None and for_compounds("", tuple(compounds or ())), "actorc")):
        if limited:
            where, binds = filter_sql(table, limited, alias=alias, key=key)
            parts.append(f"({where})")
            params.update(binds)
    return (" AND ".join(parts) or None), params


def streets_filter(table: str, streets: Sequence[str], *, alias: str = "t",
                   key: str = "want") -> tuple[str, dict[str, Any]]:
    """Rows of `table` in `streets`: a selection the caller asks for (a street's page, `--street`, a campaign's
    streets in its reports), by the same rule that scopes a street office to its streets. Never None: a
    selection always filters (no streets: no rows)."""
    where, params = filter_sql(table, for_streets("", tuple(streets)), alias=alias, key=key)
    return (where or "false"), params
