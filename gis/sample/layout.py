"""Compound templates: the clean layout of each compound type, drawn once in a local metric frame (metres).

A template is a compound of width W (x, along its city-road frontage) and depth D (y), origin at its south-west
corner; vehicle entrances sit on the south (y = 0) and north (y = D) boundaries, where the east-west city roads
run. Every distance that a rule judges is set here with a margin of at least 0.3 m from its threshold
(cn-gb profile): lanes are 4.5-7 m wide, slabs 12 m and towers 15 m deep, high-rises 17 m from the lanes, aerial
areas 6 m from the wall and 11 m deep, hydrants 1 m outside the lane edge and more than 5.3 m from walls,
buildings 8.5 m (end to end) and 18 m (row to row) apart in old compounds and 16 m apart between high-rises.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import LineString, Point

#: Layers a template holds (city roads and street-level parking are laid out per street, not per compound).
TEMPLATE_LAYERS: tuple[str, ...] = (
    "buildings", "fire_lanes", "aerial_areas", "hydrants", "entrances", "roads", "obstructions",
    "illegal_structures", "parking", "ebike_sites",
)

# --- dimensions (metres) -------------------------------------------------------------------------------------
#: Old low-rise compounds: slab depth, row-to-row gap, end-to-end gap, margins, lane widths.
SLAB_DEPTH = 12.0
ROW_GAP = 18.0
END_GAP = 8.5
OLD_MARGIN_Y = 10.0
OLD_MARGIN_X = 8.0
THROUGH_WIDTH = 5.0
DEAD_END_WIDTH = 4.5
LANE_TO_SLAB = 6.0
TURNAROUND_SIDE = 13.0
#: New high-rise compounds: ring lane inset and width, tower size and spacing, aerial areas.
RING_INSET = 8.0
RING_WIDTH = 7.0
TOWER_LENGTH = 36.0
TOWER_DEPTH = 15.0
TOWER_GAP = 16.0
AERIAL_DEPTH = 11.0
AERIAL_TO_WALL = 6.0
AERIAL_OVERHANG = 1.0
MIDDLE_DEAD_END_WIDTH = 6.0
HIGH_TURNAROUND_SIDE = 16.0
#: Inner fillets of lane corners a fire truck turns around (LANE-TURN): old T junctions (r 12.5 m fits, 9 m needed),
#: the ring's courtyard corners (14.3 m fits, 12 m needed by ladder trucks), the connectors' and the middle dead
#: end's junctions with the ring.
OLD_FILLET = 10.0
RING_FILLET = 4.0
CONNECTOR_FILLET = 4.0
MIDDLE_FILLET = 5.0
#: Hydrants stand this far outside the lane edge.
HYDRANT_OFFSET = 1.0
#: Lane polygons that meet overlap by this much (drawn into each other, not merely touching).
JOINT = 0.5
#: Target spacing of hydrants along a ring lane.
HYDRANT_SPACING = 90.0
#: Vehicle / pedestrian entrance widths.
OLD_GATE = 6.0
NEW_GATE = 8.0
PEDESTRIAN_GATE = 3.0
#: Footprints of parked cars (obstructions and parking vehicles) and stalls.
CAR_W, CAR_L = 1.8, 4.8
STALL_W, STALL_L = 2.5, 5.0


def box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    return shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def dead_end_lane(x_from: float, x_to: float, yc: float, width: float, side: float | None) -> shapely.Geometry:
    """A horizontal dead-end lane from x_from (its open end) to x_to, ending in a `side` x `side` square."""
    sign = 1.0 if x_to > x_from else -1.0
    if side is None:
        return box(x_from, yc - width / 2, x_to, yc + width / 2)
    end = x_to - sign * side
    band = box(x_from, yc - width / 2, end, yc + width / 2)
    square = box(end, yc - side / 2, x_to, yc + side / 2)
    return shapely.union(band, square)


def fillet(corner: tuple[float, float], into: tuple[float, float], radius: float) -> shapely.Geometry:
    """The inner fillet of a lane corner: the part of the `radius` square at `corner` (extending along `into`,
    signs of x and y) outside the circle of that radius tangent to both edges."""
    cx, cy = corner
    dx, dy = into
    square = box(cx, cy, cx + dx * radius, cy + dy * radius)
    return shapely.difference(square, Point(cx + dx * radius, cy + dy * radius).buffer(radius, quad_segs=16))


@dataclass
class Template:
    """One compound type at one size: features per layer in the local frame, plus planting slots.

    `layers[name]` is a DataFrame with columns key (unique within the template), geometry (local metres),
    group (features that move together: a tower, its aerial area and its walkway), role, and the layer's
    attribute columns with template defaults. `green` is where random trees may stand; `slots` names the
    features planting recipes may modify.
    """

    name: str
    kind: str
    width: float
    depth: float
    layers: dict[str, pd.DataFrame]
    green: shapely.Geometry
    slots: dict[str, Any] = field(default_factory=dict)

    @property
    def outline(self) -> shapely.Polygon:
        return box(0.0, 0.0, self.width, self.depth)


class _Builder:
    def __init__(self) -> None:
        self.rows: dict[str, list[dict]] = {name: [] for name in TEMPLATE_LAYERS}
        self.counter: dict[str, int] = {}

    def add(self, layer: str, prefix: str, geom: shapely.Geometry, *, group: int = -1, role: str = "",
            **attrs: Any) -> str:
        n = self.counter.get(prefix, 0) + 1
        self.counter[prefix] = n
        key = f"{prefix}{n:02d}"
        self.rows[layer].append({"key": key, "geometry": geom, "group": group, "role": role, **attrs})
        return key

    def frames(self) -> dict[str, pd.DataFrame]:
        out = {}
        for name, rows in self.rows.items():
            frame = pd.DataFrame(rows) if rows else pd.DataFrame({"key": [], "geometry": [], "group": [], "role": []})
            out[name] = frame
        return out


# --- old low-rise compounds ------------------------------------------------------------------------------------


def old_depth(rows: int) -> float:
    return 2 * OLD_MARGIN_Y + rows * SLAB_DEPTH + (rows - 1) * ROW_GAP


def gap_bottom(k: int) -> float:
    """y of the south edge of gap k (between slab rows k and k+1)."""
    return OLD_MARGIN_Y + (k + 1) * SLAB_DEPTH + k * ROW_GAP


@lru_cache
def old_template(width: float, rows: int, per_half: int) -> Template:
    """Old low-rise compound (老旧小区): 5-7 floor slabs in rows, one north-south through lane between the two
    vehicle gates, dead-end lanes with 13 x 13 m turnarounds in every other gap, hydrants along the lanes."""
    W, D = float(width), old_depth(rows)
    xm = W / 2
    b = _Builder()
    through = b.add("fire_lanes", "L", box(xm - THROUGH_WIDTH / 2, 0, xm + THROUGH_WIDTH / 2, D), role="through",
                    name="主通道", kind="through", design_width_m=THROUGH_WIDTH)
    b.add("roads", "R", LineString([(xm, 0), (xm, D)]), role="through", kind="internal", width_m=THROUGH_WIDTH)
    gates = {
        "south": b.add("entrances", "E", Point(xm, 0), role="vehicle_south", name="南门", kind="vehicle",
                       width_m=OLD_GATE, gate="barrier"),
        "north": b.add("entrances", "E", Point(xm, D), role="vehicle_north", name="北门", kind="vehicle",
                       width_m=OLD_GATE, gate="barrier"),
    }
    b.add("entrances", "E", Point(0, D / 2), role="pedestrian", name="西侧人行门", kind="pedestrian",
          width_m=PEDESTRIAN_GATE, gate="gate")
    b.add("entrances", "E", Point(W, D / 2), role="pedestrian", name="东侧人行门", kind="pedestrian",
          width_m=PEDESTRIAN_GATE, gate="gate")
    # slabs
    span = xm - LANE_TO_SLAB - THROUGH_WIDTH / 2 - OLD_MARGIN_X
    length = (span - END_GAP * (per_half - 1)) / per_half
    slabs: dict[tuple[int, str, int], str] = {}
    slab_x: dict[tuple[int, str, int], tuple[float, float]] = {}
    group = 0
    for r in range(rows):
        y0 = OLD_MARGIN_Y + r * (SLAB_DEPTH + ROW_GAP)
        for side in ("west", "east"):
            for k in range(per_half):
                if side == "west":
                    x0 = OLD_MARGIN_X + k * (length + END_GAP)
                else:
                    x0 = xm + THROUGH_WIDTH / 2 + LANE_TO_SLAB + k * (length + END_GAP)
                group += 1
                key = b.add("buildings", "B", box(x0, y0, x0 + length, y0 + SLAB_DEPTH), group=group, role="slab",
                            name=f"{r * 2 * per_half + (0 if side == 'west' else per_half) + k + 1}幢",
                            use="residential")
                slabs[(r, side, k)] = key
                slab_x[(r, side, k)] = (x0, x0 + length)
                # door walkway to the path of the gap the slab faces (the gap to its north, the top row: south)
                gap = r if r < rows - 1 else r - 1
                wall = y0 + SLAB_DEPTH if gap == r else y0
                path_y = _gap_path_y(gap)
                xc = x0 + length / 2
                b.add("roads", "W", LineString([(xc, wall), (xc, path_y)]), group=group, role="door",
                      kind="walkway", width_m=1.5)
    # gaps: dead-end lanes in odd gaps, footpaths in even gaps
    dead_ends: dict[tuple[int, str], dict[str, Any]] = {}
    junction_corners: dict[tuple[int, str], list] = {}
    hydrants: dict[str, str] = {}
    for k in range(rows - 1):
        g0 = gap_bottom(k)
        gc = g0 + ROW_GAP / 2
        if k % 2 == 1:
            for side, x_to in (("west", OLD_MARGIN_X), ("east", W - OLD_MARGIN_X)):
                x_from = xm - THROUGH_WIDTH / 2 + JOINT if side == "west" else xm + THROUGH_WIDTH / 2 - JOINT
                lane = b.add("fire_lanes", "L", dead_end_lane(x_from, x_to, gc, DEAD_END_WIDTH, TURNAROUND_SIDE),
                             role="dead_end", name=f"{k + 1}号支路", kind="dead_end", design_width_m=DEAD_END_WIDTH)
                end_c = x_to + (TURNAROUND_SIDE / 2 if side == "west" else -TURNAROUND_SIDE / 2)
                road = b.add("roads", "R", LineString([(xm, gc), (end_c, gc)]), role="dead_end", kind="internal",
                             width_m=DEAD_END_WIDTH)
                x_mid = (xm + x_to) / 2
                hyd = b.add("hydrants", "H", Point(x_mid, gc + DEAD_END_WIDTH / 2 + HYDRANT_OFFSET),
                            role="dead_end", kind="above_ground", status="in_service", supply="compound",
                            diameter_mm=100, flow_lps=10.0, pressure_mpa=0.2)
                dead_ends[(k, side)] = {"lane": lane, "road": road, "hydrant": hyd, "x_from": x_from,
                                        "x_to": x_to, "yc": gc}
                edge = xm - THROUGH_WIDTH / 2 if side == "west" else xm + THROUGH_WIDTH / 2
                sx = -1.0 if side == "west" else 1.0
                junction_corners[(k, side)] = [((edge, gc - DEAD_END_WIDTH / 2), (sx, -1.0)),
                                               ((edge, gc + DEAD_END_WIDTH / 2), (sx, 1.0))]
        else:
            path_y = _gap_path_y(k)
            for x_to in (OLD_MARGIN_X + length / 2, W - OLD_MARGIN_X - length / 2):
                b.add("roads", "W", LineString([(xm, path_y), (x_to, path_y)]), role="gap_path", kind="walkway",
                      width_m=2.0)
            hydrants[f"gap{k}"] = b.add("hydrants", "H", Point(xm + THROUGH_WIDTH / 2 + HYDRANT_OFFSET, g0 + 12.0),
                                        role="through", kind="above_ground", status="in_service",
                                        supply="municipal", diameter_mm=150, flow_lps=15.0, pressure_mpa=0.25)
    # the through lane turns into every dead end around inner fillets (LANE-TURN)
    through_row = next(r for r in b.rows["fire_lanes"] if r["key"] == through)
    through_row["geometry"] = shapely.union_all(
        [through_row["geometry"], *(fillet(c, d, OLD_FILLET) for cs in junction_corners.values() for c, d in cs)])
    for junction, corners in junction_corners.items():
        dead_ends[junction]["corners"] = corners
    # parking stalls (west half of gap 0) and an e-bike shed (east half of gap 0)
    g0 = gap_bottom(0)
    stalls = []
    x = xm - THROUGH_WIDTH / 2 - 10.0
    while x - STALL_W > OLD_MARGIN_X + 2.0:
        stalls.append(b.add("parking", "P", box(x - STALL_W, g0 + 6.5, x, g0 + 6.5 + STALL_L), role="stall",
                            kind="stall", vehicle_type="car"))
        x -= STALL_W
    ebike = b.add("ebike_sites", "K", box(xm + 14.0, g0 + 6.4, xm + 26.0, g0 + ROW_GAP - 6.4), role="site",
                  kind="centralised_site", location="outdoor", charging=True, capacity=40)
    # overhead lines across the through lane in the gaps (bottom 6 m: harmless)
    lines = []
    for k in range(0, rows - 1, 2):
        y = gap_bottom(k) + 15.0
        lines.append(b.add("obstructions", "O", LineString([(xm - 9.0, y), (xm + 9.0, y)]), role="line",
                           kind="overhead_line", bottom_m=6.0, top_m=6.0))
    frames = b.frames()
    keep_out = _keep_out(frames)
    green = shapely.difference(box(2.0, 2.0, W - 2.0, D - 2.0), keep_out)
    slots = {"through": through, "gates": gates, "slabs": slabs, "slab_x": slab_x, "slab_length": length,
             "dead_ends": dead_ends, "hydrants": hydrants, "stalls": stalls, "ebike": ebike, "lines": lines,
             "rows": rows, "per_half": per_half, "canopy": _canopy_slots_old(W, D, rows)}
    return Template(name=f"old-{int(W)}x{int(D)}", kind="old_lowrise", width=W, depth=D, layers=frames,
                    green=green, slots=slots)


def _gap_path_y(k: int) -> float:
    """The footpath (or internal road) a slab's door walkway leads to in gap k."""
    g0 = gap_bottom(k)
    return g0 + ROW_GAP / 2 if k % 2 == 1 else g0 + 4.0


