"""Derive firelane layers (compounds, buildings, fire lanes, roads, hydrants, entrances, obstructions, parking)
from the objects of an OSM extract."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from shapely import STRtree

from gis.coords import as_bounds, metric_crs_for_bounds, to_storage
from gis.layers import STORAGE_SRID, get_layer
from gis.osm import tags as T
from gis.osm.reader import RawOsm, area_layers

#: The value of `source` on every feature derived from OpenStreetMap.
SOURCE = "osm"
#: Attribution required by the ODbL wherever OSM-derived data are shown or exported.
ATTRIBUTION = "© OpenStreetMap contributors"
#: Layers the importer writes, in write order (compounds first: the others are linked to them spatially).
OSM_LAYERS = ("compounds", "buildings", "fire_lanes", "roads", "hydrants", "entrances", "obstructions", "parking")
#: A node lies "on" a line or outline when it is this close (metres): shared OSM nodes give ~0.
ON_LINE_M = 0.05

Dropped = tuple[str, str, str]


@dataclass
class DerivedLayers:
    """Layer frames in the storage CRS (EPSG:4490), ready for gis.store.write_frame, and what was dropped."""

    frames: dict[str, gpd.GeoDataFrame]
    dropped: list[Dropped] = field(default_factory=list)
    #: per layer: field name -> number of features whose value is an estimate
    estimated: dict[str, Counter] = field(default_factory=dict)
    #: extent of the extract (lon/lat): the file header's box, else the data's bounds
    bounds: tuple[float, float, float, float] | None = None
    #: the metric CRS used for buffers and distances
    metric_crs: pyproj.CRS | None = None
    objects_read: int = 0
    #: footways / barrier ways left out because nodes were missing from the extract (see RawOsm)
    ignored_incomplete: int = 0


class _Rows:
    """Column lists of one layer's frame, filled feature by feature from tags (attributes only, no geometry)."""

    def __init__(self, layer: str) -> None:
        self.layer = layer
        self.columns: dict[str, list[Any]] = {"ref": [], "source": [], "estimated": [], "extra": []}

    def add(self, ref: str, version: int, tags: Mapping[str, str], values: Mapping[str, Any],
            *, estimated: Sequence[str] = (), extra: Mapping[str, Any] | None = None) -> None:
        kept: dict[str, Any] = T.useful_tags(tags)
        if version:
            kept["osm_version"] = version
        if estimated:
            kept["estimated_fields"] = list(estimated)
        kept.update(extra or {})
        row = {"ref": ref, "source": SOURCE, "estimated": bool(estimated), "extra": kept, **values}
        n = len(self.columns["ref"])
        for key in row.keys() - self.columns.keys():
            self.columns[key] = [None] * n
        for key, col in self.columns.items():
            col.append(row.get(key))

    def __len__(self) -> int:
        return len(self.columns["ref"])

    def frame(self, geoms_lonlat: np.ndarray) -> gpd.GeoDataFrame:
        """The frame in the storage CRS; values checked against the layer's declared ranges and choices."""
        layer = get_layer(self.layer)
        data = dict(self.columns)
        for f in layer.fields:
            if f.name in data:
                data[f.name] = [_bounded(f, v) for v in data[f.name]]
        # object columns keep python ints and None (a float column would turn floors 4 into 4.0, None into NaN)
        data = {k: pd.Series(v, dtype=bool if k == "estimated" else object) for k, v in data.items()}
        geoms = to_storage(np.asarray(geoms_lonlat, dtype=object), "EPSG:4326") if len(geoms_lonlat) else []
        return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs=STORAGE_SRID), crs=STORAGE_SRID)


def _bounded(f: Any, value: Any) -> Any:
    """A declared field's value, or None when OSM's value is outside the field's range or choices."""
    if value is None:
        return None
    if f.minimum is not None and value < f.minimum:
        return None
    if f.maximum is not None and value > f.maximum:
        return None
    if f.choices and value not in f.choices:
        return None
    if f.max_length and isinstance(value, str):
        return value[: f.max_length]
    return value


def _to_metric(geoms: np.ndarray, crs: pyproj.CRS) -> np.ndarray:
    return np.asarray(gpd.GeoSeries(geoms, crs=4326).to_crs(crs).values, dtype=object)


