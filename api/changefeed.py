"""This process's change feed: one thread LISTENing to `firelane_changes` (gis.changes), counting a generation per
watched table, for the caches that must never serve what a commit in any process has changed (tiles, token lookups).

A cache entry remembers the generations of the tables it was built from (read before its query started) and is
served only while they are unchanged. While the feed is not connected (start-up, database restart) or a watched
table lacks its trigger, `generations` is None and nothing is served from or stored in a cache; after every
(re)connection all generations move on, so nothing built before a gap is ever served.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Sequence

import psycopg
from sqlalchemy import Engine

from gis.changes import CHANNEL, INSTALLED_SQL, WATCHED
from gis.db import libpq_conninfo

log = logging.getLogger("firelane.api")

#: Epochs are unique in the process: a feed for another database (or a new app's) never repeats an old one's
#: generations, so a cache kept across feeds serves nothing built before.
_EPOCHS = itertools.count(1)


class ChangeFeed:
    """A daemon thread LISTENing for changes: generation counters per watched table and a `live` flag."""

    def __init__(self, conninfo: str, *, retry_s: float = 2.0) -> None:
        self._conninfo = conninfo
        self._retry_s = retry_s
        self._gens: dict[str, int] = {}
        self._epoch = next(_EPOCHS)
        self._lock = threading.Lock()
        self._live = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="firelane-change-feed", daemon=True)
        self._thread.start()

    @property
    def live(self) -> bool:
        return self._live.is_set()

    def wait_live(self, timeout: float) -> bool:
        return self._live.wait(timeout)

    def generations(self, tables: Sequence[str]) -> tuple[int, ...] | None:
        """The current generations of `tables` (with the connection epoch), or None while not live."""
        if not self._live.is_set():
            return None
        with self._lock:
            return (self._epoch, *(self._gens.get(t, 0) for t in tables))

    def bump(self, table: str | None = None) -> None:
        """`table` changed (None: anything may have changed)."""
        with self._lock:
            if table is None:
                self._epoch = next(_EPOCHS)
            else:
                self._gens[table] = self._gens.get(table, 0) + 1

    def stop(self) -> None:
        self._stop.set()
        self._live.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5, keepalives=1,
                                     keepalives_idle=10, keepalives_interval=5, keepalives_count=3) as conn:
                    row = conn.execute(INSTALLED_SQL, {"tables": list(WATCHED)}).fetchone()
                    assert row is not None  # count(*) returns one row
                    installed = row[0]
                    if installed != len(WATCHED):
                        log.warning("change feed off (no tile or token caching): %d of %d tables have their change "
                                    "trigger (run `firelane init`)", installed, len(WATCHED))
                        self._stop.wait(60)
                        continue
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.bump()  # whatever happened before we listened is unknown: start a new epoch
                    self._live.set()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self.bump(note.payload)
            except Exception as exc:  # noqa: BLE001 - any failure: stop trusting the cache, reconnect
                if self._live.is_set():
                    log.warning("change feed lost (%s): tile and token caches paused", type(exc).__name__)
            finally:
                self._live.clear()
            self._stop.wait(self._retry_s)


_state: dict[str, tuple[Engine, str, ChangeFeed]] = {}
_state_lock = threading.Lock()


def change_feed(engine: Engine) -> ChangeFeed:
    """This process's feed for `engine`'s database (started on first use, or again for another database)."""
    current = _state.get("feed")
    if current is not None and current[0] is engine:
        return current[2]
    with _state_lock:
        current = _state.get("feed")
        conninfo = libpq_conninfo(engine)
        if current is None or current[1] != conninfo:
            if current is not None:
                current[2].stop()
            current = (engine, conninfo, ChangeFeed(conninfo))
        _state["feed"] = (engine, *current[1:])
    return current[2]


def forget_feed() -> None:
    """Stop the feed (a new app, or tests switching databases)."""
    with _state_lock:
        current = _state.pop("feed", None)
    if current is not None:
        current[2].stop()


def changed(table: str) -> None:
    """This process just committed a write to `table`: its cached entries go now (the notification follows)."""
    current = _state.get("feed")
    if current is not None:
        current[2].bump(table)


def wait_until_live(engine: Engine, timeout: float = 10.0) -> bool:
    """Start the feed if needed and wait until it is live (tests, benchmarks)."""
    deadline = time.monotonic() + timeout
    return change_feed(engine).wait_live(max(0.0, deadline - time.monotonic()))
