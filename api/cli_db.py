"""`firelane db`, `init`, `backup` and `restore`: the managed database, the schema and their backups."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from api.cli_errors import FirelaneError
from api.cli_schema import ensure_schema
from gis import migrate, pgcluster
from gis.db import database_url, owner_url
from gis.ops.backup import BackupError, backup, restore

# --- managed database -------------------------------------------------------------------------------------------


@click.group()
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


@click.command("init")
def init() -> None:
    """Create or upgrade the schema (Alembic migrations)."""
    click.echo(f"schema at revision 数据库结构版本 {migrate.upgrade()}")


# --- backup and restore -----------------------------------------------------------------------------------------


@click.command("backup")
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


@click.command("restore")
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
