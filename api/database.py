"""The app's database engine: gis.db's process-wide engine (URL resolved once, so a stopped database gives 503)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from api import crs
from api.aio import ReadPool, read_pool
from gis.db import get_engine as db_engine
from gis.db import reset_engine as forget_engine

__all__ = ["db_engine", "forget_engine", "hot_reads", "read_connection"]


@contextmanager
def read_connection() -> Iterator[Connection]:
    """A pooled connection in autocommit for single-statement reads: no BEGIN/ROLLBACK round trips around the
    query (each statement is its own snapshot, as in READ COMMITTED). The first one also learns which CRSs
    need no ST_Transform (api.crs)."""
    with db_engine().connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        if not crs.identity_known():
            crs.learn_identity(conn)
        yield conn


def _learn_identity() -> None:
    with read_connection():
        pass


async def hot_reads() -> ReadPool:
    """The event loop's async read pool (api.aio), once the CRS identities are known (learned in a worker thread
    on first use: the SQL the pool runs depends on them)."""
    if not crs.identity_known():
        await run_in_threadpool(_learn_identity)
    return read_pool(db_engine())
