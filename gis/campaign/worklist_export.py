"""The hazards work list as files: CSV in the work list's columns, XLSX with every field; text cells stay text."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from gis.spreadsheet_safety import csv_value, xlsx_cell

#: The work list's CSV columns (the API's ?f=csv and `firelane hazard list --format csv`).
CSV_COLUMNS = ("id", "status", "status_zh", "rule", "severity", "compound_ref", "street_code", "department",
               "responsible_unit", "person", "deadline", "overdue", "days_overdue", "message_zh")


def worklist_csv(rows: list[dict[str, Any]]) -> str:
    """Rows as CSV (UTF-8 BOM for Excel; text cells that a spreadsheet would run as a formula are quoted with ')."""
    out = io.StringIO()
    out.write("\ufeff")
    w = csv.writer(out)
    w.writerow(CSV_COLUMNS)
    for r in rows:
        w.writerow([csv_value(r.get(c)) for c in CSV_COLUMNS])
    return out.getvalue()


def write_rows_xlsx(rows: list[dict[str, Any]], path: Path, *, sheet: str = "hazards") -> None:
    """A work list (list of dicts) as one XLSX sheet; every text cell stays text."""
    from openpyxl import Workbook  # noqa: PLC0415 (heavy: only for XLSX exports)

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(sheet)
    columns = list(dict.fromkeys(k for r in rows for k in r)) or ["id"]
    ws.append(columns)
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c)
            if isinstance(v, list | dict):
                v = json.dumps(v, ensure_ascii=False)
            cells.append(xlsx_cell(ws, v))
        ws.append(cells)
    wb.save(path)