def _canopy_slots_old(W: float, D: float, rows: int) -> np.ndarray:
    """Centres of tree canopies overhanging the through lane (beside it, in the slab rows)."""
    xm = W / 2
    out = []
    for r in range(rows):
        y0 = OLD_MARGIN_Y + r * (SLAB_DEPTH + ROW_GAP)
        out.append((xm - THROUGH_WIDTH / 2 - 1.5, y0 + 3.0))
        out.append((xm + THROUGH_WIDTH / 2 + 1.5, y0 + 9.0))
    return np.array(out)


# --- new high-rise compounds -----------------------------------------------------------------------------------


@lru_cache
def new_template(width: float, depth: float, per_row: int) -> Template:
    """New high-rise compound (新建高层小区): two rows of 18-33 floor towers inside a 7 m ring lane, each with an
    aerial operation area along its lane-side long wall, a dead-end lane with a 16 x 16 m turnaround in the
    middle, hydrants along the outside of the ring."""
    W, D = float(width), float(depth)
    xm, ym = W / 2, D / 2
    b = _Builder()
    i0, i1 = RING_INSET, RING_INSET + RING_WIDTH
    ring_geom = shapely.difference(box(i0, i0, W - i0, D - i0), box(i1, i1, W - i1, D - i1))
    courtyard = [((i1, i1), (1.0, 1.0)), ((W - i1, i1), (-1.0, 1.0)), ((W - i1, D - i1), (-1.0, -1.0)),
                 ((i1, D - i1), (1.0, -1.0))]
    middle = [((i1, ym - MIDDLE_DEAD_END_WIDTH / 2), (1.0, -1.0)), ((i1, ym + MIDDLE_DEAD_END_WIDTH / 2), (1.0, 1.0))]
    ring_geom = shapely.union_all([ring_geom, *(fillet(c, d, RING_FILLET) for c, d in courtyard),
                                   *(fillet(c, d, MIDDLE_FILLET) for c, d in middle)])
    ring = b.add("fire_lanes", "L", ring_geom, role="ring", name="环形消防车道", kind="ring", design_width_m=RING_WIDTH)
    rc = i0 + RING_WIDTH / 2
    ring_line = LineString([(rc, rc), (W - rc, rc), (W - rc, D - rc), (rc, D - rc), (rc, rc)])
    ring_road = b.add("roads", "R", ring_line, role="ring", kind="internal", width_m=RING_WIDTH)
    conn = {}
    for side, (y0, y1, yr) in {"south": (0.0, i0 + JOINT, rc), "north": (D - i0 - JOINT, D, D - rc)}.items():
        yr_edge, dy = (i0, -1.0) if side == "south" else (D - i0, 1.0)
        connector = shapely.union_all([box(xm - RING_WIDTH / 2, y0, xm + RING_WIDTH / 2, y1),
                                       fillet((xm - RING_WIDTH / 2, yr_edge), (-1.0, dy), CONNECTOR_FILLET),
                                       fillet((xm + RING_WIDTH / 2, yr_edge), (1.0, dy), CONNECTOR_FILLET)])
        lane = b.add("fire_lanes", "L", connector, role=f"connector_{side}",
                     name="南入口车道" if side == "south" else "北入口车道", kind="through", design_width_m=RING_WIDTH)
        yb = 0.0 if side == "south" else D
        road = b.add("roads", "R", LineString([(xm, yb), (xm, yr)]), role=f"connector_{side}", kind="internal",
                     width_m=RING_WIDTH)
        gate = b.add("entrances", "E", Point(xm, yb), role=f"vehicle_{side}", name="南门" if side == "south" else "北门",
                     kind="vehicle", width_m=NEW_GATE, gate="barrier")
        conn[side] = {"lane": lane, "road": road, "gate": gate}
    b.add("entrances", "E", Point(0, ym), role="pedestrian", name="西侧人行门", kind="pedestrian",
          width_m=PEDESTRIAN_GATE, gate="gate")
    b.add("entrances", "E", Point(W, ym), role="pedestrian", name="东侧人行门", kind="pedestrian",
          width_m=PEDESTRIAN_GATE, gate="gate")
    # towers with their aerial areas and door walkways
    total = per_row * TOWER_LENGTH + (per_row - 1) * TOWER_GAP
    x_start = (W - total) / 2
    towers: dict[tuple[str, int], dict[str, Any]] = {}
    group = 0
    for row in ("south", "north"):
        for k in range(per_row):
            x0 = x_start + k * (TOWER_LENGTH + TOWER_GAP)
            group += 1
            if row == "south":
                area_y = (i1, i1 + AERIAL_DEPTH)
                wall = i1 + AERIAL_DEPTH + AERIAL_TO_WALL
                tower = box(x0, wall, x0 + TOWER_LENGTH, wall + TOWER_DEPTH)
                walk = LineString([(x0 + TOWER_LENGTH / 2, rc), (x0 + TOWER_LENGTH / 2, wall)])
            else:
                area_y = (D - i1 - AERIAL_DEPTH, D - i1)
                wall = D - i1 - AERIAL_DEPTH - AERIAL_TO_WALL
                tower = box(x0, wall - TOWER_DEPTH, x0 + TOWER_LENGTH, wall)
                walk = LineString([(x0 + TOWER_LENGTH / 2, D - rc), (x0 + TOWER_LENGTH / 2, wall)])
            n = (0 if row == "south" else per_row) + k + 1
            bkey = b.add("buildings", "B", tower, group=group, role="tower", name=f"{n}号楼", use="residential")
            akey = b.add("aerial_areas", "A", box(x0 - AERIAL_OVERHANG, area_y[0], x0 + TOWER_LENGTH + AERIAL_OVERHANG,
                                                 area_y[1]), group=group, role="aerial", building_key=bkey)
            wkey = b.add("roads", "W", walk, group=group, role="door", kind="walkway", width_m=2.0)
            towers[(row, k)] = {"building": bkey, "aerial": akey, "walk": wkey, "x0": x0, "group": group}
    # middle: dead-end lane with turnaround, ancillary buildings, footpath, stalls, e-bike shed
    x_end = 76.0
    dead = b.add("fire_lanes", "L", dead_end_lane(i1 - JOINT, x_end, ym, MIDDLE_DEAD_END_WIDTH, HIGH_TURNAROUND_SIDE),
                 role="dead_end", name="中心支路", kind="dead_end", design_width_m=MIDDLE_DEAD_END_WIDTH)
    dead_road = b.add("roads", "R", LineString([(rc, ym), (x_end - HIGH_TURNAROUND_SIDE / 2, ym)]), role="dead_end",
                      kind="internal", width_m=MIDDLE_DEAD_END_WIDTH)
    dead_hyd = b.add("hydrants", "H", Point(40.0, ym + MIDDLE_DEAD_END_WIDTH / 2 + HYDRANT_OFFSET), role="dead_end",
                     kind="above_ground", status="in_service", supply="compound", diameter_mm=100,
                     flow_lps=10.0, pressure_mpa=0.2)
    b.add("roads", "W", LineString([(x_end - HIGH_TURNAROUND_SIDE / 2, ym), (W - rc, ym)]), role="middle_path",
          kind="walkway", width_m=3.0)
    group += 1
    b.add("buildings", "B", box(W - 55.0, ym + 2.0, W - 25.0, ym + 16.0), group=group, role="ancillary",
          name="会所", use="public", floors=2, height_m=8.0, fire_resistance_grade="2")
    group += 1
    b.add("buildings", "B", box(xm - 5.0, ym + 2.0, xm + 25.0, ym + 18.0), group=group, role="ancillary",
          name="幼儿园", use="public", floors=3, height_m=11.0, fire_resistance_grade="2")
    group += 1
    b.add("buildings", "B", box(88.0, ym + 2.0, 100.0, ym + 10.0), group=group, role="ancillary",
          name="地库出入口", use="garage", floors=1, height_m=4.5, fire_resistance_grade="1")
    stalls = []
    x = 104.0
    while x + STALL_W <= xm - 8.0:
        stalls.append(b.add("parking", "P", box(x, ym - 3.0 - STALL_L, x + STALL_W, ym - 3.0), role="stall",
                            kind="stall", vehicle_type="car"))
        x += STALL_W
    ebike = b.add("ebike_sites", "K", box(20.0, ym - 20.0, 40.0, ym - 12.0), role="site", kind="centralised_site",
                  location="outdoor", charging=True, capacity=60)
    # hydrants outside the ring, evenly spaced, away from corners and the entrance connectors
    hyd_keys = []
    for (x, y) in _ring_hydrant_points(W, D):
        hyd_keys.append(b.add("hydrants", "H", Point(x, y), role="ring", kind="above_ground", status="in_service",
                              supply="municipal", diameter_mm=150, flow_lps=15.0, pressure_mpa=0.25))
    frames = b.frames()
    keep_out = _keep_out(frames)
    green = shapely.difference(box(2.0, 2.0, W - 2.0, D - 2.0), keep_out)
    slots = {"ring": ring, "ring_road": ring_road, "connectors": conn, "towers": towers, "per_row": per_row,
             "courtyard_corners": courtyard,
             "dead_end": {"lane": dead, "road": dead_road, "hydrant": dead_hyd, "x_from": i1 - JOINT, "x_to": x_end,
                          "yc": ym},
             "ring_hydrants": hyd_keys, "stalls": stalls, "ebike": ebike, "canopy": _canopy_slots_new(W, D),
             "car_slots": _car_slots_new(W, D)}
    return Template(name=f"new-{int(W)}x{int(D)}", kind="new_highrise", width=W, depth=D, layers=frames,
                    green=green, slots=slots)


