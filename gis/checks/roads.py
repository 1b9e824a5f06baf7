"""Roads as drawn: centre lines (OSM) or road-surface polygons (CAD, surveys), turned into what the checks need.

Every check reads a roads frame whose geometry is a centre line: a drawn surface keeps its polygon in
SURFACE_COLUMN, gets its centre line (medial axis, pygeoops.centerline) as the geometry and, where `width_m` is
missing, its mean width. `surfaces` gives the carriageway (the drawn polygon, else the centre line buffered by half
the width), `network_lines` the hose-lay network's lines with the short links a centre-line drawing would have
(a lane or a side road ending on a drawn surface is joined to that surface's centre line). Pure: no database.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pygeoops
import shapely
from shapely import STRtree

#: Column of a normalised roads frame holding the drawn road-surface polygon (None for roads drawn as lines).
SURFACE_COLUMN = "_surface"
#: Densify a surface's outline to this fraction of its mean width before the medial axis (pygeoops' own automatic
#: densification is capped at ten times the vertex count, which leaves long straight roads zig-zagging).
DENSIFY_WIDTHS = 0.5
#: Simplify the medial axis to this fraction of the mean width (pygeoops' default, a quarter, cuts the chord of a
#: curved road up to 4 m inside a 16 m carriageway; less leaves the Voronoi noise in, adding length).
SIMPLIFY_WIDTHS = 0.1
#: ... but never finer than this (metres): a footpath polygon needs no centimetre vertices.
DENSIFY_MIN_M = 0.5
#: A line end this near a drawn surface (metres; drawing tolerance, not a rule value) meets that road.
JOIN_TOL_M = 1.0
#: Links shorter than this (metres) are not drawn: the ends already meet within the network's noding grid.
LINK_MIN_M = 0.01
#: Grid (metres) centre lines are snapped to before parts of one street are merged end to end, where some parts are
#: derived from surfaces (a derived end meets the drawn line's end only up to floating point).
MERGE_GRID_M = 0.01

_POLYGONAL = (3, 6)


def _numbers(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float, copy=True)


def polygonal(geoms: np.ndarray) -> np.ndarray:
    """Which geometries are road surfaces (Polygon / MultiPolygon)."""
    return np.isin(shapely.get_type_id(geoms), _POLYGONAL)


def mean_width(surfaces: np.ndarray) -> np.ndarray:
    """Mean width of strip-like polygons: the shorter side of the rectangle with the same area and perimeter
    (exact for a rectangle; the same estimate pygeoops uses)."""
    quarter = shapely.length(surfaces) / 4.0
    return quarter - np.sqrt(np.maximum(quarter ** 2 - shapely.area(surfaces), 0.0))


def centrelines(surfaces: np.ndarray) -> np.ndarray:
    """Centre lines of road-surface polygons, extended to the surface's ends (MultiLineString each).

    The outlines are densified to DENSIFY_WIDTHS of each surface's mean width (one vectorised segmentize) and
    handed to pygeoops' Voronoi medial axis without further densification; short branches are pruned as pygeoops
    does by default (shorter than the mean width), the axis simplified to SIMPLIFY_WIDTHS of it.
    """
    surfaces = np.asarray(surfaces, dtype=object)
    if not len(surfaces):
        return np.empty(0, dtype=object)
    # GEOS builds the Voronoi cells inside the sites' envelope: a long road lying diagonally has a square envelope
    # and takes ten times as long as the same road along an axis, so each surface is turned onto its long axis
    # first and its centre line turned back
    angle, origin = _long_axes(surfaces)
    surfaces = _rotate(surfaces, -angle, origin)
    step = np.maximum(mean_width(surfaces) * DENSIFY_WIDTHS, DENSIFY_MIN_M)
    dense = shapely.segmentize(surfaces, step)
    lines = np.asarray(pygeoops.centerline(dense, densify_distance=0, simplifytolerance=-SIMPLIFY_WIDTHS,
                                           extend=True), dtype=object).reshape(-1)
    lines = np.where(pd.isna(lines), shapely.from_wkt("MULTILINESTRING EMPTY"), lines)
    lines = shapely.line_merge(lines)
    single = shapely.get_type_id(lines) == 1
    lines[single] = shapely.multilinestrings(lines[single], indices=np.arange(int(single.sum())))
    return _rotate(lines, angle, origin)


def _long_axes(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per geometry the direction of the long side of its minimum rotated rectangle (radians) and its centre."""
    rect = shapely.get_coordinates(shapely.get_exterior_ring(shapely.oriented_envelope(geoms))).reshape(-1, 5, 2)
    a, b = rect[:, 1] - rect[:, 0], rect[:, 2] - rect[:, 1]
    long = np.where((np.hypot(*a.T) >= np.hypot(*b.T))[:, None], a, b)
    return np.arctan2(long[:, 1], long[:, 0]), rect[:, :4].mean(axis=1)


