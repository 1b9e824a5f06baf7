"""The `firelane` command line: managed database, schema, import/export, sample district, checks, server."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from api.campaign_cli import COMMANDS as CAMPAIGN_COMMANDS
from api.cli_field import install as install_field_commands
from api.cli_schema import ensure_schema
from api.cli_user import os_user as _os_user
from api.demo import run_demo, serve_app
from api.errors import ApiError
from api.hazard_cli import hazard
from api.users import create_user, disable_user, list_users, user_token
from gis import jobs, migrate, pgcluster, scope
from gis.checks.output import render
from gis.checks.runner import run_checks
from gis.config import server_settings
from gis.db import database_url, owner_url
from gis.exporter import ExportError, attribution_path, export_layer
from gis.importer import ImportFailed, import_file
from gis.layers import LAYERS
from gis.migrate import NotTheOwner, SchemaDrift
from gis.ops.backup import BackupError, backup, restore
from gis.osm import OsmImportError, import_osm
from gis.sample import generate, ledger_rows, load_sample, write_sample


class FirelaneError(click.ClickException):
    """An error shown as a clear message (no traceback) with a non-zero exit."""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="firelane")
def cli() -> None:
    """firelane 消防车道与小区消防隐患整治 — fire-lane and compound hazard mapping."""
    scope.enter(scope.SYSTEM)  # the command line works on the whole district, explicitly (row-level security)


# --- managed database -------------------------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """托管数据库 the managed local PostGIS (ignored when FIRELANE_DATABASE_URL is set)."""


@db.command("start")
def db_start() -> None:
    """Create (first use) and start the managed PostGIS."""
    try:
        state = pgcluster.start()
    except pgcluster.ClusterError as exc:
        raise FirelaneError(str(exc)) from exc
    click.echo(f"running 运行中: 127.0.0.1:{state.port} ({state.datadir})")


@db.command("stop")
def db_stop() -> None:
    """Stop the managed PostGIS."""
    pgcluster.stop()
    click.echo("stopped 已停止")


@db.command("status")
def db_status() -> None:
    """Print running / stopped / absent (exit 0 only when running)."""
    state = pgcluster.status()
    click.echo(state)
    where = pgcluster.data_location()
    if where:  # on stderr: stdout stays the one word scripts read
        click.echo(where, err=True)
    sys.exit(0 if state == "running" else 3)


@db.command("url")
@click.option("--owner", is_flag=True, help="the schema owner's URL (migrations, backups) instead of the app role's")
def db_url(owner: bool) -> None:
    """Print the database URL in use (starting the managed PostGIS if needed): the least-privilege app role's."""
    click.echo(owner_url() if owner else database_url())


@cli.command("init")
def init() -> None:
    """Create or upgrade the schema (Alembic migrations)."""
    click.echo(f"schema at revision 数据库结构版本 {migrate.upgrade()}")


# --- import / export --------------------------------------------------------------------------------------------

LAYER_CHOICE = click.Choice(sorted(LAYERS))


@cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=True, path_type=Path))
@click.option("--layer", "layer", required=True, type=LAYER_CHOICE, help="target layer 目标图层")
@click.option("--crs", default=None, help="source CRS: EPSG code, WKT, gcj02 or bd09 (default: from the file)")
@click.option("--mode", type=click.Choice(["append", "replace"]), default="append", show_default=True)
@click.option("--dry-run", is_flag=True, help="validate and report; write nothing")
@click.option("--source-layer", default=None, help="layer/sheet inside the file (GeoPackage, DXF, XLSX)")
@click.option("--user", default=None, help="recorded in the audit log (default: the OS user)")
def import_cmd(path: Path, layer: str, crs: str | None, mode: str, dry_run: bool, source_layer: str | None,
               user: str | None) -> None:
    """Import a GeoJSON / GeoPackage / Shapefile (.shp/.zip) / KML / DXF / CSV / XLSX file, all or nothing."""
    if not dry_run:
        ensure_schema()
    try:
        report = import_file(path, layer=layer, crs=crs, mode=mode, dry_run=dry_run, source_layer=source_layer,
                             user=user or _os_user())
    except ImportFailed as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        raise FirelaneError(f"导入失败，未写入任何数据 import failed, nothing written ({len(exc.problems)} problems)") from exc
    click.echo(report.summary())