def _to_lonlat(geoms: np.ndarray, crs: pyproj.CRS) -> np.ndarray:
    return np.asarray(gpd.GeoSeries(geoms, crs=crs).to_crs(4326).values, dtype=object)


def _validate(layer: str, refs: Sequence[str], geoms: np.ndarray, dropped: list[Dropped]) -> np.ndarray:
    """Mask of valid, non-empty geometries; the others are added to `dropped` with GEOS's reason."""
    ok = shapely.is_valid(geoms) & ~shapely.is_empty(geoms) & ~shapely.is_missing(geoms)
    for i in np.flatnonzero(~ok).tolist():
        reason = shapely.is_valid_reason(geoms[i]) if geoms[i] is not None else "no geometry"
        dropped.append((layer, refs[i], f"几何无效 invalid geometry ({reason})"))
    return ok


def _near(points: np.ndarray, targets: np.ndarray, distance: float) -> np.ndarray:
    """Mask: which of `points` lie within `distance` (metres, metric CRS) of any of `targets`."""
    mask = np.zeros(len(points), dtype=bool)
    if len(points) and len(targets):
        hit = STRtree(targets).query(points, predicate="dwithin", distance=distance)[0]
        mask[hit] = True
    return mask


def _length_tag(tags: Mapping[str, str], *keys: str, maximum: float) -> float | None:
    for key in keys:
        value = T.parse_length_m(tags.get(key))
        if value is not None and 0 < value <= maximum:
            return value
    return None


@dataclass
class _Lines:
    """The extract's valid highway and barrier ways and how each is classified."""

    items: list[tuple[str, int, dict[str, str]]]
    lonlat: np.ndarray
    metric: np.ndarray
    lane: np.ndarray
    city: np.ndarray
    walk: np.ndarray
    width: np.ndarray
    width_estimated: np.ndarray

    @property
    def drivable(self) -> np.ndarray:
        return self.lane | self.city


def derive_layers(raw: RawOsm) -> DerivedLayers:
    """Derive every firelane layer from a streamed extract (see :func:`gis.osm.reader.read_osm`).

    Parameters
    ----------
    raw : RawOsm
        Tagged nodes, lines and areas of the extract, in WGS84.

    Returns
    -------
    DerivedLayers
        One GeoDataFrame per layer of :data:`OSM_LAYERS` in EPSG:4490, each feature with ``ref`` = its OSM id
        ("osm:way/123"), ``source`` = "osm", ``estimated`` when a value comes from a documented default
        (see gis.osm.tags) and ``extra`` with the useful OSM tags; invalid OSM geometries are in ``dropped``.
    """
    out = DerivedLayers(frames={}, dropped=list(raw.dropped), objects_read=raw.objects_read,
                        ignored_incomplete=raw.ignored_incomplete)
    area_geoms = shapely.from_wkb([a[3] for a in raw.areas]) if raw.areas else np.array([], dtype=object)
    area_kinds = [area_layers(a[2]) for a in raw.areas]
    area_ok = np.ones(len(raw.areas), dtype=bool)
    for layer in ("compounds", "buildings", "parking"):
        idx = np.array([i for i, kinds in enumerate(area_kinds) if layer in kinds], dtype=int)
        if len(idx):
            area_ok[idx] &= _validate(layer, [raw.areas[i][0] for i in idx], area_geoms[idx], out.dropped)
    line_geoms = shapely.from_wkb([w[3] for w in raw.lines]) if raw.lines else np.array([], dtype=object)
    line_ok = _validate("roads", [w[0] for w in raw.lines], line_geoms, out.dropped)
    node_pts = shapely.points([(n[3], n[4]) for n in raw.nodes]) if raw.nodes else np.array([], dtype=object)

    present = [g for g in (area_geoms[area_ok], line_geoms[line_ok], node_pts) if len(g)]
    data_bounds = as_bounds(shapely.total_bounds(np.concatenate(present))) if present else None
    out.bounds = raw.header_bounds or data_bounds
    rows = {name: _Rows(name) for name in OSM_LAYERS}
    geoms: dict[str, list[Any]] = {name: [] for name in OSM_LAYERS}
    if out.bounds is not None:
        metric = out.metric_crs = metric_crs_for_bounds(data_bounds or out.bounds)
        keep = np.flatnonzero(area_ok)
        _derive_areas(rows, geoms, [raw.areas[i][:3] for i in keep], area_geoms[keep], [area_kinds[i] for i in keep])
        compound_m = _to_metric(np.asarray(geoms["compounds"], dtype=object), metric)
        building_m = _to_metric(np.asarray(geoms["buildings"], dtype=object), metric)
        # paths matter only inside compounds: leave the others out before any projection (memory, time)
        walk = np.array([w[2].get("highway") in T.WALKWAY_HIGHWAYS for w in raw.lines], dtype=bool)
        touching = _near(line_geoms, np.asarray(geoms["compounds"], dtype=object), 0.0)
        use = np.flatnonzero(line_ok & (~walk | touching))
        lines = _classify_lines([raw.lines[i][:3] for i in use], line_geoms[use], compound_m, metric)
        lane_m = _derive_lines(rows, geoms, lines, metric)
        _derive_nodes(rows, geoms, raw.nodes, node_pts, lines, lane_m, compound_m, building_m, metric)
    for name in OSM_LAYERS:
        out.frames[name], out.estimated[name] = _finish(name, rows[name], geoms[name], out.dropped)
    return out