def _rotate(geoms: np.ndarray, angle: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """Each geometry rotated by its angle (radians) about its origin, in one coordinate pass."""
    xy, idx = shapely.get_coordinates(geoms, return_index=True)
    if not len(xy):
        return geoms
    c, s = np.cos(angle)[idx], np.sin(angle)[idx]
    d = xy - origin[idx]
    return shapely.set_coordinates(geoms.copy(), np.column_stack([origin[idx, 0] + c * d[:, 0] - s * d[:, 1],
                                                                  origin[idx, 1] + s * d[:, 0] + c * d[:, 1]]))


def as_drawn(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The roads frame the checks read: centre lines as geometry, drawn surfaces in SURFACE_COLUMN.

    A frame without polygons is returned as it is (no copy). A polygon road gets its centre line as geometry,
    its polygon (made valid) in SURFACE_COLUMN and, where `width_m` is missing, its mean width (`estimated` set).
    Rows already normalised (geometry a line, surface present) are left alone, so the call is idempotent.
    """
    if not len(frame):
        return frame
    g = np.asarray(frame.geometry.values, dtype=object)
    drawn = polygonal(g)
    if not drawn.any():
        return frame
    out = frame.copy()
    surface = (out[SURFACE_COLUMN].to_numpy(dtype=object).copy() if SURFACE_COLUMN in out.columns
               else np.full(len(out), None, dtype=object))
    valid = shapely.make_valid(g[drawn])
    valid = np.where(polygonal(valid), valid, shapely.buffer(valid, 0))  # a collection from make_valid
    surface[drawn] = valid
    width = _numbers(out, "width_m")
    missing = drawn & np.isnan(width)
    width[missing] = np.round(mean_width(surface[missing]), 2)
    out[SURFACE_COLUMN] = surface
    out["width_m"] = width
    if missing.any():
        est = out["estimated"].to_numpy(dtype=object).copy() if "estimated" in out.columns else \
            np.full(len(out), False, dtype=object)
        est[missing] = True
        out["estimated"] = est
    lines = g.copy()
    lines[drawn] = centrelines(valid)
    return out.set_geometry(gpd.GeoSeries(lines, index=out.index, crs=frame.crs))


def drawn_surfaces(frame: pd.DataFrame) -> np.ndarray:
    """SURFACE_COLUMN of a normalised frame (None for roads drawn as lines)."""
    if SURFACE_COLUMN not in frame.columns:
        return np.full(len(frame), None, dtype=object)
    s = frame[SURFACE_COLUMN].to_numpy(dtype=object, copy=True)
    s[pd.isna(s)] = None
    return s


def surfaces(frame: gpd.GeoDataFrame) -> np.ndarray:
    """The carriageway of each road of a normalised frame: the drawn polygon, else the centre line buffered by
    half `width_m` with flat caps, else (no width) the centre line itself."""
    g = np.asarray(frame.geometry.values, dtype=object)
    if not len(g):
        return np.empty(0, dtype=object)
    out = g.copy()
    drawn = drawn_surfaces(frame)
    has = ~pd.isna(drawn)
    out[has] = drawn[has]
    w = np.nan_to_num(_numbers(frame, "width_m"))
    grow = ~has & (w > 0)
    if grow.any():
        out[grow] = shapely.buffer(g[grow], w[grow] / 2.0, cap_style="flat", quad_segs=4)
    return out


def widths_known(frame: pd.DataFrame) -> np.ndarray:
    """Whether each road's carriageway is known: a drawn surface or a positive `width_m`."""
    return ~pd.isna(drawn_surfaces(frame)) | (np.nan_to_num(_numbers(frame, "width_m")) > 0)


def network_lines(frame: gpd.GeoDataFrame) -> np.ndarray:
    """Centre lines plus the links a centre-line drawing has and a surface drawing leaves out.

    A road drawn as a surface has its centre line inside; another road (a side road, a walkway, another
    surface's centre line) drawn up to the surface's edge ends there. Each such end within JOIN_TOL_M of a
    drawn surface (not its own) is linked straight to the nearest point of that surface's centre line, as the
    centre lines of OSM meet at a node.
    """
    g = np.asarray(frame.geometry.values, dtype=object)
    drawn = drawn_surfaces(frame)
    has = np.flatnonzero(~pd.isna(drawn))
    if not len(has) or not len(g):
        return g
    parts, row = shapely.get_parts(g, return_index=True)
    line = (shapely.get_type_id(parts) == 1) & ~shapely.is_empty(parts)
    parts, row = parts[line], row[line]
    tree = STRtree(drawn[has])
    # only the parts that come near a surface can end near one (most of a district's lines are far from any)
    near = np.zeros(len(parts), dtype=bool)
    near[tree.query(parts, predicate="dwithin", distance=JOIN_TOL_M)[0]] = True
    ends = np.concatenate([shapely.get_point(parts[near], 0), shapely.get_point(parts[near], -1)])  # starts, ends
    end_row = np.concatenate([row[near], row[near]])
    ei, si = tree.query(ends, predicate="dwithin", distance=JOIN_TOL_M)
    other = end_row[ei] != has[si]
    ei, si = ei[other], si[other]
    if not len(ei):
        return g
    links = shapely.shortest_line(ends[ei], g[has[si]])
    links = links[shapely.length(links) >= LINK_MIN_M]
    return np.concatenate([g, links])


def mergeable_lines(frame: gpd.GeoDataFrame) -> np.ndarray:
    """Centre lines ready to be merged end to end (`shapely.line_merge`) into streets: as drawn, or snapped to
    MERGE_GRID_M where the frame holds surfaces (a street drawn partly as a surface, partly as a line, is one
    street whose derived and drawn ends meet only up to floating point)."""
    g = np.asarray(frame.geometry.values, dtype=object)
    if not len(g) or pd.isna(drawn_surfaces(frame)).all():
        return g
    return shapely.set_precision(g, MERGE_GRID_M)
