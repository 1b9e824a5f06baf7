"""Server-side vector-tile cache per worker, kept exact by PostgreSQL change notifications (api.changefeed).

Every layer table NOTIFYs `firelane_changes` on commit of any write (API edits, imports, checks, psql); a cached
tile is served only while the generations of the tables it was built from are unchanged, and only while the
process's change feed is live. Memory is bounded per worker (least recently used tiles go first).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

from sqlalchemy import Engine

from api.changefeed import ChangeFeed, change_feed
from gis.config import api_settings

#: Bytes charged per entry on top of the tile itself (key, tuple, bookkeeping), so empty tiles count too.
ENTRY_OVERHEAD = 256


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


_state: dict[str, TileCache] = {}
_state_lock = threading.Lock()


def tile_cache(engine: Engine) -> tuple[ChangeFeed, TileCache] | None:
    """This process's change feed and tile cache for `engine`'s database (started on first use); None when turned
    off."""
    max_bytes = int(api_settings().tile_cache_mb * 1024 * 1024)
    if max_bytes <= 0:
        return None
    feed = change_feed(engine)  # (a feed for another database starts a new epoch: old tiles are never served)
    cache = _state.get("cache")
    if cache is None:
        with _state_lock:
            cache = _state.setdefault("cache", TileCache(max_bytes))
    return feed, cache


def forget_tiles() -> None:
    """Empty the cache (a new app, or tests switching databases)."""
    with _state_lock:
        cache = _state.pop("cache", None)
    if cache is not None:
        cache.clear()
