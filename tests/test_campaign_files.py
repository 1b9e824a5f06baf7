"""一小区一档 as HTML and PDF: the PDF's first page rendered with pdftoppm into tests/artifacts/, its text read back with
pdftotext (the compound's name and every hazard's rule); the district's files as one ZIP."""

from __future__ import annotations

import io
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from campaign_support import HOSTILE_NAME, load_campaign_district
from PIL import Image
from sqlalchemy import text

from gis.campaign import campaigns as cp
from gis.campaign import dossier
from gis.campaign import photos as ph
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
            "INSERT INTO buildings (ref, compound_ref, height_m, geom) SELECT 'B-' || ref, ref, 33, "
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
    assert html.count("data:image/png;base64,") == 1 and "data:image/jpeg;base64," in html
    with pytest.raises(dossier.CompoundNotFound):
        write_compound("nope", tmp_path / "x.html", engine=db)


def test_the_districts_files_are_one_zip_one_pdf_per_compound(db, district, tmp_path):
    refs, _ = district
    cid = cp.create_campaign(preset_key="changle-2022", year=2026, streets=["330212005"], engine=db)
    seen: list[float] = []
    out = dossier.district_zip(cid, tmp_path / "files.zip", workers=1, engine=db, progress=seen.append, chunk=2)
    assert out["files"] == len(refs["330212005"]) and seen[-1] == 1.0
    with zipfile.ZipFile(tmp_path / "files.zip") as zf:
        names = sorted(zf.namelist())
        assert names == [f"一小区一档/{r}.pdf" for r in refs["330212005"]]
        assert zf.read(names[0])[:5] == b"%PDF-"