@lru_cache
def ring_positions(W: float, D: float) -> tuple[LineString, np.ndarray]:
    """The ring centre line and the arc positions of the hydrants along it (evenly spaced)."""
    rc = RING_INSET + RING_WIDTH / 2
    line = LineString([(rc, rc), (W - rc, rc), (W - rc, D - rc), (rc, D - rc), (rc, rc)])
    P = line.length
    n = int(np.ceil(P / HYDRANT_SPACING))
    step = P / n
    corners = np.cumsum([0.0, W - 2 * rc, D - 2 * rc, W - 2 * rc, D - 2 * rc])
    gates = np.array([(W / 2 - rc), (W - 2 * rc) + (D - 2 * rc) + (W / 2 - rc)])
    for s0 in np.arange(0.0, step, 0.5):
        s = s0 + step * np.arange(n)
        d_corner = np.abs(s[:, None] - corners[None, :]).min(axis=1)
        d_gate = np.abs(s[:, None] - gates[None, :]).min(axis=1)
        if (d_corner > 12.0).all() and (d_gate > 16.0).all():
            return line, s
    raise AssertionError("no hydrant arrangement fits the ring")  # pragma: no cover - fixed sizes


def _ring_hydrant_points(W: float, D: float) -> list[tuple[float, float]]:
    line, s = ring_positions(W, D)
    rc = RING_INSET + RING_WIDTH / 2
    off = RING_WIDTH / 2 + HYDRANT_OFFSET
    out = []
    for p in shapely.line_interpolate_point(line, s):
        x, y = p.x, p.y
        # push outward (away from the compound centre) on the ring side the point lies on
        if abs(y - rc) < 1e-6:
            y -= off
        elif abs(y - (D - rc)) < 1e-6:
            y += off
        elif abs(x - rc) < 1e-6:
            x -= off
        else:
            x += off
        out.append((x, y))
    return out


