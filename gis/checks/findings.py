"""Findings: the record every check returns (one row per rule x subject), its stable key and its severity."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import geopandas as gpd
import pandas as pd
from shapely.geometry.base import BaseGeometry

from gis.checks.catalog import rule as rule_of
from gis.checks.profiles import Profile

Verdict = Literal["fail", "pass", "cannot_judge"]

#: Columns of a findings frame, in order (DESIGN.md's JSON contract plus message_en and strength).
FINDING_COLUMNS: tuple[str, ...] = (
    "key", "rule", "clause", "verdict", "strength", "severity", "compound_ref", "subject_layer", "subject_ref",
    "other_refs", "measured", "required", "unit", "message", "message_en", "department",
)


@dataclass(kw_only=True)
class Finding:
    """One finding. `geometry` is the evidence (bottleneck, shortest line, uncovered part...) in the check's CRS."""

    rule: str
    verdict: Verdict
    subject_ref: str
    compound_ref: str | None
    message: str
    message_en: str
    geometry: BaseGeometry | None
    other_refs: list[str] = field(default_factory=list)
    measured: float | None = None
    required: float | None = None
    unit: str | None = None
    severity: float | None = None
    department: str | None = None
    clause: str | None = None
    strength: str | None = None
    subject_layer: str | None = None

    def __post_init__(self) -> None:
        r = rule_of(self.rule)
        self.clause = self.clause or r.clause
        self.strength = self.strength or r.strength
        self.subject_layer = self.subject_layer or r.subject_layer
        self.department = self.department or r.department
        if self.unit is None:
            self.unit = r.unit
        self.other_refs = sorted({str(x) for x in self.other_refs})

    @property
    def key(self) -> str:
        return finding_key(self.rule, self.subject_layer or "", self.subject_ref, self.other_refs)


def finding_key(rule: str, subject_layer: str, subject_ref: str, other_refs: Sequence[str] = ()) -> str:
    """The stable ledger key: rule + subject (+ the other subjects of pair rules)."""
    others = ",".join(sorted(str(x) for x in other_refs))
    return f"{rule}|{subject_layer}:{subject_ref}" + (f"|{others}" if others else "")


def severity(profile: Profile, rule_id: str, *, buildings: int = 0, floors: int = 0) -> float:
    """Mandatory failures weigh more than advisory ones; blockage and cover weigh by buildings and floors lost."""
    s = profile["SEVERITY"]
    base = s["mandatory"] if rule_of(rule_id).strength == "mandatory" else s["advisory"]
    return round(base + s["per_building"] * buildings + s["per_floor"] * floors, 3)


def findings_frame(findings: Iterable[Finding], *, crs: Any) -> gpd.GeoDataFrame:
    """A GeoDataFrame with FINDING_COLUMNS (+ geometry) from Finding records, in `crs`."""
    rows = []
    geoms = []
    names = [f.name for f in fields(Finding) if f.name != "geometry"]
    for f in findings:
        # shallow (dataclasses.asdict deep-copies every value, geometries included: most of the cost)
        d = {name: getattr(f, name) for name in names}
        d["other_refs"] = list(f.other_refs)
        geoms.append(f.geometry)
        d["key"] = f.key
        rows.append(d)
    frame = pd.DataFrame(rows, columns=[c for c in FINDING_COLUMNS])
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=crs), crs=crs)


def empty_findings(*, crs: Any) -> gpd.GeoDataFrame:
    return findings_frame([], crs=crs)
