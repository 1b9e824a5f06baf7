"""`firelane photo add|get` and `firelane hazard report`: the field side of the command line."""

from __future__ import annotations

import json
from pathlib import Path

import click

from api.cli_errors import FirelaneError
from api.cli_schema import ensure_schema
from api.cli_user import cli_actor
from api.hazard_cli import hazard as workflow
from gis.campaign import photos as ph
from gis.campaign import reports
from gis.campaign.lifecycle import WorkflowError
from gis.campaign.locate import parse_geometry, parse_lonlat, to_stored
from gis.campaign.manual_rules import CATEGORIES
from gis.db import get_engine, transaction
from gis.terminal_safety import terminal_text


class FieldCliError(FirelaneError):
    """A refusal shown as one line with a non-zero exit."""


def _fail(exc: WorkflowError) -> FieldCliError:
    return FieldCliError(f"{exc.field}: {exc.message}" if exc.field and exc.field not in exc.message else exc.message)


def _read(path: Path, kind: str) -> reports.Upload:
    return reports.Upload(path.read_bytes(), path.name, kind)


@click.group("photo")
def photo() -> None:
    """照片 photos and documents of hazards."""


@photo.command("add")
@click.argument("hazard_id", type=click.IntRange(min=1))
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--kind", type=click.Choice(["before", "after", "other"]), default="other", show_default=True)
@click.option("--as", "as_user", default=None, help="act as this firelane user (default: the OS user)")
def photo_add(hazard_id: int, path: Path, kind: str, as_user: str | None) -> None:
    """Attach a JPEG/PNG/WebP/HEIC picture or a PDF to a hazard; prints the photo id."""
    ensure_schema()
    actor = cli_actor(as_user)
    try:
        with transaction(user=actor.username, engine=get_engine()) as conn:
            owner = ph.hazard_owner(conn, hazard_id, streets=actor.streets, compounds=actor.compounds)
            doc = ph.add_photo(conn, path.read_bytes(), owner=owner, kind=kind, filename=path.name,
                               user=actor.username)
    except WorkflowError as exc:
        raise _fail(exc) from exc
    click.echo(doc["id"])


@photo.command("get")
@click.argument("photo_id", type=click.IntRange(min=1))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write the file here (default: print its record as JSON)")
@click.option("--thumbnail", is_flag=True, help="the JPEG thumbnail instead of the file")
@click.option("--as", "as_user", default=None)
def photo_get(photo_id: int, output: Path | None, thumbnail: bool, as_user: str | None) -> None:
    """Print a photo's record (type, size, EXIF time and point, distance to its hazard) or save its file."""
    ensure_schema()
    actor = cli_actor(as_user)
    try:
        with get_engine().connect() as conn:
            doc = ph.get_photo(conn, photo_id, streets=actor.streets, compounds=actor.compounds)
        if output is None:
            click.echo(json.dumps(doc, ensure_ascii=False, indent=2))
            return
        output.write_bytes(ph.photo_bytes(doc, thumbnail=thumbnail))
    except WorkflowError as exc:
        raise _fail(exc) from exc
    click.echo(f"written 已写出 {output}", err=True)


@photo.command("gc")
@click.option("--older-than-hours", type=click.FloatRange(min=0), default=24, show_default=True,
              help="only blobs written longer ago (uploads in flight keep theirs)")
def photo_gc(older_than_hours: float) -> None:
    """Delete stored files no photo refers to (left by refused or rolled-back uploads)."""
    ensure_schema()
    with get_engine().connect() as conn:
        n = ph.collect_garbage(conn, older_than_s=older_than_hours * 3600)
    click.echo(f"deleted 已删除 {n} unreferenced files")


@click.command("report")
@click.option("--compound", required=True, help="compound ref 小区编号 (checked against where the point lies)")
@click.option("--category", required=True, type=click.Choice(CATEGORIES))
@click.option("--lonlat", default=None, help="LON,LAT in degrees (CGCS2000/WGS 84 unless --crs)")
@click.option("--geometry", "geometry_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="a GeoJSON Point/Polygon (bare, Feature or one-feature collection)")
@click.option("--crs", default=None, help="CRS of the coordinates: gcj02, bd09 or an EPSG code")
@click.option("--note", default=None)
@click.option("--photo", "photos", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="before-photo (repeatable)")
@click.option("--after", "afters", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="after-photo (repeatable; with --fixed)")
@click.option("--fixed", is_flag=True, help="边查边改: found and fixed now (needs --photo and --after)")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--as", "as_user", default=None, help="act as this firelane user (default: the OS user)")
def report(compound: str, category: str, lonlat: str | None, geometry_file: Path | None, crs: str | None,
           note: str | None, photos: tuple[Path, ...], afters: tuple[Path, ...], fixed: bool, fmt: str,
           as_user: str | None) -> None:
    """File a manual hazard (MANUAL-* rule) at a point or polygon; prints the hazard id."""
    if (lonlat is None) == (geometry_file is None):
        raise FieldCliError("需要 --lonlat 或 --geometry 之一 give exactly one of --lonlat and --geometry")
    ensure_schema()
    actor = cli_actor(as_user)
    try:
        if lonlat is not None:
            geom, field = parse_lonlat(lonlat), "lonlat"
        elif geometry_file is not None:  # exactly one of the two (above)
            geom, field = parse_geometry(geometry_file.read_text(encoding="utf-8")), "geometry"
        geom = to_stored(geom, crs)
        uploads = [_read(p, "before") for p in photos] + [_read(p, "after") for p in afters]
        with transaction(user=actor.username, engine=get_engine()) as conn:
            doc = reports.file_report(conn, category=category, geom=geom, actor=actor, compound=compound,
                                      note=note, uploads=uploads, fixed=fixed, field=field)
    except WorkflowError as exc:
        raise _fail(exc) from exc
    if fmt == "json":
        click.echo(json.dumps(doc, ensure_ascii=False))
        return
    click.echo(doc["id"])
    click.echo(f"{doc['rule']} {doc['status']} {terminal_text(doc['compound_ref'])} → "
               f"{terminal_text(doc['department'])}", err=True)


#: `firelane hazard`: the workflow's commands and `hazard report` (a hazard reported from the field)
hazard = workflow
hazard.add_command(report)
