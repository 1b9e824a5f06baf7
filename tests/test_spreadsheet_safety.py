"""CSV and XLSX exports never hand Excel/WPS a formula: text is neutralised, numbers stay numbers, round trips hold."""

from __future__ import annotations

import csv
import json

import openpyxl
import pandas as pd
import pytest
from sqlalchemy import text

from gis.exporter import export_layer
from gis.importer import import_file
from gis.spreadsheet_safety import csv_frame, csv_unquote, csv_value, is_formula_like
from gis.store import read_layer

HOSTILE = ["=HYPERLINK(\"http://evil\",\"点我\")", "=cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0",
           "+1+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0", "\t=1+1", "\r=1+1", "=1+1"]
HARMLESS = ["幸福小区", "-", "-3.5", "+7", "1e-3", "a=b", " =1", ""]


def test_the_owasp_rule_on_text_and_only_on_text():
    assert all(is_formula_like(v) for v in HOSTILE)
    assert not any(is_formula_like(v) for v in HARMLESS if v != "-")
    assert [csv_value(v) for v in HOSTILE] == ["'" + v for v in HOSTILE]
    assert csv_value(-3.5) == -3.5 and csv_value("-3.5") == "-3.5"
    frame = pd.DataFrame({"name": HOSTILE[:3] + [None], "height": [-1.5, 2.0, -3.0, None]})
    safe = csv_frame(frame)
    assert safe["name"].tolist()[:3] == ["'" + v for v in HOSTILE[:3]] and pd.isna(safe["name"].iloc[3])
    assert safe["height"].dtype == float and safe["height"].iloc[0] == -1.5
    assert csv_unquote(safe["name"]).tolist()[:3] == HOSTILE[:3]


@pytest.mark.db
def test_csv_and_xlsx_exports_neutralise_formulas_and_read_back_unchanged(db, tmp_path, truncate):
    with db.begin() as conn:
        for i, name in enumerate(HOSTILE):
            conn.execute(text(
                "INSERT INTO buildings (ref, name, height_m, geom, extra) VALUES (:r, :n, :h, "
                "ST_Multi(ST_Buffer(ST_SetSRID(ST_MakePoint(121.5 + :i * 0.001, 29.8), 4490), 0.0001)), "
                "CAST(:e AS jsonb))"),
                {"r": f"=B{i}", "n": name, "h": 3.0 + i, "i": i, "e": json.dumps({"note": name, "delta": -i - 1})})
    csv_path = tmp_path / "b.csv"
    export_layer("buildings", fmt="csv", path=csv_path, engine=db)
    with csv_path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for col in ("ref", "name", "note"):
            assert not is_formula_like(row[col]), (col, row[col])
            assert row[col].startswith("'")
        assert float(row["delta"]) < 0 and not row["delta"].startswith("'")  # a number, not text
    xlsx_path = tmp_path / "b.xlsx"
    export_layer("buildings", fmt="xlsx", path=xlsx_path, engine=db)
    ws = openpyxl.load_workbook(xlsx_path).active
    header = [c.value for c in ws[1]]
    for row in ws.iter_rows(min_row=2):
        cells = dict(zip(header, row, strict=True))
        assert all(cells[c].data_type == "s" for c in ("ref", "name", "note"))
        assert cells["delta"].data_type == "n" and cells["delta"].value < 0
    def texts() -> list[tuple]:  # (CSV carries no types: extra numbers come back as text, as before)
        frame = read_layer("buildings", engine=db).sort_values("ref")
        return [(r.ref, r.name, r.extra["note"]) for r in frame.itertuples()]

    before = texts()
    for path in (csv_path, xlsx_path):
        truncate("buildings")
        import_file(path, layer="buildings", engine=db)
        if path.suffix == ".csv":
            assert texts() == before, path.name
        else:  # XML may normalise a CR in text to LF: compare with CRs folded on both sides
            def folded(rows: list[tuple]) -> list[tuple]:
                return [tuple(v.replace("\r", "\n") for v in row) for row in rows]

            assert folded(texts()) == folded(before), path.name
