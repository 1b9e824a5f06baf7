"""Pausing Python's cyclic garbage collector around bulk work whose many objects hold no reference cycles."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_active = 0
_restore = False


@contextmanager
def paused_gc() -> Iterator[None]:
    """Run the body with automatic cyclic collections off; they resume when the last concurrent body ends.

    A bulk import holds hundreds of thousands of live objects (shapely geometries, pandas cells) that can never
    form a cycle, yet every full collection walks them all: about 0.1 s each time, stalling the COPY writer
    thread with the rest. Reference counting still frees everything as usual; only cycle detection waits until
    the end. The collector is switched back on only if it was on to begin with, also when the body raises.
    """
    global _active, _restore
    with _lock:
        if _active == 0:
            _restore = gc.isenabled()
            gc.disable()
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0 and _restore:
                gc.enable()
