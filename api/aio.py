"""Async reads for the hot endpoints (items pages, tiles): a psycopg_pool AsyncConnectionPool per event loop.

No worker-thread hop and no ORM layer between the event loop and PostgreSQL. Connections are autocommit (one
statement per read, no BEGIN/ROLLBACK round trips), carry the same statement timeout as gis.db's engine and are
kept, and warmed before their first use: a new backend's first transform and first tile load PostGIS and set up
PROJ (about 100 ms, 100 times the query), so `WARM_SQL` pays that in the pool's background worker instead of in
a request (a reader waiting meanwhile takes whichever connection is ready first). A connection found dead in use
(database restart, failover, idle kill) makes the pool check all its idle ones, and the read is retried once.
While PostgreSQL is unreachable the pool makes no background reconnection attempts: a read waiting for a connection
makes one, and a failed attempt ends the wait of every read then waiting (503 at once, not after a fixed wait),
while a connection that is made (the database is back, or only the backends were killed) serves them however long
connecting and warming take under load. Connection errors are psycopg errors, mapped to 503 by api.errors.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy import Engine

from api.errors import ServiceUnavailable
from gis import scope
from gis.config import database_settings
from gis.db import libpq_conninfo, pyformat, session_options
from gis.layers import STORAGE_SRID

#: Run on every new connection before it serves: loads PostGIS and PROJ's pipelines for the storage CRS to
#: WGS 84 (items) and web mercator (tiles) and back (bbox and tile envelopes), as the hot endpoints would.
WARM_SQL = (
    "SELECT length(ST_AsMVT(q, 'warm', 4096, 'geom')) FROM (SELECT ST_AsMVTGeom(ST_Transform(p, 3857), "
    "ST_TileEnvelope(0, 0, 0)) AS geom, ST_AsGeoJSON(ST_Transform(p, 4326)) AS wgs84, "
    f"ST_Transform(ST_TileEnvelope(0, 0, 0), {STORAGE_SRID}) AS tile, "
    f"ST_Transform(ST_SetSRID(ST_MakePoint(121.5, 29.8), 4326), {STORAGE_SRID}) AS bbox "
    f"FROM (SELECT ST_SetSRID(ST_MakePoint(121.5, 29.8), {STORAGE_SRID}) AS p) s) q")


class ReadPool:
    """Up to `size` autocommit connections of one event loop; a read waits at most `timeout_s` for one."""

    def __init__(self, conninfo: str, *, size: int, timeout_s: float, statement_timeout_ms: int) -> None:
        self.loop = asyncio.get_running_loop()
        self.conninfo = conninfo
        self.engine: Engine | None = None
        self._timeout_s = timeout_s
        self._down = False
        #: set (and replaced) whenever a connection attempt fails: ends the waits of the reads waiting then
        self._failed = asyncio.Event()
        self._pool = AsyncConnectionPool(
            conninfo, min_size=min(2, size), max_size=size, open=False, timeout=timeout_s, name="firelane-read",
            kwargs={"autocommit": True, "connect_timeout": 5, "options": session_options()},
            configure=self._connected, reconnect_timeout=0, reconnect_failed=self._unreachable, num_workers=1)
        self._opening: asyncio.Task[None] | None = None

    async def _connected(self, conn: psycopg.AsyncConnection) -> None:
        self._down = False
        try:
            await conn.execute(WARM_SQL)
        except psycopg.OperationalError:
            raise  # the connection is unusable: the pool discards it and tries again
        except psycopg.Error as exc:  # warming is an optimisation: a read still works, only slower
            logging.getLogger("firelane.api").warning("read pool: warm-up statement failed: %s", exc)

    async def _unreachable(self, pool: AsyncConnectionPool) -> None:
        self._down = True
        failed, self._failed = self._failed, asyncio.Event()
        failed.set()

    async def open(self, *, wait: bool = False) -> None:
        """Open the pool on this loop (the first read does; concurrent first reads wait for it); `wait` also
        waits until its first connections are connected and warmed."""
        if self._opening is None:
            self._opening = self.loop.create_task(self._pool.open())
        if not self._opening.done():
            await self._opening
        if wait:
            await self._pool.wait(self._timeout_s)

    async def fetchone(self, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """The first row of one statement (SQLAlchemy-style `:name` binds)."""
        await self.open()
        query = pyformat(sql)
        try:
            try:
                return await self._fetchone(query, params)
            except _Lost:
                await self._pool.check()  # a restart or failover took the idle ones too: drop them, then retry
                return await self._fetchone(query, params)
        except _Lost as lost:
            raise lost.error from None
        except PoolTimeout:
            if self._down:
                raise ServiceUnavailable("数据库暂不可用, 请稍后重试 database unavailable, try again shortly",
                                         headers={"Retry-After": "5"}) from None
            raise ServiceUnavailable("服务繁忙 server busy: no database connection free",
                                     headers={"Retry-After": "2"}) from None

    async def one(self, sql: str, params: dict[str, Any]) -> tuple[Any, ...]:
        """The row of a statement that always returns exactly one (an aggregate, EXPLAIN)."""
        row = await self.fetchone(sql, params)
        if row is None:
            raise LookupError(f"no row from a one-row statement: {sql[:80]}")
        return row

    async def _fetchone(self, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        conn = await self._getconn()
        try:
            # row-level security: the caller's rows only (its scope set in the same round trip when needed)
            return await scope.fetchone_async(conn, scope.current(), sql, params)
        except psycopg.OperationalError as exc:
            if not conn.broken:  # the statement failed (e.g. timeout), the connection is fine
                raise
            raise _Lost(exc) from exc
        finally:
            await self._pool.putconn(conn)  # a broken one is discarded (and replaced) by the pool

    async def _getconn(self) -> psycopg.AsyncConnection:
        """A connection within `timeout_s`; PoolTimeout as soon as a connection attempt fails meanwhile."""
        getting = asyncio.ensure_future(self._pool.getconn(self._timeout_s))
        watching = asyncio.ensure_future(self._failed.wait())
        try:
            await asyncio.wait((getting, watching), return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # this read was cancelled (client gone): no connection may leak
            watching.cancel()
            await self._abandon(getting)
            raise
        watching.cancel()
        if getting.done():
            return getting.result()
        await self._abandon(getting)
        raise PoolTimeout("the database refused a new connection")

    async def _abandon(self, getting: asyncio.Future[psycopg.AsyncConnection]) -> None:
        """Stop waiting for a connection; one handed over just before is returned to the pool."""
        getting.cancel()
        try:
            conn = await getting
        except (asyncio.CancelledError, Exception):  # noqa: BLE001 - cancelled or failed: nothing to return
            return
        await self._pool.putconn(conn)

    def discard(self) -> None:
        """Forget a pool whose event loop is gone: close its idle connections (blocking libpq calls)."""
        for conn in list(getattr(self._pool, "_pool", ())):
            if not conn.closed:
                conn.pgconn.finish()

    async def close(self) -> None:
        if self._opening is not None:
            await self._opening
            await self._pool.close()


class _Lost(Exception):
    """A connection died in use (the pool drops it when it comes back)."""

    def __init__(self, error: psycopg.OperationalError) -> None:
        self.error = error


_pools: dict[str, ReadPool] = {}


def read_pool(engine: Engine) -> ReadPool:
    """The pool of the running event loop for `engine`'s database (a new loop or database gets a new pool)."""
    loop = asyncio.get_running_loop()
    pool = _pools.get("read")
    if pool is not None and pool.loop is loop and pool.engine is engine:
        return pool
    conninfo = libpq_conninfo(engine)
    if pool is None or pool.loop is not loop or pool.conninfo != conninfo:
        if pool is not None:
            pool.discard()
        settings = database_settings()
        pool = ReadPool(conninfo, size=settings.pool_size, timeout_s=settings.pool_timeout_s,
                        statement_timeout_ms=settings.statement_timeout_ms)
        _pools["read"] = pool
    pool.engine = engine
    return pool


async def close_pools() -> None:
    """Close this loop's pool (app shutdown)."""
    pool = _pools.pop("read", None)
    if pool is not None:
        if pool.loop is asyncio.get_running_loop():
            await pool.close()
        else:
            pool.discard()
