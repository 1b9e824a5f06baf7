"""Placing compounds in street offices: rows of compounds between east-west roads, cross streets between them.

Each street office gets its own grid frame (rotated by a small random angle about its centroid, metres in the
district's UTM zone). Rows of compounds run along the frame's u axis; a row holds compounds of one depth class,
separated by 20 m cross streets (12 m carriageway + two 4 m pavements); rows are separated by 24 m east-west
roads (16 m carriageway with kerbside parking + two 4 m pavements). A compound is placed only where its block
(compound, pavements and half the surrounding roads) lies 30 m inside the street-office polygon.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from gis.sample.layout import DEPTHS, templates_for_depth

#: Carriageway widths and pavement width (metres).
MAIN_ROAD_WIDTH = 16.0
CROSS_ROAD_WIDTH = 12.0
PAVEMENT = 4.0
#: Gaps between compound boundaries across a road.
ROW_STEP = MAIN_ROAD_WIDTH + 2 * PAVEMENT
COL_STEP = CROSS_ROAD_WIDTH + 2 * PAVEMENT
#: Blocks stay this far inside their street office.
STREET_MARGIN = 30.0
#: Candidate positions along a row are tested on this grid.
U_STEP = 5.0
#: Share of old low-rise compounds.
OLD_SHARE = 0.72


@dataclass
class StreetFrame:
    """A street office's grid frame: origin (UTM) and rotation (radians) of the u axis."""

    code: str
    ox: float
    oy: float
    angle: float

    def to_utm(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c, s = np.cos(self.angle), np.sin(self.angle)
        return self.ox + c * u - s * v, self.oy + s * u + c * v

    def from_utm(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c, s = np.cos(self.angle), np.sin(self.angle)
        dx, dy = x - self.ox, y - self.oy
        return c * dx + s * dy, -s * dx + c * dy


def street_frame(code: str, polygon_utm: shapely.Geometry, rng: np.random.Generator) -> StreetFrame:
    c = shapely.centroid(polygon_utm)
    return StreetFrame(code=code, ox=round(c.x, 1), oy=round(c.y, 1), angle=float(np.radians(rng.uniform(-25, 25))))


def layout_street(frame: StreetFrame, polygon_utm: shapely.Geometry, rng: np.random.Generator) -> pd.DataFrame:
    """Every compound position the street office can hold: rows bottom to top, compounds left to right.

    Returns
    -------
    DataFrame
        street, row, u0, v0 (south-west corner in the street frame), template (name), kind, width, depth.
    """
    poly = shapely.transform(polygon_utm, lambda xy: np.column_stack(frame.from_utm(xy[:, 0], xy[:, 1])))
    inner = shapely.buffer(poly, -STREET_MARGIN)
    if inner.is_empty:
        return _empty()
    shapely.prepare(inner)
    minx, miny, maxx, maxy = inner.bounds
    rows = []
    v = miny + ROW_STEP / 2
    row = 0
    us = np.arange(minx, maxx, U_STEP)
    while v < maxy:
        cls = int(rng.integers(len(DEPTHS)))
        depth = DEPTHS[cls]
        lo, hi = v - ROW_STEP / 2, v + depth + ROW_STEP / 2
        if hi > maxy:
            break
        # columns [u, u + U_STEP] whose full row height lies inside the street office
        cols = shapely.box(us, lo, us + U_STEP, hi)
        ok = shapely.contains(inner, cols)
        choice = templates_for_depth(cls)
        i = 0
        while i < len(us):
            kind = "old_lowrise" if rng.random() < OLD_SHARE else "new_highrise"
            tpl = choice[kind][0]
            need = int(np.ceil((tpl.width + COL_STEP) / U_STEP))
            if i + need <= len(us) and ok[i:i + need].all():
                u0 = us[i] + COL_STEP / 2
                rows.append((frame.code, row, u0, v, tpl.name, kind, tpl.width, depth))
                i += need
            else:
                i += 1
        v = hi + ROW_STEP / 2
        row += 1
    if not rows:
        return _empty()
    return pd.DataFrame(rows, columns=["street", "row", "u0", "v0", "template", "kind", "width", "depth"])


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: [] for c in ("street", "row", "u0", "v0", "template", "kind", "width", "depth")})