def _finish(name: str, rows: _Rows, geoms: list[Any], dropped: list[Dropped]) -> tuple[gpd.GeoDataFrame, Counter]:
    """The layer's frame without invalid geometries or repeated refs (both reported), and its estimate counts."""
    frame = rows.frame(np.asarray(geoms, dtype=object))
    refs = frame["ref"].tolist()
    ok = _validate(name, refs, np.asarray(frame.geometry.values, dtype=object), dropped)
    repeated = frame["ref"].duplicated().to_numpy()
    for i in np.flatnonzero(repeated & ok):
        dropped.append((name, refs[i], "重复 the same OSM object derived twice for this layer (first kept)"))
    frame = frame[ok & ~repeated].reset_index(drop=True)
    estimated = Counter(f for extra in frame["extra"] for f in extra.get("estimated_fields", ()))
    return frame, estimated


def _derive_areas(rows: dict[str, _Rows], geoms: dict[str, list[Any]], items: list, area_geoms: np.ndarray,
                  kinds: list[tuple[str, ...]]) -> None:
    """Compounds (landuse=residential), buildings and parking areas (amenity=parking at ground level)."""
    for (ref, version, tags), geom, layers in zip(items, area_geoms, kinds, strict=True):
        if "compounds" in layers:
            _add_compound(rows["compounds"], ref, version, tags)
            geoms["compounds"].append(geom)
        if "buildings" in layers:
            _add_building(rows["buildings"], ref, version, tags)
            geoms["buildings"].append(geom)
        if "parking" in layers:
            rows["parking"].add(ref, version, tags, {"kind": "stall", "vehicle_type": None})
            geoms["parking"].append(geom)


def _classify_lines(items: list, lonlat: np.ndarray, compound_m: np.ndarray, metric: pyproj.CRS) -> _Lines:
    """Fire lanes (minor roads whose midpoint lies in a compound, and emergency-access roads anywhere), city roads
    (the public network outside compounds) and walkways (paths inside compounds), with their widths."""
    tags = [t for _, _, t in items]
    metric_lines = _to_metric(lonlat, metric)
    highway = np.array([t.get("highway", "") for t in tags], dtype=object)
    underground = np.array([t.get("tunnel") == "yes" for t in tags], dtype=bool)
    in_compound = np.zeros(len(items), dtype=bool)
    if len(items) and len(compound_m):
        mid = shapely.line_interpolate_point(metric_lines, 0.5, normalized=True)
        in_compound[STRtree(compound_m).query(mid, predicate="within")[0]] = True
    emergency = np.array([T.is_emergency_lane(t) for t in tags], dtype=bool)
    lane = ((np.isin(highway, list(T.LANE_HIGHWAYS)) & in_compound) | emergency) & ~underground
    city = np.isin(highway, list(T.CITY_HIGHWAYS)) & ~lane & ~underground
    walk = np.isin(highway, list(T.WALKWAY_HIGHWAYS)) & in_compound & ~underground
    width = np.full(len(items), np.nan)
    width_estimated = np.zeros(len(items), dtype=bool)
    for i, t in enumerate(tags):  # tag parsing only
        width[i], width_estimated[i] = _line_width(t, lane=bool(lane[i]), walk=bool(walk[i]))
    return _Lines(items=items, lonlat=lonlat, metric=metric_lines, lane=lane, city=city, walk=walk, width=width,
                  width_estimated=width_estimated)


