"""Hostile files are refused within a memory ceiling, each naming the limit it broke; formula cells are reported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import geopandas as gpd
import openpyxl
import pytest
import shapely
from sqlalchemy import text

from gis.config import clear_caches
from gis.exporter import export_layer
from gis.importer import ImportFailed, import_file
from gis.readers import ReadError, read_source
from gis.store import read_layer

ROOT = Path(__file__).resolve().parents[1]
#: Address-space ceiling of the child that reads a hostile file (the interpreter with GDAL loaded takes ~0.5 GB).
CEILING = 1536 * 1024 * 1024


def _read_capped(path: Path, **env: str) -> tuple[str, int]:
    """read_source(path) in a child process under RLIMIT_AS = CEILING; returns (its outcome line, peak RSS in MB)."""
    code = textwrap.dedent(f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, ({CEILING}, {CEILING}))
        from gis.readers import ReadError, read_source
        try:
            read_source({str(path)!r})
            outcome = "READ"
        except ReadError as exc:
            outcome = f"REFUSED {{exc}}"
        # VmHWM is this program's own peak: ru_maxrss also keeps the forking parent's (a large pytest process)
        with open("/proc/self/status") as status:
            hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
        print(hwm // 1024, outcome)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, env={**os.environ, **env}, cwd=ROOT,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    peak, _, outcome = proc.stdout.decode().strip().partition(" ")
    return outcome, int(peak)


def _xlsx(path: Path, rows: list[list]) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "data"
    for r in rows:
        ws.append(r)
    wb.save(path)
    return path


def _rezip(src: Path, dst: Path, replace: dict[str, tuple[bytes, int, bytes]]) -> Path:
    """Copy a zip, replacing members by head + `size` blanks + tail (written streamed, deflated)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            if info.filename in replace:
                head, size, tail = replace[info.filename]
                zi = zipfile.ZipInfo(info.filename)
                zi.compress_type = zipfile.ZIP_DEFLATED
                with zout.open(zi, "w", force_zip64=True) as f:
                    f.write(head)
                    block = b" " * (1 << 20)
                    left = size
                    while left > 0:
                        f.write(block[:left])
                        left -= len(block)
                    f.write(tail)
            else:
                zout.writestr(info, zin.read(info.filename))
    return dst


def test_xlsx_whose_sheet_xml_inflates_hugely_is_refused_before_parsing(tmp_path):
    small = _xlsx(tmp_path / "small.xlsx", [["ref", "lon", "lat"], ["E1", 121.5, 29.8]])
    with zipfile.ZipFile(small) as zf:
        sheet = zf.read("xl/worksheets/sheet1.xml")
    head, tail = sheet.split(b"</sheetData>")
    bomb = _rezip(small, tmp_path / "bomb.xlsx", {"xl/worksheets/sheet1.xml": (head, 200 << 20, b"</sheetData>" + tail)})
    assert bomb.stat().st_size < 3 << 20
    outcome, peak = _read_capped(bomb)
    assert outcome.startswith("REFUSED") and "FIRELANE_LIMIT_COMPRESSION_RATIO" in outcome, outcome
    outcome, peak = _read_capped(bomb, FIRELANE_LIMIT_UNCOMPRESSED_BYTES=str(100 << 20))
    assert "FIRELANE_LIMIT_UNCOMPRESSED_BYTES=104,857,600" in outcome, outcome
    assert peak < 1024, peak


def test_shapefile_zip_whose_dbf_inflates_hugely_is_refused(tmp_path):
    gdf = gpd.GeoDataFrame({"ref": ["H1"]}, geometry=[shapely.Point(121.5, 29.8)], crs=4490)
    gdf.to_file(tmp_path / "h.shp")
    with zipfile.ZipFile(tmp_path / "plain.zip", "w") as zf:
        for p in tmp_path.glob("h.*"):
            zf.write(p, p.name)
    dbf = (tmp_path / "h.dbf").read_bytes()
    bomb = _rezip(tmp_path / "plain.zip", tmp_path / "bomb.zip", {"h.dbf": (dbf, 200 << 20, b"")})
    assert bomb.stat().st_size < 1 << 20
    outcome, peak = _read_capped(bomb)
    assert outcome.startswith("REFUSED") and "FIRELANE_LIMIT_COMPRESSION_RATIO" in outcome, outcome
    outcome, peak = _read_capped(bomb, FIRELANE_LIMIT_UNCOMPRESSED_BYTES=str(100 << 20))
    assert outcome.startswith("REFUSED") and "FIRELANE_LIMIT_UNCOMPRESSED_BYTES" in outcome, outcome
    assert peak < 1024, peak


