"""`--as USER` means the same in every command: one resolver (api.cli_user.cli_actor), one Actor class."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from api.cli import cli
from api.cli_user import ActorRefused, cli_actor, os_user
from gis.campaign import workflow as wf
from gis.campaign.actors import Actor

pytestmark = pytest.mark.db


def _user(engine, username: str, role: str, *, streets=(), compounds=(), active: bool = True) -> None:
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO users (username, password_hash, role, street_codes, compound_refs, active) "
            "VALUES (:u, 'not-a-login', :r, CAST(:s AS jsonb), CAST(:c AS jsonb), :a)"),
            {"u": username, "r": role, "s": json.dumps(list(streets)), "c": json.dumps(list(compounds)),
             "a": active})


def test_the_workflow_and_the_field_side_share_one_actor_class():
    assert wf.Actor is Actor


def test_a_user_acts_with_its_role_and_jurisdiction(db):
    _user(db, "jie", "street_office", streets=("330212006",))
    _user(db, "wuye", "property", compounds=("CA-1", "CA-2"))
    _user(db, "huo", "fire_brigade")
    assert cli_actor("jie") == Actor("jie", "street_office", streets=("330212006",))
    assert cli_actor("wuye") == Actor("wuye", "property", compounds=("CA-1", "CA-2"))
    assert cli_actor("huo") == Actor("huo", "fire_brigade")
    with db.connect() as conn:  # inside the caller's own transaction, the same answer
        assert cli_actor("jie", conn=conn) == cli_actor("jie")


def test_the_os_user_who_is_no_firelane_user_is_the_local_operator(db):
    assert cli_actor(None) == Actor(os_user(), "admin")


def test_a_name_that_is_no_user_or_a_disabled_user_is_refused_naming_it(db):
    _user(db, "gone", "street_office", streets=("330212006",), active=False)
    with pytest.raises(ActorRefused, match="'nobody'"):
        cli_actor("nobody")
    with pytest.raises(ActorRefused, match="'gone' is disabled"):
        cli_actor("gone")


@pytest.mark.parametrize("args", [
    ["hazard", "list", "--format", "json"],
    ["hazard", "show", "1"],
    ["hazard", "report", "--compound", "CA-1", "--category", "exit_blocked", "--lonlat", "121.5,29.8"],
    ["photo", "add", "1", "{photo}"],
    ["campaign", "create", "--preset", "yinzhou-2020", "--year", "2026"],
    ["campaign", "inspect", "1", "--compound", "CA-1", "--kind", "self"],
    ["spotcheck", "record", "1", "--compound", "CA-1", "--item", "vehicles", "--result", "pass"],
], ids=lambda a: " ".join(a[:2]))
def test_every_command_refuses_an_unknown_as_user_in_one_line_and_writes_nothing(db, tmp_path, args):
    photo = tmp_path / "p.jpg"
    photo.write_bytes(b"\xff\xd8\xff")
    args = [a.replace("{photo}", str(photo)) for a in args]
    result = CliRunner().invoke(cli, [*args, "--as", "nobody"])
    assert result.exit_code == 1, result.output
    assert "no user 'nobody'" in result.output and len(result.output.strip().splitlines()) == 1
    with db.connect() as conn:
        assert conn.execute(text("SELECT (SELECT count(*) FROM campaigns) + (SELECT count(*) FROM hazards)")
                            ).scalar_one() == 0


def test_a_disabled_user_is_refused_by_both_command_lines(db, tmp_path):
    _user(db, "gone", "fire_brigade", active=False)
    photo = tmp_path / "p.jpg"
    photo.write_bytes(b"\xff\xd8\xff")
    for args in (["hazard", "list"], ["photo", "add", "1", str(photo)]):
        result = CliRunner().invoke(cli, [*args, "--as", "gone"])
        assert result.exit_code == 1 and "'gone' is disabled" in result.output, (args, result.output)