def _derive_lines(rows: dict[str, _Rows], geoms: dict[str, list[Any]], lines: _Lines,
                  metric: pyproj.CRS) -> np.ndarray:
    """Fire-lane polygons (centre line buffered by half the width), roads and parking strips; returns the lane
    polygons in the metric CRS."""
    lane_idx = np.flatnonzero(lines.lane)
    kinds = _lane_kinds(lines.metric, lane_idx, np.flatnonzero(lines.drivable))
    for j, i in enumerate(lane_idx):
        ref, version, tags = lines.items[i]
        rows["fire_lanes"].add(ref, version, tags, {
            "name": tags.get("name"), "kind": kinds[j], "design_width_m": float(lines.width[i]),
            "clear_height_m": _length_tag(tags, "maxheight", maximum=50),
            "slope_pct": T.parse_percent(tags.get("incline")),
        }, estimated=("design_width_m",) if lines.width_estimated[i] else ())
    lane_m = shapely.buffer(lines.metric[lane_idx], lines.width[lane_idx] / 2.0, cap_style="flat",
                            join_style="mitre")
    geoms["fire_lanes"].extend(_to_lonlat(lane_m, metric))
    road_idx = np.flatnonzero(lines.drivable | lines.walk)
    for i in road_idx:
        ref, version, tags = lines.items[i]
        kind = "internal" if lines.lane[i] else ("city" if lines.city[i] else "walkway")
        rows["roads"].add(ref, version, tags, {"name": tags.get("name"), "kind": kind,
                                               "width_m": float(lines.width[i])},
                          estimated=("width_m",) if lines.width_estimated[i] else ())
    geoms["roads"].extend(lines.lonlat[road_idx])
    geoms["parking"].extend(_parking_strips(rows["parking"], lines, metric))
    return lane_m


def _derive_nodes(rows: dict[str, _Rows], geoms: dict[str, list[Any]], nodes: list, pts: np.ndarray,
                  lines: _Lines, lane_m: np.ndarray, compound_m: np.ndarray, building_m: np.ndarray,
                  metric: pyproj.CRS) -> None:
    """Hydrants, parking nodes, entrances (gates/entrances on compound boundaries, not building doors) and
    obstructions (barrier nodes on lanes, barrier ways crossing lanes)."""
    tags = [n[2] for n in nodes]
    pts_m = _to_metric(pts, metric)
    for i, t in enumerate(tags):
        ref, version = nodes[i][0], nodes[i][1]
        if t.get("emergency") == "fire_hydrant":
            _add_hydrant(rows["hydrants"], ref, version, t)
            geoms["hydrants"].append(pts[i])
        if t.get("amenity") == "parking" and t.get("parking") not in T.OFF_GROUND_PARKING and "building" not in t:
            rows["parking"].add(ref, version, t, {"kind": "stall", "vehicle_type": None})
            geoms["parking"].append(pts[i])

    barrier = np.array([t.get("barrier", "") for t in tags], dtype=object)
    gate = np.isin(barrier, list(T.ENTRANCE_BARRIERS))
    candidate = gate | np.array(["entrance" in t for t in tags], dtype=bool)
    on_boundary = _near(pts_m, shapely.boundary(compound_m), T.ENTRANCE_SNAP_M)
    door = _near(pts_m, shapely.boundary(building_m), ON_LINE_M)
    entrance = candidate & on_boundary & (gate | ~door)
    on_road = _near(pts_m, lines.metric[lines.drivable], ON_LINE_M)
    for i in np.flatnonzero(entrance).tolist():
        _add_entrance(rows["entrances"], nodes[i][0], nodes[i][1], tags[i], vehicle=bool(on_road[i]))
    geoms["entrances"].extend(pts[entrance])

    blocking = np.isin(barrier, list(T.OBSTRUCTION_BARRIERS)) & ~entrance & _near(pts_m, lane_m, 0.0)
    for i in np.flatnonzero(blocking).tolist():
        _add_obstruction(rows["obstructions"], nodes[i][0], nodes[i][1], tags[i], line=False)
    geoms["obstructions"].extend(pts[blocking])
    line_tags = [t for _, _, t in lines.items]
    barrier_line = np.array([t.get("barrier") in T.OBSTRUCTION_LINE_BARRIERS and "highway" not in t
                             for t in line_tags], dtype=bool)
    crossing = barrier_line & _near(lines.metric, lane_m, 0.0)
    for i in np.flatnonzero(crossing).tolist():
        ref, version, t = lines.items[i]
        _add_obstruction(rows["obstructions"], ref, version, t, line=True)
    geoms["obstructions"].extend(lines.lonlat[crossing])


