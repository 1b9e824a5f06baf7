"""Hazard history in exports: the events as their own table (XLSX sheet, GPKG table, CSV beside the file)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyogrio
from sqlalchemy import Connection, Engine, text

from gis.campaign import lifecycle as lc
from gis.spreadsheet_safety import csv_frame, set_cell

EVENT_COLUMNS: tuple[str, ...] = ("hazard_id", "hazard_ref", "at", "by", "from_state", "from_zh", "to_state", "to_zh",
                                  "note", "department", "unit", "person", "deadline", "photos", "evidence", "run_id")
EVENTS_TABLE = "hazard_events"


def events_frame(conn: Engine | Connection, hazard_ids: Sequence[int]) -> pd.DataFrame:
    """The events of `hazard_ids` (oldest first per hazard) as export columns, labels beside the raw states."""
    sql = text("SELECT e.hazard_id, h.ref AS hazard_ref, e.at, e.by, e.from_state, e.to_state, e.note, e.department, "
               "e.unit, e.person, e.deadline, e.photos, e.evidence, e.run_id FROM hazard_events e "
               "JOIN hazards h ON h.id = e.hazard_id WHERE e.hazard_id = ANY(:ids) ORDER BY e.hazard_id, e.id")
    if isinstance(conn, Engine):
        with conn.connect() as c:
            rows = c.execute(sql, {"ids": [int(i) for i in hazard_ids]}).all()
    else:
        rows = conn.execute(sql, {"ids": [int(i) for i in hazard_ids]}).all()
    frame = pd.DataFrame([dict(r._mapping) for r in rows], columns=[c for c in EVENT_COLUMNS
                                                                    if c not in ("from_zh", "to_zh")])
    frame["from_zh"] = [lc.label(s) if s else None for s in frame["from_state"]]
    frame["to_zh"] = [lc.label(s) for s in frame["to_state"]]
    frame["at"] = [v.isoformat() if v is not None else None for v in frame["at"]]
    frame["deadline"] = [v.isoformat() if v is not None and not pd.isna(v) else None for v in frame["deadline"]]
    frame["photos"] = [json.dumps(list(p or ())) for p in frame["photos"]]
    frame["run_id"] = pd.array([None if pd.isna(v) else int(v) for v in frame["run_id"]], dtype="Int64")
    return frame[list(EVENT_COLUMNS)]


def sidecar_csv(path: Path) -> Path:
    """Where the events of a CSV/GeoJSON/KML/Shapefile export go: `<stem>_events.csv` beside it."""
    return path.with_name(f"{path.stem}_events.csv")


def write_history(events: pd.DataFrame, *, fmt: str, path: Path) -> Path:
    """Write the events beside or inside an export at `path` (already written); returns where they went."""
    if fmt == "xlsx":
        from openpyxl import load_workbook  # noqa: PLC0415 (heavy: only for XLSX exports)

        wb = load_workbook(path)
        ws = wb.create_sheet(EVENTS_TABLE)
        ws.append(list(events.columns))
        for row in events.astype(object).where(events.notna(), None).itertuples(index=False):
            ws.append([v.item() if hasattr(v, "item") else v for v in row])
        for row in ws.iter_rows(min_row=2):
            for cell in row:
                set_cell(cell, cell.value)  # text typed as text: never a formula
        wb.save(path)
        return path
    if fmt == "gpkg":
        pyogrio.write_dataframe(events.astype(object).where(events.notna(), None), path, layer=EVENTS_TABLE,
                                driver="GPKG", append=False)
        return path
    target = sidecar_csv(path if path.suffix.lower() != ".zip" else path.with_suffix(".shp"))
    csv_frame(events).to_csv(target, index=False, encoding="utf-8-sig", lineterminator="\r\n")
    return target
