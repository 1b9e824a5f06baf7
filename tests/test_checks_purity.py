"""The rule engine is pure: every module under gis/checks/ but the runner does no database I/O and leaves the
garbage collector alone; reading layers, writing the ledger and pausing collections are the runner's."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import gis.checks

CHECKS = Path(gis.checks.__file__).parent
#: Modules (and their submodules) a pure check module must not import: database clients, the store and ledger
#: writer, the collector and its pause.
IMPURE = ("sqlalchemy", "psycopg", "geoalchemy2", "gc", "gis.db", "gis.store", "gis.gcpause", "gis.pgcluster",
          "gis.campaign.ledger_writer")


def imported(path: Path) -> set[str]:
    """Every module a source file imports (top level or inside functions), dotted."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def impure(names: set[str]) -> list[str]:
    return sorted(n for n in names if any(n == m or n.startswith(m + ".") for m in IMPURE))


@pytest.mark.parametrize("path", sorted(p for p in CHECKS.glob("*.py") if p.name != "runner.py"),
                         ids=lambda p: p.name)
def test_every_check_module_but_the_runner_imports_no_database_client_store_or_collector(path):
    assert impure(imported(path)) == [], f"{path.name} does I/O or collector tuning: keep it in the runner"


def test_the_runner_is_where_reading_the_ledger_writer_and_the_collector_pause_live():
    found = impure(imported(CHECKS / "runner.py"))
    assert {"gis.store", "gis.gcpause", "gis.campaign.ledger_writer"} <= set(found)


def test_the_probe_sees_an_import_of_the_database_inside_a_function(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from gis.db import get_engine\n    import gc\n    return get_engine, gc\n")
    assert impure(imported(src)) == ["gc", "gis.db", "gis.db.get_engine"]