@cli.command("export")
@click.argument("layer", type=LAYER_CHOICE)
@click.option("--format", "fmt", type=click.Choice(["geojson", "gpkg", "shp", "kml", "csv", "xlsx"]), required=True)
@click.option("-o", "--output", "output", type=click.Path(path_type=Path), required=True)
@click.option("--street", default=None, help="only this street code 街道代码")
@click.option("--compound", default=None, help="only this compound ref 小区编号")
@click.option("--crs", default=None, help="output CRS (default: EPSG:4490; gcj02/bd09 accepted)")
def export_cmd(layer: str, fmt: str, output: Path, street: str | None, compound: str | None,
               crs: str | None) -> None:
    """Export a layer, optionally filtered by street or compound."""
    ensure_schema()
    try:
        n = export_layer(layer, fmt=fmt, path=output, street=street, compound=compound, crs=crs)
    except ExportError as exc:
        raise FirelaneError(str(exc)) from exc
    click.echo(f"exported 导出 {n} features → {output}")
    if attribution_path(output).exists():
        click.echo(attribution_path(output).read_text(encoding="utf-8").strip())


@cli.command("import-osm")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--user", default=None)
def import_osm_cmd(path: Path, user: str | None) -> None:
    """Derive firelane layers from an OpenStreetMap extract (.osm.pbf / .osm / .osm.bz2)."""
    ensure_schema()
    try:
        report = import_osm(path, user=user or "osm-import", progress=sys.stderr.isatty())
    except OsmImportError as exc:
        raise FirelaneError(str(exc)) from exc
    click.echo(report.summary())


# --- sample district --------------------------------------------------------------------------------------------


@cli.command("sample")
@click.option("--district", type=click.Choice(["yinzhou", "changle"]), default="yinzhou", show_default=True)
@click.option("--scale", type=click.Choice(["s", "m", "l"]), default="s", show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--out", "out", type=click.Path(path_type=Path), default=None,
              help="also write the layers and ground truth here (GeoPackage + JSON)")
@click.option("--no-load", is_flag=True, help="generate files only; leave the database alone")
@click.option("--replace-ledger", "--yes", "replace_ledger", is_flag=True,
              help="replace the layers even when the hazards ledger has entries (they are deleted with them)")
def sample_cmd(district: str, scale: str, seed: int, out: Path | None, no_load: bool, replace_ledger: bool) -> None:
    """Generate a deterministic synthetic district with planted hazards (ground truth) and load it.

    Loading replaces every layer and empties the hazards ledger: refused while the ledger has entries unless
    --replace-ledger (or --yes) is given.
    """
    if not no_load:
        ensure_schema()
        hazards = ledger_rows()
        if hazards and not replace_ledger:
            raise FirelaneError(f"隐患台账有 {hazards} 条记录, 载入样例会全部删除; 确认请加 --replace-ledger "
                                f"the hazards ledger holds {hazards} hazards that loading the sample would delete: "
                                "add --replace-ledger (or --yes) to replace it, or --no-load")

    sample = generate(district=district, scale=scale, seed=seed)
    if out is not None:
        write_sample(sample, out)
        click.echo(f"written 已写出 {out}")
    if not no_load:
        ensure_schema()
        load_sample(sample)
    click.echo(sample.summary())


# --- checks -----------------------------------------------------------------------------------------------------


@cli.command("check")
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


@cli.command("worker")
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


# --- server -----------------------------------------------------------------------------------------------------


def default_workers() -> int:
    """Worker processes by default: one per core, at most 4 (each holds its own pools and tile cache)."""
    return max(1, min(os.cpu_count() or 1, 4))


@cli.command("serve")
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


@cli.command("demo")
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


# --- users (admin) ----------------------------------------------------------------------------------------------


@cli.group()
def user() -> None:
    """用户管理 users, roles and API tokens of the HTTP service."""