# --- per-feature attributes ---------------------------------------------------------------------------------------


def _add_compound(rows: _Rows, ref: str, version: int, tags: Mapping[str, str]) -> None:
    name = tags.get("name") or tags.get("name:zh") or tags.get("name:en")
    start = tags.get("start_date", "")
    year = int(start[:4]) if start[:4].isdigit() else None
    rows.add(ref, version, tags, {
        "name": name or f"未命名居住区 unnamed residential area {ref}",
        "address": T.address(tags), "kind": None, "built_year": year,
        "property_company": tags.get("operator"), "gated": T.compound_gated(tags),
    }, extra=None if name else {"name_generated": True})


def _add_building(rows: _Rows, ref: str, version: int, tags: Mapping[str, str]) -> None:
    height = _length_tag(tags, "height", maximum=700)
    levels = T.parse_levels(tags.get("building:levels"))
    floors = int(round(levels)) if levels is not None and 1 <= round(levels) <= 200 else None
    estimated: tuple[str, ...] = ()
    if height is None and levels is not None and levels > 0:
        height = levels * T.METRES_PER_LEVEL
        estimated = ("height_m",)
    rows.add(ref, version, tags, {
        "name": tags.get("name"), "height_m": height, "floors": floors,
        "use": T.BUILDING_USE.get(tags.get("building", "")), "fire_resistance_grade": None,
    }, estimated=estimated)


def _line_width(tags: Mapping[str, str], *, lane: bool, walk: bool) -> tuple[float, bool]:
    """(width in metres, whether it is an estimate) of a lane, road or walkway."""
    width = _length_tag(tags, "width", maximum=50 if lane else 120)
    if width is not None:
        return width, False
    estimate = _length_tag(tags, "est_width", maximum=50 if lane else 120)
    if estimate is not None:
        return estimate, True
    if lane:
        return T.DEFAULT_FIRE_LANE_WIDTH_M, True
    if walk:
        return T.DEFAULT_WALKWAY_WIDTH_M, True
    lanes = T.parse_levels(tags.get("lanes"))
    if lanes is not None and lanes >= 1:
        return lanes * T.METRES_PER_TRAFFIC_LANE, True
    return T.DEFAULT_ROAD_WIDTH_M.get(tags.get("highway", ""), T.DEFAULT_ROAD_WIDTH_M["service"]), True


def _lane_kinds(lines_m: np.ndarray, lane_idx: np.ndarray, drivable_idx: np.ndarray) -> list[str]:
    """ring (closed way), dead_end (an end meets no other drivable way) or through, for each lane."""
    if not len(lane_idx):
        return []
    lanes = lines_m[lane_idx]
    closed = shapely.is_closed(lanes)
    ends = np.concatenate([shapely.get_point(lanes, 0), shapely.get_point(lanes, -1)])
    owner = np.concatenate([lane_idx, lane_idx])
    tree_ids = drivable_idx
    hits_in, hits_tree = STRtree(lines_m[tree_ids]).query(ends, predicate="dwithin", distance=ON_LINE_M)
    other = tree_ids[hits_tree] != owner[hits_in]
    connected = np.bincount(hits_in[other], minlength=len(ends)) > 0
    n = len(lane_idx)
    both = connected[:n] & connected[n:]
    return ["ring" if c else ("through" if b else "dead_end") for c, b in zip(closed, both, strict=True)]


