"""`firelane hazard list|show|assign|transition`: the rectification workflow from the command line.

Acts `--as USER` (default: the OS user), resolved by api.cli_user.cli_actor: a firelane user acts with its role
and jurisdiction, a name that is no firelane user is refused; the OS user who is none is the local operator, who
owns the database and acts as an admin, recorded under that name. Every refusal exits non-zero with one line.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import click
from sqlalchemy import Connection

from api.cli_errors import FirelaneError
from api.cli_schema import ensure_schema
from api.cli_user import cli_actor
from api.cli_user import os_user as _os_user
from gis import scope as gis_scope
from gis.campaign import lifecycle as lc
from gis.campaign import photos
from gis.campaign import workflow as wf
from gis.campaign.actors import Actor
from gis.campaign.worklist_export import worklist_csv, write_rows_xlsx
from gis.db import get_engine, transaction
from gis.terminal_safety import table, terminal_text

TABLE_COLUMNS = ("id", "status_zh", "rule", "severity", "compound_ref", "department", "responsible_unit", "deadline",
                 "days_overdue")


class HazardCliError(FirelaneError):
    """One line on stderr, exit status 1."""


def _scope(actor: Actor) -> wf.Scope:
    """The actor's jurisdiction over hazards, as the workflow's SQL predicate on alias t (gis.scope's one path)."""
    if actor.streets is not None:
        return gis_scope.filter_sql("hazards", gis_scope.for_streets(actor.role, actor.streets))
    if actor.compounds is not None:
        return gis_scope.filter_sql("hazards", gis_scope.for_compounds(actor.role, actor.compounds))
    return wf.EVERYWHERE


def _run(action: Callable[[Connection, Actor, wf.Scope], Any], *, as_user: str | None,
         write: bool = False) -> Any:
    """Run `action` in one transaction (a write records the acting user in the audit); refusals → one line."""
    ensure_schema()
    engine = get_engine()
    try:
        if write:
            with transaction(user=as_user or _os_user(), engine=engine) as conn:
                actor = cli_actor(as_user, conn=conn)
                return action(conn, actor, _scope(actor))
        with engine.connect() as conn:
            actor = cli_actor(as_user, conn=conn)
            return action(conn, actor, _scope(actor))
    except lc.WorkflowError as exc:
        raise HazardCliError(exc.message) from exc


def _attach_photos(conn: Connection, hazard_id: int, paths: Sequence[Path], *, kind: str, user: str) -> list[int]:
    """Store photo files for a hazard (gis.campaign.photos: sniffed, bounded, content-addressed); their ids."""
    if not paths:
        return []
    owner = photos.hazard_owner(conn, hazard_id)
    return [photos.add_photo(conn, p.read_bytes(), owner=owner, kind=kind, filename=p.name, user=user)["id"]
            for p in paths]


@click.group("hazard")
def hazard() -> None:
    """隐患整改流程 the hazard rectification workflow (list, show, assign, transition)."""


def _as_option(f: Callable) -> Callable:
    return click.option("--as", "as_user", default=None, help="act as this user (default: the OS user)")(f)


@hazard.command("list")
@click.option("--street", default=None, help="street code 街道代码")
@click.option("--compound", default=None, help="compound ref 小区编号")
@click.option("--status", "statuses", multiple=True, type=click.Choice(lc.STATES), help="repeatable")
@click.option("--department", default=None, help="assigned department 责任部门")
@click.option("--family", default=None, help="rule family (lanes, aerial, separation, structures, hydrants, ...)")
@click.option("--overdue", is_flag=True, help="only hazards past their deadline 已逾期")
@click.option("--limit", type=click.IntRange(1, 100_000), default=10_000, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "xlsx"]), default="table",
              show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write to this file (required for xlsx)")
@_as_option
def list_cmd(street: str | None, compound: str | None, statuses: tuple[str, ...], department: str | None,
             family: str | None, overdue: bool, limit: int, fmt: str, output: Path | None,
             as_user: str | None) -> None:
    """List hazards in the life cycle (data gaps excluded), soonest deadline first."""
    flt = wf.HazardFilter(status=statuses, street=street, compound=compound, department=department, family=family,
                          overdue=True if overdue else None)

    def action(conn: Connection, actor: Actor, scope: wf.Scope) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        while len(rows) < limit:
            page = wf.list_hazards(conn, flt, scope=scope, limit=min(wf.MAX_PAGE, limit - len(rows)),
                                   offset=len(rows))
            rows += page
            if len(page) < wf.MAX_PAGE:
                break
        return rows

    rows = _run(action, as_user=as_user)
    if fmt == "xlsx" and output is None:
        raise HazardCliError("xlsx 需要 -o PATH xlsx output needs -o PATH")
    if fmt == "json":
        _emit(json.dumps(rows, ensure_ascii=False, default=str), output)
    elif fmt == "csv":
        _emit(worklist_csv(rows), output, bom=True)
    elif fmt == "xlsx":
        assert output is not None
        write_rows_xlsx(rows, output)
        click.echo(f"{len(rows)} hazards → {output}")
    else:
        _emit(_table(rows), output)


