"""Failures a planted feature implies by the rule book's definitions (cn-gb profile): separation of illegal
structures, occupation of lanes, aerial zones, hydrant clearance, parking and e-bike distances.

Recipes record the failure they plant; `consequences` adds every other failure the planted feature causes, so
the ground truth never misses an implied one (and refuses to decide within MARGIN of a threshold).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import shapely

from gis.checks.profiles import Profile, load_profile
from gis.sample import layout as lo
from gis.sample.world import World

#: Clean features keep at least this far from a rule's threshold (metres).
MARGIN = 0.3


class PlantingError(AssertionError):
    """A planted feature lands within MARGIN of a threshold: its verdict would be a coin toss."""


@lru_cache
def profile() -> Profile:
    return load_profile("cn-gb")


def compound_rows(world: World, layer: str, ci: int) -> pd.DataFrame:
    return world.rows(layer, ci)


# --- implied failures, from the rule book's definitions ---------------------------------------------------------


def building_class(frame: pd.DataFrame, profile: Profile) -> tuple[np.ndarray, np.ndarray]:
    """Separation class per building (0 high-rise, 1 grade 一/二, 2 grade 三, 3 grade 四) and whether the height is
    known (height_m, else floors x 3 m); unknown heights keep their grade class (the least requirement)."""
    sep = profile["SEPARATION"]
    h = pd.to_numeric(frame.get("height_m"), errors="coerce").to_numpy(dtype=float)
    fl = pd.to_numeric(frame.get("floors"), errors="coerce").to_numpy(dtype=float)
    h = np.where(np.isnan(h), fl * sep["metres_per_floor"], h)
    use = frame.get("use").fillna("residential").to_numpy() if "use" in frame else np.full(len(frame), "residential")
    limit = np.where(use == "residential", sep["high_rise_residential_m"], sep["high_rise_other_m"])
    grade = frame.get("fire_resistance_grade").fillna(sep["default_building_grade"]).astype(str).to_numpy()
    gcls = np.select([np.isin(grade, ["1", "2"]), grade == "3"], [1, 2], 3)
    known = ~np.isnan(h)
    return np.where(known & (np.nan_to_num(h) > limit), 0, gcls), known


def _table(profile: Profile) -> np.ndarray:
    t = profile["SEPARATION"]["table"]
    names = ("high_rise", "grade12", "grade3", "grade4")
    return np.array([[float(t[a][b]) for b in names] for a in names])


def _judge(distance: float, threshold: float, what: str) -> bool:
    """distance < threshold, refusing to decide within MARGIN of the threshold."""
    if abs(distance - threshold) < MARGIN - 1e-9:
        raise PlantingError(f"{what}: {distance:.3f} m is within {MARGIN} m of the threshold {threshold:g} m")
    return distance < threshold


def _zones(world: World, ci: int) -> list[tuple[str, str, shapely.Geometry]]:
    """Aerial operation zones of a compound: (area key, building key, zone)."""
    areas = compound_rows(world, "aerial_areas", ci)
    out = []
    for akey, geom, bkey in zip(areas["key"], areas["geometry"], areas["building_key"], strict=True):
        out.append((akey, bkey, lo.aerial_zone(geom, world.get("buildings", ci, bkey))))
    return out


def _overlaps(a: shapely.Geometry, b: shapely.Geometry) -> bool:
    return bool(shapely.intersects(a, b) and not shapely.touches(a, b))


def consequences(world: World, ci: int, layer: str, key: str, zh: str, en: str) -> list[str]:
    """Record every failure a planted feature causes by the rule book's definitions; returns the rules.

    Illegal structures: SEP-ILLEGAL + STRUCT-SEPARATION (within table 5.2.2 of a building, grade 四),
    STRUCT-ON-LANE (on a lane, aerial area, entrance disc or walkway), AERIAL-OBSTRUCTED (in an aerial zone).
    Obstructions: LANE-HEADROOM (0 < bottom < 4 over a lane), AERIAL-OBSTRUCTED (profile kinds in a zone),
    HYD-ACCESS (a ground obstruction on a hydrant). Parking: PARK-HYDRANT + HYD-ACCESS (within 5 m of a
    hydrant), PARK-LANE (a stall on a lane or aerial area), AERIAL-OBSTRUCTED (a vehicle in a zone).
    E-bike sites: EBIKE-SITE (on a lane or aerial area, or within 6 m of a residential building).
    LANE-CLEAR is the recipe's to record (it depends on the clear width the recipe designed).
    """
    p = profile()
    geom = world.get(layer, ci, key)
    rules: list[str] = []

    def fail(rule: str, sub_layer: str, sub_key: str) -> None:
        world.fail(rule, sub_layer, ci, sub_key, zh, en)
        rules.append(rule)

    lanes = compound_rows(world, "fire_lanes", ci)
    areas = compound_rows(world, "aerial_areas", ci)
    hyd = compound_rows(world, "hydrants", ci)
    if layer == "illegal_structures":
        b = compound_rows(world, "buildings", ci)
        cls, _ = building_class(b, p)
        need = _table(p)[3, cls]
        d = shapely.distance(geom, np.asarray(b["geometry"].to_numpy(), dtype=object))
        if any(_judge(float(x), float(n), f"structure {key}") for x, n in zip(d, need, strict=True)):
            fail("SEP-ILLEGAL", layer, key)
            fail("STRUCT-SEPARATION", layer, key)
        occupied = [g for g in lanes["geometry"]] + [g for g in areas["geometry"]]
        ent = compound_rows(world, "entrances", ci)
        occupied += [shapely.buffer(g, w / 2) for g, w in zip(ent["geometry"], ent["width_m"], strict=True)]
        roads = compound_rows(world, "roads", ci)
        walks = roads[roads["kind"] == "walkway"]
        occupied += [shapely.buffer(g, w / 2, cap_style="flat") for g, w in
                     zip(walks["geometry"], walks["width_m"], strict=True)]
        if any(_overlaps(geom, z) for z in occupied):
            fail("STRUCT-ON-LANE", layer, key)
        for akey, _, zone in _zones(world, ci):
            if _overlaps(geom, zone):
                fail("AERIAL-OBSTRUCTED", "aerial_areas", akey)
    elif layer == "obstructions":
        bottom = world.get(layer, ci, key, "bottom_m")
        bottom = 0.0 if bottom is None or pd.isna(bottom) else float(bottom)
        kind = world.get(layer, ci, key, "kind")
        need = p.get("LANE-HEADROOM", "min_clear_height_m")
        if 0 < bottom and any(_overlaps(geom, g) for g in lanes["geometry"]) and _judge(bottom, need, key):
            fail("LANE-HEADROOM", "obstructions", key)
        foot = geom
        if shapely.get_type_id(geom) == 0:
            size = world.get(layer, ci, key, "size_m")
            sizes = p.get("LANE-CLEAR", "point_obstruction_size_m")
            size = sizes.get(kind, sizes["other"]) if size is None or pd.isna(size) else size
            foot = shapely.buffer(geom, size / 2)
        if kind in p.get("AERIAL-OBSTRUCTED", "kinds"):
            for akey, _, zone in _zones(world, ci):
                if _overlaps(foot, zone):
                    fail("AERIAL-OBSTRUCTED", "aerial_areas", akey)
        if bottom <= 0 and shapely.get_dimensions(geom) != 1:
            for hkey, hg in zip(hyd["key"], hyd["geometry"], strict=True):
                if shapely.intersects(foot, hg):
                    fail("HYD-ACCESS", "hydrants", hkey)
    elif layer == "parking":
        radius = p.get("PARK-HYDRANT", "clear_radius_m")
        for hkey, hg in zip(hyd["key"], hyd["geometry"], strict=True):
            if _judge(float(shapely.distance(geom, hg)), radius + 1e-9, f"parking {key}"):
                fail("PARK-HYDRANT", "parking", key)
                fail("HYD-ACCESS", "hydrants", hkey)
        if world.get(layer, ci, key, "kind") == "stall":
            if any(_overlaps(geom, g) for g in [*lanes["geometry"], *areas["geometry"]]):
                fail("PARK-LANE", "parking", key)
        else:
            for akey, _, zone in _zones(world, ci):
                if _overlaps(geom, zone):
                    fail("AERIAL-OBSTRUCTED", "aerial_areas", akey)
    elif layer == "ebike_sites":
        b = compound_rows(world, "buildings", ci)
        res = b[b["use"].fillna("residential") == "residential"]
        d = shapely.distance(geom, np.asarray(res["geometry"].to_numpy(), dtype=object))
        limit = p.get("EBIKE-SITE", "min_separation_m")
        near = any(_judge(float(x), limit, f"e-bike site {key}") for x in d)
        if near or any(_overlaps(geom, g) for g in [*lanes["geometry"], *areas["geometry"]]):
            fail("EBIKE-SITE", "ebike_sites", key)
    return rules