def _parking_strips(rows: _Rows, lines: _Lines, metric: pyproj.CRS) -> list[Any]:
    """Parking strips along roads whose parking:lane:* / parking:<side> tags say vehicles park there.

    A strip is `PARKING_DEPTH_M[orientation]` deep and lies along the edge of the carriageway (inside it, as a
    parking lane does), on the way's left or right; both sides of one way are one feature. The geometry is an
    estimate from the (possibly estimated) road width, and is marked so.
    """
    todo = [(i, sides) for i in np.flatnonzero(lines.drivable) if (sides := T.parking_sides(lines.items[i][2]))]
    if not todo:
        return []
    part = [(k, 1.0 if side == "left" else -1.0, T.PARKING_DEPTH_M[orientation])
            for k, (_, sides) in enumerate(todo) for side, orientation in sides.items()]
    owner, sign, depth = (np.array(v) for v in zip(*part, strict=True))
    line_ids = np.array([i for i, _ in todo])[owner]
    half = lines.width[line_ids] / 2.0
    centre = np.maximum(half - depth / 2.0, depth / 2.0)
    offsets = shapely.offset_curve(lines.metric[line_ids], sign * centre, join_style="round")
    strips = shapely.buffer(offsets, depth / 2.0, cap_style="flat", join_style="round")
    merged = [shapely.union_all(strips[owner == k]) for k in range(len(todo))]  # one or two strips per way
    for i, sides in todo:
        ref, version, tags = lines.items[i]
        rows.add(ref, version, tags, {"kind": "stall", "vehicle_type": None}, estimated=("geometry",),
                 extra={"parking_sides": ",".join(f"{s}:{o}" for s, o in sorted(sides.items()))})
    return list(_to_lonlat(np.asarray(merged, dtype=object), metric))


def _add_hydrant(rows: _Rows, ref: str, version: int, tags: Mapping[str, str]) -> None:
    status = T.HYDRANT_STATUS.get(tags.get("operational_status", ""))
    if status is None and tags.get("disused") == "yes":
        status = "out_of_service"
    flow = T.parse_flow_lps(tags.get("flow_rate") or tags.get("fire_hydrant:flow_capacity"))
    rows.add(ref, version, tags, {
        "kind": T.HYDRANT_KIND.get(tags.get("fire_hydrant:type", "")), "status": status, "flow_lps": flow,
        "pressure_mpa": T.parse_pressure_mpa(tags.get("fire_hydrant:pressure")),
        "diameter_mm": T.parse_diameter_mm(tags.get("fire_hydrant:diameter")),
        "supply": "municipal" if tags.get("water_source") == "main" else None,
    })


def _add_entrance(rows: _Rows, ref: str, version: int, tags: Mapping[str, str], *, vehicle: bool) -> None:
    barrier = tags.get("barrier")
    pedestrian_only = (barrier in T.PEDESTRIAN_BARRIERS or tags.get("motor_vehicle") == "no"
                       or tags.get("access") == "foot")
    rows.add(ref, version, tags, {
        "name": tags.get("name"), "kind": "vehicle" if vehicle and not pedestrian_only else "pedestrian",
        "width_m": _length_tag(tags, "width", "maxwidth", maximum=50),
        "clear_height_m": _length_tag(tags, "maxheight", maximum=50),
        "gate": T.ENTRANCE_BARRIERS.get(barrier or "", "none"),
    })


def _add_obstruction(rows: _Rows, ref: str, version: int, tags: Mapping[str, str], *, line: bool) -> None:
    barrier = tags.get("barrier", "")
    kinds: Mapping[str, str] = T.OBSTRUCTION_LINE_BARRIERS if line else T.OBSTRUCTION_BARRIERS
    if barrier == "bollard":
        bollard = tags.get("bollard")
        removable = True if bollard in T.REMOVABLE_BOLLARDS else (False if bollard == "fixed" else None)
    else:
        removable = True if kinds[barrier] == "gate" else None
    rows.add(ref, version, tags, {
        "kind": kinds[barrier], "bottom_m": 0.0 if line else None, "removable": removable,
    })
