"""`firelane serve` and `firelane demo`: the web app, and the demo that loads, checks and serves it."""

from __future__ import annotations

import os

import click

from api.cli_schema import ensure_schema
from api.demo import run_demo, serve_app
from gis.config import server_settings


def default_workers() -> int:
    """Worker processes by default: one per core, at most 4 (each holds its own pools and tile cache)."""
    return max(1, min(os.cpu_count() or 1, 4))


@click.command("serve")
@click.option("--host", default=None, help="default 127.0.0.1 (FIRELANE_SERVER_HOST)")
@click.option("--port", type=int, default=None, help="default 8000 (FIRELANE_SERVER_PORT)")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="uvicorn worker processes (default: cores, at most 4). Each has its own connection pools, tile "
                   "cache and token cache: a revoked token or disabled user may still pass in the other workers "
                   "for up to FIRELANE_AUTH_TOKEN_CACHE_S seconds (default 5)")
def serve_cmd(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the OGC API, the checks/ledger API and the map pages."""
    ensure_schema()
    settings = server_settings()
    serve_app(host=host or settings.host, port=port or settings.port, workers=workers or default_workers())


@click.command("demo")
@click.option("--district", type=click.Choice(["yinzhou", "changle"]), default="yinzhou", show_default=True)
@click.option("--scale", type=click.Choice(["s", "m", "l"]), default="s", show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="uvicorn worker processes, as for `firelane serve`")
@click.option("--no-serve", is_flag=True, help="load and check, then exit")
def demo_cmd(district: str, scale: str, seed: int, host: str, port: int, workers: int, no_serve: bool) -> None:
    """Start the database, load the sample district, run the checks and serve the web app."""
    run_demo(district=district, scale=scale, seed=seed, host=host, port=port, workers=workers,
             serve=not no_serve)
