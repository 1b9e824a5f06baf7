"""Feature attributes the checks share: layer frames, refs, partition ownership, building heights and classes."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from shapely import STRtree

from gis.checks import roads as rd
from gis.checks.profiles import Profile

#: Separation classes of GB 50016 table 5.2.2, in the order of the profile's `SEPARATION.table`.
CLASSES: tuple[str, ...] = ("high_rise", "grade12", "grade3", "grade4")
CLASS_ZH: dict[str, str] = {"high_rise": "高层", "grade12": "一、二级", "grade3": "三级", "grade4": "四级"}
CLASS_EN: dict[str, str] = {"high_rise": "high-rise", "grade12": "grade I/II", "grade3": "grade III",
                            "grade4": "grade IV"}
_GRADE_CLASS = {"1": 1, "2": 1, "3": 2, "4": 3}


def layer(ctx: Any, name: str) -> gpd.GeoDataFrame:
    """The partition's frame for `name` (an empty frame in the context's CRS when the layer is absent), found once
    per partition where the context keeps a cache (checks do not change the frames they read: copy-on-write)."""
    cache = getattr(ctx, "cache", None)
    if cache is None:
        return _layer(ctx, name)
    key = f"layer:{name}"
    if key not in cache:
        cache[key] = _layer(ctx, name)
    return cache[key]


def tree(ctx: Any, name: str) -> STRtree:
    """An STRtree of the geometries of `layer(ctx, name)`, built once per partition where the context keeps a
    cache (several families query the same buildings)."""
    cache = getattr(ctx, "cache", None)
    if cache is None:
        return STRtree(geoms(layer(ctx, name)))
    key = f"tree:{name}"
    if key not in cache:
        cache[key] = STRtree(geoms(layer(ctx, name)))
    return cache[key]


def _layer(ctx: Any, name: str) -> gpd.GeoDataFrame:
    frame = ctx.layers.get(name)
    if frame is None:
        return gpd.GeoDataFrame({"ref": pd.Series(dtype=object)}, geometry=gpd.GeoSeries([], crs=ctx.crs),
                                crs=ctx.crs)
    drop = (frame.geometry.isna() | frame.geometry.is_empty).to_numpy()
    if drop.any():  # else the frame as it is (copy-on-write: a caller's change to it stays the caller's)
        frame = frame[~drop]
    if name == "roads":  # roads drawn as surfaces read as centre lines with their surface (gis.checks.roads)
        return _roads_as_drawn(ctx, frame)
    return frame


def _roads_as_drawn(ctx: Any, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """`rd.as_drawn(frame)`, derived once per partition (contexts built by gis.checks.context arrive derived)."""
    if not rd.polygonal(geoms(frame)).any():
        return frame
    cache = getattr(ctx, "cache", None)
    if cache is None:
        return rd.as_drawn(frame)
    if "roads:as_drawn" not in cache:
        cache["roads:as_drawn"] = rd.as_drawn(frame)
    return cache["roads:as_drawn"]


def city_roads(roads: pd.DataFrame) -> np.ndarray:
    """Which roads are city roads (kind city, or no kind given): not the compounds' internal roads or walkways."""
    return texts_in(roads, "kind", "city", ("city",))


def vehicle_entrances(entrances: pd.DataFrame) -> np.ndarray:
    """Which entrances are vehicle entrances (kind vehicle, or no kind given): not pedestrian gates."""
    return texts_in(entrances, "kind", "vehicle", ("vehicle",))


def city_surfaces(roads: gpd.GeoDataFrame) -> np.ndarray:
    """Surfaces of city roads: the drawn surface, else the centre line buffered by width_m/2 with flat caps (the
    centre line if no width); see gis.checks.roads."""
    if not len(roads):
        return np.empty(0, dtype=object)
    return rd.surfaces(roads[city_roads(roads)])


def column(frame: pd.DataFrame, name: str, default: Any = None) -> pd.Series:
    """`frame[name]`, or a series of `default` when the column is absent (sparse imports, hand-made frames)."""
    if name in frame.columns:
        return frame[name]
    return pd.Series([default] * len(frame), index=frame.index, dtype=object)


