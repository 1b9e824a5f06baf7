"""Planted hazards: recipes that break one rule at a known place (or come close without breaking it), each
recording the expected failures, implied ones included, in the ground truth.

Every recipe works on one compound in its local frame (metres), claims the template slots it touches so that two
recipes never interact, and records `World.fail(rule, layer, ci, key, zh, en)` for every failure it causes.
"Pass" variants sit on the safe side of the same threshold (a lane neck of 4.4 m, a car leaving 4.5 m) and
record nothing. Implied failures of planted structures, parking, obstructions and e-bike sites (separation,
occupation, hydrant clearance, aerial zones) are derived by `consequences` from the rule book's definitions, so
that a planted feature never causes a failure the ground truth does not name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import LineString, Point

from gis.sample import layout as lo
from gis.sample.implied import MARGIN, PlantingError, compound_rows, consequences, profile
from gis.sample.world import World, row_frames, to_metric

Recipe = Callable[[World, int, np.random.Generator, str], bool]


@dataclass(frozen=True)
class Plan:
    """A recipe, the compound kind it needs, its variant and how many per 40 compounds."""

    fn: Recipe
    kind: str
    variant: str
    per_40: int


# --- slot claims -------------------------------------------------------------------------------------------------


def claim(world: World, ci: int, *labels: str) -> bool:
    """Reserve slots of a compound for one recipe; False (nothing reserved) when any is taken."""
    used = world.__dict__.setdefault("_claims", {}).setdefault(int(ci), set())
    if any(label in used for label in labels):
        return False
    used.update(labels)
    return True


def _known_height(world: World, ci: int, key: str, floors: int) -> None:
    world.set("buildings", ci, key, floors=floors, height_m=floors * 3.0)


# --- helpers for old and new compounds ----------------------------------------------------------------------------


def _xm(world: World, ci: int) -> float:
    return world.template_of(ci).width / 2


def _row_y(r: int) -> float:
    return lo.OLD_MARGIN_Y + r * (lo.SLAB_DEPTH + lo.ROW_GAP)


def _free_row(world: World, ci: int, rng: np.random.Generator) -> int | None:
    tpl = world.template_of(ci)
    for r in rng.permutation(tpl.slots["rows"]):
        if claim(world, ci, f"through:row{r}"):
            return int(r)
    return None


def _tower(world: World, ci: int, rng: np.random.Generator, *, rows: tuple[str, ...] = ("south", "north"),
           ks: Callable[[int], list[int]] | None = None, pair: bool = False,
           extra: tuple[str, ...] = ()) -> tuple[str, int, dict] | None:
    """Claim a tower slot (and its neighbour when `pair`); returns (row, k, slot record)."""
    tpl = world.template_of(ci)
    per = tpl.slots["per_row"]
    cands = [(row, k) for row in rows for k in (ks(per) if ks else range(per - (1 if pair else 0)))]
    for j in rng.permutation(len(cands)):
        row, k = cands[int(j)]
        labels = [f"tower:{row}:{k}", *extra] + ([f"tower:{row}:{k + 1}"] if pair else [])
        if claim(world, ci, *labels):
            return row, k, tpl.slots["towers"][(row, k)]
    return None


def _tall(world: World, ci: int, key: str, rng: np.random.Generator) -> None:
    """Give a tower a known height over 50 m (so the size and coverage rules judge it)."""
    _known_height(world, ci, key, int(rng.integers(20, 31)))


def _door(world: World, ci: int, t: dict, row: str) -> None:
    """Redraw a tower's door walkway from the ring centre line to its (moved) lane-side wall."""
    tpl = world.template_of(ci)
    rc = lo.RING_INSET + lo.RING_WIDTH / 2
    g = world.get("buildings", ci, t["building"])
    x0, y0, x1, y1 = g.bounds
    xc = (x0 + x1) / 2
    line = LineString([(xc, rc), (xc, y0)]) if row == "south" else LineString([(xc, tpl.depth - rc), (xc, y1)])
    world.set("roads", ci, t["walk"], geometry=line)


def _keep_clear_tower(world: World, ci: int, t: dict) -> None:
    """After a tower or its area moved: no random clutter in its aerial zone or against its walls."""
    b = world.get("buildings", ci, t["building"])
    world.clear_zone(ci, shapely.buffer(b, 1.0))
    try:
        a = world.get("aerial_areas", ci, t["aerial"])
    except KeyError:
        return
    world.clear_zone(ci, shapely.buffer(lo.aerial_zone(a, b), 1.5))


# --- fire lanes ----------------------------------------------------------------------------------------------------


def lane_neck(world: World, ci: int, rng: np.random.Generator, variant: str) -> bool:
    """LANE-WIDTH: a flower bed narrows the through lane to 3.5-3.7 m (fail) or 4.4-4.5 m (pass) for 6 m."""
    r = _free_row(world, ci, rng)
    if r is None:
        return False
    tpl, xm = world.template_of(ci), _xm(world, ci)
    width = float(rng.choice([3.5, 3.6, 3.7])) if variant == "fail" else float(rng.choice([4.4, 4.5]))
    cut = lo.THROUGH_WIDTH - width
    y0 = _row_y(r)
    lane = tpl.slots["through"]
    notch = lo.box(xm + lo.THROUGH_WIDTH / 2 - cut, y0 + 3.0, xm + lo.THROUGH_WIDTH / 2 + 0.5, y0 + 9.0)
    world.set("fire_lanes", ci, lane, geometry=shapely.difference(world.get("fire_lanes", ci, lane), notch))
    world.clear_zone(ci, shapely.buffer(notch, 1.0))
    if variant == "fail":
        world.fail("LANE-WIDTH", "fire_lanes", ci, lane, f"花坛侵占主通道，局部净宽仅 {width:g} 米",
                   f"a flower bed narrows the through lane to {width:g} m")
    return True


def car_on_lane(world: World, ci: int, rng: np.random.Generator, variant: str) -> bool:
    """LANE-CLEAR: a car half on the verge leaves 3.5 m of the 5 m through lane (fail) or 4.5 m (pass)."""
    r = _free_row(world, ci, rng)
    if r is None:
        return False
    tpl, xm = world.template_of(ci), _xm(world, ci)
    clear = 3.5 if variant == "fail" else 4.5
    edge = xm + lo.THROUGH_WIDTH / 2
    inside = lo.THROUGH_WIDTH - clear
    y0 = _row_y(r) + 3.6
    car = lo.box(edge - inside, y0, edge - inside + lo.CAR_W, y0 + lo.CAR_L)
    key = world.add("obstructions", ci, "O", car, kind="vehicle", removable=True)
    world.clear_zone(ci, shapely.buffer(car, 2.5))
    zh, en = f"私家车压占主通道，剩余净宽 {clear:g} 米", f"a parked car leaves {clear:g} m of the through lane"
    consequences(world, ci, "obstructions", key, zh, en)
    if variant == "fail":
        world.fail("LANE-CLEAR", "fire_lanes", ci, tpl.slots["through"], zh, en)
    return True


def goods_on_connector(world: World, ci: int, rng: np.random.Generator, variant: str) -> bool:
    """LANE-CLEAR: goods stacked on the 7 m entrance lane leave 3.5 m (fail) or 4.5 m (pass)."""
    side = str(rng.choice(["south", "north"]))
    if not claim(world, ci, f"connector:{side}"):
        return False
    tpl, xm = world.template_of(ci), _xm(world, ci)
    clear = 3.5 if variant == "fail" else 4.5
    wide = lo.RING_WIDTH - clear
    y = 3.0 if side == "south" else tpl.depth - 5.5
    goods = lo.box(xm - lo.RING_WIDTH / 2, y, xm - lo.RING_WIDTH / 2 + wide, y + 2.5)
    key = world.add("obstructions", ci, "O", goods, kind="stacked_goods", removable=True)
    world.clear_zone(ci, shapely.buffer(goods, 2.5))
    zh, en = f"入口车道堆放杂物，剩余净宽 {clear:g} 米", f"goods stacked on the entrance lane leave {clear:g} m"
    consequences(world, ci, "obstructions", key, zh, en)
    if variant == "fail":
        world.fail("LANE-CLEAR", "fire_lanes", ci, tpl.slots["connectors"][side]["lane"], zh, en)
    return True


