"""The per-compound input bundle of the checks (CheckContext) and the partitioning of a district into them."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from shapely import STRtree
from shapely.geometry.base import BaseGeometry

from gis.checks import attributes as at
from gis.checks import roads as rd
from gis.checks.profiles import Profile, load_profile
from gis.coords import cached_transformer, local_metric_crs, transform_xy
from gis.layers import STORAGE_SRID

#: Column added to every frame of a built context: the ref of the compound whose partition reports on the feature
#: (its compound_ref when that names a compound, else the nearest compound outline, ties to the smaller ref).
OWNER_COLUMN = "_owner"

#: A feature this near (metres) an outline has its owner found among the outlines around it (see `_owners`).
OWNER_REACH_M = 10.0

#: Layers a context carries (streets and the hazards ledger are not inputs of any check).
CONTEXT_LAYERS: tuple[str, ...] = (
    "compounds", "buildings", "fire_lanes", "aerial_areas", "hydrants", "entrances", "roads", "obstructions",
    "illegal_structures", "parking", "ebike_sites",
)


@dataclass(kw_only=True)
class CheckContext:
    """Everything the checks of one compound need, in the compound's local metric CRS.

    Attributes
    ----------
    compound_ref : str
        The compound whose features this partition reports on.
    crs : pyproj.CRS
        The local metric CRS (UTM zone of the compound) every frame of `layers` is projected to.
    profile : Profile
        The rule profile (every numeric value of the rule book).
    layers : dict of str to GeoDataFrame
        The compound's features plus its surroundings (see `context_margins`): city roads, parking and hydrants
        within the hose-lay reach, neighbouring buildings and illegal structures within the largest separation
        distance, neighbouring compounds' outlines. Frames keep the columns (and store ids as index) they were
        read with.
    compound : shapely geometry or None
        The compound's outline in `crs` (a single compound's partition; None for a group, whose outlines are its
        rows of `layers["compounds"]`).

    compounds : tuple of str
        Every compound the partition reports on (one, or a group of neighbours; `compound_ref` is None then).

    Notes
    -----
    A feature is reported by exactly one partition, its owner's: the compound named by its `compound_ref`, else
    the nearest compound outline (ties to the smaller ref). The builder decides this once for the district and
    writes it to every frame as `_owner`; `owned(frame)` / `owners(frame)` (and `gis.checks.attributes.owned`)
    read it. Pair rules report the pair in the partition that owns the pair's subject (SEP-BUILDINGS: the
    building with the smaller ref). Checks must treat the compounds of a multi-compound partition separately
    where a rule is per compound (group by `owners(frame)`).
    """

    compound_ref: str | None
    crs: pyproj.CRS
    profile: Profile
    layers: dict[str, gpd.GeoDataFrame] = field(default_factory=dict)
    compound: BaseGeometry | None = None
    compounds: tuple[str, ...] = ()
    #: per-partition memo of derived arrays (see `view`); not part of the context's identity
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.compounds and self.compound_ref is not None:
            self.compounds = (str(self.compound_ref),)

    def owned(self, frame: pd.DataFrame) -> np.ndarray:
        """Which rows of `frame` (a layer of this context) the partition reports on."""
        if OWNER_COLUMN in frame.columns:
            return at.isin(frame[OWNER_COLUMN], self.compounds)

        return at.owned(self, frame)

    def owners(self, frame: pd.DataFrame) -> np.ndarray:
        """The compound each row's findings belong to: its compound_ref, else its owner (nearest compound)."""
        given = _ref_strings(frame, "compound_ref")
        if OWNER_COLUMN in frame.columns:
            return np.where(given == None, frame[OWNER_COLUMN].to_numpy(dtype=object), given)  # noqa: E711
        return at.compound_refs(self, frame)

    def layer(self, name: str) -> gpd.GeoDataFrame:
        """The frame of layer `name` (an empty frame in `crs` when the partition has none)."""
        frame = self.layers.get(name)
        if frame is None:
            return gpd.GeoDataFrame({"ref": pd.Series(dtype=object)}, geometry=gpd.GeoSeries([], crs=self.crs),
                                    crs=self.crs)
        return frame

    def view(self, name: str) -> LayerView:
        """Arrays of layer `name` the checks share (geometries, refs, ownership, compound refs), computed once."""
        key = f"view:{name}"
        if key not in self.cache:
            self.cache[key] = LayerView.of(self, name)
        return self.cache[key]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["cache"] = {}  # derived arrays are cheaper to recompute than to ship
        return state