def test_csv_of_nul_bytes_is_refused_naming_the_row_without_reading_it_whole(tmp_path):
    path = tmp_path / "nul.csv"
    with path.open("wb") as f:
        f.write(b"ref,lon,lat\nE1,121.5,29.8\nE2,")
        f.truncate(1 << 30)  # a sparse GiB of NULs after "E2,"
    outcome, peak = _read_capped(path)
    assert outcome.startswith("REFUSED") and "data row 2" in outcome and "lon" in outcome, outcome
    assert peak < 1024, peak


def test_csv_far_longer_than_the_row_limit_is_refused_reading_only_up_to_the_limit(tmp_path):
    """8 million rows (88 MB on disk, gigabytes as a parsed table) under a 100,000-row limit: parsed in chunks,
    refused at the chunk that crosses the limit, within the memory ceiling."""
    path = tmp_path / "long.csv"
    with path.open("wb") as f:
        f.write(b"lon,lat\n")
        block = b"121.5,29.8\n" * 100_000
        for _ in range(80):
            f.write(block)
    outcome, peak = _read_capped(path, FIRELANE_LIMIT_ROWS="100000")
    assert outcome.startswith("REFUSED") and "rows (至少 at least) 150,000 > FIRELANE_LIMIT_ROWS=100,000" in outcome, \
        outcome  # three chunks of 50,000 parsed: the third crosses the limit
    assert peak < 400, peak  # the interpreter with pandas and GDAL ~185 MB; parsing the whole file took 859 MB


def test_gdal_layers_without_a_declared_feature_count_are_refused_while_streaming(tmp_path, monkeypatch):
    """GML and DXF declare no feature count up front: the row limit applies to the batches as they are read."""
    points = gpd.GeoDataFrame({"ref": list("abcde")}, geometry=[shapely.Point(121.5 + i / 1000, 29.8) for i in
                                                                range(5)], crs=4490)
    points.to_file(tmp_path / "five.gml", driver="GML")
    points[["geometry"]].to_file(tmp_path / "five.dxf", driver="DXF")

    assert len(read_source(tmp_path / "five.gml").frame) == 5
    monkeypatch.setenv("FIRELANE_LIMIT_ROWS", "3")
    clear_caches()
    try:
        for name in ("five.gml", "five.dxf"):
            with pytest.raises(ReadError, match=r"features in \w+ \(至少 at least\) 4 > FIRELANE_LIMIT_ROWS=3"):
                read_source(tmp_path / name)
    finally:
        monkeypatch.delenv("FIRELANE_LIMIT_ROWS")
        clear_caches()


def test_wide_and_long_tables_are_refused_naming_the_limit(tmp_path, monkeypatch):
    wide = tmp_path / "wide.csv"
    wide.write_text(",".join(["lon", "lat", *(f"c{i}" for i in range(100_000))]) + "\n121.5,29.8\n")
    with pytest.raises(ReadError, match=r"columns in the header 100,002 > FIRELANE_LIMIT_COLUMNS=500"):
        read_source(wide)
    one_row = tmp_path / "row.csv"
    one_row.write_text("lon,lat\n" + ",".join(["1"] * 100_000) + "\n")
    with pytest.raises(ReadError, match="more fields than the header"):
        read_source(one_row)
    monkeypatch.setenv("FIRELANE_LIMIT_ROWS", "3")

    clear_caches()
    try:
        rows = tmp_path / "rows.csv"
        rows.write_text("lon,lat\n" + "121.5,29.8\n" * 4)
        with pytest.raises(ReadError, match="rows 4 > FIRELANE_LIMIT_ROWS=3"):
            read_source(rows)
        xlsx = _xlsx(tmp_path / "rows.xlsx", [["lon", "lat"], *[[121.5, 29.8]] * 4])
        with pytest.raises(ReadError, match="rows 4 > FIRELANE_LIMIT_ROWS=3"):
            read_source(xlsx)
        gpkg = tmp_path / "rows.gpkg"
        gpd.GeoDataFrame({"ref": list("abcd")}, geometry=[shapely.Point(121.5, 29.8)] * 4, crs=4490).to_file(gpkg)
        with pytest.raises(ReadError, match="features in rows 4 > FIRELANE_LIMIT_ROWS=3"):
            read_source(gpkg)
    finally:
        monkeypatch.delenv("FIRELANE_LIMIT_ROWS")
        clear_caches()


