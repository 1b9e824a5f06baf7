"""Harmless everyday clutter, drawn per compound at random (vectorised over all compounds of a template):
tree trunks in the green, high canopies over lanes, cars parked leaving the lane clear, bollards at gates."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import shapely

from gis.sample.layout import CAR_L, CAR_W, Template
from gis.sample.world import World

#: Trees per 1000 m² of green, by compound kind.
TREE_DENSITY = {"old_lowrise": 6.0, "new_highrise": 8.0}
#: Share of canopy / car slots used in a compound.
CANOPY_SHARE = 0.5
CAR_SHARE = 0.35


def _frame(ci: np.ndarray, keys: list[str] | np.ndarray, geoms: np.ndarray, role: str, **attrs: Any) -> pd.DataFrame:
    data = {"ci": ci, "key": keys, "geometry": geoms, "group": -1, "role": role}
    data.update({k: (v if np.ndim(v) else np.full(len(ci), v, dtype=object)) for k, v in attrs.items()})
    return pd.DataFrame(data)


def _keys(prefix: str, per: np.ndarray, start: int = 1) -> np.ndarray:
    """Keys prefix + running number within each compound (`per` = compound index of each row, grouped)."""
    if not len(per):
        return np.empty(0, dtype=object)
    first = np.r_[True, per[1:] != per[:-1]]
    starts = np.flatnonzero(first)
    run = np.arange(len(per)) - np.repeat(starts, np.diff(np.r_[starts, len(per)]))
    return np.char.add(prefix, np.char.zfill((run + start).astype(str), 3)).astype(object)


def trees(tpl: Template, cis: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Tree trunks (points, kind tree, standing on the ground) inside the template's green area."""
    n_per = max(int(tpl.green.area / 1000.0 * TREE_DENSITY[tpl.kind]), 1)
    n = len(cis)
    cand = n_per * 3
    x = rng.uniform(0, tpl.width, size=(n, cand))
    y = rng.uniform(0, tpl.depth, size=(n, cand))
    shapely.prepare(tpl.green)
    ok = shapely.contains_xy(tpl.green, x, y)
    # the first n_per accepted candidates of each compound
    rank = np.cumsum(ok, axis=1)
    take = ok & (rank <= n_per)
    rows, cols = np.nonzero(take)
    ci = cis[rows]
    pts = shapely.points(x[rows, cols], y[rows, cols])
    return _frame(ci, _keys("T", ci), pts, "tree", kind="tree", size_m=0.6, removable=False)


def canopies(tpl: Template, cis: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Tree canopies over lanes with 5 m clear beneath (kind tree, bottom_m 5): harmless by the rule book."""
    slots = tpl.slots["canopy"]
    use = rng.random((len(cis), len(slots))) < CANOPY_SHARE
    rows, cols = np.nonzero(use)
    ci = cis[rows]
    discs = shapely.buffer(shapely.points(slots[cols]), 3.0, quad_segs=4)
    return _frame(ci, _keys("C", ci), discs, "canopy", kind="tree", bottom_m=5.0, top_m=9.0, removable=False)


def parked_cars(tpl: Template, cis: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Cars parked on the ring lane's outer edge, 5.2 m of the 7 m lane left clear (kind vehicle)."""
    slots = tpl.slots.get("car_slots")
    if slots is None or not len(slots):
        return _frame(np.empty(0, int), [], np.empty(0, dtype=object), "car")
    use = rng.random((len(cis), len(slots))) < CAR_SHARE
    rows, cols = np.nonzero(use)
    ci = cis[rows]
    cx, cy = slots[cols, 0], slots[cols, 1]
    boxes = shapely.box(cx - CAR_W / 2, cy - CAR_L / 2, cx + CAR_W / 2, cy + CAR_L / 2)
    return _frame(ci, _keys("V", ci), boxes, "car", kind="vehicle", removable=True)


def bollards(tpl: Template, cis: np.ndarray) -> pd.DataFrame:
    """Bollards (points) at the pedestrian gates, a metre inside the boundary."""
    ent = tpl.layers["entrances"]
    ped = ent[ent["role"] == "pedestrian"]
    gates: list[tuple[float, float]] = []
    for g in ped["geometry"]:
        inward = 1.0 if g.x < tpl.width / 2 else -1.0
        gates += [(g.x + inward, g.y - 0.8), (g.x + inward, g.y + 0.8)]
    pts = np.array(gates)
    ci = np.repeat(cis, len(pts))
    geoms = shapely.points(np.tile(pts, (len(cis), 1)))
    return _frame(ci, _keys("D", ci), geoms, "bollard", kind="bollard", size_m=0.3, removable=False)


def add_clutter(world: World, rng: np.random.Generator) -> None:
    """Append the random clutter of every compound to the obstructions layer, then drop pieces that fall into
    zones a planted change made (`world.keep_out`)."""
    parts = [world.layers["obstructions"]]
    for tname, tpl in world.templates.items():
        cis = np.flatnonzero(world.compounds["template"].to_numpy() == tname)
        if not len(cis):
            continue
        parts += [trees(tpl, cis, rng), canopies(tpl, cis, rng), parked_cars(tpl, cis, rng), bollards(tpl, cis)]
    obs = pd.concat([p for p in parts if len(p)], ignore_index=True)
    if world.keep_out:
        drop = np.zeros(len(obs), dtype=bool)
        ci = obs["ci"].to_numpy()
        geoms = np.asarray(obs["geometry"].to_numpy(), dtype=object)
        random_rows = obs["role"].isin(["tree", "canopy", "car", "bollard"]).to_numpy()
        for c, zones in world.keep_out.items():
            mine = np.flatnonzero((ci == c) & random_rows)
            if len(mine):
                zone = shapely.union_all(zones)
                drop[mine] = shapely.intersects(geoms[mine], zone)
        obs = obs[~drop]
    world.layers["obstructions"] = obs.sort_values(["ci", "key"], kind="stable", ignore_index=True)
    world._invalidate("obstructions")
