"""The `firelane` command line: the root group, each command found by name and imported only when it runs."""

from __future__ import annotations

import importlib
import sys

import click

from api.cli_errors import FirelaneError
from gis import scope
from gis.migrate import NotTheOwner, SchemaDrift

#: Every top-level command, by name: "module:attribute". A command imports its own module alone (`firelane check`
#: skips the web app's, the campaign forms' and the importers' imports); `firelane --help` imports them all.
COMMANDS: dict[str, str] = {
    "backup": "api.cli_db:backup_cmd",
    "campaign": "api.campaign_cli:campaign",
    "check": "api.cli_check:check_cmd",
    "db": "api.cli_db:db",
    "demo": "api.cli_serve:demo_cmd",
    "export": "api.cli_data:export_cmd",
    "hazard": "api.cli_field:hazard",
    "import": "api.cli_data:import_cmd",
    "import-osm": "api.cli_data:import_osm_cmd",
    "init": "api.cli_db:init",
    "photo": "api.cli_field:photo",
    "report": "api.campaign_cli:report",
    "restore": "api.cli_db:restore_cmd",
    "sample": "api.cli_data:sample_cmd",
    "serve": "api.cli_serve:serve_cmd",
    "spotcheck": "api.campaign_cli:spotcheck",
    "user": "api.cli_accounts:user",
    "worker": "api.cli_check:worker_cmd",
}


class LazyGroup(click.Group):
    """A group whose commands (`COMMANDS`) are imported when asked for by name (click's lazy subcommands)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        module, _, attr = COMMANDS[cmd_name].partition(":")
        command = getattr(importlib.import_module(module), attr)
        if not isinstance(command, click.Command) or command.name != cmd_name:
            raise TypeError(f"{COMMANDS[cmd_name]} is not the command {cmd_name!r}")
        return command


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
