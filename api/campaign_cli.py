"""`firelane campaign|spotcheck|report`: campaigns and stages, double-random spot checks, forms and reports.

Acts `--as USER` like every command (api.cli_user.cli_actor): a firelane user acts with its role, a name that is no
firelane user is refused; without --as, the OS user (the local operator, admin unless a firelane user of that name).
Every refusal exits non-zero with one line.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import click

from api.cli_errors import FirelaneError
from api.cli_schema import ensure_schema
from api.cli_user import cli_actor
from api.cli_user import os_user as _os_user
from gis import jobs
from gis.campaign import campaigns as cp
from gis.campaign import funding
from gis.campaign import lifecycle as lc
from gis.campaign import spotchecks as sc
from gis.campaign.actors import Actor
from gis.campaign.deadlines import local_today
from gis.campaign.focus import ITEM_CODES
from gis.campaign.forms import write_forms
from gis.campaign.progress import COUNTS, LABELS, progress
from gis.db import get_engine
from gis.terminal_safety import terminal_text


class CampaignCliError(FirelaneError):
    """One line on stderr, exit status 1."""


def _engine() -> Any:


    ensure_schema()
    return get_engine()


def _day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CampaignCliError(f"日期应为 YYYY-MM-DD date must be YYYY-MM-DD, got {value!r}") from None


def _guard(fn: Any) -> Any:
    """Domain refusals (campaign, spot check, workflow, field errors) as one line, exit 1."""

    try:
        return fn()
    except (cp.CampaignError, lc.WorkflowError) as exc:
        raise CampaignCliError(getattr(exc, "message", str(exc))) from exc


def _as_option(f: Any) -> Any:
    return click.option("--as", "as_user", default=None, help="act as this user (default: the OS user)")(f)


def _actor(engine: Any, as_user: str | None) -> Actor:
    with engine.connect() as conn:
        return cli_actor(as_user, conn=conn)


# --- campaign -----------------------------------------------------------------------------------------------------


@click.group("campaign")
def campaign() -> None:
    """整治行动 campaigns: presets, stages, progress per street office."""


@campaign.command("create")
@click.option("--preset", type=click.Choice(sorted(cp.PRESETS)), default=None, help="the source plan's calendar")
@click.option("--name", default=None, help="default: the preset's name")
@click.option("--year", type=int, default=None, help="shift the preset's dates to this year")
@click.option("--street", "streets", multiple=True, help="jurisdiction: street codes (default: every street)")
@click.option("--pilot", "pilots", multiple=True, help="pilot street code or name (default: the preset's)")
@click.option("--stages", "stages_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="JSON list of stages (code, name_zh, name_en, starts_on, ends_on, produces, report_due)")
@click.option("--rate", type=float, default=None, help="spot-check rate (default 0.1)")
@_as_option
def campaign_create(preset: str | None, name: str | None, year: int | None, streets: tuple[str, ...],
                    pilots: tuple[str, ...], stages_file: Path | None, rate: float | None,
                    as_user: str | None) -> None:
    """Create a campaign from a preset or a stage file; prints its id."""
    engine = _engine()
    stages = None
    if stages_file is not None:
        if stages_file.stat().st_size > 1_000_000:
            raise CampaignCliError("阶段文件过大 stage file over 1 MB")
        try:
            items = json.loads(stages_file.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise CampaignCliError(f"阶段文件不是 JSON stage file is not JSON: {exc}") from None
        if not isinstance(items, list):
            raise CampaignCliError("阶段文件应为列表 the stage file must hold a JSON list")
        stages = _guard(lambda: cp.parse_stages(items))
    settings = {"spot_check_rate": rate} if rate is not None else None
    cid = _guard(lambda: cp.create_campaign(
        preset_key=preset, year=year, name=name, stages=stages, streets=streets,
        pilot_streets=list(pilots) if pilots else None, settings=settings, user=_actor(engine, as_user).username,
        engine=engine))
    click.echo(cid)


@campaign.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def campaign_list(fmt: str) -> None:
    """List campaigns."""
    items = cp.list_campaigns(engine=_engine())
    if fmt == "json":
        click.echo(json.dumps([c.as_dict() for c in items], ensure_ascii=False, default=str))
        return
    for c in items:
        click.echo(f"{c.id}\t{terminal_text(c.name)}\t{terminal_text(c.preset or '-')}\t{c.starts_on}..{c.ends_on}\t"
                   f"{len(c.jurisdiction) or 'all'} streets")


@campaign.command("progress")
@click.argument("campaign_id", type=int)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--date", "day", default=None, help="as of this date (default: today, Asia/Shanghai)")
@click.option("--street", "streets", multiple=True, help="only these street codes")
def campaign_progress(campaign_id: int, fmt: str, day: str | None, streets: tuple[str, ...]) -> None:
    """Progress per street office against the current stage, and what is due next."""
    doc = _guard(lambda: progress(campaign_id, today=_day(day), streets=streets or None, engine=_engine()))
    if fmt == "json":
        click.echo(json.dumps(doc, ensure_ascii=False, default=str))
        return
    c = doc["campaign"]
    click.echo(f"{terminal_text(c['name'])}  今日 today {c['today']}  当前阶段 stage: "
               f"{terminal_text(c['current_stage'] or '-')}")
    if c["due_next"]:
        click.echo(f"下一项 due next: {c['due_next']['due']} {terminal_text(c['due_next']['what_zh'])} "
                   f"({terminal_text(c['due_next']['what_en'])})")
    cols = ["street", "name", *[k for k in COUNTS if not k.startswith("photos")], "stage_done"]
    click.echo("\t".join([cols[0], cols[1], *[LABELS[k][0] for k in cols[2:-1]], "阶段完成"]))
    for r in [*doc["streets"], {**doc["total"], "street": "合计", "name": ""}]:
        done = r["stage_done"]
        click.echo("\t".join([terminal_text(r[cols[0]]), terminal_text(r[cols[1]]), *[str(r[k]) for k in cols[2:-1]],
                              "-" if done is None else f"{done:.0%}"]))


@campaign.command("inspect")
@click.argument("campaign_id", type=int)
@click.option("--compound", required=True, help="compound ref 小区编号")
@click.option("--kind", type=click.Choice(["self", "inspection", "recheck"]), required=True,
              help="self: 物业自查自纠; inspection: 街道检查; recheck: 复查")
@click.option("--date", "day", default=None, help="default: today")
@click.option("--inspector", default=None)
@click.option("--unit", default=None)
@click.option("--note", default=None)
@_as_option
def campaign_inspect(campaign_id: int, compound: str, kind: str, day: str | None, inspector: str | None,
                     unit: str | None, note: str | None, as_user: str | None) -> None:
    """Record a self-inspection, inspection or re-inspection of a compound; prints its id."""

    engine = _engine()
    click.echo(_guard(lambda: cp.record_inspection(
        campaign_id, compound=compound, kind=kind, on_date=_day(day) or local_today(), unit=unit,
        inspector=inspector, note=note, user=_actor(engine, as_user).username, engine=engine)))


@campaign.command("renovation")
@click.argument("campaign_id", type=int)
@click.option("--year", type=int, required=True, help="the renovation plan's year")
@click.option("--compound", "compounds", multiple=True, required=True, help="compound refs in that year's plan")
@click.option("--route/--no-route", default=True, show_default=True,
              help="assign their lane, hydrant and facility hazards to the renovation project now")
@_as_option
def campaign_renovation(campaign_id: int, year: int, compounds: tuple[str, ...], route: bool,
                        as_user: str | None) -> None:
    """老旧小区改造: put compounds in a year's renovation plan and route their hazards to that project."""

    engine = _engine()
    _guard(lambda: funding.set_renovation(campaign_id, year=year, compounds=compounds, engine=engine))
    if route:
        actor = _guard(lambda: _actor(engine, as_user))
        moved = _guard(lambda: funding.route_renovation(campaign_id, actor=actor, engine=engine))
        click.echo(f"纳入改造项目 routed {len(moved)} hazards")


