"""What a check run hands the hazards ledger, pure: the findings kept (one per key), their staging rows and the
tally of what the run did (the SQL that writes them is gis.campaign.ledger_writer, called by the runner)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis.layers import STORAGE_SRID

#: The staging table's columns (name, SQL type): COPIED are written from the findings, the rest derived in SQL.
STAGE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("key", "text"), ("rule", "text"), ("clause", "text"), ("verdict", "text"), ("strength", "text"),
    ("severity", "double precision"), ("subject_layer", "text"), ("subject_ref", "text"), ("other_refs", "jsonb"),
    ("measured", "double precision"), ("required_value", "double precision"), ("unit", "text"),
    ("message_zh", "text"), ("message_en", "text"), ("department", "text"), ("compound_ref", "varchar(200)"),
    ("compound_id", "bigint"), ("street_code", "varchar(12)"), ("geom", "geometry"),
)
COPIED: tuple[str, ...] = tuple(c for c, _ in STAGE_COLUMNS if c not in ("compound_id", "street_code"))
#: The columns a finding found again refreshes on its hazard.
UPDATED: tuple[str, ...] = ("verdict", "clause", "strength", "severity", "subject_layer", "subject_ref",
                            "other_refs", "measured", "required_value", "unit", "message_zh", "message_en",
                            "department")


@dataclass
class LedgerResult:
    """What one run did to the ledger (each state change also wrote a hazard_events row)."""

    inserted: int = 0
    updated: int = 0
    reopened: int = 0
    verified: int = 0
    gaps: int = 0
    gaps_resolved: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def __add__(self, other: LedgerResult) -> LedgerResult:
        mine, theirs = self.as_dict(), other.as_dict()
        return LedgerResult(**{k: mine[k] + theirs[k] for k in mine})


def _column(values: pd.Series) -> list[object]:
    """A column for COPY: Python values (numpy scalars unboxed), None where missing (NaN, None, NA)."""
    out = values.astype(object)
    return out.where(values.notna(), None).tolist()


def stage_rows(findings: gpd.GeoDataFrame) -> list[tuple[object, ...]]:
    """Rows for COPY: findings' columns mapped to the hazards table, geometry as EWKB in the storage CRS (built
    column by column: a city's run stages tens of thousands)."""
    frame = findings
    if frame.crs is not None and len(frame):
        frame = frame.to_crs(STORAGE_SRID)
    geoms = np.asarray(frame.geometry.values, dtype=object)
    ok = ~shapely.is_missing(geoms)
    ok[ok] = ~shapely.is_empty(geoms[ok])
    fixed = geoms.copy()
    fixed[ok] = shapely.make_valid(geoms[ok])
    ewkb = np.full(len(geoms), None, dtype=object)
    if ok.any():
        ewkb[ok] = shapely.to_wkb(shapely.set_srid(fixed[ok], STORAGE_SRID), hex=True, include_srid=True)
    refs = [json.dumps(list(v) if v is not None else [], ensure_ascii=False) for v in frame["other_refs"]]
    cols = {
        "key": frame["key"], "rule": frame["rule"], "clause": frame["clause"], "verdict": frame["verdict"],
        "strength": frame["strength"], "severity": frame["severity"], "subject_layer": frame["subject_layer"],
        "subject_ref": frame["subject_ref"], "other_refs": pd.Series(refs, index=frame.index, dtype=object),
        "measured": frame["measured"], "required_value": frame["required"], "unit": frame["unit"],
        "message_zh": frame["message"], "message_en": frame["message_en"], "department": frame["department"],
        "compound_ref": frame["compound_ref"],
    }
    return list(zip(*(_column(pd.Series(cols[c])) for c in COPIED[:-1]), ewkb.tolist(), strict=True))


def kept(findings: gpd.GeoDataFrame, *, include_pass: bool = False) -> gpd.GeoDataFrame:
    """The findings the ledger stores: one per key (the most severe), without ``pass`` unless `include_pass`."""
    keep = findings if include_pass else findings[findings["verdict"] != "pass"]
    if len(keep):
        keep = keep.sort_values("severity", ascending=False, na_position="last").drop_duplicates("key")
    return keep
