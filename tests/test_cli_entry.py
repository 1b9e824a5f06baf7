"""The `firelane` entry point: light enough for the check pool's processes to re-run, and a `check --workers N`
run from the real console script finds what the serial run finds; each command imports only its own module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from api.cli import COMMANDS, cli
from api.entry import pool_workers

ROOT = Path(__file__).resolve().parents[1]
FIRELANE = Path(sys.executable).parent / "firelane"


@pytest.mark.parametrize(("argv", "workers"), [
    (["check", "--workers", "2"], 2),
    (["check", "--format", "json", "--workers=3"], 3),
    (["check"], 0),
    (["check", "--workers", "two"], 0),
    (["check", "--workers"], 0),
    (["check", "--workers", "2", "--dask", "local:2"], 0),
    (["check", "--workers", "2", "--dask=local:2"], 0),
    (["check", "--workers", "2", "--help"], 0),
    (["export", "streets", "--workers", "2"], 0),
    ([], 0),
])
def test_only_a_local_check_pool_starts_the_fork_server_early(argv, workers):
    assert pool_workers(argv) == workers


def test_the_entry_module_imports_none_of_the_command_line():
    # a pool process re-runs the console script as its __main__: what the script imports, every process imports
    probe = ("import sys, api.entry; print(sorted(m for m in ('api.cli', 'geopandas', 'sqlalchemy', 'fastapi', "
             "'gis.checks.runner') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def _console(*args: str) -> list[dict]:
    assert FIRELANE.exists(), "the package is installed with its console script (scripts/setup.sh)"
    out = subprocess.run([str(FIRELANE), *args], capture_output=True, text=True, cwd=ROOT, timeout=300,
                         env={k: v for k, v in os.environ.items() if k != "FIRELANE_DATABASE_URL"})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


@pytest.mark.db
def test_a_pool_check_from_the_console_script_finds_what_the_serial_check_finds(db):
    loaded = CliRunner().invoke(cli, ["sample", "--district", "yinzhou", "--scale", "s"], catch_exceptions=False)
    assert loaded.exit_code == 0, loaded.output
    serial = _console("check", "--format", "json", "--no-ledger")
    pooled = _console("check", "--workers", "2", "--format", "json", "--no-ledger")
    assert len(serial) > 50 and any(f["verdict"] == "fail" for f in serial)
    assert [(f["key"], f["measured"]) for f in pooled] == [(f["key"], f["measured"]) for f in serial]


def test_every_command_of_the_root_is_found_by_its_name():
    ctx = click.Context(cli)
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name
    assert set(cli.list_commands(ctx)) >= {"check", "db", "hazard", "campaign", "report", "photo", "user", "serve"}
    hazard = cli.get_command(ctx, "hazard")
    assert isinstance(hazard, click.Group) and {"assign", "report", "transition"} <= set(hazard.commands)


def _loaded_after(argv: list[str], modules: tuple[str, ...]) -> list[str]:
    """Which of `modules` a fresh interpreter has imported after running the command line on `argv`."""
    probe = (f"import json, sys\nfrom api.cli import main\nsys.argv = ['firelane', *{argv!r}]\ntry:\n    main()\n"
             f"except SystemExit:\n    pass\nprint(json.dumps(sorted(m for m in {modules!r} if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_command_imports_its_own_module_alone():
    # `firelane check` loads neither the web app, nor the importers, nor the campaign's forms
    assert _loaded_after(["check", "--help"], ("api.app", "api.demo", "api.campaign_cli", "gis.importer", "gis.osm",
                                               "fastapi", "openpyxl")) == []


def test_the_root_help_lists_every_command_with_its_own_summary():
    # `firelane --help` lists the commands from the registry's summaries: each reads as the command's own help
    ctx = click.Context(cli)
    for name, entry in COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None
        for limit in (30, 45, 80, 200):
            assert click.Command(name, help=entry.summary).get_short_help_str(limit) == \
                command.get_short_help_str(limit), name
    listed = CliRunner().invoke(cli, ["--help"]).output
    assert "check       Run the rule checks and update the hazards ledger." in listed
    assert all(f"  {name} " in listed for name in COMMANDS)


def test_the_root_help_imports_no_command():
    assert _loaded_after(["--help"], ("api.cli_check", "api.cli_serve", "api.cli_data", "api.cli_db",
                                      "api.campaign_cli", "gis.checks.runner", "geopandas", "fastapi")) == []