def low_canopy(world: World, ci: int, rng: np.random.Generator, variant: str) -> bool:
    """LANE-HEADROOM: a tree canopy 3.5 m above the lane (fail) or 4.4 m (pass)."""
    tpl = world.template_of(ci)
    if tpl.kind == "old_lowrise":
        r = _free_row(world, ci, rng)
        if r is None:
            return False
        centre = (_xm(world, ci) + lo.THROUGH_WIDTH / 2 + 1.0, _row_y(r) + 6.0)
    else:
        if not claim(world, ci, "ring:west"):
            return False
        centre = (lo.RING_INSET + lo.RING_WIDTH + 1.0, tpl.depth / 2 + 10.0)
    bottom = 3.5 if variant == "fail" else 4.4
    key = world.add("obstructions", ci, "O", shapely.buffer(Point(centre), 3.0, quad_segs=4), kind="tree",
                    bottom_m=bottom, top_m=8.0, removable=False)
    consequences(world, ci, "obstructions", key, f"行道树树冠下净空仅 {bottom:g} 米",
                 f"a tree canopy leaves {bottom:g} m clear height over the lane")
    return True


def low_line(world: World, ci: int, rng: np.random.Generator, variant: str) -> bool:
    """LANE-HEADROOM: an overhead cable sags to 3.6 m over the through lane (fail) or hangs at 4.4 m (pass)."""
    lines = world.template_of(ci).slots["lines"]
    j = int(rng.integers(len(lines)))
    if not claim(world, ci, f"line:{j}"):
        return False
    bottom = 3.6 if variant == "fail" else 4.4
    world.set("obstructions", ci, lines[j], bottom_m=bottom)
    consequences(world, ci, "obstructions", lines[j], f"架空线下垂，净高仅 {bottom:g} 米",
                 f"an overhead cable sags to {bottom:g} m over the lane")
    return True


def low_arch(world: World, ci: int, rng: np.random.Generator, variant: str) -> bool:
    """LANE-HEADROOM: a decorative arch over the entrance lane at 3.6 m (fail) or 4.5 m (pass); or the gate's own
    recorded clear height (3.6 m fails on the entrance, 4.6 m passes)."""
    side = str(rng.choice(["south", "north"]))
    if not claim(world, ci, f"connector:{side}", f"gate:{side}"):
        return False
    tpl, xm = world.template_of(ci), _xm(world, ci)
    conn = tpl.slots["connectors"][side]
    if rng.random() < 0.5:
        bottom = 3.6 if variant == "fail" else 4.5
        y = 5.0 if side == "south" else tpl.depth - 6.0
        key = world.add("obstructions", ci, "O", lo.box(xm - 4.5, y, xm + 4.5, y + 1.0), kind="arch",
                        bottom_m=bottom, top_m=6.0, removable=False)
        consequences(world, ci, "obstructions", key, f"入口车道上方门楼净高 {bottom:g} 米",
                     f"an arch over the entrance lane leaves {bottom:g} m")
    else:
        height = 3.6 if variant == "fail" else 4.6
        world.set("entrances", ci, conn["gate"], clear_height_m=height)
        if variant == "fail":
            world.fail("LANE-HEADROOM", "entrances", ci, conn["gate"], f"车行出入口门楼净高仅 {height:g} 米",
                       f"the vehicle gate has only {height:g} m clear height")
    return True


def turnaround(world: World, ci: int, rng: np.random.Generator, variant: str) -> bool:
    """LANE-TURNAROUND: a dead-end lane ending in an 11.5 m square or none (fail), 12.5 m (pass); in a high-rise
    compound the middle dead end with a 13.5 m square near towers (advisory 15 m: fail) or 15.5 m (pass)."""
    tpl = world.template_of(ci)
    if tpl.kind == "old_lowrise":
        keys = sorted(tpl.slots["dead_ends"])
        k, side = keys[int(rng.integers(len(keys)))]
        if not claim(world, ci, f"dead:{k}:{side}"):
            return False
        d = tpl.slots["dead_ends"][(k, side)]
        size = (float(rng.choice([11.5, 0.0])) if variant == "fail" else
                0.0 if variant in ("untagged", "lying") else 12.5) or None
        width = lo.DEAD_END_WIDTH
        if variant in ("untagged", "lying"):
            # the data carry no kind (or claim a through lane): the dead end is found from the lane's connections
            world.set("fire_lanes", ci, d["lane"], kind=None if variant == "untagged" else "through")
    else:
        if variant == "fail" and tpl.depth > 160:
            return False  # towers of the deeper compounds are farther than serve_distance_m from the dead end
        if not claim(world, ci, "dead_end"):
            return False
        d = tpl.slots["dead_end"]
        size = 13.5 if variant == "fail" else 15.5
        width = lo.MIDDLE_DEAD_END_WIDTH
        for row in ("south", "north"):
            _tall(world, ci, tpl.slots["towers"][(row, 0)]["building"], rng)
    lane = lo.dead_end_lane(d["x_from"], d["x_to"], d["yc"], width, size)
    world.set("fire_lanes", ci, d["lane"], geometry=lane)
    sign = 1.0 if d["x_to"] > d["x_from"] else -1.0
    end = d["x_to"] - sign * ((size or 4.0) / 2)
    road = world.get("roads", ci, d["road"])
    world.set("roads", ci, d["road"], geometry=LineString([shapely.get_coordinates(road)[0], (end, d["yc"])]))
    if variant in ("fail", "untagged", "lying"):
        if size is None:
            zh, en = "尽头式消防车道未设回车场", "dead-end lane without a turnaround"
        else:
            zh, en = f"尽头式消防车道回车场仅 {size:g}×{size:g} 米", f"dead-end turnaround only {size:g} x {size:g} m"
        world.fail("LANE-TURNAROUND", "fire_lanes", ci, d["lane"], zh, en)
    return True


def lane_turn(world: World, ci: int, rng: np.random.Generator, variant: str) -> bool:
    """LANE-TURN: an old compound's turn into a dead end with an inner fillet of 6 m or none (fail: 8.5 m or
    2.8 m fit, 9 m needed) or 7 m (pass: 9.5 m fits); a high-rise ring's courtyard corner without its fillet
    (fail: 10.5 m fits, an aerial ladder truck needs 12 m)."""
    tpl = world.template_of(ci)
    if tpl.kind == "old_lowrise":
        keys = sorted(tpl.slots["dead_ends"])
        k, side = keys[int(rng.integers(len(keys)))]
        if not claim(world, ci, f"dead:{k}:{side}"):
            return False
        d = tpl.slots["dead_ends"][(k, side)]
        radius = float(rng.choice([6.0, 0.0])) if variant == "fail" else 7.0
        lane = tpl.slots["through"]
        geom = world.get("fire_lanes", ci, lane)
        geom = shapely.difference(geom, shapely.union_all([lo.fillet(c, v, lo.OLD_FILLET) for c, v in d["corners"]]))
        if radius:
            geom = shapely.union_all([geom, *(lo.fillet(c, v, radius) for c, v in d["corners"])])
        world.set("fire_lanes", ci, lane, geometry=geom)
        if variant == "fail":
            zh = f"支路转弯处内侧圆角半径仅 {radius:g} 米" if radius else "支路转弯处为直角, 无内侧圆角"
            en = f"the turn into the dead end has an inner fillet of {radius:g} m" if radius else \
                "the turn into the dead end is a sharp corner"
            world.fail("LANE-TURN", "fire_lanes", ci, d["lane"], zh, en)
        return True
    j = int(rng.integers(4))
    if not claim(world, ci, f"courtyard:{j}"):
        return False
    c, v = tpl.slots["courtyard_corners"][j]
    ring = tpl.slots["ring"]
    world.set("fire_lanes", ci, ring, geometry=shapely.difference(world.get("fire_lanes", ci, ring),
                                                                  lo.fillet(c, v, lo.RING_FILLET + 0.01)))
    world.fail("LANE-TURN", "fire_lanes", ci, ring, "环形车道内院转角为直角, 登高车无法转弯",
               "the ring's courtyard corner is sharp: an aerial ladder truck cannot turn")
    return True