@user.command("add")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(
    ["admin", "planner", "street_office", "traffic_brigade", "demolition", "fire_brigade", "viewer", "property"]))
@click.option("--street", "streets", multiple=True, help="street code 街道代码 (street_office; repeatable)")
@click.option("--compound", "compounds", multiple=True, help="compound ref 小区编号 (property; repeatable)")
@click.option("--password", default=None, help="default: prompt")
@click.option("--display-name", default=None)
def user_add(username: str, role: str, streets: tuple[str, ...], compounds: tuple[str, ...], password: str | None,
             display_name: str | None) -> None:
    """Add a user (password hashed with argon2)."""
    ensure_schema()
    if password is None:
        password = click.prompt("密码 password", hide_input=True, confirmation_prompt=True)
    try:
        created = create_user(username, password, role=role, street_codes=list(streets), display_name=display_name,
                              compound_refs=list(compounds))
    except ApiError as exc:
        raise FirelaneError(exc.description) from exc
    click.echo(f"added 已添加 {created['username']} ({created['role']})")


@user.command("list")
def user_list() -> None:
    """List users with role, streets and state."""
    ensure_schema()
    for u in list_users():
        state = "active" if u["active"] else "disabled"
        scope = ",".join(u["street_codes"] + u["compound_refs"]) or "-"
        click.echo(f"{u['username']}\t{u['role']}\t{scope}\t{state}")


@user.command("disable")
@click.argument("username")
def user_disable(username: str) -> None:
    """Disable a user and revoke its tokens (kept for the audit trail)."""
    ensure_schema()
    try:
        disable_user(username)
    except ApiError as exc:
        raise FirelaneError(exc.description) from exc
    click.echo(f"disabled 已停用 {username}")


@user.command("token")
@click.argument("username")
@click.option("--name", default="cli", show_default=True, help="label of the token")
@click.option("--days", type=float, default=90, show_default=True, help="lifetime")
def user_token_cmd(username: str, name: str, days: float) -> None:
    """Issue an API token (printed once; only its hash is stored), e.g. for QGIS or GDAL."""
    ensure_schema()
    try:
        token, expires = user_token(username, name=name, ttl_hours=days * 24)
    except ApiError as exc:
        raise FirelaneError(exc.description) from exc
    click.echo(f"expires 过期 {expires}", err=True)
    click.echo(token)


# --- backup and restore -----------------------------------------------------------------------------------------


@cli.command("backup")
@click.option("-o", "--out", "out", type=click.Path(path_type=Path), required=True, help="backup file (.tar)")
def backup_cmd(out: Path) -> None:
    """Back up the database (pg_dump, managed or FIRELANE_DATABASE_URL) and the files under FIRELANE_HOME."""
    try:
        manifest = backup(out)
    except BackupError as exc:
        raise FirelaneError(str(exc)) from exc
    rows = sum(manifest.counts.values())
    click.echo(f"备份完成 backup written: {out} ({len(manifest.counts)} tables, {rows} rows, "
               f"{len(manifest.files) - 1} files, PostgreSQL {manifest.server_version})")


@cli.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def restore_cmd(path: Path) -> None:
    """Restore a backup: checksums verified first, then the database (replaced) and the FIRELANE_HOME files."""
    try:
        manifest = restore(path)
    except BackupError as exc:
        raise FirelaneError(str(exc)) from exc
    ensure_schema()  # a backup of an older schema is brought up to this version's
    click.echo(f"恢复完成 restored {path.name} (made {manifest.created_at}): {sum(manifest.counts.values())} rows "
               f"in {len(manifest.counts)} tables, {len(manifest.files) - 1} files; row counts match")


cli.add_command(hazard)
for _command in CAMPAIGN_COMMANDS:
    cli.add_command(_command)
install_field_commands(cli)  # `photo`, and `report` inside the workflow's `hazard` group


def main() -> None:
    try:
        cli(prog_name="firelane")
    except (NotTheOwner, SchemaDrift) as exc:  # any command's migration (init, serve, demo, data commands): say what to run
        FirelaneError(str(exc)).show()
        sys.exit(1)


if __name__ == "__main__":
    main()

