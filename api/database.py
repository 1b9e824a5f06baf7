"""The app's database engine, resolved once per process (gis.db.get_engine checks the managed cluster each call)."""

from __future__ import annotations

import threading

from sqlalchemy import Engine

from gis.db import get_engine

_engine: Engine | None = None
_lock = threading.Lock()


def db_engine() -> Engine:
    """The engine for FIRELANE_DATABASE_URL or the managed cluster, looked up on first use and then reused.

    Reusing it matters twice: requests stay cheap, and a stopped database makes requests fail with 503 instead
    of silently restarting the managed cluster behind the operator's back.
    """
    global _engine
    if _engine is None:
        with _lock:
            if _engine is None:
                _engine = get_engine()
    return _engine


def forget_engine() -> None:
    """Resolve the engine again on next use (a new app, tests switching databases)."""
    global _engine
    with _lock:
        _engine = None