def isolated_lane(world: World, ci: int, rng: np.random.Generator, variant: str) -> bool:
    """LANE-CONNECT: a lane drawn in a courtyard cut off by a wall (old), or a ring lane with one entrance (new)."""
    tpl, xm = world.template_of(ci), _xm(world, ci)
    if tpl.kind == "old_lowrise":
        if not claim(world, ci, "gap2:west"):
            return False
        gc = lo.gap_bottom(2) + lo.ROW_GAP / 2
        lane = lo.box(lo.OLD_MARGIN_X + 12.0, gc - 2.5, xm - lo.THROUGH_WIDTH / 2 - 4.0, gc + 2.5)
        key = world.add("fire_lanes", ci, "L", lane, name="内院车道", kind="spur", design_width_m=5.0)
        world.clear_zone(ci, shapely.buffer(lane, 1.5))
        world.fail("LANE-CONNECT", "fire_lanes", ci, key, "内院车道被围墙隔断，未与出入口连通",
                   "a courtyard lane walled off from the compound's gates")
        return True
    if not claim(world, ci, "connector:north", "gate:north", "ring_outlets"):
        return False
    conn = tpl.slots["connectors"]["north"]
    world.drop("fire_lanes", ci, conn["lane"])
    world.drop("roads", ci, conn["road"])
    world.set("entrances", ci, conn["gate"], kind="pedestrian", width_m=lo.PEDESTRIAN_GATE, name="北门(人行)")
    world.fail("LANE-CONNECT", "fire_lanes", ci, tpl.slots["ring"], "环形消防车道仅有一处出入口与市政道路连通",
               "the ring lane connects to the city road at one gate only")
    return True


def segmented_ring(world: World, ci: int, rng: np.random.Generator, variant: str) -> bool:
    """LANE-CONNECT on a ring drawn as four separate lanes (south, east, north, west) that meet across the ring, as
    CAD drawings often split it: with one entrance every segment fails ("fail"), with both none does ("pass").
    Planted last, on a ring no other recipe names in its ground truth."""
    tpl = world.template_of(ci)
    ring = tpl.slots["ring"]
    touched = {("fire_lanes", ring)}  # what this recipe drops or changes: no other recipe's truth may name it
    if variant == "fail":
        conn = tpl.slots["connectors"]["north"]
        touched |= {("fire_lanes", conn["lane"]), ("roads", conn["road"]), ("entrances", conn["gate"])}
    if any(t.ci == ci and (t.layer, t.key) in touched for t in world.truths):
        return False
    labels = ("segmented_ring", "connector:north", "gate:north", "ring_outlets") if variant == "fail" else \
        ("segmented_ring", "ring_outlets")
    if not claim(world, ci, *labels):
        return False
    geom = world.get("fire_lanes", ci, ring)
    W, D = tpl.width, tpl.depth
    # cuts across the ring clear of the courtyard fillets: the corners stay whole in the south and north segments
    y_s = lo.RING_INSET + lo.RING_WIDTH + lo.RING_FILLET + 2.0
    y_n = D - y_s
    cuts = {"south": lo.box(-1.0, -1.0, W + 1.0, y_s), "east": lo.box(W / 2, y_s, W + 1.0, y_n),
            "north": lo.box(-1.0, y_n, W + 1.0, D + 1.0), "west": lo.box(-1.0, y_s, W / 2, y_n)}
    names = {"south": "南段", "east": "东段", "north": "北段", "west": "西段"}
    keys = [world.add("fire_lanes", ci, "L", shapely.intersection(geom, box), role=f"ring_{side}",
                      name=f"环形消防车道{names[side]}", design_width_m=lo.RING_WIDTH)
            for side, box in cuts.items()]
    world.drop("fire_lanes", ci, ring)  # (after the additions: a dropped key is not handed out again)
    if variant == "fail":
        conn = tpl.slots["connectors"]["north"]
        world.drop("fire_lanes", ci, conn["lane"])
        world.drop("roads", ci, conn["road"])
        world.set("entrances", ci, conn["gate"], kind="pedestrian", width_m=lo.PEDESTRIAN_GATE, name="北门(人行)")
        for key in keys:
            world.fail("LANE-CONNECT", "fire_lanes", ci, key, "分段绘制的环形消防车道仅有一处出入口与市政道路连通",
                       "a ring lane drawn as four segments connects to the city road at one gate only")
    return True


def lane_setback(world: World, ci: int, rng: np.random.Generator, variant: str) -> bool:
    """LANE-SETBACK: an end tower 4.0 m from the ring lane (fail, 5 m advised) or 5.5 m (pass)."""
    got = _tower(world, ci, rng, ks=lambda per: [0, per - 1])
    if got is None:
        return False
    row, k, t = got
    tpl = world.template_of(ci)
    gap = 4.0 if variant == "fail" else 5.5
    edge_w, edge_e = lo.RING_INSET + lo.RING_WIDTH, tpl.width - lo.RING_INSET - lo.RING_WIDTH
    x0 = t["x0"]
    dx = (edge_w + gap) - x0 if k == 0 else (edge_e - gap) - (x0 + lo.TOWER_LENGTH)
    world.move_group(ci, t["group"], dx, 0.0)
    _tall(world, ci, t["building"], rng)
    _keep_clear_tower(world, ci, t)
    if variant == "fail":
        world.fail("LANE-SETBACK", "fire_lanes", ci, tpl.slots["ring"], f"环形车道距高层住宅外墙仅 {gap:g} 米",
                   f"the ring lane is only {gap:g} m from a high-rise wall")
    return True


def lane_slope(world: World, ci: int, rng: np.random.Generator, variant: str) -> bool:
    """LANE-SLOPE / AERIAL-SLOPE: a recorded slope of 9.5 % on a lane or 4.5 % on an aerial area (fail);
    6 % and 2 % pass. Variants: lane_fail, lane_pass, area_fail, area_pass."""
    on_area = variant.startswith("area")
    layer = "aerial_areas" if on_area else "fire_lanes"
    keys = compound_rows(world, layer, ci)["key"].to_numpy()
    if not len(keys):
        return False
    key = str(keys[int(rng.integers(len(keys)))])
    if not claim(world, ci, f"slope:{key}"):
        return False
    fail = variant.endswith("fail")
    if on_area:
        slope = 4.5 if fail else 2.0
        rule, zh, en = "AERIAL-SLOPE", f"登高操作场地坡度 {slope:g}%（应≤3%）", f"aerial area slope {slope:g} % (max 3 %)"
    else:
        slope = 9.5 if fail else 6.0
        rule, zh, en = "LANE-SLOPE", f"消防车道纵坡 {slope:g}%（宜≤8%）", f"fire lane slope {slope:g} % (max 8 %)"
    world.set(layer, ci, key, slope_pct=slope)
    if fail:
        world.fail(rule, layer, ci, key, zh, en)
    return True


# --- aerial operation areas -------------------------------------------------------------------------------------