# --- spot checks --------------------------------------------------------------------------------------------------


@click.group("spotcheck")
def spotcheck() -> None:
    """双随机抽查 double-random spot checks: draw compounds and inspectors, record results."""


@spotcheck.command("draw")
@click.argument("campaign_id", type=int)
@click.option("--roster", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="CSV/XLSX with name, unit, street (姓名, 单位, 街道)")
@click.option("--rate", type=float, default=None, help="share of each street's candidates (default: the campaign's, "
                                                       "0.1); rounded up, at least one")
@click.option("--seed", type=int, default=None, help="random seed (default: a fresh one, printed and recorded)")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@_as_option
def spotcheck_draw(campaign_id: int, roster: Path, rate: float | None, seed: int | None, fmt: str,
                   as_user: str | None) -> None:
    """Draw spot checks (recorded with seed, candidates and roster for audit)."""

    engine = _engine()
    people, sha = _guard(lambda: sc.read_roster(roster))
    result = _guard(lambda: sc.draw(campaign_id, roster=people, roster_sha256=sha, rate=rate, seed=seed,
                                    user=_actor(engine, as_user).username, engine=engine))
    if fmt == "json":
        click.echo(json.dumps([{**c, "draw": result["draw"], "seed": result["seed"]} for c in result["checks"]],
                              ensure_ascii=False))
        return
    click.echo(f"抽签 draw {result['draw']}  种子 seed {result['seed']}  比例 rate {result['rate']:.0%}")
    for code, n in result["candidates"].items():
        click.echo(f"  {code}: 候选 {n} candidates → 抽取 {result['required'][code]}")
    for c in result["checks"]:
        click.echo(f"{c['id']}\t{terminal_text(c['street'])}\t{terminal_text(c['street_name'] or '')}\t"
                   f"{terminal_text(c['compound'])}\t{'、'.join(map(terminal_text, c['inspectors']))}")


