"""Async reads for the hot endpoints (items pages, tiles): psycopg async connections pooled per event loop.

No worker-thread hop and no ORM layer between the event loop and PostgreSQL. Connections are autocommit (one
statement per read, no BEGIN/ROLLBACK round trips), carry the same statement timeout as gis.db's engine and are
kept (PostGIS and PROJ set-up in a new backend costs far more than the query). A connection that died while idle
(database restart) is replaced and the read retried once on a fresh one; if that fails too the caller gets the
error (503). Connection errors are psycopg errors, mapped to 503 by api.errors.
"""

from __future__ import annotations

import asyncio
import re
from functools import lru_cache
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from sqlalchemy import Engine

from api.errors import ServiceUnavailable
from gis.config import database_settings


@lru_cache(maxsize=256)
def pyformat(sql: str) -> str:
    """SQLAlchemy `:name` binds as psycopg `%(name)s` (literal % doubled; `::type` casts untouched)."""
    return re.sub(r"(?<![:\w\\]):(\w+)(?!:)", r"%(\1)s", sql.replace("%", "%%"))


class ReadPool:
    """Up to `size` autocommit connections of one event loop; a read waits at most `timeout_s` for one."""

    def __init__(self, conninfo: str, *, size: int, timeout_s: float, statement_timeout_ms: int) -> None:
        self.loop = asyncio.get_running_loop()
        self.conninfo = conninfo
        self.engine: Engine | None = None
        self._options = f"-c statement_timeout={statement_timeout_ms}"
        self._timeout_s = timeout_s
        self._slots = asyncio.Semaphore(size)
        self._idle: list[psycopg.AsyncConnection] = []

    async def _connect(self) -> psycopg.AsyncConnection:
        return await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True, connect_timeout=5,
                                                     options=self._options)

    def _keep(self, conn: psycopg.AsyncConnection) -> bool:
        return not conn.closed and not conn.broken and conn.info.transaction_status == TransactionStatus.IDLE

    async def fetchone(self, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """The first row of one statement (SQLAlchemy-style `:name` binds)."""
        try:
            await asyncio.wait_for(self._slots.acquire(), self._timeout_s)
        except TimeoutError:
            raise ServiceUnavailable("服务繁忙 server busy: no database connection free",
                                     headers={"Retry-After": "2"}) from None
        try:
            return await self._fetchone(pyformat(sql), params)
        finally:
            self._slots.release()

    async def _fetchone(self, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        while True:
            reused = bool(self._idle)
            conn = self._idle.pop() if reused else await self._connect()
            try:
                cur = await conn.execute(sql, params)
                row = await cur.fetchone()
            except psycopg.OperationalError:
                if self._keep(conn):  # the statement failed (e.g. timeout), the connection is fine
                    self._idle.append(conn)
                    raise
                await conn.close()
                if reused:  # died while idle (restart, failover): once more on a new connection
                    continue
                raise
            except BaseException:  # cancelled (client gone) or a data error: keep the connection only if clean
                if self._keep(conn):
                    self._idle.append(conn)
                else:
                    await conn.close()
                raise
            self._idle.append(conn)
            return row

    def discard(self) -> None:
        """Close every idle connection (blocking libpq calls; works from any thread or loop)."""
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                conn.pgconn.finish()

    async def close(self) -> None:
        while self._idle:
            await self._idle.pop().close()


_pools: dict[str, ReadPool] = {}


def read_pool(engine: Engine) -> ReadPool:
    """The pool of the running event loop for `engine`'s database (a new loop or database gets a new pool)."""
    loop = asyncio.get_running_loop()
    pool = _pools.get("read")
    if pool is not None and pool.loop is loop and pool.engine is engine:
        return pool
    conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
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