def _area_box(tpl: lo.Template, row: str, x0: float, x1: float, near: float, far: float) -> shapely.Polygon:
    """An aerial-area box from x0 to x1 between `near` and `far` metres from the ring's inner edge."""
    i1 = lo.RING_INSET + lo.RING_WIDTH
    if row == "south":
        return lo.box(x0, i1 + near, x1, i1 + far)
    return lo.box(x0, tpl.depth - i1 - far, x1, tpl.depth - i1 - near)


def aerial_size(world: World, ci: int, rng: np.random.Generator, variant: str) -> bool:
    """AERIAL-SIZE / AERIAL-COVERAGE: an L-shaped area whose bounding box is large but that holds no 15 x 10 m
    rectangle ("L": size fails); an 18 x 11 m area ("short": size and coverage fail); a 20.6 x 11 m area
    ("partial": size passes, coverage of the 36 m long side fails)."""
    got = _tower(world, ci, rng)
    if got is None:
        return False
    row, k, t = got
    tpl = world.template_of(ci)
    x0 = t["x0"]
    _tall(world, ci, t["building"], rng)
    d = lo.AERIAL_DEPTH
    if variant == "L":
        bar = _area_box(tpl, row, x0 - 1.0, x0 + lo.TOWER_LENGTH + 1.0, d - 5.0, d)
        leg = _area_box(tpl, row, x0 + 14.0, x0 + 22.0, 0.0, d - 5.0)
        geom = shapely.union(bar, leg)
    else:
        length = 18.0 if variant == "short" else 20.6
        mid = x0 + lo.TOWER_LENGTH / 2
        geom = _area_box(tpl, row, mid - length / 2, mid + length / 2, 0.0, d)
    world.set("aerial_areas", ci, t["aerial"], geometry=geom)
    if variant in ("L", "short"):
        zh = "登高操作场地呈L形，最大内接矩形不足 15×10 米" if variant == "L" else "登高操作场地仅 18×11 米（建筑高于50米需 20×10 米）"
        en = ("L-shaped aerial area holding no 15 x 10 m rectangle" if variant == "L"
              else "aerial area only 18 x 11 m (20 x 10 m needed above 50 m)")
        world.fail("AERIAL-SIZE", "aerial_areas", ci, t["aerial"], zh, en)
    if variant in ("short", "partial"):
        length = 18.0 if variant == "short" else 20.6
        world.fail("AERIAL-COVERAGE", "buildings", ci, t["building"], f"登高操作面仅 {length:g} 米，不足一个长边 36 米",
                   f"aerial frontage only {length:g} m, less than the 36 m long side")
    return True


def aerial_distance(world: World, ci: int, rng: np.random.Generator, variant: str) -> bool:
    """AERIAL-DISTANCE: the area 4.5 m from the wall ("near": fail, advisory 5 m) or 5.4 m (pass); the tower
    10.8 m away ("far": fail, max 10 m; no frontage within reach, so AERIAL-COVERAGE fails too) or 9.5 m (pass)."""
    near = variant.startswith("near")
    got = _tower(world, ci, rng, rows=("south",) if not near else ("south", "north"),
                 ks=None if near else (lambda per: list(range(1, per))))
    if got is None:
        return False
    row, k, t = got
    tpl = world.template_of(ci)
    _tall(world, ci, t["building"], rng)
    fail = variant.endswith("fail")
    if near:
        dist = 4.5 if fail else 5.4
        geom = _area_box(tpl, row, t["x0"] - 1.0, t["x0"] + lo.TOWER_LENGTH + 1.0, 0.0,
                         lo.AERIAL_DEPTH + lo.AERIAL_TO_WALL - dist)
        world.set("aerial_areas", ci, t["aerial"], geometry=geom)
    else:
        dist = 10.8 if fail else 9.5
        world.move("buildings", ci, t["building"], 0.0, dist - lo.AERIAL_TO_WALL)
        _door(world, ci, t, row)
    _keep_clear_tower(world, ci, t)
    if fail:
        world.fail("AERIAL-DISTANCE", "aerial_areas", ci, t["aerial"], f"登高操作场地距外墙 {dist:g} 米",
                   f"aerial area {dist:g} m from the wall")
        if not near:
            world.fail("AERIAL-COVERAGE", "buildings", ci, t["building"], "登高操作场地距外墙超过10米，无有效登高面",
                       "no aerial area within reach of the wall")
    return True


def aerial_obstructed(world: World, ci: int, rng: np.random.Generator, variant: str) -> bool:
    """AERIAL-OBSTRUCTED: a tree, stacked goods between area and wall, or a parked car in the area (fail);
    a tree 2.5 m beyond the area's end (pass)."""
    got = _tower(world, ci, rng)
    if got is None:
        return False
    row, k, t = got
    tpl = world.template_of(ci)
    i1 = lo.RING_INSET + lo.RING_WIDTH
    x0 = t["x0"]

    def y(near: float) -> float:  # metres from the ring's inner edge, in the tower's row
        return i1 + near if row == "south" else tpl.depth - i1 - near

    if variant == "tree":
        key = world.add("obstructions", ci, "O", shapely.buffer(Point(x0 + 10.0, y(5.5)), 2.5, quad_segs=4),
                        kind="tree", bottom_m=6.0, top_m=10.0, removable=False)
        layer, zh, en = "obstructions", "登高操作场地内种植乔木", "a tree planted in the aerial area"
    elif variant == "goods":
        key = world.add("obstructions", ci, "O", lo.box(x0 + 10.0, y(12.5), x0 + 12.0, y(14.5)),
                        kind="stacked_goods", removable=True)
        layer, zh, en = "obstructions", "登高场地与外墙之间堆放杂物", "goods stacked between the aerial area and the wall"
    elif variant == "car":
        key = world.add("parking", ci, "P", lo.box(x0 + 5.0, y(3.0), x0 + 5.0 + lo.CAR_L, y(3.0 + lo.CAR_W)),
                        kind="vehicle", vehicle_type="car")
        layer, zh, en = "parking", "登高操作场地内停放车辆", "a car parked in the aerial area"
    else:
        key = world.add("obstructions", ci, "O",
                        shapely.buffer(Point(x0 + lo.TOWER_LENGTH + 1.0 + 5.0, y(5.5)), 2.5, quad_segs=4),
                        kind="tree", bottom_m=6.0, top_m=10.0, removable=False)
        layer, zh, en = "obstructions", "乔木紧邻登高场地但在场地外", "a tree next to, not in, the aerial area"
    rules = consequences(world, ci, layer, key, zh, en)
    if (variant != "pass") != ("AERIAL-OBSTRUCTED" in rules):
        raise PlantingError(f"aerial_obstructed {variant}: unexpected consequences {rules}")
    return True


def aerial_connected(world: World, ci: int, rng: np.random.Generator, variant: str) -> bool:
    """AERIAL-CONNECTED: tower and area 1.5 m away from the lane (fail; 0.5 m tolerated) or 0.1 m (pass)."""
    got = _tower(world, ci, rng, rows=("south",), extra=("middle_south",))
    if got is None:
        return False
    row, k, t = got
    gap = 1.5 if variant == "fail" else 0.1
    world.move_group(ci, t["group"], 0.0, gap)
    _door(world, ci, t, row)
    _keep_clear_tower(world, ci, t)
    if variant == "fail":
        world.fail("AERIAL-CONNECTED", "aerial_areas", ci, t["aerial"], f"登高操作场地与消防车道间隔 {gap:g} 米（绿化带）",
                   f"a {gap:g} m planted strip separates the aerial area from the lane")
    return True


def aerial_missing(world: World, ci: int, rng: np.random.Generator, variant: str) -> bool:
    """AERIAL-COVERAGE: a high-rise without any aerial operation area."""
    got = _tower(world, ci, rng)
    if got is None:
        return False
    row, k, t = got
    _tall(world, ci, t["building"], rng)
    world.drop("aerial_areas", ci, t["aerial"])
    world.fail("AERIAL-COVERAGE", "buildings", ci, t["building"], "高层住宅未设登高操作场地",
               "a high-rise without an aerial operation area")
    return True