def test_xlsx_with_an_external_entity_is_a_clean_error(tmp_path):
    small = _xlsx(tmp_path / "ok.xlsx", [["ref", "lon", "lat"], ["E1", 121.5, 29.8]])
    xxe = tmp_path / "xxe.xlsx"
    with zipfile.ZipFile(small) as zin, zipfile.ZipFile(xxe, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b"?>", b'?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', 1)
                data = data.replace(b"<v>121.5</v>", b"<v>&xxe;</v>")
            zout.writestr(info, data)
    with pytest.raises(ReadError, match="cannot read"):
        read_source(xxe)


def test_formula_cells_without_cached_values_are_reported_by_row_and_field(tmp_path):
    path = _xlsx(tmp_path / "f.xlsx", [["ref", "height_m", "lon", "lat"], ["B1", 10, 121.5, 29.8],
                                        ["B2", "=B2*2", 121.5, 29.8], ["B3", 12, "=C2", 29.8]])
    with pytest.raises(ReadError) as err:
        read_source(path)
    assert err.value.problems == [
        (2, "height_m", "公式没有缓存值 formula without a cached value in B3: =B2*2"),
        (3, "lon", "公式没有缓存值 formula without a cached value in C4: =C2")]


@pytest.mark.db
def test_formula_problems_and_limits_surface_through_import(db, tmp_path):
    path = _xlsx(tmp_path / "f.xlsx", [["ref", "lon", "lat"], ["E1", "=1+1", 29.8]])
    with pytest.raises(ImportFailed) as err:
        import_file(path, layer="entrances", engine=db)
    assert [str(p) for p in err.value.problems] == ["第1行 lon: 公式没有缓存值 formula without a cached value in B2: =1+1"]
    many = tmp_path / "extra.csv"
    many.write_text(",".join(["lon", "lat", *(f"k{i}" for i in range(300))]) + "\n"
                    + ",".join(["121.5", "29.8", *("v" for _ in range(300))]) + "\n")
    with pytest.raises(ImportFailed, match="extra columns 300 > FIRELANE_LIMIT_EXTRA_KEYS=200"):
        import_file(many, layer="entrances", engine=db)


@pytest.mark.db
def test_exports_survive_thousands_of_extra_keys(db, tmp_path, truncate):
    """Rows stored before the limit (or by SQL) with 2,000 extra keys still export to every format and back."""
    extra = {f"k{i}": i for i in range(2000)} | {"": "empty", "K0": "case twin", "x" * 300: "long"}
    with db.begin() as conn:
        conn.execute(text("INSERT INTO entrances (ref, geom, extra) VALUES ('E1', ST_SetSRID(ST_MakePoint(121.5, 29.8), "
                          "4490), CAST(:e AS jsonb))"), {"e": json.dumps(extra)})
    for fmt in ("gpkg", "csv", "xlsx", "geojson"):
        out = tmp_path / f"e.{fmt}"
        assert export_layer("entrances", fmt=fmt, path=out, engine=db) == 1
    small = {"note": "=HYPERLINK(\"http://x\")", "KEY": 1, "key": 2}
    with db.begin() as conn:
        conn.execute(text("UPDATE entrances SET extra = CAST(:e AS jsonb)"), {"e": json.dumps(small)})
    export_layer("entrances", fmt="gpkg", path=tmp_path / "small.gpkg", engine=db)
    truncate("entrances")
    import_file(tmp_path / "small.gpkg", layer="entrances", engine=db)
    assert read_layer("entrances", engine=db)["extra"].tolist() == [small]
