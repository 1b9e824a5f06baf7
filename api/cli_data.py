"""`firelane import`, `export`, `validate`, `import-osm` and `sample`: layers in, checked again and out, and the
sample district."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import click

from api.cli_errors import FirelaneError
from api.cli_schema import ensure_schema
from api.cli_user import os_user as _os_user
from gis.db import get_engine
from gis.exporter import ExportError, attribution_path, export_layer
from gis.importer import ImportFailed, import_file
from gis.layers import LAYERS
from gis.osm import OsmImportError, import_osm
from gis.revalidate import DATA_LAYERS, StoredProblem, ledger_problems, revalidate
from gis.sample import generate, ledger_rows, load_sample, write_sample
from gis.spreadsheet_safety import csv_value
from gis.terminal_safety import table, terminal_lines
from gis.text_rules import shown

# --- import / export --------------------------------------------------------------------------------------------

LAYER_CHOICE = click.Choice(sorted(LAYERS))


@click.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=True, path_type=Path))
@click.option("--layer", "layer", required=True, type=LAYER_CHOICE, help="target layer 目标图层")
@click.option("--crs", default=None, help="source CRS: EPSG code, WKT, gcj02 or bd09 (default: from the file)")
@click.option("--mode", type=click.Choice(["append", "replace"]), default="append", show_default=True)
@click.option("--dry-run", is_flag=True, help="validate and report; write nothing")
@click.option("--source-layer", default=None, help="layer/sheet inside the file (GeoPackage, DXF, XLSX)")
@click.option("--user", default=None, help="recorded in the audit log (default: the OS user)")
def import_cmd(path: Path, layer: str, crs: str | None, mode: str, dry_run: bool, source_layer: str | None,
               user: str | None) -> None:
    """Import a GeoJSON / GeoPackage / Shapefile (.shp/.zip) / KML / DXF / CSV / XLSX file, all or nothing."""
    if not dry_run:
        ensure_schema()
    try:
        report = import_file(path, layer=layer, crs=crs, mode=mode, dry_run=dry_run, source_layer=source_layer,
                             user=user or _os_user())
    except ImportFailed as exc:
        for problem in exc.problems:
            click.echo(terminal_lines(str(problem)), err=True)  # (a problem quotes the file's cells)
        raise FirelaneError(f"导入失败，未写入任何数据 import failed, nothing written ({len(exc.problems)} problems)") from exc
    click.echo(report.summary())


@click.command("export")
@click.argument("layer", type=LAYER_CHOICE)
@click.option("--format", "fmt", type=click.Choice(["geojson", "gpkg", "shp", "kml", "csv", "xlsx"]), required=True)
@click.option("-o", "--output", "output", type=click.Path(path_type=Path), required=True)
@click.option("--street", default=None, help="only this street code 街道代码")
@click.option("--compound", default=None, help="only this compound ref 小区编号")
@click.option("--crs", default=None, help="output CRS (default: EPSG:4490; gcj02/bd09 accepted)")
def export_cmd(layer: str, fmt: str, output: Path, street: str | None, compound: str | None,
               crs: str | None) -> None:
    """Export a layer, optionally filtered by street or compound."""
    ensure_schema()
    try:
        n = export_layer(layer, fmt=fmt, path=output, street=street, compound=compound, crs=crs)
    except ExportError as exc:
        raise FirelaneError(str(exc)) from exc
    click.echo(f"exported 导出 {n} features → {output}")
    if attribution_path(output).exists():
        click.echo(terminal_lines(attribution_path(output).read_text(encoding="utf-8").strip()))


@click.command("validate")
@click.option("--layer", "layers", multiple=True, type=click.Choice([*DATA_LAYERS, "hazards"]),
              help="only this layer (repeatable; default: every data layer and the ledger; hazards: the ledger's "
                   "typed text, its events included) 图层")
@click.option("--street", default=None, help="only this street code 街道代码")
@click.option("--compound", default=None, help="only this compound ref 小区编号")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write the list here (default: standard output)")
def validate_cmd(layers: tuple[str, ...], street: str | None, compound: str | None, fmt: str,
                 output: Path | None) -> None:
    """复核已入库数据 check the stored features against today's import rules (values, text, extra, geometry, extent).

    Rows stored before a rule tightened, or written by SQL, are listed with their layer, id, ref, field and what an
    import would say; the ledger's typed text (units, persons, notes) as the workflow would. The exit code is 1 when
    there is any. Nothing is changed: fix the rows by an import with --mode replace, in the map pages or in QGIS."""
    ensure_schema()
    counts: dict[str, int] = {}
    data = [name for name in layers if name != "hazards"] if layers else None
    problems = list(revalidate(get_engine(), data, street=street, compound=compound, counts=counts)) \
        if data is None or data else []
    if not layers or "hazards" in layers:
        problems += ledger_problems(get_engine(), street=street, compound=compound, counts=counts)
    text = {"table": _problem_table, "json": _problem_json, "csv": _problem_csv}[fmt](problems)
    if output is not None:
        output.write_text(text, encoding="utf-8")
    elif text:
        click.echo(text)
    click.echo(f"复核 {sum(counts.values())} 行 ({len(counts)} 个表), {len(problems)} 处问题 checked "
               f"{sum(counts.values())} rows in {len(counts)} tables: {len(problems)} problems", err=True)
    if problems:
        sys.exit(1)


_PROBLEM_COLUMNS = ("layer", "id", "ref", "field", "message")


def _problem_table(problems: list[StoredProblem]) -> str:
    # (a ref is shown with what makes it differ from its look-alike written out: a zero-width space, say)
    return table(_PROBLEM_COLUMNS, ((p.layer, p.id, shown(p.ref or ""), p.field, p.message) for p in problems)) \
        if problems else ""


def _problem_json(problems: list[StoredProblem]) -> str:
    return json.dumps([p.as_dict() for p in problems], ensure_ascii=False)


def _problem_csv(problems: list[StoredProblem]) -> str:
    out = io.StringIO()
    out.write("\ufeff")  # (a BOM: Excel reads the file as UTF-8)
    w = csv.writer(out)
    w.writerow(_PROBLEM_COLUMNS)
    for p in problems:
        w.writerow([csv_value(v) for v in (p.layer, p.id, p.ref, p.field, p.message)])
    return out.getvalue()


@click.command("import-osm")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--user", default=None)
def import_osm_cmd(path: Path, user: str | None) -> None:
    """Derive firelane layers from an OpenStreetMap extract (.osm.pbf / .osm / .osm.bz2)."""
    ensure_schema()
    try:
        report = import_osm(path, user=user or "osm-import", progress=sys.stderr.isatty())
    except OsmImportError as exc:
        raise FirelaneError(str(exc)) from exc
    click.echo(report.summary())


# --- sample district --------------------------------------------------------------------------------------------


@click.command("sample")
@click.option("--district", type=click.Choice(["yinzhou", "changle"]), default="yinzhou", show_default=True)
@click.option("--scale", type=click.Choice(["s", "m", "l"]), default="s", show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--out", "out", type=click.Path(path_type=Path), default=None,
              help="also write the layers and ground truth here (GeoPackage + JSON)")
@click.option("--no-load", is_flag=True, help="generate files only; leave the database alone")
@click.option("--replace-ledger", "--yes", "replace_ledger", is_flag=True,
              help="replace the layers even when the hazards ledger has entries (they are deleted with them)")
def sample_cmd(district: str, scale: str, seed: int, out: Path | None, no_load: bool, replace_ledger: bool) -> None:
    """Generate a deterministic synthetic district with planted hazards (ground truth) and load it.

    Loading replaces every layer and empties the hazards ledger: refused while the ledger has entries unless
    --replace-ledger (or --yes) is given.
    """
    if not no_load:
        ensure_schema()
        hazards = ledger_rows()
        if hazards and not replace_ledger:
            raise FirelaneError(f"隐患台账有 {hazards} 条记录, 载入样例会全部删除; 确认请加 --replace-ledger "
                                f"the hazards ledger holds {hazards} hazards that loading the sample would delete: "
                                "add --replace-ledger (or --yes) to replace it, or --no-load")

    sample = generate(district=district, scale=scale, seed=seed)
    if out is not None:
        write_sample(sample, out)
        click.echo(f"written 已写出 {out}")
    if not no_load:
        ensure_schema()
        load_sample(sample)
    click.echo(sample.summary())
