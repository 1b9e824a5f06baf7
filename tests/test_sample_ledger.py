"""`firelane sample` does not wipe a hazards ledger without being told to (`--replace-ledger` / `--yes`)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from api.cli import cli

pytestmark = pytest.mark.db


def _hazards(db) -> int:
    with db.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM hazards")).scalar_one()


def test_sample_refuses_to_replace_a_ledger_unless_told(db, district):
    assert _hazards(db) == 2
    refused = CliRunner().invoke(cli, ["sample", "--scale", "s"])
    assert refused.exit_code != 0
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "2 hazards" in lines[0] and "--replace-ledger" in lines[0]
    assert _hazards(db) == 2
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM compounds WHERE ref = 'CA-1'")).scalar_one() == 1
    loaded = CliRunner().invoke(cli, ["sample", "--scale", "s", "--yes"])
    assert loaded.exit_code == 0, loaded.output
    assert _hazards(db) == 0
    again = CliRunner().invoke(cli, ["sample", "--scale", "s"])  # an empty ledger needs no confirmation
    assert again.exit_code == 0, again.output


def test_a_told_sample_replaces_the_ledger_with_its_history(db, district):
    with db.begin() as conn:  # a hazard with a history (hazard_events is append-only for every role)
        hid = conn.execute(text("SELECT min(id) FROM hazards")).scalar_one()
        conn.execute(text("INSERT INTO hazard_events (hazard_id, to_state, evidence) VALUES (:h, 'open', 'found')"),
                     {"h": hid})
    loaded = CliRunner().invoke(cli, ["sample", "--scale", "s", "--yes"])
    assert loaded.exit_code == 0, loaded.output
    assert _hazards(db) == 0
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM hazard_events")).scalar_one() == 0