# --- separation and illegal structures ----------------------------------------------------------------------------


def tower_separation(world: World, ci: int, rng: np.random.Generator, variant: str) -> bool:
    """SEP-BUILDINGS: two high-rises 12.0 m apart (fail, 13 m required) or 13.5 m (pass)."""
    got = _tower(world, ci, rng, pair=True)
    if got is None:
        return False
    row, k, a = got
    b = world.template_of(ci).slots["towers"][(row, k + 1)]
    gap = 12.0 if variant == "fail" else 13.5
    world.move_group(ci, b["group"], -(lo.TOWER_GAP - gap), 0.0)
    for t in (a, b):
        _tall(world, ci, t["building"], rng)
    _keep_clear_tower(world, ci, b)
    if variant == "fail":
        world.fail("SEP-BUILDINGS", "buildings", ci, min(a["building"], b["building"]),
                   f"两栋高层住宅间距仅 {gap:g} 米（应≥13米）", f"two high-rises only {gap:g} m apart (13 m required)")
    return True


def slab_separation(world: World, ci: int, rng: np.random.Generator, variant: str) -> bool:
    """SEP-BUILDINGS: two grade-三 slabs 7.0 m apart (8 m required) or two grade-二 slabs 5.5 m apart (6 m)."""
    tpl = world.template_of(ci)
    rows, per = tpl.slots["rows"], tpl.slots["per_half"]
    r, side, k = int(rng.integers(rows)), str(rng.choice(["west", "east"])), int(rng.integers(per - 1))
    if not claim(world, ci, f"slabs:{r}:{side}"):
        return False
    a, b = tpl.slots["slabs"][(r, side, k)], tpl.slots["slabs"][(r, side, k + 1)]
    grade, gap, need = ("3", 7.0, 8) if variant == "grade3" else ("2", 5.5, 6)
    for key in (a, b):
        world.set("buildings", ci, key, floors=6, height_m=18.0, fire_resistance_grade=grade)
    group = int(world.get("buildings", ci, b, "group"))
    world.move_group(ci, group, -(lo.END_GAP - gap), 0.0)
    world.fail("SEP-BUILDINGS", "buildings", ci, min(a, b), f"相邻{'三' if grade == '3' else '二'}级耐火住宅山墙间距仅 {gap:g} 米（应≥{need}米）",
               f"grade {grade} slabs only {gap:g} m apart ({need} m required)")
    return True


def _structure(world: World, ci: int, geom: shapely.Geometry, zh: str, en: str, *, kind: str = "colour_steel",
               status: str = "confirmed") -> tuple[str, list[str]]:
    key = world.add("illegal_structures", ci, "X", geom, kind=kind, height_m=3.0, fire_resistance_grade="4",
                    status=status)
    world.clear_zone(ci, shapely.buffer(geom, 1.0))
    rules = consequences(world, ci, "illegal_structures", key, zh, en) if status != "demolished" else []
    return key, rules


def structure(world: World, ci: int, rng: np.random.Generator, variant: str) -> bool:
    """Illegal structures: a shed in a courtyard too close to the slabs ("gap": SEP-ILLEGAL + STRUCT-SEPARATION),
    on the lane verge leaving 4.5 m ("verge": STRUCT-ON-LANE + separation), across the lane ("block": LANE-CLEAR
    too), on a footpath ("walk"), on an aerial area ("aerial": + AERIAL-OBSTRUCTED); a shed 15 m from the towers
    ("clean": passes) and a demolished one on a lane ("demolished": passes)."""
    tpl, xm = world.template_of(ci), _xm(world, ci)
    expect: set[str] = set()
    if variant == "gap":
        if not claim(world, ci, "gap2:east"):
            return False
        sx = tpl.slots["slab_x"]
        c0, c1 = (sum(sx[(0, "east", 0)]) / 2, sum(sx[(0, "east", 1)]) / 2)
        g0 = lo.gap_bottom(2)
        geom = lo.box((c0 + c1) / 2 - 3.0, g0 + 7.0, (c0 + c1) / 2 + 3.0, g0 + 11.0)
        zh, en, expect = "院内违建彩钢棚距住宅仅7米", "a colour-steel shed 7 m from the slabs", {"SEP-ILLEGAL"}
    elif variant in ("verge", "block", "demolished_lane"):
        r = _free_row(world, ci, rng)
        if r is None:
            return False
        y0 = _row_y(r)
        if variant == "verge":
            geom = lo.box(xm + lo.THROUGH_WIDTH / 2 - 0.5, y0 + 2.0, xm + lo.THROUGH_WIDTH / 2 + 2.0, y0 + 6.0)
            zh, en = "违建棚屋侵占主通道边缘（剩余净宽4.5米）", "a shed on the lane edge (4.5 m left clear)"
            expect = {"STRUCT-ON-LANE", "SEP-ILLEGAL"}
        elif variant == "block":
            geom = lo.box(xm - 3.0, y0 + 4.0, xm + 3.0, y0 + 8.0)
            zh, en = "违建棚屋横跨主通道", "a shed built across the through lane"
            expect = {"STRUCT-ON-LANE", "SEP-ILLEGAL"}
        else:
            geom = lo.box(xm - 1.0, y0 + 4.0, xm + 2.0, y0 + 8.0)
            key, _ = _structure(world, ci, geom, "", "", kind="shed", status="demolished")
            return True
    elif variant == "walk":
        if not claim(world, ci, "gap0:west:path"):
            return False
        sx = tpl.slots["slab_x"]
        c0, c1 = (sum(sx[(0, "west", 0)]) / 2, sum(sx[(0, "west", 1)]) / 2)
        g0 = lo.gap_bottom(0)
        geom = lo.box((c0 + c1) / 2 - 1.5, g0 + 2.5, (c0 + c1) / 2 + 1.5, g0 + 5.5)
        zh, en = "违建占用楼间疏散通道", "a shed built on the footpath between the slabs"
        expect = {"STRUCT-ON-LANE", "SEP-ILLEGAL"}
    elif variant == "aerial":
        got = _tower(world, ci, rng)
        if got is None:
            return False
        row, k, t = got
        _tall(world, ci, t["building"], rng)
        geom = _area_box(tpl, row, t["x0"] + 20.0, t["x0"] + 24.0, 1.5, 4.5)
        zh, en = "登高操作场地上搭建违建", "a shed built on the aerial operation area"
        expect = {"STRUCT-ON-LANE", "AERIAL-OBSTRUCTED", "SEP-ILLEGAL"}
    elif variant == "clean":
        if not claim(world, ci, "middle_shed", "tower:south:0", "middle_south"):
            return False
        ym = tpl.depth / 2
        geom = lo.box(45.0, ym - 13.0, 50.0, ym - 9.0)
        zh, en = "", ""
    else:
        raise ValueError(variant)
    key, rules = _structure(world, ci, geom, zh, en, kind="shed" if variant != "gap" else "colour_steel")
    if variant == "block":
        world.fail("LANE-CLEAR", "fire_lanes", ci, tpl.slots["through"], zh, en)
    if not expect <= set(rules) or (variant == "clean" and rules):
        raise PlantingError(f"structure {variant}: expected {sorted(expect)}, got {sorted(rules)}")
    return True


# --- hydrants -----------------------------------------------------------------------------------------------------


def _ring_point(tpl: lo.Template, s: float, offset: float) -> Point:
    """The point `offset` metres outside the ring lane's outer edge at arc position `s` of its centre line."""
    line, _ = lo.ring_positions(tpl.width, tpl.depth)
    rc = lo.RING_INSET + lo.RING_WIDTH / 2
    p = shapely.line_interpolate_point(line, s % line.length)
    x, y = p.x, p.y
    off = lo.RING_WIDTH / 2 + offset
    if abs(y - rc) < 1e-6:
        y -= off
    elif abs(y - (tpl.depth - rc)) < 1e-6:
        y += off
    elif abs(x - rc) < 1e-6:
        x -= off
    else:
        x += off
    return Point(x, y)


