"""What each map page shows, read through gis.store: street summaries, compound files, conflicts, rankings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
from sqlalchemy import Engine

from gis.campaign.lifecycle import NEEDS_WORK, STATES
from gis.coords import metric_crs_for_bounds
from gis.store import read_layer

#: ledger states that still need work (gis.campaign.lifecycle.NEEDS_WORK; data gaps have no state)
OPEN_STATUSES: tuple[str, ...] = tuple(s for s in STATES if s in NEEDS_WORK)
PARKING_RULES: tuple[str, ...] = ("PARK-ENTRANCE", "PARK-HYDRANT", "PARK-LANE")
STRUCTURE_RULES_SQL = "(t.rule LIKE 'STRUCT-%' OR t.rule = 'SEP-ILLEGAL')"
OPEN_SQL = "t.verdict = 'fail' AND t.status IN (" + ", ".join(f"'{s}'" for s in OPEN_STATUSES) + ")"

#: layers of a compound file, in drawing order (bottom first)
COMPOUND_LAYERS: tuple[str, ...] = (
    "buildings", "fire_lanes", "aerial_areas", "illegal_structures", "parking", "obstructions", "ebike_sites",
    "entrances", "hydrants",
)


class NotInScope(LookupError):
    """The thing asked for does not exist or lies outside the user's jurisdiction (shown as 404)."""


def _scope_where(streets: Sequence[str] | None, column: str = "t.street_code") -> tuple[str | None, dict]:
    if streets is None:
        return None, {}
    return f"{column} = ANY(:scope_streets)", {"scope_streets": list(streets)}


def _and(*clauses: str | None) -> str | None:
    parts = [c for c in clauses if c]
    return " AND ".join(f"({c})" for c in parts) if parts else None


def metric_area(frame: gpd.GeoDataFrame) -> pd.Series:
    """Area in m² of each geometry, in the local metric CRS of the frame's extent."""
    if frame.empty:
        return pd.Series(dtype=float, index=frame.index)
    return frame.geometry.to_crs(metric_crs_for_bounds(frame.total_bounds)).area


def representative_points(frame: gpd.GeoDataFrame) -> gpd.GeoSeries:
    """A point on each geometry (on the surface for polygons), for heatmaps and cluster markers."""
    return frame.geometry.representative_point()


@dataclass
class StreetView:
    street: gpd.GeoDataFrame
    compounds: gpd.GeoDataFrame
    hazards: gpd.GeoDataFrame
    ranking: pd.DataFrame


def street_view(street_code: str, *, engine: Engine) -> StreetView:
    """A street office's open hazards (most severe first), its compounds and the compounds ranked by open hazards
    (then severity).

    Raises NotInScope when the street does not exist.
    """
    street = read_layer("streets", engine=engine, street=street_code)
    if street.empty:
        raise NotInScope(street_code)
    compounds = read_layer("compounds", engine=engine, street=street_code,
                           columns=["id", "ref", "name", "address", "kind", "households", "street_code", "source"])
    hazards = read_layer("hazards", engine=engine, street=street_code, where=OPEN_SQL,
                         columns=["id", "rule", "clause", "severity", "status", "subject_layer", "subject_ref",
                                  "compound_ref", "department", "measured", "required_value", "unit",
                                  "message_zh", "message_en"])
    hazards = hazards.sort_values("severity", ascending=False, na_position="last")
    per = hazards.groupby("compound_ref", dropna=True).agg(
        open_hazards=("id", "size"), severity=("severity", "sum"), rules=("rule", "nunique"))
    ranking = (compounds[["ref", "name", "address", "households"]]
               .merge(per, left_on="ref", right_index=True, how="left")
               .fillna({"open_hazards": 0, "severity": 0.0, "rules": 0}))
    ranking["open_hazards"] = ranking["open_hazards"].astype(int)
    ranking = ranking.sort_values(["open_hazards", "severity", "ref"], ascending=[False, False, True])
    return StreetView(street=street, compounds=compounds, hazards=hazards, ranking=ranking.reset_index(drop=True))


@dataclass
class CompoundFile:
    compound: gpd.GeoDataFrame
    layers: dict[str, gpd.GeoDataFrame] = field(default_factory=dict)
    hazards: gpd.GeoDataFrame | None = None


