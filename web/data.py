"""What each map page shows, read through gis.store: street summaries, compound files, conflicts, rankings."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date

import geopandas as gpd
import numpy as np
import pandas as pd
from sqlalchemy import Engine, text

from gis import scope
from gis.campaign.lifecycle import NEEDS_WORK, STATES, sql_list
from gis.coords import metric_crs_for_bounds
from gis.layers import get_layer
from gis.store import read_layer

#: ledger states that still need work (gis.campaign.lifecycle.NEEDS_WORK; data gaps have no state)
OPEN_STATUSES: tuple[str, ...] = tuple(s for s in STATES if s in NEEDS_WORK)
PARKING_RULES: tuple[str, ...] = ("PARK-ENTRANCE", "PARK-HYDRANT", "PARK-LANE")
STRUCTURE_RULES_SQL = "(t.rule LIKE 'STRUCT-%' OR t.rule = 'SEP-ILLEGAL')"
OPEN_SQL = f"t.verdict = 'fail' AND t.status IN {sql_list(OPEN_STATUSES)}"

#: layers of a compound file, in drawing order (bottom first)
COMPOUND_LAYERS: tuple[str, ...] = (
    "buildings", "fire_lanes", "aerial_areas", "illegal_structures", "parking", "obstructions", "ebike_sites",
    "entrances", "hydrants",
)


class NotInScope(LookupError):
    """The thing asked for does not exist or lies outside the user's jurisdiction (shown as 404)."""


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
    #: cannot_judge findings still open: data to complete, not failures
    data_gaps: gpd.GeoDataFrame | None = None
    closed_this_week: int = 0
    #: (week start, found, closed) for the last weeks, oldest first
    trend: list[tuple[str, int, int]] = field(default_factory=list)


def has_field(layer: str, name: str) -> bool:
    return any(f.name == name for f in get_layer(layer).fields)


def overdue(frame: pd.DataFrame, today: date | None = None) -> pd.Series:
    """Open hazards past their deadline (False where no deadline was set)."""
    if "deadline" not in frame or frame.empty:
        return pd.Series(False, index=frame.index)
    due = pd.to_datetime(frame["deadline"], errors="coerce")
    late = (due < pd.Timestamp(today or date.today())).fillna(False).astype(bool)
    return late & frame["status"].isin(OPEN_STATUSES)