@dataclass(frozen=True)
class LayerView:
    """A layer of a context as arrays: `frame` (null/empty geometries dropped), `geoms`, `refs`, `own` (the
    partition reports on these), `compound_refs` (the compound each finding about the feature belongs to)."""

    frame: gpd.GeoDataFrame
    geoms: np.ndarray
    refs: np.ndarray
    own: np.ndarray
    compound_refs: np.ndarray

    @classmethod
    def of(cls, ctx: CheckContext, name: str) -> LayerView:
        frame = ctx.layer(name)
        g = np.asarray(frame.geometry.values, dtype=object)
        bad = shapely.is_missing(g)
        bad[~bad] = shapely.is_empty(g[~bad])
        if bad.any():
            frame, g = frame[~bad], g[~bad]
        return cls(frame=frame, geoms=g, refs=at.refs(frame), own=ctx.owned(frame), compound_refs=ctx.owners(frame))

    def __len__(self) -> int:
        return len(self.geoms)

    def take(self, mask: np.ndarray) -> LayerView:
        """The features where `mask` (bool array or indices) holds."""
        return LayerView(frame=self.frame.iloc[np.flatnonzero(mask) if np.asarray(mask).dtype == bool else mask],
                         geoms=self.geoms[mask], refs=self.refs[mask], own=self.own[mask],
                         compound_refs=self.compound_refs[mask])


def context_margins(profile: Profile) -> dict[str, float]:
    """How far around a compound each layer's features are needed (metres), from the profile's values.

    Hydrants, roads and parking: the hose-lay reach (and hydrant spacing) plus a margin; buildings and
    illegal structures: the largest separation distance; the rest: what lane, aerial and parking checks see.
    """
    sep = profile.get("SEPARATION", "table")
    largest_sep = max(float(v) for row in sep.values() for v in row.values())
    reach = max(float(profile.get("HYD-COVERAGE", "max_hose_lay_m")), float(profile.get("HYD-SPACING", "max_spacing_m")))
    near = max(20.0, float(profile.get("PARK-ENTRANCE", "approach_length_m")) + 10.0,
               float(profile.get("EBIKE-SITE", "min_separation_m")) + 10.0)
    return {
        "compounds": 2 * (reach + 10.0),
        "buildings": largest_sep + 2.0,
        "illegal_structures": largest_sep + 2.0,
        "hydrants": reach + 10.0,
        "roads": reach + 10.0,
        "parking": reach + 10.0,
        "entrances": near,
        "fire_lanes": near,
        "aerial_areas": near,
        "obstructions": near,
        "ebike_sites": near,
    }


