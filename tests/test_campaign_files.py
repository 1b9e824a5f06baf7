"""一小区一档 as HTML and PDF: the PDF's first page rendered with pdftoppm into tests/artifacts/, its text read back with
pdftotext (the compound's name and every hazard's rule); the district's files as one ZIP."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import zipfile
from datetime import date
from pathlib import Path

import pytest
from campaign_support import HOSTILE_NAME, load_campaign_district
from openpyxl import load_workbook
from PIL import Image
from sqlalchemy import text

from gis.campaign import campaigns as cp
from gis.campaign import dossier
from gis.campaign import photos as ph
from gis.campaign import stage_reports as sr
from web import district_files
from web.documents import write_compound

pytestmark = pytest.mark.db
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")


def _jpeg(colour: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (320, 240), colour).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.fixture
def district(db):
    refs = load_campaign_district(db)
    ref = refs["330212003"][0]
    with db.begin() as conn:
        conn.execute(text(
            "INSERT INTO buildings (ref, compound_ref, compound_id, street_code, height_m, geom) "
            "SELECT 'B-' || ref, ref, id, street_code, 33, "
            "ST_Multi(ST_Buffer(ST_PointOnSurface(geom), 0.0002, 'quad_segs=1')) FROM compounds WHERE ref = :r"),
            {"r": ref})
        hid = conn.execute(text("SELECT id FROM hazards WHERE compound_ref = :r AND rule = 'LANE-CLEAR'"),
                           {"r": ref}).scalar_one()
        owner = ph.hazard_owner(conn, hid)
        for kind, colour in (("before", "red"), ("after", "green")):
            ph.add_photo(conn, _jpeg(colour), owner=owner, kind=kind, user="test")
    return refs, ref


@needs_poppler
def test_the_compound_pdf_names_the_compound_and_every_hazards_rule(db, district):
    _, ref = district
    ARTIFACTS.mkdir(exist_ok=True)
    pdf = ARTIFACTS / f"compound_{ref}.pdf"
    write_compound(ref, pdf, engine=db)
    assert pdf.read_bytes()[:5] == b"%PDF-"
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(pdf), str(ARTIFACTS / f"compound_{ref}")],
                   check=True)
    page = next(ARTIFACTS.glob(f"compound_{ref}-*1.png"))
    with Image.open(page) as im:
        assert im.width > 300 and len(set(im.convert("L").get_flattened_data())) > 10  # a drawn page, not blank
    words = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                           check=True).stdout
    assert "一小区一档" in words and ref in words
    assert "HYPERLINK" in words and "<script>" in words  # the hostile name printed as text
    with db.connect() as conn:
        rules = conn.execute(text("SELECT rule FROM hazards WHERE compound_ref = :r"), {"r": ref}).scalars().all()
    assert rules and all(rule in words for rule in rules)
    assert "整改前" in words and "整改后" in words  # the before/after photos' captions


def test_the_compound_html_escapes_names_and_inlines_the_map(db, district, tmp_path):
    _, ref = district
    html = write_compound(ref, tmp_path / "c.html", engine=db).read_text(encoding="utf-8")
    assert HOSTILE_NAME not in html and "&lt;script&gt;" in html
    assert html.count("data:image/jpeg;base64,") == 3  # the map and the before/after thumbnails
    with pytest.raises(dossier.CompoundNotFound):
        write_compound("nope", tmp_path / "x.html", engine=db)


def test_the_districts_files_are_one_zip_one_pdf_per_compound(db, district, tmp_path):
    refs, _ = district
    cid = cp.create_campaign(preset_key="changle-2022", year=2026, streets=["330212005"], engine=db)
    seen: list[float] = []
    # two chunks in a pool of two spawned processes: each reads under this test's scope (row-level security)
    out = district_files.district_zip(cid, tmp_path / "files.zip", workers=2, engine=db, progress=seen.append,
                                      chunk=2)
    assert out["files"] == len(refs["330212005"]) and seen[-1] == 1.0
    with zipfile.ZipFile(tmp_path / "files.zip") as zf:
        names = sorted(zf.namelist())
        assert names == [f"一小区一档/{r}.pdf" for r in refs["330212005"]]
        assert zf.read(names[0])[:5] == b"%PDF-"


@needs_poppler
def test_stage_reports_and_the_summary_carry_charts_cases_and_due_dates(db, district, tmp_path):
    cid = cp.create_campaign(preset_key="changle-2022", year=2026, engine=db)
    day = date(2026, 5, 1)
    pdf = sr.write_report(cid, tmp_path / "stage.pdf", kind="stage", street="330212003", today=day, engine=db)
    words = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                           check=True).stdout.replace("\n", "")
    assert "整改落实阶段工作进展报告" in words and "2026-07-10" in words  # due 5 days before 7/15
    assert "中河街道" in words and "典型案例" in words
    # the progress table keeps a street office's name on one line beside its many counts
    layout = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                            check=True).stdout
    assert any(re.match(r"\s*中河街道\s+\d", line) for line in layout.splitlines()), layout[:2000]
    doc = sr.report_data(cid, kind="summary", today=day, engine=db)
    assert doc["due"] == "2026-12-10" and set(doc["charts"]) == {"trend", "focus", "departments", "ageing"}
    assert all(png[:8] == b"\x89PNG\r\n\x1a\n" for png in doc["charts"].values())
    assert doc["cases"][0]["before"] and doc["cases"][0]["after"]  # the case with photos comes first
    xlsx = sr.write_report(cid, tmp_path / "summary.xlsx", kind="summary", today=day, engine=db)
    wb = load_workbook(xlsx)
    assert wb.sheetnames == ["进度", "典型案例", "图表"] and len(wb["图表"]._images) == 4
    ws = wb["进度"]
    with db.connect() as conn:
        found = conn.execute(text("SELECT count(*) FROM hazards WHERE verdict = 'fail'")).scalar_one()
    total_row = next(r for r in range(5, ws.max_row + 1) if ws.cell(r, 1).value == "合计")
    assert ws.cell(total_row, 6).value == found
    with pytest.raises(cp.CampaignError, match="not in campaign"):
        sr.write_report(cid, tmp_path / "x.pdf", kind="stage", street="999", engine=db)
