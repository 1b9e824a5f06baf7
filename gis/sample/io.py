"""Writing a sample to files (GeoPackage + ground-truth JSON) and loading it into PostGIS in one transaction."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import pandas as pd
import sqlalchemy.exc
from sqlalchemy import Engine, text

from gis.db import get_engine, owner_engine, transaction
from gis.store import WriteResult, write_frame

if TYPE_CHECKING:
    from gis.sample.build import Sample

#: File names inside the output folder.
LAYERS_FILE = "layers.gpkg"
TRUTH_FILE = "ground_truth.json"


def write_sample(sample: Sample, out_dir: str | Path) -> Path:
    """Write `layers.gpkg` (one GeoPackage layer per firelane layer, EPSG:4490) and `ground_truth.json`.

    Parameters
    ----------
    sample : Sample
    out_dir : path
        Created when missing; existing files of the same names are replaced.

    Returns
    -------
    Path
        The folder.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    gpkg = out / LAYERS_FILE
    if gpkg.exists():
        gpkg.unlink()
    for name, frame in sample.layers.items():
        if not len(frame):
            continue
        frame = frame.copy()
        for col in frame.columns:
            if str(frame[col].dtype) == "Int64":
                frame[col] = frame[col].astype(float)
        frame.to_file(gpkg, layer=name, driver="GPKG", engine="pyogrio")
    meta = {
        "district": sample.district, "scale": sample.scale, "seed": sample.seed,
        "crs": "EPSG:4490", "bounds": list(sample.bounds),
        "counts": {name: len(frame) for name, frame in sample.layers.items()},
        "ground_truth": sample.ground_truth.astype(object).where(sample.ground_truth.notna(), None)
        .to_dict(orient="records"),
    }
    (out / TRUTH_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
    return out


def _plain(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Python values for COPY: nullable integers and NaN become None."""
    data = {}
    for col in frame.columns:
        if col == frame.geometry.name:
            continue
        s = frame[col].astype(object)
        data[col] = s.where(frame[col].notna(), None)
    return gpd.GeoDataFrame(pd.DataFrame(data, index=frame.index), geometry=frame.geometry.values, crs=frame.crs)


def ledger_rows(engine: Engine | None = None) -> int:
    """Hazards in the ledger (that `load_sample` would delete along with the layers they belong to)."""
    try:
        with (engine or get_engine()).connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM hazards")).scalar_one())
    except sqlalchemy.exc.ProgrammingError:  # no schema yet
        return 0


def load_sample(sample: Sample, *, engine: Engine | None = None, user: str | None = "sample") -> dict[str, WriteResult]:
    """Replace every layer of the database with the sample's, in ONE transaction, as the schema owner by default.

    Streets and compounds are written first (the other layers' compound and street links derive from them),
    then the rest; the hazards ledger is emptied too, since its findings belonged to the replaced data, and with
    it the ledger's history: hazard_events, append-only for every role, is TRUNCATEd (a reset of the whole table,
    an owner's operation; an `engine` of another role is refused there by the database).

    Returns
    -------
    dict of str to WriteResult
        Rows inserted / deleted per layer.
    """
    results: dict[str, WriteResult] = {}
    deleted: dict[str, int] = {}
    with transaction(user=user, engine=engine or owner_engine()) as conn:
        if conn.execute(text("SELECT EXISTS (SELECT 1 FROM hazard_events)")).scalar_one():
            conn.execute(text("TRUNCATE hazard_events"))
        results["hazards"] = write_frame(conn, "hazards", gpd.GeoDataFrame(geometry=[], crs=4490), mode="replace",
                                         user=user)
        # empty the dependent layers before their compounds go (no SET NULL cascade over rows about to be deleted)
        for name in reversed(list(sample.layers)):
            if name not in ("streets", "compounds"):
                deleted[name] = write_frame(conn, name, sample.layers[name].iloc[:0], mode="replace").deleted
        for name in ("streets", "compounds"):  # emptied, then appended: an empty table takes the bulk path
            gone = write_frame(conn, name, sample.layers[name].iloc[:0], mode="replace").deleted
            res = write_frame(conn, name, _plain(sample.layers[name]), mode="append", user=user)
            results[name] = WriteResult(inserted=res.inserted, deleted=gone)
        for name, frame in sample.layers.items():
            if name not in ("streets", "compounds"):
                res = write_frame(conn, name, _plain(frame), mode="append", user=user)
                results[name] = WriteResult(inserted=res.inserted, deleted=deleted[name])
    return results