def _canopy_slots_new(W: float, D: float) -> np.ndarray:
    """Canopy centres overhanging the west and east ring segments (no aerial area there)."""
    ys = np.arange(30.0, D - 30.0, 14.0)
    x_w = RING_INSET + RING_WIDTH + 1.0
    x_e = W - RING_INSET - RING_WIDTH - 1.0
    return np.array([(x_w, y) for y in ys] + [(x_e, y) for y in ys])


def _car_slots_new(W: float, D: float) -> np.ndarray:
    """Harmless parked cars: on the west and east ring segments along the outer edge (5.2 m stays clear)."""
    ys = np.arange(28.0, D - 28.0, 11.0)
    xw = RING_INSET + CAR_W / 2
    xe = W - RING_INSET - CAR_W / 2
    return np.array([(xw, y) for y in ys] + [(xe, y) for y in ys])


def aerial_zone(area: shapely.Geometry, building: shapely.Geometry) -> shapely.Geometry:
    """An aerial area plus the ground between it and its building's facing wall (data-model convention)."""
    d = shapely.distance(area, building)
    wall = shapely.intersection(shapely.boundary(building), shapely.buffer(area, d + 1.0))
    zone = shapely.convex_hull(shapely.union_all([area, wall]))
    return shapely.union(shapely.difference(zone, building), area)


