"""The `firelane` command's entry point, kept light: a check pool's processes re-run it (as their `__main__`), and
`firelane check --workers N` starts the pool's fork server before the command line's own imports."""

from __future__ import annotations

import gc
import sys
from collections.abc import Sequence

from gis import forkserver


def pool_workers(argv: Sequence[str]) -> int:
    """The local pool `argv` asks for: `check --workers N` without `--dask` or help; else 0. A hint only (click
    parses the command for real): a wrong guess costs a fork server started for nothing, or started later."""
    args = list(argv)
    command = next((a for a in args if not a.startswith("-")), None)
    if command != "check" or any(a in ("-h", "--help") or a.startswith("--dask") for a in args):
        return 0
    for i, a in enumerate(args):
        value = a.partition("=")[2] if a.startswith("--workers=") else (
            args[i + 1] if a == "--workers" and i + 1 < len(args) else None)
        if value is not None:
            return int(value) if value.isdigit() else 0
    return 0


def main() -> None:
    if pool_workers(sys.argv[1:]) > 1:
        forkserver.start()
    from api.cli import main as cli_main  # noqa: PLC0415 (after the fork server starts importing the checks)

    try:
        cli_main()
    finally:
        # the collections at interpreter exit then skip the command's objects: the process ends sooner
        gc.freeze()