def _emit(body: str, output: Path | None, *, bom: bool = False) -> None:
    if output is None:
        click.echo(body.removeprefix("\ufeff"))
    else:
        output.write_text(body, encoding="utf-8")


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(无 none)"
    return table(TABLE_COLUMNS, ([r.get(c) for c in TABLE_COLUMNS] for r in rows))


@hazard.command("show")
@click.argument("hazard_id", type=click.IntRange(1, 2**62))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@_as_option
def show_cmd(hazard_id: int, fmt: str, as_user: str | None) -> None:
    """One hazard with its history (events)."""
    doc = _run(lambda conn, actor, scope: wf.show(conn, hazard_id, scope=scope, role=actor.role), as_user=as_user)
    if fmt == "json":
        click.echo(json.dumps(doc, ensure_ascii=False, default=str))
        return
    for key in ("id", "status_zh", "status", "rule", "clause", "severity", "compound_ref", "street_code",
                "department", "responsible_unit", "person", "deadline", "days_overdue", "message_zh", "version"):
        click.echo(f"{key:18} {terminal_text(doc.get(key)) if doc.get(key) is not None else ''}")
    click.echo("events 流转记录:")
    for e in doc["events"]:  # (who wrote a note or named a unit is not who reads it here: values as text)
        extra = " ".join(f"{k}={terminal_text(e[k])}" for k in ("department", "unit", "person", "deadline", "evidence")
                         if e.get(k))
        photos = f" photos={terminal_text(e['photos'])}" if e["photos"] else ""
        click.echo(f"  {e['at'][:19]}  {terminal_text(e['by'])}: {e['from'] or '-'} → {e['to']} {extra}{photos}"
                   + (f"  «{terminal_text(e['note'])}»" if e["note"] else ""))


@hazard.command("assign")
@click.argument("hazard_id", type=click.IntRange(1, 2**62))
@click.option("--department", required=True, help="责任部门, e.g. 交警/公安")
@click.option("--unit", required=True, help="责任单位 the responsible unit")
@click.option("--person", default=None, help="责任人")
@click.option("--deadline", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="整改期限 YYYY-MM-DD (default: the profile's for the rule)")
@click.option("--note", default=None)
@click.option("--version", "version", type=int, default=None, help="refuse if the hazard changed since this version")
@_as_option
def assign_cmd(hazard_id: int, department: str, unit: str, person: str | None, deadline: Any, note: str | None,
               version: int | None, as_user: str | None) -> None:
    """交办: assign a hazard to a department and responsible unit, with a deadline."""
    day: date | None = deadline.date() if deadline is not None else None
    out = _run(lambda conn, actor, scope: wf.assign(
        conn, hazard_id, actor=actor, department=department, unit=unit, person=person, deadline=day, note=note,
        scope=scope, expected_version=version), as_user=as_user, write=True)
    e = out["event"]
    click.echo(f"hazard {out['id']}: {e['from']} → {out['status']} ({out['status_zh']}) {department} / {unit}, "
               f"deadline 期限 {_deadline_of(out)}")


def _deadline_of(out: dict[str, Any]) -> str:
    return str(out.get("event", {}).get("deadline") or "")


@hazard.command("transition")
@click.argument("hazard_id", type=click.IntRange(1, 2**62))
@click.option("--to", "target", required=True, type=click.Choice(lc.STATES))
@click.option("--note", default=None, help="note; the reason when reopening or dismissing")
@click.option("--photo", "photo_paths", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="a photo file to attach (repeatable)")
@click.option("--photo-id", "photo_ids", multiple=True, type=click.IntRange(1, 2**62),
              help="an already stored photo of this hazard (repeatable)")
@click.option("--department", default=None)
@click.option("--unit", default=None)
@click.option("--person", default=None)
@click.option("--deadline", type=click.DateTime(formats=["%Y-%m-%d"]), default=None)
@click.option("--version", "version", type=int, default=None, help="refuse if the hazard changed since this version")
@_as_option
def transition_cmd(hazard_id: int, target: str, note: str | None, photo_paths: tuple[Path, ...],
                   photo_ids: tuple[int, ...], department: str | None, unit: str | None, person: str | None,
                   deadline: Any, version: int | None, as_user: str | None) -> None:
    """Move a hazard along its life cycle (refusals name the allowed next states)."""
    def action(conn: Connection, actor: Actor, scope: wf.Scope) -> dict[str, Any]:
        wf.show(conn, hazard_id, scope=scope)  # not found / out of scope before any file is stored
        stored = _attach_photos(conn, hazard_id, photo_paths, kind="after" if target == "rectified" else "before",
                                user=actor.username)
        change = lc.Change(note=note, department=department, unit=unit, person=person,
                           deadline=deadline.date() if deadline is not None else None,
                           photos=(*photo_ids, *stored))
        return wf.transition(conn, hazard_id, target, actor=actor, change=change, scope=scope,
                             expected_version=version)

    out = _run(action, as_user=as_user, write=True)
    e = out["event"]
    click.echo(f"hazard {out['id']}: {e['from']} → {out['status']} ({out['status_zh']}), version {out['version']}")