def compound_file(ref: str, *, engine: Engine, streets: Sequence[str] | None) -> CompoundFile:
    """One compound's file: its outline, every layer inside it and its hazards (open first, then by severity).

    Raises NotInScope when the compound does not exist or lies outside `streets` (None = every street).
    """
    where, params = _scope_where(streets)
    compound = read_layer("compounds", engine=engine, compound=ref, where=where, params=params)
    if compound.empty:
        raise NotInScope(ref)
    layers = {name: read_layer(name, engine=engine, compound=ref) for name in COMPOUND_LAYERS}
    hazards = read_layer("hazards", engine=engine, where="t.compound_ref = :cref AND t.verdict <> 'pass'",
                         params={"cref": ref})
    hazards["is_open"] = hazards["status"].isin(OPEN_STATUSES)
    hazards = hazards.sort_values(["is_open", "severity"], ascending=[False, False], na_position="last")
    return CompoundFile(compound=compound, layers=layers, hazards=hazards)


@dataclass
class TrafficView:
    conflicts: gpd.GeoDataFrame
    parking: gpd.GeoDataFrame
    entrances: gpd.GeoDataFrame
    hydrants: gpd.GeoDataFrame


def traffic_view(*, engine: Engine, streets: Sequence[str] | None, street: str | None = None) -> TrafficView:
    """Open perimeter-parking conflicts (PARK-*) joined to their parking features, with entrances and hydrants."""
    scope, params = _scope_where(streets)
    if street is not None:
        scope = _and(scope, "t.street_code = :one_street")
        params = {**params, "one_street": street}
    conflicts = read_layer("hazards", engine=engine, where=_and(OPEN_SQL, "t.rule = ANY(:rules)", scope),
                           params={**params, "rules": list(PARKING_RULES)})
    parking = read_layer("parking", engine=engine, where=scope, params=params)
    # parking on city roads outside compounds may carry no street code: include what the conflicts name
    named = conflicts.loc[conflicts["subject_layer"] == "parking", "subject_ref"].dropna().unique().tolist()
    if named:
        missing = sorted(set(named) - set(parking["ref"].dropna()))
        if missing:
            extra = read_layer("parking", engine=engine, where="t.ref = ANY(:refs)", params={"refs": missing})
            parking = pd.concat([parking, extra]) if not parking.empty else extra
    entrances = read_layer("entrances", engine=engine, where=scope, params=params)
    hydrants = read_layer("hydrants", engine=engine, where=scope, params=params)
    flagged = set(named)
    parking["conflict"] = parking["ref"].isin(flagged)
    return TrafficView(conflicts=conflicts, parking=parking, entrances=entrances, hydrants=hydrants)


def demolition_ranking(*, engine: Engine, streets: Sequence[str] | None) -> gpd.GeoDataFrame:
    """Illegal structures with open STRUCT-* / SEP-ILLEGAL findings, ranked by findings, severity, then area.

    Returns the structures (EPSG:4490) with `findings`, `severity`, `rules`, `area_m2` and `rank` columns.
    """
    scope, params = _scope_where(streets)
    structures = read_layer("illegal_structures", engine=engine, where=scope, params=params)
    findings = read_layer("hazards", engine=engine,
                          where=_and(OPEN_SQL, STRUCTURE_RULES_SQL, "t.subject_layer = 'illegal_structures'", scope),
                          params=params, columns=["id", "rule", "severity", "subject_ref", "compound_ref"])
    per = findings.groupby("subject_ref").agg(
        findings=("id", "size"), severity=("severity", "sum"),
        rules=("rule", lambda r: ", ".join(sorted(set(r)))))
    ranked = structures.merge(per, left_on="ref", right_index=True, how="inner")
    ranked = gpd.GeoDataFrame(ranked, geometry="geometry", crs=structures.crs)
    ranked["area_m2"] = np.round(metric_area(ranked).to_numpy(), 1) if len(ranked) else []
    ranked = ranked.sort_values(["findings", "severity", "area_m2"], ascending=False)
    ranked["rank"] = np.arange(1, len(ranked) + 1)
    return ranked
