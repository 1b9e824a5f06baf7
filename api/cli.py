"""The `firelane` command line: the root group, each command found by name and imported only when it runs."""

from __future__ import annotations

import importlib
import sys
from typing import NamedTuple

import click

from api.cli_errors import FirelaneError
from gis import scope
from gis.schema_version import NotTheOwner, SchemaDrift


class Entry(NamedTuple):
    """A top-level command: where it lives ("module:attribute") and the first paragraph of its help, which
    `firelane --help` lists without importing the command (a test keeps the two in step)."""

    target: str
    summary: str


#: Every top-level command, by name. A command imports its own module alone (`firelane check` skips the web app's,
#: the campaign forms' and the importers' imports), and `firelane --help` none of them.
COMMANDS: dict[str, Entry] = {
    "backup": Entry("api.cli_db:backup_cmd",
                    "Back up the database (pg_dump, managed or FIRELANE_DATABASE_URL) and the files under "
                    "FIRELANE_HOME."),
    "campaign": Entry("api.campaign_cli:campaign", "整治行动 campaigns: presets, stages, progress per street office."),
    "check": Entry("api.cli_check:check_cmd", "Run the rule checks and update the hazards ledger."),
    "db": Entry("api.cli_db:db", "托管数据库 the managed local PostGIS (ignored when FIRELANE_DATABASE_URL is set)."),
    "demo": Entry("api.cli_serve:demo_cmd",
                  "Start the database, load the sample district, run the checks and serve the web app."),
    "export": Entry("api.cli_data:export_cmd", "Export a layer, optionally filtered by street or compound."),
    "hazard": Entry("api.cli_field:hazard",
                    "隐患整改流程 the hazard rectification workflow (list, show, assign, transition)."),
    "import": Entry("api.cli_data:import_cmd",
                    "Import a GeoJSON / GeoPackage / Shapefile (.shp/.zip) / KML / DXF / CSV / XLSX file, all or "
                    "nothing."),
    "import-osm": Entry("api.cli_data:import_osm_cmd",
                        "Derive firelane layers from an OpenStreetMap extract (.osm.pbf / .osm / .osm.bz2)."),
    "init": Entry("api.cli_db:init", "Create or upgrade the schema (Alembic migrations)."),
    "photo": Entry("api.cli_field:photo", "照片 photos and documents of hazards."),
    "report": Entry("api.campaign_cli:report",
                    "报表 the campaign's forms (附件1–4), one file per compound, stage reports and the summary."),
    "restore": Entry("api.cli_db:restore_cmd",
                     "Restore a backup: checksums verified first, then the database (replaced) and the FIRELANE_HOME "
                     "files."),
    "sample": Entry("api.cli_data:sample_cmd",
                    "Generate a deterministic synthetic district with planted hazards (ground truth) and load it."),
    "serve": Entry("api.cli_serve:serve_cmd", "Serve the OGC API, the checks/ledger API and the map pages."),
    "spotcheck": Entry("api.campaign_cli:spotcheck",
                       "双随机抽查 double-random spot checks: draw compounds and inspectors, record results."),
    "user": Entry("api.cli_accounts:user", "用户管理 users, roles and API tokens of the HTTP service."),
    "validate": Entry("api.cli_data:validate_cmd",
                      "复核已入库数据 check the stored features against today's import rules (values, text, extra, "
                      "geometry, extent)."),
    "worker": Entry("api.cli_check:worker_cmd",
                    "Run persisted jobs (check runs, reports) in the foreground; several may run side by side."),
}

#: `ctx.meta` key set while the root's help lists its commands.
_LISTING = "firelane.listing"


class LazyGroup(click.Group):
    """A group whose commands (`COMMANDS`) are imported when asked for by name (click's lazy subcommands), and
    listed in its help from their summaries."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        entry = COMMANDS[cmd_name]
        if ctx.meta.get(_LISTING):  # the help's listing reads a command's name and summary only
            return click.Command(cmd_name, help=entry.summary)
        module, _, attr = entry.target.partition(":")
        command = getattr(importlib.import_module(module), attr)
        if not isinstance(command, click.Command) or command.name != cmd_name:
            raise TypeError(f"{entry.target} is not the command {cmd_name!r}")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        ctx.meta[_LISTING] = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            del ctx.meta[_LISTING]


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="firelane")
def cli() -> None:
    """firelane 消防车道与小区消防隐患整治 — fire-lane and compound hazard mapping."""
    scope.enter(scope.SYSTEM)  # the command line works on the whole district, explicitly (row-level security)


def main() -> None:
    try:
        cli(prog_name="firelane")
    except (NotTheOwner, SchemaDrift) as exc:  # any command's migration (init, serve, demo, data commands): say what to run
        FirelaneError(str(exc)).show()
        sys.exit(1)


if __name__ == "__main__":
    main()