def select(candidates: pd.DataFrame, frames: dict[str, StreetFrame], order: list[str], n: int,
           centre: tuple[float, float]) -> pd.DataFrame:
    """The first `n` compound positions: whole street offices in `order`, the last one nearest `centre` first."""
    out = []
    total = 0
    for code in order:
        cand = candidates[candidates["street"] == code]
        if not len(cand):
            continue
        f = frames[code]
        x, y = f.to_utm(cand["u0"].to_numpy() + cand["width"].to_numpy() / 2,
                        cand["v0"].to_numpy() + cand["depth"].to_numpy() / 2)
        d = np.hypot(x - centre[0], y - centre[1])
        cand = cand.assign(_d=d).sort_values(["_d"], kind="stable")
        take = cand.iloc[: max(n - total, 0)]
        out.append(take)
        total += len(take)
        if total >= n:
            break
    sel = pd.concat(out, ignore_index=True) if out else _empty()
    return sel.drop(columns=["_d"], errors="ignore").sort_values(["street", "row", "u0"], ignore_index=True)


def city_roads(sel: pd.DataFrame) -> pd.DataFrame:
    """City roads (street frame) around the selected compounds of one street office.

    East-west roads: one feature per contiguous stretch of a row boundary; cross streets: one per compound gap.

    Returns
    -------
    DataFrame
        line (u0, v0, u1, v1), axis ("ew" / "ns"), width_m, key (line id within the street: same key = same road).
    """
    out = []
    ew: dict[float, list[tuple[float, float]]] = {}
    ns: set[tuple[float, float, float]] = set()
    for u0, v0, w, d in sel[["u0", "v0", "width", "depth"]].itertuples(index=False):
        for v in (v0 - ROW_STEP / 2, v0 + d + ROW_STEP / 2):
            ew.setdefault(round(v, 3), []).append((u0 - COL_STEP / 2, u0 + w + COL_STEP / 2))
        for u in (u0 - COL_STEP / 2, u0 + w + COL_STEP / 2):
            ns.add((round(u, 3), v0 - ROW_STEP / 2, v0 + d + ROW_STEP / 2))
    for v, spans in sorted(ew.items()):
        spans.sort()
        cur = list(spans[0])
        for a, b in spans[1:]:
            if a <= cur[1] + 1e-6:
                cur[1] = max(cur[1], b)
            else:
                out.append((cur[0], v, cur[1], v, "ew", MAIN_ROAD_WIDTH, f"ew{v:.1f}"))
                cur = [a, b]
        out.append((cur[0], v, cur[1], v, "ew", MAIN_ROAD_WIDTH, f"ew{v:.1f}"))
    for u, a, b in sorted(ns):
        out.append((u, a, u, b, "ns", CROSS_ROAD_WIDTH, f"ns{u:.1f}/{a:.1f}"))
    return pd.DataFrame(out, columns=["u0", "v0", "u1", "v1", "axis", "width_m", "key"])


def kerb_stalls(sel: pd.DataFrame, gates: pd.DataFrame, *, length: float = 6.0, depth: float = 2.5,
                clear: float = 24.0) -> pd.DataFrame:
    """Parallel kerbside stalls on the compound side of the east-west roads, in the street frame.

    Stalls run along each compound's north and south frontage, leaving `clear` metres either side of every
    vehicle gate on that road (the approach a turning fire truck needs) and 4 m at the cross streets.

    Parameters
    ----------
    sel : DataFrame
        Selected compounds of one street (u0, v0, width, depth).
    gates : DataFrame
        Vehicle gates in the street frame (u, v).

    Returns
    -------
    DataFrame
        u0, v0, u1, v1 of each stall box and the index of the frontage compound.
    """
    out = []
    gu, gv = gates["u"].to_numpy(), gates["v"].to_numpy()
    for ci, (u0, v0, w, d) in enumerate(sel[["u0", "v0", "width", "depth"]].itertuples(index=False)):
        for side, kerb in (("south", v0 - PAVEMENT), ("north", v0 + d + PAVEMENT)):
            road_v = v0 - ROW_STEP / 2 if side == "south" else v0 + d + ROW_STEP / 2
            band = (kerb - depth, kerb) if side == "south" else (kerb, kerb + depth)
            # gates on this road (either side of it)
            on_road = np.abs(np.abs(gv - road_v) - ROW_STEP / 2) < 1.0
            starts = np.arange(u0 + 4.0, u0 + w - 4.0 - length + 1e-9, length)
            near = (np.abs(starts[:, None] + length / 2 - gu[None, on_road]) < clear + length / 2).any(axis=1) \
                if on_road.any() else np.zeros(len(starts), dtype=bool)
            for s in starts[~near]:
                out.append((s, band[0], s + length, band[1], ci, side))
    return pd.DataFrame(out, columns=["u0", "v0", "u1", "v1", "compound", "side"])