@spotcheck.command("verify")
@click.argument("draw_id", type=int)
def spotcheck_verify(draw_id: int) -> None:
    """Re-run a stored draw from its recorded seed, candidates and roster; exit 1 if it differs."""

    same, _ = _guard(lambda: sc.reproduce(draw_id, engine=_engine()))
    if not same:
        raise CampaignCliError(f"抽签 {draw_id} 无法复现 draw {draw_id} does not reproduce")
    click.echo(f"抽签 {draw_id} 可复现 draw {draw_id} reproduces")


@spotcheck.command("record")
@click.argument("check_id", type=int)
@click.option("--compound", required=True, help="the drawn compound's ref (guards against a wrong check id)")
@click.option("--item", type=click.Choice(ITEM_CODES), required=True,
              help="evacuation | vehicles | illegal | design (the Changle plan's four focus items)")
@click.option("--result", type=click.Choice(["pass", "fail"]), required=True)
@click.option("--note", default=None)
@click.option("--photo", "photos", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_as_option
def spotcheck_record(check_id: int, compound: str, item: str, result: str, note: str | None,
                     photos: tuple[Path, ...], as_user: str | None) -> None:
    """Record one focus item's result; a failure reopens or files hazards."""

    engine = _engine()
    actor = _guard(lambda: _actor(engine, as_user))
    data = [p.read_bytes() for p in photos]
    out = _guard(lambda: sc.record(check_id, compound=compound, item=item, result=result, note=note, photos=data,
                                   actor=actor, engine=engine))
    hazards = ", ".join(f"#{h}" for h in out["hazards"])
    click.echo(f"抽查 {check_id} {item}: {result} → {out['status']}" + (f" (隐患 hazards {hazards})" if hazards else ""))


# --- reports ------------------------------------------------------------------------------------------------------


@click.group("report")
def report() -> None:
    """报表 the campaign's forms (附件1–4), one file per compound, stage reports and the summary."""


@report.command("forms")
@click.argument("campaign_id", type=int)
@click.option("-o", "--output", "out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--street", "streets", multiple=True, help="only these street codes")
@click.option("--date", "day", default=None, help="the forms' date (default: today)")
@click.option("--unit", default=None, help="填报单位 (default: the district's leading group)")
@click.option("--workers", type=click.IntRange(1, 16), default=1, show_default=True,
              help="processes writing the files")
def report_forms(campaign_id: int, out: Path, streets: tuple[str, ...], day: str | None, unit: str | None,
                 workers: int) -> None:
    """附件1–4 as XLSX into a folder."""

    files = _guard(lambda: write_forms(campaign_id, out, day=_day(day), streets=streets or None, unit=unit,
                                       engine=_engine(), workers=workers))
    for f in files:
        click.echo(f)


@report.command("compound")
@click.argument("ref")
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help=".pdf or .html")
def report_compound(ref: str, out: Path) -> None:
    """一小区一档: one compound's file as PDF or HTML (by suffix)."""
    from web.documents import write_compound  # noqa: PLC0415 (WeasyPrint, matplotlib: this command only)

    if out.suffix.lower() not in (".pdf", ".html", ".htm"):
        raise CampaignCliError(f"输出应为 .pdf 或 .html output must end in .pdf or .html, not {out.suffix!r}")
    _guard(lambda: write_compound(ref, out, engine=_engine()))
    click.echo(out)