def street_view(street_code: str, *, engine: Engine, weeks: int = 8) -> StreetView:
    """A street office's open hazards (most severe first), its compounds, the compounds ranked by open hazards
    (then severity), its cannot_judge data gaps, hazards closed this week and a weekly found/closed trend.

    Raises NotInScope when the street does not exist.
    """
    street = read_layer("streets", engine=engine, street=street_code)
    if street.empty:
        raise NotInScope(street_code)
    compounds = read_layer("compounds", engine=engine, street=street_code,
                           columns=["id", "ref", "name", "address", "kind", "households", "street_code", "source"])
    columns = ["id", "rule", "clause", "verdict", "severity", "status", "subject_layer", "subject_ref",
               "compound_ref", "department", "measured", "required_value", "unit", "message_zh", "message_en"]
    columns += [c for c in ("deadline", "responsible_unit") if has_field("hazards", c)]
    statuses = list(OPEN_STATUSES)
    everything = read_layer("hazards", engine=engine, street=street_code,
                            where="t.verdict <> 'pass' AND t.status = ANY(:open_statuses)",
                            params={"open_statuses": statuses}, columns=columns)
    everything = everything.sort_values("severity", ascending=False, na_position="last")
    hazards = everything[everything["verdict"] == "fail"].copy()
    hazards["overdue"] = overdue(hazards)
    gaps = everything[everything["verdict"] == "cannot_judge"]
    per = hazards.groupby("compound_ref", dropna=True).agg(
        open_hazards=("id", "size"), severity=("severity", "sum"), rules=("rule", "nunique"))
    listed = compounds[["ref", "name", "address", "households"]]
    # pandas cannot merge two empty arrow-string keys (no chunks to build from): no hazards, nothing to join
    ranking = (listed.merge(per, left_on="ref", right_index=True, how="left") if len(per)
               else listed.assign(open_hazards=0, severity=0.0, rules=0))
    ranking = ranking.fillna({"open_hazards": 0, "severity": 0.0, "rules": 0})
    ranking["open_hazards"] = ranking["open_hazards"].astype(int)
    ranking = ranking.sort_values(["open_hazards", "severity", "ref"], ascending=[False, False, True])
    in_street, binds = scope.streets_filter("hazards", [street_code])
    with engine.connect() as conn:
        closed_week = conn.execute(text(
            f"SELECT count(*) FROM hazards t WHERE {in_street} AND t.closed_at >= now() - interval '7 days'"
            " AND NOT (t.status = ANY(:open_statuses))"), binds | {"open_statuses": statuses}).scalar_one()
        rows = conn.execute(text(
            "WITH w AS (SELECT generate_series(date_trunc('week', now()) - (:n - 1) * interval '1 week',"
            " date_trunc('week', now()), interval '1 week') AS start) "
            "SELECT to_char(w.start, 'MM-DD'),"
            f" (SELECT count(*) FROM hazards t WHERE {in_street} AND t.verdict = 'fail'"
            "  AND t.first_seen_at >= w.start AND t.first_seen_at < w.start + interval '1 week'),"
            f" (SELECT count(*) FROM hazards t WHERE {in_street} AND t.closed_at >= w.start"
            "  AND t.closed_at < w.start + interval '1 week') FROM w ORDER BY w.start"),
            binds | {"n": weeks}).all()
    return StreetView(street=street, compounds=compounds, hazards=hazards, ranking=ranking.reset_index(drop=True),
                      data_gaps=gaps, closed_this_week=int(closed_week),
                      trend=[(str(a), int(b), int(c)) for a, b, c in rows])


@dataclass
class CompoundFile:
    compound: gpd.GeoDataFrame
    hazards: gpd.GeoDataFrame
    layers: dict[str, gpd.GeoDataFrame] = field(default_factory=dict)


def compound_file(ref: str, *, engine: Engine) -> CompoundFile:
    """One compound's file: its outline, every layer inside it and its hazards (open first, then by severity).

    Raises NotInScope when the compound does not exist or lies outside the caller's scope (gis.scope: every read
    here is filtered by it).
    """
    compound = read_layer("compounds", engine=engine, compound=ref)
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
    #: the parking features the conflicts name (every field: their popups), `conflict` True
    parking: gpd.GeoDataFrame
    #: entrances and hydrants of the scope (id, ref, source: the map's extent, counts and attributions)
    entrances: gpd.GeoDataFrame
    hydrants: gpd.GeoDataFrame
    #: every parking feature of the scope: how many, and their data sources (the map shows them as vector tiles)
    parking_count: int = 0
    parking_sources: list[str] = field(default_factory=list)


def _tally(layer: str, *, engine: Engine, street: str | None) -> tuple[int, list[str]]:
    """How many features of `layer` the scope (and `street`) holds, and their distinct sources, counted in SQL."""
    clauses, params = [], {}
    for condition, binds in (scope.current_filter(layer),
                             scope.streets_filter(layer, [street]) if street is not None else (None, {})):
        if condition:
            clauses.append(condition)
            params.update(binds)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    with engine.connect() as conn:
        n, sources = conn.execute(text(
            f"SELECT count(*), array_agg(DISTINCT t.source) FILTER (WHERE t.source IS NOT NULL) FROM {layer} t{where}"),
            params).one()
    return int(n), list(sources or [])