def numbers(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A numeric column as floats (NaN where missing)."""
    return pd.to_numeric(column(frame, name), errors="coerce").to_numpy(dtype=float)


def texts(frame: pd.DataFrame, name: str, default: str | None = None) -> np.ndarray:
    """A text column as an object array of str, `default` where missing."""
    s = column(frame, name)
    out = s.astype(str).to_numpy(dtype=object, copy=True)
    out[s.isna().to_numpy()] = default
    return out


def isin(s: pd.Series, values: Any) -> np.ndarray:
    """`s.isin(values).to_numpy()` for a column of refs: pyarrow's is_in straight over an arrow-backed string column
    and strings (pandas makes an arrow scalar of each value first: ~3 ms for 400 refs against 50,000 rows)."""
    values = list(values)
    if isinstance(s.array, pd.arrays.ArrowStringArray) and all(isinstance(v, str) for v in values):
        data = s.array.__arrow_array__()
        return pc.is_in(data, value_set=pa.array(values, type=data.type)).to_numpy(zero_copy_only=False)
    return s.isin(values).to_numpy(dtype=bool)


def texts_in(frame: pd.DataFrame, name: str, default: str | None, values: Any) -> np.ndarray:
    """`np.isin(texts(frame, name, default), values)`, without making the strings of an arrow-backed column
    (numpy's isin of object arrays sorts Python strings: ~10 ms for 58,000 rows against ~1 ms this way)."""
    values = [str(v) for v in values]
    if name not in frame.columns:
        return np.full(len(frame), default is not None and default in values, dtype=bool)
    s = frame[name]
    if not isinstance(s.array, pd.arrays.ArrowStringArray):
        return np.isin(texts(frame, name, default), values)
    hit = isin(s, values)
    if default is not None and default in values:
        hit |= s.isna().to_numpy(dtype=bool)
    return hit


def flags(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A boolean column (missing = False)."""
    s = column(frame, name)
    return s.where(s.notna(), False).astype(bool).to_numpy()


def refs(frame: pd.DataFrame) -> np.ndarray:
    """The features' refs as strings (the frame index, i.e. the store id, where a feature has no ref)."""
    s = column(frame, "ref")
    text = s.astype(str)
    ok = s.notna().to_numpy(dtype=bool) & (text != "").to_numpy(dtype=bool)
    if ok.all():  # the usual case: no fallback strings to make
        return text.to_numpy()
    fallback = pd.Series(frame.index.astype(str), index=frame.index)
    return s.where(ok, fallback).astype(str).to_numpy()


def ranks(frame: pd.DataFrame) -> np.ndarray:
    """A total order of features for pair rules ("the smaller ref is the subject"): by ref in string order, ties
    (the same ref in two compounds) by compound_ref, then by store id, so every partition picks the same one."""
    # fixed-width strings sort by code point, as Python's str does (np.lexsort: last key first, stable)
    ref = np.asarray(refs(frame), dtype=str)
    order = np.argsort(ref, kind="stable")
    tied = ref[order]
    if len(tied) > 1 and (tied[1:] == tied[:-1]).any():  # else the refs alone decide (the tie keys are not made)
        order = np.lexsort((np.asarray(frame.index.astype(str), dtype=str),
                            np.asarray(texts(frame, "compound_ref", ""), dtype=str), ref))
    rank = np.empty(len(frame), dtype=np.int64)
    rank[order] = np.arange(len(frame))
    return rank


def geoms(frame: gpd.GeoDataFrame) -> np.ndarray:
    """The frame's geometries as a shapely array."""
    return np.asarray(frame.geometry.values, dtype=object)


def owned(ctx: Any, frame: pd.DataFrame) -> np.ndarray:
    """Which features the partition reports on: those of `ctx.compound_ref` (all when the context has none).

    A partition holds a compound plus its surroundings; features of the surroundings are only context
    (a neighbour's building for a separation pair), reported by their own compound's partition. Features outside
    every compound (no compound_ref: city-road parking, municipal hydrants) are reported by the partition of the
    nearest compound, or by every partition when the context carries no compound outlines.
    """
    if "_owner" in frame.columns and getattr(ctx, "compounds", None):  # decided by gis.checks.context (checks A)
        return isin(frame["_owner"], ctx.compounds)
    compound = getattr(ctx, "compound_ref", None)
    if compound is None or len(frame) == 0:
        return np.ones(len(frame), dtype=bool)
    own = column(frame, "compound_ref")
    mine = (own.astype(str) == str(compound)).to_numpy() & own.notna().to_numpy()
    outside = own.isna().to_numpy()
    if outside.any():
        mine[outside] = _nearest_compound_is(ctx, geoms(frame)[outside], str(compound))
    return mine


def _nearest_compound_is(ctx: Any, points: np.ndarray, compound: str) -> np.ndarray:
    compounds = ctx.layers.get("compounds")
    if compounds is None or len(compounds) == 0 or "ref" not in compounds.columns:
        return np.ones(len(points), dtype=bool)
    outlines = geoms(compounds)
    crefs = compounds["ref"].astype(str).to_numpy()
    if compound not in set(crefs):
        return np.ones(len(points), dtype=bool)
    d = shapely.distance(points[:, None], outlines[None, :])
    tie = np.isclose(d, d.min(axis=1, keepdims=True))
    # ties (a parked car equally near two compounds) go to the smaller ref, so exactly one partition reports
    rank = np.argsort(np.argsort(crefs, kind="stable"), kind="stable")
    winner = np.argmin(np.where(tie, rank[None, :], len(crefs)), axis=1)
    return crefs[winner] == compound


def compound_refs(ctx: Any, frame: pd.DataFrame) -> np.ndarray:
    """The compound each finding belongs to: the feature's compound_ref, else the partition's compound."""
    s = column(frame, "compound_ref")
    fallback = getattr(ctx, "compound_ref", None)
    if "_owner" in frame.columns:  # the owner decided by gis.checks.context (checks A), for multi-compound partitions
        fallback = frame["_owner"].to_numpy(dtype=object)
    out = s.astype(str).to_numpy(dtype=object, copy=True)
    null = s.isna().to_numpy()
    out[null] = fallback[null] if isinstance(fallback, np.ndarray) else fallback
    return out


# --- buildings -----------------------------------------------------------------------------------------------


def building_heights(frame: pd.DataFrame, profile: Profile) -> tuple[np.ndarray, np.ndarray]:
    """Heights in metres (NaN when unknown) and whether each was estimated from floors x metres_per_floor."""
    height = numbers(frame, "height_m")
    floors = numbers(frame, "floors")
    from_floors = np.isnan(height) & ~np.isnan(floors)
    height = np.where(from_floors, floors * profile.get("SEPARATION", "metres_per_floor"), height)
    return height, from_floors


def high_rise_limit(frame: pd.DataFrame, profile: Profile) -> np.ndarray:
    """The high-rise threshold per building: residential (the default use) vs other civil buildings."""
    use = texts(frame, "use", "residential")
    sep = profile["SEPARATION"]
    return np.where(use == "residential", sep["high_rise_residential_m"], sep["high_rise_other_m"])


def high_rises(ctx: Any) -> np.ndarray:
    """The context's high-rise buildings (geometries of its buildings view taller than `high_rise_limit`), found
    once per partition where the context keeps a cache (LANE-TURNAROUND and LANE-TURN ask which lanes serve them)."""
    cache = getattr(ctx, "cache", None)
    if cache is not None and "high_rises" in cache:
        return cache["high_rises"]
    b = ctx.view("buildings")
    if not len(b):
        out = np.empty(0, dtype=object)
    else:
        height, _ = building_heights(b.frame, ctx.profile)
        out = b.geoms[np.nan_to_num(height) > high_rise_limit(b.frame, ctx.profile)]
    if cache is not None:
        cache["high_rises"] = out
    return out


def high_rise_tree(ctx: Any) -> STRtree:
    """An STRtree of `high_rises(ctx)`, built once per partition where the context keeps a cache."""
    cache = getattr(ctx, "cache", None)
    if cache is not None and "tree:high_rises" in cache:
        return cache["tree:high_rises"]
    out = STRtree(high_rises(ctx))
    if cache is not None:
        cache["tree:high_rises"] = out
    return out


def grade_class(grades: np.ndarray, default: str) -> np.ndarray:
    """Class index (into CLASSES) of fire-resistance grades "1".."4"; missing or unknown → `default`."""
    g = np.where(pd.isna(grades), default, grades).astype(str)
    g = np.where(np.isin(g, list(_GRADE_CLASS)), g, default)
    return np.vectorize(_GRADE_CLASS.__getitem__, otypes=[int])(g) if len(g) else np.empty(0, int)


def separation_table(profile: Profile) -> np.ndarray:
    """GB 50016 table 5.2.2 from the profile as a 4 x 4 matrix indexed like CLASSES."""
    table = profile.get("SEPARATION", "table")
    return np.array([[float(table[a][b]) for b in CLASSES] for a in CLASSES])


def floors_of(frame: pd.DataFrame, profile: Profile) -> np.ndarray:
    """Floor counts (from height / metres_per_floor when only the height is known; 0 when neither)."""
    floors = numbers(frame, "floors")
    height = numbers(frame, "height_m")
    est = np.floor(height / profile.get("SEPARATION", "metres_per_floor"))
    return np.nan_to_num(np.where(np.isnan(floors), est, floors)).astype(int)


def m(value: float) -> str:
    """A length for messages: centimetre precision, no trailing zeros (12.9, 13, 9.75)."""
    return f"{round(float(value), 2):g}"
