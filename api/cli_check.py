"""`firelane check` and `firelane worker`: the rule checks, run here or as persisted jobs."""

from __future__ import annotations

import sys

import click

from api.cli_schema import ensure_schema
from api.cli_user import os_user as _os_user
from gis import jobs
from gis.checks.output import render
from gis.checks.runner import run_checks


@click.command("check")
@click.option("--street", default=None, help="only this street code 街道代码")
@click.option("--compound", default=None, help="only this compound ref 小区编号")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "geojson"]), default="table", show_default=True)
@click.option("--workers", type=int, default=1, show_default=True, help="parallel partitions (processes)")
@click.option("--profile", default="cn-gb", show_default=True, help="rule profile 规则配置")
@click.option("--dask", "dask_address", default=None, help="run on a Dask cluster at this scheduler address (local or local:N: a LocalCluster of N workers)")
@click.option("--no-ledger", is_flag=True, help="do not write findings to the hazards ledger")
def check_cmd(street: str | None, compound: str | None, fmt: str, workers: int, profile: str,
              dask_address: str | None, no_ledger: bool) -> None:
    """Run the rule checks and update the hazards ledger."""
    ensure_schema()
    scope = {k: v for k, v in (("street", street), ("compound", compound)) if v is not None}
    user = _os_user()
    # a persisted job this process runs itself: killed, it is reaped to failed (with its check_runs row)
    with jobs.inline_check_run(scope, profile=profile, user=user) as (job, run_id):
        result = run_checks(street=street, compound=compound, workers=workers, profile=profile,
                            dask_address=dask_address, ledger=not no_ledger, progress=sys.stderr.isatty(),
                            user=user, run_id=run_id)
        job.job.result = {"run_id": result.run_id, "failures": result.failures,
                          "compounds": len(result.compounds), "duration_s": round(result.duration_s, 3)}
    click.echo(render(result, fmt=fmt))


@click.command("worker")
@click.option("--once", is_flag=True, help="run the queued jobs, then exit")
def worker_cmd(once: bool) -> None:
    """Run persisted jobs (check runs, reports) in the foreground; several may run side by side."""
    ensure_schema()
    loop = jobs.WorkerLoop()
    if once:
        while loop.turn():
            pass
        return
    click.echo("worker running 任务进程运行中 (Ctrl+C to stop)", err=True)
    try:
        loop.run()
    except KeyboardInterrupt:
        loop.shutdown(grace_s=0)