def traffic_view(*, engine: Engine, street: str | None = None) -> TrafficView:
    """Open perimeter-parking conflicts (PARK-*) joined to their parking features, with entrances and hydrants, of
    the caller's scope (gis.scope), or of one `street` of it.

    Only the parking the conflicts name is read whole (75,000 stalls at m-scale are drawn as vector tiles): the
    rest is counted in SQL."""
    conflicts = read_layer("hazards", engine=engine, street=street, where=_and(OPEN_SQL, "t.rule = ANY(:rules)"),
                           params={"rules": list(PARKING_RULES)})
    # parking on city roads outside compounds may carry no street code: the conflicts name what to read
    named = conflicts.loc[conflicts["subject_layer"] == "parking", "subject_ref"].dropna().unique().tolist()
    parking = read_layer("parking", engine=engine, where="t.ref = ANY(:refs)", params={"refs": named})
    parking["conflict"] = True
    light = ["id", "ref", "source"]
    entrances = read_layer("entrances", engine=engine, street=street, columns=light)
    hydrants = read_layer("hydrants", engine=engine, street=street, columns=light)
    count, sources = _tally("parking", engine=engine, street=street)
    return TrafficView(conflicts=conflicts, parking=parking, entrances=entrances, hydrants=hydrants,
                       parking_count=count, parking_sources=sources)


def demolition_ranking(*, engine: Engine) -> gpd.GeoDataFrame:
    """Illegal structures with open findings, ranked by what they block (the summed severity of every open finding
    on the structure or naming it: lane cuts weigh the buildings and floors that lose truck access), then by
    findings, then area.

    The caller's scope (gis.scope) bounds every read. Returns the structures (EPSG:4490) with `findings`, `severity` (the impact), `rules`, `impacts_zh`,
    `impacts_en` (each finding's words, most severe first), `area_m2` and `rank` columns.
    """
    structures = read_layer("illegal_structures", engine=engine)
    cols = ["id", "rule", "severity", "subject_layer", "subject_ref", "other_refs", "compound_ref", "message_zh",
            "message_en"]
    own = read_layer("hazards", engine=engine,
                     where=_and(OPEN_SQL, STRUCTURE_RULES_SQL, "t.subject_layer = 'illegal_structures'"),
                     columns=cols)
    # findings on other features that name a structure (a lane cut by it: LANE-CLEAR's other_refs)
    named = read_layer("hazards", engine=engine,
                       where=_and(OPEN_SQL, "t.subject_layer <> 'illegal_structures'",
                                  "jsonb_typeof(t.other_refs::jsonb) = 'array'", "t.other_refs::jsonb <> '[]'::jsonb"),
                       columns=cols)
    named = named.assign(subject_ref=named["other_refs"].map(_as_list)).explode("subject_ref")
    named = named[named["subject_ref"].isin(set(structures["ref"].dropna()))]
    findings = pd.concat([pd.DataFrame(own.drop(columns="geometry")), pd.DataFrame(named.drop(columns="geometry"))],
                         ignore_index=True).sort_values("severity", ascending=False)
    if findings.empty:
        findings = pd.DataFrame(columns=cols)
    per = findings.groupby("subject_ref").agg(
        findings=("id", "size"), severity=("severity", "sum"),
        rules=("rule", lambda r: ", ".join(sorted(set(r)))),
        impacts_zh=("message_zh", lambda m: [str(x) for x in m if isinstance(x, str)]),
        impacts_en=("message_en", lambda m: [str(x) for x in m if isinstance(x, str)]))
    ranked = structures.merge(per, left_on="ref", right_index=True, how="inner")
    ranked = gpd.GeoDataFrame(ranked, geometry="geometry", crs=structures.crs)
    ranked["area_m2"] = np.round(metric_area(ranked).to_numpy(), 1) if len(ranked) else []
    ranked = ranked.sort_values(["severity", "findings", "area_m2", "ref"], ascending=[False, False, False, True])
    ranked["rank"] = np.arange(1, len(ranked) + 1)
    return ranked


def _as_list(value: object) -> list:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return [value]
    return list(value) if isinstance(value, list | tuple | np.ndarray) else []