def _keep_out(frames: dict[str, pd.DataFrame]) -> shapely.Geometry:
    """Where random trees and clutter must not stand: lanes, aerial zones, buildings, hydrants, stalls, sites."""
    parts = []
    for name, grow in (("fire_lanes", 1.5), ("buildings", 1.0), ("hydrants", 2.5), ("parking", 0.5),
                       ("ebike_sites", 0.5), ("entrances", 4.0), ("illegal_structures", 1.0)):
        g = np.asarray(frames[name]["geometry"].to_numpy(), dtype=object)
        if len(g):
            parts.append(shapely.buffer(g, grow))
    areas = frames["aerial_areas"]
    if len(areas):
        bmap = dict(zip(frames["buildings"]["key"], frames["buildings"]["geometry"], strict=True))
        for geom, bkey in zip(areas["geometry"], areas["building_key"], strict=True):
            parts.append([shapely.buffer(aerial_zone(geom, bmap[bkey]), 1.5)])
    return shapely.union_all(np.concatenate([np.asarray(p, dtype=object) for p in parts]))


#: The template catalogue: (kind, width, depth) per row depth class. Old compounds have 5 or 6 slab rows.
def templates_for_depth(depth_class: int) -> dict[str, list[Template]]:
    """Templates that fit a row of the given depth class (0: 152 m, 1: 182 m)."""
    if depth_class == 0:
        return {"old_lowrise": [old_template(200.0, 5, 3)], "new_highrise": [new_template(240.0, old_depth(5), 4)]}
    return {"old_lowrise": [old_template(260.0, 6, 4)], "new_highrise": [new_template(300.0, old_depth(6), 5)]}


DEPTHS: tuple[float, ...] = (old_depth(5), old_depth(6))
