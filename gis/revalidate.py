"""Stored rows checked against today's input rules: the data layers as an import validates them, the ledger's typed
text as the workflow does (rows stored before a rule tightened, or written by SQL)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, text

from gis.campaign import lifecycle as lc
from gis.coords import parse_crs
from gis.importer import expected_bounds
from gis.layers import LAYERS, STORAGE_SRID, get_layer
from gis.store import layer_columns, read_layer
from gis.validate import string_problems, validate_frame

#: The layers a district imports and edits (the ledger is written by the checks and the workflow).
DATA_LAYERS: tuple[str, ...] = tuple(name for name in LAYERS if name != "hazards")
#: Rows read and validated at a time (by id): memory is bounded by the batch, not the layer.
BATCH_ROWS = 50_000
#: What people type into the ledger (gis.campaign.lifecycle: free text), per table: the hazards' assignment and
#: every event's note and assignment (the rest of a hazard is written by the checks); each column with the step's
#: field whose limit holds it (lifecycle.TEXT_LIMITS).
LEDGER_TEXT: dict[str, dict[str, str]] = {
    "hazards": {"department": "department", "responsible_unit": "unit", "person": "person"},
    "hazard_events": {"note": "note", "department": "department", "unit": "unit", "person": "person"},
}


@dataclass(frozen=True)
class StoredProblem:
    """What an input would refuse in a stored row: its layer (or ledger table), id and ref (a hazard: its subject's
    ref; an event: "隐患 hazard <id>"), the field and why."""

    layer: str
    id: int
    ref: str | None
    field: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def revalidate(engine: Engine, layers: Iterable[str] | None = None, *, street: str | None = None,
               compound: str | None = None, batch: int = BATCH_ROWS,
               counts: dict[str, int] | None = None) -> Iterator[StoredProblem]:
    """Every stored feature of `layers` (default DATA_LAYERS) in the running code's scope (and `street` /
    `compound`) validated as its import would validate it (gis.validate.validate_frame: values, text rules,
    `extra`, geometry and the district's extent), `batch` ids at a time; `counts` gets the rows read per layer.
    Refs are not compared with each other: the database keeps them unique."""
    storage = parse_crs(STORAGE_SRID)
    for name in layers if layers is not None else DATA_LAYERS:
        layer = get_layer(name)
        columns = [c for c in layer_columns(layer) if c != "extra"]
        with engine.connect() as conn:
            bounds = expected_bounds(conn, layer)
            first, last = conn.execute(text(f"SELECT min(id), max(id) FROM {name}")).one()
        if counts is not None:
            counts[name] = 0
        for start in range(int(first or 0), int(last or -1) + 1, batch):
            frame = read_layer(layer, engine=engine, street=street, compound=compound,
                               where="t.id >= :first AND t.id < :stop", params={"first": start, "stop": start + batch},
                               columns=["id", *columns, "extra"])
            if counts is not None:
                counts[name] += len(frame)
            if frame.empty:
                continue
            raw = frame[columns].reset_index(drop=True)
            # `extra` as the JSON column an import may carry, so that its keys and strings meet the same rules
            raw["extra"] = [json.dumps(e, ensure_ascii=False) if isinstance(e, dict) and e else None
                            for e in frame["extra"]]
            checked = validate_frame(raw, np.asarray(frame.geometry.values, dtype=object), layer=layer, crs=storage,
                                     bounds=bounds, check_duplicates=False)
            ids, refs = frame["id"].to_numpy(), frame["ref"].to_numpy(dtype=object)
            for p in checked.problems:
                if p.row is None:  # a whole-table problem (a column the table lacks): not the data's
                    continue
                ref = refs[p.row - 1]
                yield StoredProblem(layer=name, id=int(ids[p.row - 1]), ref=None if pd.isna(ref) else str(ref),
                                    field=p.field, message=p.message)


def ledger_problems(engine: Engine, *, street: str | None = None, compound: str | None = None,
                    counts: dict[str, int] | None = None) -> Iterator[StoredProblem]:
    """The ledger's typed text (LEDGER_TEXT) that the workflow would refuse today (a refused character, or longer
    than the step's field allows): the hazards of the running code's scope (and `street` / `compound`) and their
    events; `counts` gets the rows read per table."""
    hazards = read_layer("hazards", engine=engine, street=street, compound=compound,
                         columns=["id", "subject_ref", *LEDGER_TEXT["hazards"]])
    with engine.connect() as conn:
        events = pd.read_sql_query(
            text(f"SELECT id, hazard_id, {', '.join(LEDGER_TEXT['hazard_events'])} FROM hazard_events "
                 "WHERE hazard_id = ANY(:ids) ORDER BY id"), conn, params={"ids": hazards["id"].tolist()})
    if counts is not None:
        counts["hazards"], counts["hazard_events"] = len(hazards), len(events)
    # a hazard is named by what it is about, an event by its hazard
    refs = {"hazards": hazards["subject_ref"].astype(object).where(hazards["subject_ref"].notna(), None),
            "hazard_events": "隐患 hazard " + events["hazard_id"].astype(str)}
    for table, frame in (("hazards", hazards), ("hazard_events", events)):
        ids = frame["id"].to_numpy(dtype=np.int64)
        ref_of = dict(zip(ids.tolist(), refs[table].tolist(), strict=True))
        for column, step_field in LEDGER_TEXT[table].items():
            # (each problem's row is the id it was given: never None)
            for p in sorted(string_problems(frame[column], column, ids, lc.TEXT_LIMITS[step_field]),
                            key=lambda p: p.row or 0):
                yield StoredProblem(layer=table, id=int(p.row or 0), ref=ref_of[p.row], field=column,
                                    message=p.message)


__all__ = ["BATCH_ROWS", "DATA_LAYERS", "LEDGER_TEXT", "StoredProblem", "ledger_problems", "revalidate"]