def hydrant_spacing(world: World, ci: int, rng: np.random.Generator, variant: str) -> bool:
    """HYD-SPACING: a ring hydrant missing, so its neighbours are about 175 m apart (fail, on the smaller ref of
    the pair); or one moved 17 m along the ring, leaving about 104 m (pass)."""
    if not claim(world, ci, "ring_hydrants"):
        return False
    tpl = world.template_of(ci)
    keys = tpl.slots["ring_hydrants"]
    _, s = lo.ring_positions(tpl.width, tpl.depth)
    j = int(rng.integers(len(keys)))
    if variant == "fail":
        world.drop("hydrants", ci, keys[j])
        a, b = keys[(j - 1) % len(keys)], keys[(j + 1) % len(keys)]
        world.fail("HYD-SPACING", "hydrants", ci, min(a, b), "环路消火栓缺失一处，相邻消火栓间距约175米",
                   "a missing ring hydrant leaves its neighbours about 175 m apart")
        return True
    rc = lo.RING_INSET + lo.RING_WIDTH / 2
    w, d = tpl.width - 2 * rc, tpl.depth - 2 * rc
    corners = np.cumsum([0.0, w, d, w, d])
    gates = np.array([tpl.width / 2 - rc, w + d + tpl.width / 2 - rc])
    for shift in (17.0, -17.0):
        pos = (s[j] + shift) % (2 * (w + d))
        if np.abs(pos - corners).min() > 12.0 and np.abs(pos - gates).min() > 16.0:
            world.set("hydrants", ci, keys[j], geometry=_ring_point(tpl, pos, lo.HYDRANT_OFFSET))
            return True
    return False


def hydrant_access(world: World, ci: int, rng: np.random.Generator, variant: str) -> bool:
    """HYD-ACCESS / PARK-HYDRANT: goods stacked on a ring hydrant ("goods"); a car 4.0 m ("car") or a stall 3.0 m
    ("stall") from a courtyard hydrant (PARK-HYDRANT on the parking, HYD-ACCESS on the hydrant); a car 5.6 m
    away ("pass")."""
    tpl = world.template_of(ci)
    if variant == "goods":
        keys = tpl.slots["ring_hydrants"]
        key = keys[int(rng.integers(len(keys)))]
        if not claim(world, ci, f"hyd:{key}", "ring_hydrants"):
            return False
        h = world.get("hydrants", ci, key)
        goods = shapely.buffer(h, 0.8, cap_style="square")
        okey = world.add("obstructions", ci, "O", goods, kind="stacked_goods", removable=True)
        rules = consequences(world, ci, "obstructions", okey, "消火栓被杂物遮挡", "goods stacked on the hydrant")
        if rules != ["HYD-ACCESS"]:
            raise PlantingError(f"hydrant_access goods: {rules}")
        return True
    gaps = sorted(tpl.slots["hydrants"])
    gap = gaps[int(rng.integers(len(gaps)))]
    key = tpl.slots["hydrants"][gap]
    if not claim(world, ci, f"hyd:{key}", f"{gap}:east:park"):
        return False
    h = world.get("hydrants", ci, key)
    if variant == "stall":
        geom = lo.box(h.x + 3.0, h.y - 2.5, h.x + 3.0 + lo.STALL_W, h.y + 2.5)
        pkey = world.add("parking", ci, "P", geom, kind="stall", vehicle_type="car")
        zh, en = "消火栓旁3米施划停车位", "a stall drawn 3 m from the hydrant"
    else:
        d = 4.0 if variant == "car" else 5.6
        geom = lo.box(h.x + d, h.y - lo.CAR_W / 2, h.x + d + lo.CAR_L, h.y + lo.CAR_W / 2)
        pkey = world.add("parking", ci, "P", geom, kind="vehicle", vehicle_type="car")
        zh, en = f"车辆停放距消火栓 {d:g} 米", f"a car parked {d:g} m from the hydrant"
    world.clear_zone(ci, shapely.buffer(geom, 1.0))
    rules = consequences(world, ci, "parking", pkey, zh, en)
    if (variant == "pass") == ("PARK-HYDRANT" in rules):
        raise PlantingError(f"hydrant_access {variant}: {rules}")
    return True


def hydrant_placement(world: World, ci: int, rng: np.random.Generator, variant: str) -> bool:
    """HYD-PLACEMENT: a ring hydrant 2.6 m or 0.3 m from the road edge (fail; 0.5-2 m advised) or 1.6 m (pass);
    a courtyard hydrant 4.5 m from a slab wall (fail; 5 m advised)."""
    tpl = world.template_of(ci)
    if variant == "wall":
        gaps = sorted(tpl.slots["hydrants"])
        gap = gaps[int(rng.integers(len(gaps)))]
        key = tpl.slots["hydrants"][gap]
        k = int(gap[3:])
        if k + 1 >= tpl.slots["rows"] or not claim(world, ci, f"hyd:{key}", f"through:row{k + 1}"):
            return False
        xm = _xm(world, ci)
        world.set("hydrants", ci, key, geometry=Point(xm + lo.THROUGH_WIDTH / 2 + 1.5, lo.gap_bottom(k) + 24.0))
        world.fail("HYD-PLACEMENT", "hydrants", ci, key, "消火栓距住宅外墙仅4.5米", "hydrant only 4.5 m from a wall")
        return True
    keys = tpl.slots["ring_hydrants"]
    j = int(rng.integers(len(keys)))
    if not claim(world, ci, f"hyd:{keys[j]}", "ring_hydrants"):
        return False
    _, s = lo.ring_positions(tpl.width, tpl.depth)
    off = {"far": 2.6, "near": 0.3, "pass": 1.6}[variant]
    world.set("hydrants", ci, keys[j], geometry=_ring_point(tpl, s[j], off))
    if variant != "pass":
        world.fail("HYD-PLACEMENT", "hydrants", ci, keys[j], f"消火栓距路边 {off:g} 米（宜0.5–2米）",
                   f"hydrant {off:g} m from the road edge (0.5-2 m advised)")
    return True


def hydrant_service(world: World, ci: int, rng: np.random.Generator, variant: str) -> bool:
    """HYD-SERVICE: a ring hydrant reported damaged, out of service or low on pressure."""
    if not claim(world, ci, "ring_hydrants"):
        return False
    tpl = world.template_of(ci)
    key = tpl.slots["ring_hydrants"][int(rng.integers(len(tpl.slots["ring_hydrants"])))]
    status = str(rng.choice(["damaged", "out_of_service", "low_pressure"]))
    world.set("hydrants", ci, key, status=status, pressure_mpa=0.07 if status == "low_pressure" else None)
    zh = {"damaged": "损坏", "out_of_service": "停用", "low_pressure": "水压不足"}[status]
    world.fail("HYD-SERVICE", "hydrants", ci, key, f"消火栓巡查记录为{zh}", f"hydrant inspected as {status.replace('_', ' ')}")
    return True


# --- parking ------------------------------------------------------------------------------------------------------


