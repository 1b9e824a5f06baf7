"""The fork server the check pools' processes come from: what it preloads, and starting it ahead of its caller."""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from multiprocessing import forkserver
from multiprocessing.context import ForkServerContext

from gis.checks.catalog import FAMILIES


def preload(families: Sequence[str] = FAMILIES, *, dask: bool = False) -> list[str]:
    """The modules a check worker's fork server imports: the runner and the rule families `families`, and with
    `dask` Dask's worker (`distributed`) for the processes of a LocalCluster; last `gis.forkserver_freeze`, which
    freezes them in the server."""
    return [*(["distributed"] if dask else []), "gis.checks.runner", *(f"gis.checks.{f}" for f in families),
            "gis.forkserver_freeze"]


def context(families: Sequence[str] = FAMILIES, *, dask: bool = False) -> ForkServerContext:
    """The fork server's context, preloading `preload(families, dask=dask)` (imported once in the server, not once
    per process; a server already running keeps what it preloaded: a process that runs both pools and
    LocalClusters starts it with `dask` first)."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(preload(families, dask=dask))
    return ctx


def start(families: Sequence[str] = FAMILIES, *, dask: bool = False) -> None:
    """Start the fork server now: its imports run beside whatever this process does next (a command's own imports)
    instead of before the first pool's processes."""
    context(families, dask=dask)
    forkserver.ensure_running()