@report.command("compounds")
@click.argument("campaign_id", type=int)
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="the ZIP to write")
@click.option("--street", "streets", multiple=True, help="only these street codes")
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True)
def report_compounds(campaign_id: int, out: Path, streets: tuple[str, ...], workers: int) -> None:
    """Every compound's file (PDF) of the campaign as one ZIP (a persisted job run by this process)."""
    from web import district_files  # noqa: PLC0415 (WeasyPrint and matplotlib: loaded only for this command)

    engine = _engine()
    params = {"campaign": campaign_id, "streets": list(streets), "path": str(out), "workers": workers}
    with jobs.inline("compound_files", params, user=_os_user(), engine=engine) as job:
        job.job.result = _guard(lambda: district_files.district_zip(
            campaign_id, out, streets=streets or None, workers=workers, engine=engine, progress=job.progress))
    click.echo(f"{out} ({job.job.result['files']} files)")


@report.command("stage")
@click.argument("campaign_id", type=int)
@click.option("--street", default=None, help="one street office (default: the district)")
@click.option("--stage", "stage_code", default=None, help="stage code (default: the current stage)")
@click.option("--date", "day", default=None, help="as of this date (default: today)")
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help=".pdf, .html or .xlsx")
def report_stage(campaign_id: int, street: str | None, stage_code: str | None, day: str | None, out: Path) -> None:
    """A stage report (per street or the district): charts, typical cases, due dates."""
    from gis.campaign import stage_reports as sr  # noqa: PLC0415 (matplotlib: loaded only for this command)

    _guard(lambda: sr.write_report(campaign_id, out, kind="stage", street=street, stage=stage_code, today=_day(day),
                                   engine=_engine()))
    click.echo(out)


@report.command("summary")
@click.argument("campaign_id", type=int)
@click.option("--date", "day", default=None, help="as of this date (default: today)")
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help=".pdf, .html or .xlsx")
def report_summary(campaign_id: int, day: str | None, out: Path) -> None:
    """The district summary report (总结报告): per street, charts, typical cases with before/after photos."""
    from gis.campaign import stage_reports as sr  # noqa: PLC0415 (matplotlib: loaded only for this command)

    _guard(lambda: sr.write_report(campaign_id, out, kind="summary", today=_day(day), engine=_engine()))
    click.echo(out)


@report.command("plans")
@click.argument("campaign_id", type=int)
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help=".xlsx")
@click.option("--date", "day", default=None, help="as of this date (default: today)")
def report_plans(campaign_id: int, out: Path, day: str | None) -> None:
    """一小区一策, the 维保金 gate and old-compound renovation routing as one XLSX."""

    _guard(lambda: funding.write_plans(campaign_id, out, today=_day(day), engine=_engine()))
    click.echo(out)


COMMANDS = (campaign, spotcheck, report)