def park_entrance(world: World, ci: int, rng: np.random.Generator, variant: str) -> bool:
    """PARK-ENTRANCE: a car or a kerb stall on the city road in front of a vehicle gate: centred ("car",
    "stall": fail) or leaving 3.5 m ("tight": fail) or 4.5 m ("pass") of the gate's approach for a 4 m truck."""
    tpl = world.template_of(ci)
    side = str(rng.choice(["south", "north"]))
    if not claim(world, ci, f"gate:{side}:park", f"gate:{side}"):
        return False
    ent = tpl.layers["entrances"]
    gate = ent[ent["role"] == f"vehicle_{side}"].iloc[0]
    xm, w = gate["geometry"].x, float(gate["width_m"])
    kerb = -4.0 if side == "south" else tpl.depth + 4.0
    band = (kerb - 2.0, kerb - 0.2) if side == "south" else (kerb + 0.2, kerb + 2.0)
    length = lo.CAR_L
    if variant in ("car", "stall"):
        if variant == "stall":
            band = (kerb - 2.5, kerb) if side == "south" else (kerb, kerb + 2.5)
            length = 6.0
        u0 = xm - length / 2
    else:
        clear = 3.5 if variant == "tight" else 4.5
        u0 = xm - w / 2 + (w - clear) - length
    geom = lo.box(u0, band[0], u0 + length, band[1])
    comp = world.compounds.iloc[ci]
    street = comp["street"]
    geom = shapely.affinity.translate(geom, comp["u0"], comp["v0"])
    n = world.kx_serials.get(street, 0) + 1
    world.kx_serials[street] = n
    key = world.add("parking", -1, "", geom, key=f"{street}-KX{n:04d}", street=street,
                    kind="stall" if variant == "stall" else "vehicle", vehicle_type="car")
    if variant != "pass":
        what = "施划的路侧车位" if variant == "stall" else "车辆"
        world.fail("PARK-ENTRANCE", "parking", -1, key, f"{what}停在小区车行出入口前，消防车无法转入",
                   "parked in front of the compound's vehicle gate: a fire truck cannot turn in")
    return True


def park_lane(world: World, ci: int, rng: np.random.Generator, variant: str) -> bool:
    """PARK-LANE: a stall drawn over the through lane (old) or an aerial area (new) (fail); a stall 0.5 m off the
    lane (pass)."""
    tpl = world.template_of(ci)
    if tpl.kind == "old_lowrise":
        r = _free_row(world, ci, rng)
        if r is None:
            return False
        edge = _xm(world, ci) + lo.THROUGH_WIDTH / 2
        x0 = edge - 1.5 if variant == "fail" else edge + 0.5
        geom = lo.box(x0, _row_y(r) + 3.0, x0 + lo.STALL_W, _row_y(r) + 3.0 + lo.STALL_L)
    else:
        got = _tower(world, ci, rng)
        if got is None:
            return False
        row, k, t = got
        geom = _area_box(tpl, row, t["x0"] + 26.0, t["x0"] + 26.0 + lo.STALL_W, 1.0, 1.0 + lo.STALL_L)
    key = world.add("parking", ci, "P", geom, kind="stall", vehicle_type="car")
    world.clear_zone(ci, shapely.buffer(geom, 1.0))
    rules = consequences(world, ci, "parking", key, "车位施划在消防车道/登高场地上", "a stall drawn on a fire lane / aerial area")
    if (variant == "fail") != ("PARK-LANE" in rules):
        raise PlantingError(f"park_lane {variant}: {rules}")
    return True


# --- e-bikes ---------------------------------------------------------------------------------------------------------


def ebike_indoor(world: World, ci: int, rng: np.random.Generator, variant: str) -> bool:
    """EBIKE-INDOOR: e-bikes reported in a lobby / stairwell / corridor / exit (fail) or elsewhere (pass)."""
    frame = compound_rows(world, "buildings", ci)
    mine = frame[frame["role"].isin(["slab", "tower"])]
    j = int(rng.integers(len(mine)))
    bkey = str(mine["key"].iloc[j])
    if not claim(world, ci, f"indoor:{bkey}"):
        return False
    where = str(rng.choice(["lobby", "stairwell", "corridor", "exit"])) if variant == "fail" else "other"
    point = shapely.point_on_surface(mine["geometry"].iloc[j])
    crefs = world.compounds["ref"].to_numpy()
    key = world.add("ebike_sites", ci, "K", point, kind="indoor_report", location=where,
                    charging=bool(rng.random() < 0.5), building_ref=f"{crefs[ci]}-{bkey}")
    if variant == "fail":
        zh = {"lobby": "门厅", "stairwell": "楼梯间", "corridor": "走道", "exit": "安全出口"}[where]
        world.fail("EBIKE-INDOOR", "ebike_sites", ci, key, f"电动自行车在{zh}停放充电", f"e-bikes parked in the {where}")
    return True


def ebike_site(world: World, ci: int, rng: np.random.Generator, variant: str) -> bool:
    """EBIKE-SITE: the courtyard e-bike shed 5.0 m from a residential slab ("near": fail) or 6.8 m ("pass");
    a shed on the ring lane ("lane": fail)."""
    tpl = world.template_of(ci)
    if variant == "lane":
        if tpl.kind != "new_highrise" or not claim(world, ci, "ring:west:site", "ring:west"):
            return False
        ym = tpl.depth / 2
        geom = lo.box(lo.RING_INSET + 1.0, ym + 14.0, lo.RING_INSET + 6.0, ym + 24.0)
        key = world.add("ebike_sites", ci, "K", geom, kind="centralised_site", location="outdoor", charging=True,
                        capacity=30)
    else:
        if tpl.kind != "old_lowrise" or not claim(world, ci, "ebike"):
            return False
        key = tpl.slots["ebike"]
        x0, y0, x1, y1 = world.get("ebike_sites", ci, key).bounds
        g0 = lo.gap_bottom(0)
        geom = lo.box(x0, g0 + 5.0, x1, g0 + 10.2) if variant == "near" else lo.box(x0, g0 + 6.8, x1, g0 + 11.2)
        world.set("ebike_sites", ci, key, geometry=geom)
    world.clear_zone(ci, shapely.buffer(geom, 1.0))
    rules = consequences(world, ci, "ebike_sites", key, "电动自行车集中停放点距住宅不足6米或占用消防车道",
                         "e-bike shed within 6 m of homes or on a fire lane")
    if (variant == "pass") == ("EBIKE-SITE" in rules):
        raise PlantingError(f"ebike_site {variant}: {rules}")
    return True


# --- hydrant coverage (planted last: it depends on every other hydrant and road) ----------------------------------


def _metric_rows(world: World, layer: str, mask: np.ndarray) -> np.ndarray:
    frame = world.layers[layer][mask]
    ox, oy, ang = row_frames(world, frame)
    return to_metric(frame["geometry"].to_numpy(), ox, oy, ang)


def _centres(world: World) -> np.ndarray:
    comp = world.compounds
    c, s = np.cos(comp["angle"].to_numpy()), np.sin(comp["angle"].to_numpy())
    hw, hd = comp["width"].to_numpy() / 2, comp["depth"].to_numpy() / 2
    return np.column_stack([comp["ox"] + c * hw - s * hd, comp["oy"] + s * hw + c * hd])


class _Coverage:
    """Buildings and hydrants of the world in metres, for choosing where hydrants go missing."""

    def __init__(self, world: World) -> None:
        self.limit = float(profile().get("HYD-COVERAGE", "max_hose_lay_m"))
        b = world.layers["buildings"]
        self.b_ci = b["ci"].to_numpy().astype(int)
        self.b_key = b["key"].to_numpy()
        self.b_geom = _metric_rows(world, "buildings", np.ones(len(b), dtype=bool))
        h = world.layers["hydrants"]
        self.h_ci = h["ci"].to_numpy().astype(int)
        self.h_ok = h["status"].fillna("in_service").to_numpy() == "in_service"
        self.h_geom = _metric_rows(world, "hydrants", np.ones(len(h), dtype=bool))
        self.h_tree = shapely.STRtree(self.h_geom)
        self.centres = _centres(world)
        self.touched: set[int] = set()  # compounds whose hydrants went missing

    def judge(self, ci: int) -> np.ndarray | None:
        """Building rows of compound `ci` beyond the hose length (straight line) from every other in-service
        hydrant, or None when a building is within MARGIN of it or a compound around lost its hydrants too (its
        verdicts counted on this compound's hydrants; every other compound keeps its own cover: a template covers
        its buildings within 130 m of hose, with one hydrant missing too)."""
        near = np.flatnonzero(np.hypot(*(self.centres - self.centres[ci]).T) < 700.0)
        if self.touched & set(near.tolist()):
            return None
        usable = self.h_ok & (self.h_ci != ci)
        mine = np.flatnonzero(self.b_ci == ci)
        bi, hi = self.h_tree.query(self.b_geom[mine], predicate="dwithin", distance=self.limit + 1.0)
        keep = usable[hi]
        bi, hi = bi[keep], hi[keep]
        straight = np.full(len(mine), np.inf)
        np.minimum.at(straight, bi, shapely.distance(self.b_geom[mine][bi], self.h_geom[hi]))
        if (np.abs(straight - self.limit) < MARGIN).any():
            return None
        fails = straight > self.limit
        return mine[fails] if fails.any() else None