def _ref_strings(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.full(len(frame), None, dtype=object)
    s = frame[column]
    out = s.astype(str).to_numpy(dtype=object, copy=True)
    out[s.isna().to_numpy()] = None
    return out


def _owners(geoms: np.ndarray, given: np.ndarray, outlines: np.ndarray, crefs: np.ndarray,
            tree: STRtree) -> np.ndarray:
    """Owner compound index per feature: its compound_ref, else the nearest outline (ties → smaller ref)."""
    owner = _positions(crefs, given)
    free = np.flatnonzero((owner < 0) & ~shapely.is_missing(geoms))
    if not len(free) or not len(outlines):
        return owner
    # among equally near outlines, the smaller ref wins (as gis.checks.attributes.owned decides)
    rank = np.argsort(np.argsort(crefs, kind="stable"), kind="stable")
    g = geoms[free]
    # most free features lie within a few metres of an outline: the outlines whose envelopes come within
    # OWNER_REACH_M of the feature's envelope hold every outline that near, so where the nearest of them is that
    # near it is the nearest of all (same GEOS distance as STRtree.query_nearest); the rest take the tree's search
    b = shapely.bounds(g)
    r = OWNER_REACH_M
    item, idx = tree.query(shapely.box(b[:, 0] - r, b[:, 1] - r, b[:, 2] + r, b[:, 3] + r))
    dist = shapely.distance(g[item], outlines[idx])
    order = np.lexsort((rank[idx], dist, item))
    item, idx, dist = item[order], idx[order], dist[order]
    first = np.r_[True, item[1:] != item[:-1]] if len(item) else np.zeros(0, dtype=bool)
    near = first & (dist < r * 0.999)  # margin: the boxes were grown in floating point
    owner[free[item[near]]] = idx[near]
    rest = free[np.isin(np.arange(len(free)), item[near], invert=True)]
    if len(rest):
        item, idx = tree.query_nearest(geoms[rest], all_matches=True, return_distance=False)
        order = np.lexsort((rank[idx], item))
        item, idx = item[order], idx[order]
        first = np.r_[True, item[1:] != item[:-1]]
        owner[rest[item[first]]] = idx[first]
    return owner


def _positions(crefs: np.ndarray, given: np.ndarray) -> np.ndarray:
    """Index in `crefs` of each given ref (-1 for None or a ref not there; the last of repeated refs)."""
    last = dict(zip(crefs.tolist(), range(len(crefs)), strict=True))
    if not last or not len(given):
        return np.full(len(given), -1, dtype=np.int64)
    found = pd.Index(list(last), dtype=object).get_indexer(pd.Index(given, dtype=object))
    pos = np.fromiter(last.values(), dtype=np.int64, count=len(last))
    return np.where(found >= 0, pos[np.maximum(found, 0)], -1).astype(np.int64)


def build_contexts(
    layers_4490: dict[str, gpd.GeoDataFrame],
    *,
    profile: Profile | str = "cn-gb",
    compounds: Iterable[str] | None = None,
    group_size: int = 1,
) -> list[CheckContext]:
    """Partition a district's layers into CheckContexts of whole compounds.

    Parameters
    ----------
    layers_4490 : dict of str to GeoDataFrame
        Layer frames in the storage CRS (EPSG:4490; frames without a CRS are taken as such), e.g. from
        `gis.store.read_layer`. `compounds` is required; missing layers are empty.
    profile : Profile or str
        The rule profile (or its name).
    compounds : iterable of str, optional
        Refs of the compounds to build contexts for (default: every compound); the others are surroundings.
    group_size : int
        Compounds per partition: 1 (default) gives one context per compound; larger groups of spatially
        adjacent compounds (`compact_groups`) amortise the per-partition overhead of the checks.

    Returns
    -------
    list of CheckContext
        In the order of their first compound ref, each in the local metric CRS (UTM zone) of its compounds.
        Every feature frame carries the column `_owner` (OWNER_COLUMN): the compound that reports on it.

    Notes
    -----
    Vectorised: per CRS zone each layer is projected once (one PROJ call), owners are assigned once (distances to
    the outlines around each feature, STRtree nearest beyond OWNER_REACH_M) and surroundings are found with one
    envelope query per layer against the partitions' grown boxes; only the slicing into partition frames loops over
    partitions. Layers are partitioned one after another in the calling process.
    """
    prof = load_profile(profile) if isinstance(profile, str) else profile
    comp = layers_4490.get("compounds")
    if comp is None or len(comp) == 0:
        return []
    comp = _storage(comp)
    comp = comp[~(comp.geometry.isna() | comp.geometry.is_empty)]
    crefs = _ref_strings(comp, "ref")
    keep = np.array([r is not None for r in crefs], dtype=bool)
    comp, crefs = comp[keep], crefs[keep].astype(str)
    wanted = np.ones(len(comp), dtype=bool) if compounds is None else np.isin(crefs, [str(c) for c in compounds])
    if not wanted.any():
        return []
    margins = context_margins(prof)
    zone, zones = compound_zones(np.asarray(comp.geometry.values))
    contexts: list[CheckContext] = []
    for z in np.unique(zone[wanted]).tolist():
        contexts.extend(_zone_contexts(layers_4490, comp, crefs, wanted & (zone == z), zones[z], prof, margins,
                                       max(int(group_size), 1)))
    contexts.sort(key=lambda c: c.compounds[0])
    return contexts


def compound_zones(outlines: np.ndarray) -> tuple[np.ndarray, list[pyproj.CRS]]:
    """Each compound's local metric CRS (the UTM zone of its outline's point on surface, lon/lat outlines: the CRS
    of the partition that checks it) as an index into the distinct CRSs, which follow."""
    centres = shapely.get_coordinates(shapely.point_on_surface(outlines))
    crs = [local_metric_crs(x, y) for x, y in centres]
    distinct = {id(c): c for c in crs}  # gis.coords hands out one cached CRS object per zone; first seen first
    number = {key: i for i, key in enumerate(distinct)}
    return np.array([number[id(c)] for c in crs], dtype=np.int64), list(distinct.values())


def _storage(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if frame.crs is None:
        return frame.set_crs(STORAGE_SRID)
    return frame


def _projected(frame: gpd.GeoDataFrame, crs: pyproj.CRS) -> gpd.GeoDataFrame:
    """`frame` (no missing or empty geometries) in `crs`: the same coordinates as `GeoDataFrame.to_crs`, from one
    PROJ call over the layer's coordinates with the process's cached transformer (`gis.coords.cached_transformer`)."""
    move = cached_transformer(frame.crs, crs)
    if move is None:
        return frame.set_crs(crs, allow_override=True)
    moved = transform_xy(np.asarray(frame.geometry.values, dtype=object), move.transform)
    return frame.set_geometry(gpd.GeoSeries(moved, index=frame.index, crs=crs))


def _groups(outlines: np.ndarray, targets: np.ndarray, size: int) -> list[np.ndarray]:
    """Groups of at most `size` neighbouring target compounds (`compact_groups` of their centres, each group in
    Hilbert order)."""
    if size <= 1 or len(targets) <= 1:
        return [targets[i:i + 1] for i in range(len(targets))]
    order = hilbert_order(outlines[targets])
    centres = shapely.get_coordinates(shapely.centroid(outlines[targets[order]]))
    return [targets[order[g]] for g in compact_groups(centres, size)]


def hilbert_order(outlines: np.ndarray) -> np.ndarray:
    """The order of outlines along a Hilbert curve of their centres."""
    if len(outlines) < 2:
        return np.arange(len(outlines))
    centres = gpd.GeoSeries(shapely.centroid(outlines))  # order only
    return np.argsort(centres.hilbert_distance().to_numpy(), kind="stable")


def compact_groups(xy: np.ndarray, size: int) -> list[np.ndarray]:
    """Points `xy` (metric, or lon/lat with x scaled by the cosine of the latitude) cut into ceil(n / size) groups
    of nearly equal count (as `np.linspace` cuts n) by recursive bisection across the longer side of each set's
    extent: near-square groups, whose surroundings (read and partitioned with every group) are a smaller share of
    them than those of runs along a space-filling curve, which bend and stretch. Each group's indices ascending."""
    n = len(xy)
    if not n:
        return []
    k = math.ceil(n / max(1, size))
    cuts = np.linspace(0, n, k + 1).round().astype(np.int64)
    out: list[np.ndarray] = []
    stack = [(np.arange(n), 0, k)]
    while stack:
        idx, lo, hi = stack.pop()
        if hi - lo == 1:
            out.append(np.sort(idx))
            continue
        mid = (lo + hi) // 2
        span = np.ptp(xy[idx], axis=0)
        along = xy[idx, 0 if span[0] >= span[1] else 1]
        ordered = idx[np.argsort(along, kind="stable")]
        left = cuts[mid] - cuts[lo]
        stack.append((ordered[left:], mid, hi))  # popped after the left half: groups in bisection order
        stack.append((ordered[:left], lo, mid))
    return out


def _zone_contexts(layers_4490: dict[str, gpd.GeoDataFrame], comp: gpd.GeoDataFrame, crefs: np.ndarray,
                   wanted: np.ndarray, crs: pyproj.CRS, profile: Profile,
                   margins: dict[str, float], group_size: int) -> list[CheckContext]:
    comp_m = _projected(comp, crs)
    outlines = np.asarray(comp_m.geometry.values, dtype=object)
    tree = STRtree(outlines)
    targets = np.flatnonzero(wanted)
    groups = _groups(outlines, targets, group_size)
    group_of = np.full(len(outlines), -1, dtype=np.int64)
    for g, members_ in enumerate(groups):
        group_of[members_] = g
    # each member compound's box (not one box of the partition: a group's compounds need not fill
    # its rectangle) grown by the layer's margin: a superset of what its compounds need (extra surroundings cost
    # little, a missing neighbour would cost a finding), as an envelope tree of the boxes
    members = np.concatenate(groups)
    member_group = np.repeat(np.arange(len(groups)), [len(m) for m in groups])
    x0, y0, x1, y1 = shapely.bounds(outlines[members]).T
    grown = {name: STRtree(shapely.box(x0 - m, y0 - m, x1 + m, y1 + m)) for name, m in margins.items()}

    def part(name: str) -> list[gpd.GeoDataFrame] | None:
        """One layer projected, owned and split into the partitions' frames."""
        if name == "compounds":
            frame = comp_m.copy()
            owner = np.arange(len(outlines))
        else:
            raw = layers_4490.get(name)
            if raw is None or len(raw) == 0:
                return None
            frame = _storage(raw)
            g = np.asarray(frame.geometry.values, dtype=object)
            bad = shapely.is_missing(g)
            bad[~bad] = shapely.is_empty(g[~bad])
            if bad.all():
                return None
            frame = _projected(frame[~bad] if bad.any() else frame, crs)
            if name == "roads":  # surfaces' centre lines derived once per district, not per partition
                frame = rd.as_drawn(frame)
            owner = _owners(np.asarray(frame.geometry.values, dtype=object), _ref_strings(frame, "compound_ref"),
                            outlines, crefs, tree)
        owners = crefs[np.maximum(owner, 0)].astype(object)
        owners[owner < 0] = None
        frame[OWNER_COLUMN] = owners
        # features within the layer's margin of each partition's compounds ...
        fi, bi = grown[name].query(np.asarray(frame.geometry.values, dtype=object))
        gi = member_group[bi]
        # ... plus every feature a compound of the partition owns, wherever it lies
        mine = np.flatnonzero((owner >= 0) & (group_of[np.maximum(owner, 0)] >= 0))
        gi = np.concatenate([gi, group_of[owner[mine]]])
        fi = np.concatenate([fi, mine])
        return [frame.iloc[m] for m in _group(gi, fi, len(groups))]

    # serially: two worker processes already use both cores, and threads here cost CPU (GIL hand-offs) and wall
    done = {name: part(name) for name in CONTEXT_LAYERS}
    sliced = {name: cut for name in CONTEXT_LAYERS if (cut := done[name]) is not None}
    out = []
    for g, members_ in enumerate(groups):
        layers = {name: parts[g] for name, parts in sliced.items()}
        refs = tuple(sorted(str(r) for r in crefs[members_]))
        single = len(members_) == 1  # a group's union of outlines is read by no check (0.04 s CPU per 400)
        out.append(CheckContext(compound_ref=refs[0] if single else None, compounds=refs, crs=crs,
                                profile=profile, layers=layers, compound=outlines[members_[0]] if single else None))
    return out


def _group(ci: np.ndarray, fi: np.ndarray, n: int) -> list[np.ndarray]:
    """Sorted unique feature indices per partition index: a bitmap per partition where that is small (a group's
    few partitions), else one unique over int64 pair keys, then split."""
    if not len(ci):
        return [np.empty(0, dtype=np.int64) for _ in range(n)]
    width = int(fi.max()) + 1
    if n * width <= _BITMAP_CELLS:
        hit = np.zeros((n, width), dtype=bool)
        hit[ci, fi] = True
        return [np.flatnonzero(row) for row in hit]
    keys = np.unique(ci.astype(np.int64) * width + fi.astype(np.int64))
    part, feat = keys // width, keys % width
    bounds = np.searchsorted(part, np.arange(n + 1))
    return [feat[bounds[i]:bounds[i + 1]] for i in range(n)]


#: Largest partitions x features bitmap `_group` builds (bytes).
_BITMAP_CELLS = 1 << 24
