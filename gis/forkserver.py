"""The fork server the check pools' processes come from: what it preloads, and starting it ahead of its caller."""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from multiprocessing import forkserver
from multiprocessing.context import ForkServerContext

from gis.checks.catalog import FAMILIES


def preload(families: Sequence[str] = FAMILIES) -> list[str]:
    """The modules a check worker's fork server imports: the runner and the rule families `families`."""
    return ["gis.checks.runner", *(f"gis.checks.{f}" for f in families)]


def context(families: Sequence[str] = FAMILIES) -> ForkServerContext:
    """The fork server's context, preloading `preload(families)` (imported once in the server, not once per
    process; a server already running keeps what it preloaded)."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(preload(families))
    return ctx


def start(families: Sequence[str] = FAMILIES) -> None:
    """Start the fork server now: its imports run beside whatever this process does next (a command's own imports)
    instead of before the first pool's processes."""
    context(families)
    forkserver.ensure_running()