def hydrant_coverage(world: World, ci: int, rng: np.random.Generator, variant: str) -> bool:
    """HYD-COVERAGE: an old compound whose courtyard hydrants were never installed and whose internal roads and
    footpaths were never surveyed, so cover is measured in a straight line (the rule's fallback); the buildings
    more than the hose length from every other in-service hydrant fail."""
    used = world.__dict__.setdefault("_claims", {}).setdefault(int(ci), set())
    if used:
        return False
    cov = world.__dict__.get("_coverage")
    if cov is None:
        world.commit()  # hydrants and buildings as every earlier recipe left them
        cov = world.__dict__["_coverage"] = _Coverage(world)
    fails = cov.judge(ci)
    if fails is None:
        return False
    used.add("coverage")
    cov.touched.add(ci)
    cov.h_ok[cov.h_ci == ci] = False
    for key in compound_rows(world, "hydrants", ci)["key"].tolist():
        world.drop("hydrants", ci, key)
    for key in compound_rows(world, "roads", ci)["key"].tolist():
        world.drop("roads", ci, key)
    for row in fails:
        world.fail("HYD-COVERAGE", "buildings", int(cov.b_ci[row]), str(cov.b_key[row]),
                   "小区未设室外消火栓（内部道路未测绘，按直线距离），建筑超出150米保护半径",
                   "no courtyard hydrants (internal roads not surveyed: straight line): beyond the 150 m hose lay")
    return True


# --- the plan -------------------------------------------------------------------------------------------------------

OLD, NEW, ANY = "old_lowrise", "new_highrise", "any"
PLANS: tuple[Plan, ...] = (
    # structural changes first (they move towers and lanes), then objects placed relative to them
    Plan(lane_setback, NEW, "fail", 2), Plan(lane_setback, NEW, "pass", 1),
    Plan(tower_separation, NEW, "fail", 2), Plan(tower_separation, NEW, "pass", 1),
    Plan(slab_separation, OLD, "grade3", 1), Plan(slab_separation, OLD, "grade2", 1),
    Plan(aerial_connected, NEW, "fail", 2), Plan(aerial_connected, NEW, "pass", 1),
    Plan(aerial_distance, NEW, "near_fail", 1), Plan(aerial_distance, NEW, "near_pass", 1),
    Plan(aerial_distance, NEW, "far_fail", 1), Plan(aerial_distance, NEW, "far_pass", 1),
    Plan(aerial_size, NEW, "L", 1), Plan(aerial_size, NEW, "short", 1), Plan(aerial_size, NEW, "partial", 1),
    Plan(aerial_missing, NEW, "fail", 1),
    Plan(isolated_lane, OLD, "fail", 2), Plan(isolated_lane, NEW, "fail", 1),
    Plan(turnaround, OLD, "fail", 3), Plan(turnaround, OLD, "pass", 1),
    Plan(turnaround, NEW, "fail", 1), Plan(turnaround, NEW, "pass", 1),
    Plan(turnaround, OLD, "untagged", 1), Plan(turnaround, OLD, "lying", 1),
    Plan(lane_turn, OLD, "fail", 2), Plan(lane_turn, OLD, "pass", 1), Plan(lane_turn, NEW, "fail", 1),
    Plan(lane_neck, OLD, "fail", 3), Plan(lane_neck, OLD, "pass", 1),
    Plan(lane_slope, ANY, "lane_fail", 2), Plan(lane_slope, ANY, "lane_pass", 1),
    Plan(lane_slope, NEW, "area_fail", 2), Plan(lane_slope, NEW, "area_pass", 1),
    # objects
    Plan(car_on_lane, OLD, "fail", 3), Plan(car_on_lane, OLD, "pass", 2),
    Plan(goods_on_connector, NEW, "fail", 2), Plan(goods_on_connector, NEW, "pass", 1),
    Plan(low_canopy, ANY, "fail", 2), Plan(low_canopy, ANY, "pass", 1),
    Plan(low_line, OLD, "fail", 1), Plan(low_line, OLD, "pass", 1),
    Plan(low_arch, NEW, "fail", 2), Plan(low_arch, NEW, "pass", 1),
    Plan(aerial_obstructed, NEW, "tree", 1), Plan(aerial_obstructed, NEW, "goods", 1),
    Plan(aerial_obstructed, NEW, "car", 1), Plan(aerial_obstructed, NEW, "pass", 1),
    Plan(structure, OLD, "gap", 1), Plan(structure, OLD, "verge", 1), Plan(structure, OLD, "block", 1),
    Plan(structure, OLD, "walk", 1), Plan(structure, NEW, "aerial", 1), Plan(structure, NEW, "clean", 2),
    Plan(structure, OLD, "demolished_lane", 1),
    Plan(hydrant_spacing, NEW, "fail", 2), Plan(hydrant_spacing, NEW, "pass", 1),
    Plan(hydrant_service, NEW, "fail", 2),
    Plan(hydrant_placement, NEW, "far", 1), Plan(hydrant_placement, NEW, "near", 1),
    Plan(hydrant_placement, NEW, "pass", 1), Plan(hydrant_placement, OLD, "wall", 1),
    Plan(hydrant_access, NEW, "goods", 1), Plan(hydrant_access, OLD, "car", 2), Plan(hydrant_access, OLD, "stall", 1),
    Plan(hydrant_access, OLD, "pass", 1),
    Plan(park_entrance, ANY, "car", 1), Plan(park_entrance, ANY, "stall", 1), Plan(park_entrance, ANY, "tight", 1),
    Plan(park_entrance, ANY, "pass", 1),
    Plan(park_lane, ANY, "fail", 3), Plan(park_lane, OLD, "pass", 1),
    Plan(ebike_indoor, ANY, "fail", 3), Plan(ebike_indoor, ANY, "pass", 2),
    Plan(ebike_site, OLD, "near", 2), Plan(ebike_site, NEW, "lane", 1), Plan(ebike_site, OLD, "pass", 1),
    Plan(hydrant_coverage, OLD, "fail", 2),
    # last: a ring no earlier recipe names is redrawn as separate lanes
    Plan(segmented_ring, NEW, "fail", 1), Plan(segmented_ring, NEW, "pass", 1),
)


def plant(world: World, rng: np.random.Generator, *, scale: str) -> None:
    """Apply every plan `per_40` times per 40 compounds, each on a random compound of the right kind (a recipe
    that finds no free slot in a compound tries the next one)."""
    n = len(world.compounds)
    factor = max(1, round(n / 40))
    kinds = world.compounds["kind"].to_numpy()
    for plan in PLANS:
        pool = np.flatnonzero(kinds == plan.kind) if plan.kind != ANY else np.arange(n)
        want, done = plan.per_40 * factor, 0
        for ci in rng.permutation(pool):
            if done >= want:
                break
            if plan.fn(world, int(ci), rng, plan.variant):
                done += 1


__all__ = ["PLANS", "Plan", "PlantingError", "claim", "consequences", "plant"]
