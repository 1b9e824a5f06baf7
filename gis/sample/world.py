"""The sample under construction: every compound instantiated from its template (vectorised), in local metres."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import shapely

from gis.sample.layout import TEMPLATE_LAYERS, Template

#: Columns every instantiated row carries besides the layer's attributes.
BASE_COLUMNS: tuple[str, ...] = ("ci", "key", "geometry", "group", "role")


@dataclass
class Truth:
    """One expected failure: rule, subject layer, subject (compound index + key; ci -1: key is the ref), note."""

    rule: str
    layer: str
    ci: int
    key: str
    note_zh: str
    note_en: str


@dataclass
class World:
    """Compounds (one row each, with their template and transform) and per-layer feature rows in local metres.

    Layer rows: ci (compound index, -1 for street-level features), key (unique within the compound; the ref for
    street-level features), geometry (compound-local metres; street frame for street-level features), group, role
    and attributes. Planting recipes read and edit rows through `get` / `set` / `rows` / `add` / `drop`; additions
    and removals are staged and applied once by `commit` (so a recipe costs no copy of a 100 000-row frame).
    """

    compounds: pd.DataFrame
    templates: dict[str, Template]
    layers: dict[str, pd.DataFrame]
    truths: list[Truth] = field(default_factory=list)
    keep_out: dict[int, list[shapely.Geometry]] = field(default_factory=dict)
    street_frames: dict = field(default_factory=dict)
    kx_serials: dict[str, int] = field(default_factory=dict)  # per street: the last entrance-parking key number
    _pos: dict[str, dict[tuple[int, str], int]] = field(default_factory=dict)
    _by_ci: dict[str, dict[int, np.ndarray]] = field(default_factory=dict)
    _added: dict[str, list[dict]] = field(default_factory=dict)
    _added_pos: dict[str, dict[tuple[int, str], int]] = field(default_factory=dict)
    _added_ci: dict[str, dict[int, list[int]]] = field(default_factory=dict)
    _dropped: dict[str, set[tuple[int, str]]] = field(default_factory=dict)

    @classmethod
    def instantiate(cls, compounds: pd.DataFrame, templates: dict[str, Template]) -> World:
        """Repeat every template's features once per compound that uses it (no per-feature work)."""
        layers = {}
        for name in TEMPLATE_LAYERS:
            parts = []
            for tname, tpl in templates.items():
                cis = np.flatnonzero(compounds["template"].to_numpy() == tname)
                tf = tpl.layers[name]
                if not len(cis) or not len(tf):
                    continue
                rep = tf.iloc[np.tile(np.arange(len(tf)), len(cis))].reset_index(drop=True)
                rep.insert(0, "ci", np.repeat(cis, len(tf)))
                parts.append(rep)
            frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(BASE_COLUMNS))
            layers[name] = frame.sort_values(["ci", "key"], kind="stable", ignore_index=True)
        return cls(compounds=compounds, templates=templates, layers=layers)

    # --- indexes -----------------------------------------------------------------------------------------------

    def _index(self, layer: str) -> dict[tuple[int, str], int]:
        if layer not in self._pos:
            f = self.layers[layer]
            self._pos[layer] = dict(zip(zip(f["ci"].to_numpy().astype(int).tolist(), f["key"].tolist(), strict=True),
                                        range(len(f)), strict=True))
        return self._pos[layer]

    def _positions(self, layer: str, ci: int) -> np.ndarray:
        if layer not in self._by_ci:
            ci_col = self.layers[layer]["ci"].to_numpy().astype(int)
            order = np.argsort(ci_col, kind="stable")
            uniq, start = np.unique(ci_col[order], return_index=True)
            bounds = np.r_[start, len(order)]
            self._by_ci[layer] = {int(c): order[bounds[k]:bounds[k + 1]] for k, c in enumerate(uniq)}
        return self._by_ci[layer].get(int(ci), np.empty(0, dtype=int))

    def _invalidate(self, layer: str) -> None:
        self._pos.pop(layer, None)
        self._by_ci.pop(layer, None)

    # --- reading and editing -------------------------------------------------------------------------------------

    def _where(self, layer: str, ci: int, key: str) -> tuple[str, int]:
        k = (int(ci), key)
        if k in self._dropped.get(layer, set()):
            raise KeyError(f"{layer} {k} was removed")
        pos = self._index(layer).get(k)
        if pos is not None:
            return "base", pos
        pos = self._added_pos.get(layer, {}).get(k)
        if pos is not None:
            return "added", pos
        raise KeyError(f"{layer} has no feature {k}")

    def has(self, layer: str, ci: int, key: str) -> bool:
        try:
            self._where(layer, ci, key)
        except KeyError:
            return False
        return True

    def get(self, layer: str, ci: int, key: str, column: str = "geometry") -> Any:
        where, pos = self._where(layer, ci, key)
        if where == "base":
            return self.layers[layer].at[pos, column]
        return self._added[layer][pos].get(column)

    def set(self, layer: str, ci: int, key: str, **values: Any) -> None:
        where, pos = self._where(layer, ci, key)
        if where == "added":
            self._added[layer][pos].update(values)
            return
        frame = self.layers[layer]
        for col, val in values.items():
            if col not in frame.columns:
                frame[col] = pd.Series([None] * len(frame), dtype=object)
            elif isinstance(val, str) and frame[col].dtype != object:
                frame[col] = frame[col].astype(object)
            frame.at[pos, col] = val

    def move(self, layer: str, ci: int, key: str, dx: float, dy: float) -> None:
        self.set(layer, ci, key, geometry=shapely.affinity.translate(self.get(layer, ci, key), dx, dy))

    def move_group(self, ci: int, group: int, dx: float, dy: float) -> None:
        """Translate every feature of a group (a building with its aerial area and door walkway)."""
        for name, frame in self.layers.items():
            if "group" not in frame.columns:
                continue
            pos = self._positions(name, ci)
            hit = pos[frame["group"].to_numpy()[pos] == group]
            for p in hit:
                frame.at[p, "geometry"] = shapely.affinity.translate(frame.at[p, "geometry"], dx, dy)

    def rows(self, layer: str, ci: int) -> pd.DataFrame:
        """The current features of one compound (staged additions included, removals excluded)."""
        frame = self.layers[layer].iloc[self._positions(layer, ci)]
        dropped = self._dropped.get(layer)
        if dropped:
            keep = [(int(ci), k) not in dropped for k in frame["key"]]
            frame = frame[np.array(keep, dtype=bool)]
        rows = self._added.get(layer, [])
        added = [rows[k] for k in self._added_ci.get(layer, {}).get(int(ci), [])
                 if (int(ci), rows[k]["key"]) not in (dropped or ())]
        if added:
            frame = pd.concat([frame, pd.DataFrame(added)], ignore_index=True)
        return frame

    def add(self, layer: str, ci: int, prefix: str, geometry: shapely.Geometry, *, role: str = "planted",
            key: str | None = None, **attrs: Any) -> str:
        """Stage a new feature of compound `ci` (or street level, ci -1 with an explicit key); returns its key."""
        if key is None:
            n = 1
            while self.has(layer, ci, f"{prefix}{n:02d}"):
                n += 1
            key = f"{prefix}{n:02d}"
        row = {"ci": int(ci), "key": key, "geometry": geometry, "group": -1, "role": role, **attrs}
        self._added.setdefault(layer, []).append(row)
        self._added_pos.setdefault(layer, {})[(int(ci), key)] = len(self._added[layer]) - 1
        self._added_ci.setdefault(layer, {}).setdefault(int(ci), []).append(len(self._added[layer]) - 1)
        return key

    def drop(self, layer: str, ci: int, key: str) -> None:
        """Stage the removal of a feature."""
        self._where(layer, ci, key)
        self._dropped.setdefault(layer, set()).add((int(ci), key))

    def commit(self) -> None:
        """Apply staged additions and removals (one concat per layer)."""
        for layer in set(self._added) | set(self._dropped):
            frame = self.layers[layer]
            dropped = self._dropped.get(layer, set())
            if dropped:
                keys = list(zip(frame["ci"].to_numpy().astype(int).tolist(), frame["key"].tolist(), strict=True))
                frame = frame[np.array([k not in dropped for k in keys], dtype=bool)]
            added = [r for r in self._added.get(layer, []) if (r["ci"], r["key"]) not in dropped]
            if added:
                frame = pd.concat([frame, pd.DataFrame(added)], ignore_index=True)
            self.layers[layer] = frame.sort_values(["ci", "key"], kind="stable", ignore_index=True)
            self._invalidate(layer)
        self._added.clear()
        self._added_pos.clear()
        self._added_ci.clear()
        self._dropped.clear()

    # --- ground truth and clutter zones -------------------------------------------------------------------------

    def fail(self, rule: str, layer: str, ci: int, key: str, zh: str, en: str) -> None:
        """Record an expected failure of `rule` on feature (ci, key) of `layer`."""
        self.truths.append(Truth(rule=rule, layer=layer, ci=int(ci), key=key, note_zh=zh, note_en=en))

    def clear_zone(self, ci: int, geom: shapely.Geometry) -> None:
        """Random clutter (trees, cars) must keep out of `geom` in compound `ci` (a planted change)."""
        self.keep_out.setdefault(int(ci), []).append(geom)

    def template_of(self, ci: int) -> Template:
        return self.templates[self.compounds.at[ci, "template"]]


