"""Roads drawn as surfaces: some city roads of the sample arrive as a CAD survey draws them (the carriageway
polygon, no width attribute) instead of as centre lines, where planted cases depend on the road's kerb.

The roads chosen are some in front of planted PARK-ENTRANCE cases (failing and passing variants: the clear width
to the kerb decides them) and a few cross streets, a handful per district whatever its scale; the ground truth, recorded on the
centre lines, must come out the same from the surfaces (gis.checks.roads derives centre line, kerbs and width).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from gis.sample.world import World

#: Roads in front of planted gate parking drawn as surfaces, at most (a district of any scale: deriving a long
#: surface's centre line costs tens of milliseconds, and the scale benchmarks should measure the engine, not this).
MAX_GATE_ROADS = 4
#: Cross streets drawn as surfaces (besides the roads in front of planted gate parking), at most.
MAX_CROSS_STREETS = 2


def draw_as_surfaces(world: World, rng: np.random.Generator) -> list[str]:
    """Replace chosen city roads by their carriageway polygons (flat ends, width_m dropped); returns their keys."""
    roads = world.layers["roads"]
    city = np.flatnonzero((roads["ci"].to_numpy().astype(int) == -1) & (roads["kind"] == "city").to_numpy())
    if not len(city):
        return []
    parking = world.layers["parking"]
    planted = parking[parking["key"].astype(str).str.contains("-KX")]
    chosen: set[int] = set()
    g = np.asarray(roads["geometry"].to_numpy(), dtype=object)
    streets = roads["street"].to_numpy()
    gate_roads: set[int] = set()
    for street, geom in zip(planted["street"], planted["geometry"], strict=True):
        mine = city[streets[city] == street]
        if len(mine):  # rows of one street share its street frame
            gate_roads.add(int(mine[np.argmin(shapely.distance(g[mine], geom))]))
    gate = np.array(sorted(gate_roads), dtype=np.int64)
    gate = gate[np.argsort(shapely.length(g[gate]), kind="stable")]  # the shortest first: cheapest to derive
    chosen.update(int(i) for i in gate[:MAX_GATE_ROADS])
    box = shapely.bounds(g[city])
    cross = city[box[:, 2] - box[:, 0] < 1e-6]  # north-south in their street frame
    if len(cross):
        chosen.update(int(i) for i in rng.choice(cross, size=min(MAX_CROSS_STREETS, len(cross)), replace=False))
    rows = np.array(sorted(chosen), dtype=np.int64)
    width = pd.to_numeric(roads["width_m"].iloc[rows], errors="coerce").to_numpy(dtype=float)
    out = roads.copy()
    out["geometry"] = out["geometry"].astype(object)
    out.iloc[rows, out.columns.get_loc("geometry")] = shapely.buffer(g[rows], width / 2.0, cap_style="flat",
                                                                     join_style="mitre")
    out["width_m"] = out["width_m"].astype(object)
    out.iloc[rows, out.columns.get_loc("width_m")] = None
    world.layers["roads"] = out
    world._invalidate("roads")
    return [str(k) for k in roads["key"].iloc[rows]]
