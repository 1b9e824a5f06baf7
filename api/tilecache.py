"""Server-side vector-tile cache per worker, kept exact by PostgreSQL change notifications (gis.changes).

Every layer table NOTIFYs `firelane_changes` on commit of any write (API edits, imports, checks, psql). A listener
thread per worker process counts a generation per table; a cached tile remembers the generations of the tables it
was built from (read before its query started) and is served only while they are unchanged. While the listener is
not connected (start-up, database restart) or a layer table lacks its trigger, nothing is served from or stored in
the cache; after every (re)connection all generations move on, so nothing built before a gap is ever served.
Memory is bounded per worker (least recently used tiles go first).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import psycopg
from sqlalchemy import Engine

from gis.changes import CHANNEL, INSTALLED_SQL
from gis.config import api_settings
from gis.db import libpq_conninfo
from gis.layers import LAYERS

log = logging.getLogger("firelane.api")

#: Bytes charged per entry on top of the tile itself (key, tuple, bookkeeping), so empty tiles count too.
ENTRY_OVERHEAD = 256


class ChangeFeed:
    """A daemon thread LISTENing for layer changes: generation counters per table and a `live` flag."""

    def __init__(self, conninfo: str, *, retry_s: float = 2.0) -> None:
        self._conninfo = conninfo
        self._retry_s = retry_s
        self._gens: dict[str, int] = {}
        self._epoch = 0
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
                self._epoch += 1
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
                    row = conn.execute(INSTALLED_SQL, {"tables": list(LAYERS)}).fetchone()
                    assert row is not None  # count(*) returns one row
                    installed = row[0]
                    if installed != len(LAYERS):
                        log.warning("tile cache off: %d of %d layer tables have their change trigger (run "
                                    "`firelane init`)", installed, len(LAYERS))
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
                    log.warning("tile cache paused: change feed lost (%s)", type(exc).__name__)
            finally:
                self._live.clear()
            self._stop.wait(self._retry_s)


@dataclass
class _Entry:
    generations: tuple[int, ...]
    body: bytes
    etag: str | None


class TileCache:
    """Tiles by key, least recently used evicted beyond `max_bytes`; an entry is valid for its generations only."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable, generations: tuple[int, ...]) -> tuple[bytes, str | None] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.generations != generations:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry.body, entry.etag

    def put(self, key: Hashable, generations: tuple[int, ...], body: bytes, etag: str | None) -> None:
        cost = len(body) + ENTRY_OVERHEAD
        if cost > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old.body) + ENTRY_OVERHEAD
            self._entries[key] = _Entry(generations, body, etag)
            self._bytes += cost
            while self._bytes > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= len(dropped.body) + ENTRY_OVERHEAD

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0
            self.hits = self.misses = 0


_state: dict[str, tuple[Engine, str, ChangeFeed, TileCache]] = {}
_state_lock = threading.Lock()


def tile_cache(engine: Engine) -> tuple[ChangeFeed, TileCache] | None:
    """This process's feed and cache for `engine`'s database (started on first use); None when turned off."""
    max_bytes = int(api_settings().tile_cache_mb * 1024 * 1024)
    if max_bytes <= 0:
        return None
    current = _state.get("cache")
    if current is not None and current[0] is engine:
        return current[2], current[3]
    with _state_lock:
        current = _state.get("cache")
        conninfo = libpq_conninfo(engine)
        if current is None or current[1] != conninfo:  # first use, or another database
            if current is not None:
                current[2].stop()
            current = (engine, conninfo, ChangeFeed(conninfo), TileCache(max_bytes))
        _state["cache"] = (engine, *current[1:])
    return current[2], current[3]


def forget_tiles() -> None:
    """Empty the cache and stop the feed (a new app, or tests switching databases)."""
    with _state_lock:
        current = _state.pop("cache", None)
    if current is not None:
        current[2].stop()
        current[3].clear()


def changed(table: str) -> None:
    """This process just committed a write to `table`: stop serving its tiles now (the notification follows)."""
    current = _state.get("cache")
    if current is not None:
        current[2].bump(table)


def wait_until_live(engine: Engine, timeout: float = 10.0) -> bool:
    """Start the feed if needed and wait until the cache is in use (tests, benchmarks)."""
    found = tile_cache(engine)
    deadline = time.monotonic() + timeout
    return found is not None and found[0].wait_live(max(0.0, deadline - time.monotonic()))