def row_frames(world: World, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of `frame` the origin and angle of its local frame (its compound's, or its street's for rows of
    no compound) in the metric CRS: what `to_metric` takes."""
    ci = frame["ci"].to_numpy().astype(int)
    comp = world.compounds
    ox = np.where(ci >= 0, comp["ox"].to_numpy()[np.maximum(ci, 0)], 0.0)
    oy = np.where(ci >= 0, comp["oy"].to_numpy()[np.maximum(ci, 0)], 0.0)
    ang = np.where(ci >= 0, comp["angle"].to_numpy()[np.maximum(ci, 0)], 0.0)
    if (ci < 0).any():
        streets = frame["street"].to_numpy()
        for code, f in world.street_frames.items():
            m = (ci < 0) & (streets == code)
            ox[m], oy[m], ang[m] = f.ox, f.oy, f.angle
    return ox, oy, ang


def to_metric(geoms: np.ndarray, ox: np.ndarray, oy: np.ndarray, ang: np.ndarray, *,
              then: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None) -> np.ndarray:
    """Rotate and translate local geometries row by row (one vectorised coordinate pass); `then` maps the
    resulting coordinates further (e.g. UTM -> lon/lat) in the same pass."""
    geoms = np.asarray(geoms, dtype=object)
    if not len(geoms):
        return geoms
    _, idx = shapely.get_coordinates(geoms, return_index=True)
    c, s = np.cos(ang)[idx], np.sin(ang)[idx]
    tx, ty = ox[idx], oy[idx]

    def fn(xy: np.ndarray) -> np.ndarray:
        x, y = tx + c * xy[:, 0] - s * xy[:, 1], ty + s * xy[:, 0] + c * xy[:, 1]
        if then is not None:
            x, y = then(x, y)
        return np.column_stack([x, y])

    return shapely.transform(geoms, fn)
