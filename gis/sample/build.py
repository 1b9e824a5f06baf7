"""Generating a sample district: place compounds in street offices, instantiate templates, plant hazards, project."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gis.checks.catalog import RULES
from gis.coords import local_metric_crs
from gis.layers import LAYERS, STORAGE_SRID
from gis.sample import clutter, district, hazards, names, surfaces
from gis.sample.boundaries import get_district, read_boundaries
from gis.sample.layout import TEMPLATE_LAYERS, Template, templates_for_depth
from gis.sample.world import World, row_frames, to_metric
from gis.store import layer_columns as cols

#: Compounds per scale: one street office, a district, a city.
SCALES: dict[str, int] = {"s": 40, "m": 800, "l": 8000}
#: Source tag of every generated feature.
SOURCE = "firelane sample (synthetic)"
#: Ground-truth columns.
TRUTH_COLUMNS: tuple[str, ...] = ("rule", "subject_layer", "subject_ref", "compound_ref", "note")
#: Layer order: streets and compounds first (other layers' links derive from them).
LAYER_ORDER: tuple[str, ...] = ("streets", "compounds", *TEMPLATE_LAYERS)


@dataclass
class Sample:
    """A generated sample district.

    Attributes
    ----------
    district, scale, seed : str, str, int
    layers : dict of str to GeoDataFrame
        One frame per firelane layer (EPSG:4490), columns = the layer's declared fields plus the common fields
        ref / compound_ref / street_code / estimated / source its table has; refs are unique strings.
    ground_truth : DataFrame
        Every expected failure: rule, subject_layer, subject_ref, compound_ref, note (zh / en).
    bounds : tuple of float
        (minx, miny, maxx, maxy) of all layers, lon/lat.
    metric_crs : pyproj.CRS
        The UTM zone the layout was drawn in (the compounds' local metric CRS).
    timings : dict of str to float
        Seconds per generation stage.
    """

    district: str
    scale: str
    seed: int
    layers: dict[str, gpd.GeoDataFrame] = field(repr=False)
    ground_truth: pd.DataFrame = field(repr=False)
    bounds: tuple[float, float, float, float]
    metric_crs: pyproj.CRS = field(repr=False)
    timings: dict[str, float] = field(default_factory=dict, repr=False)

    def summary(self) -> str:
        """Counts per layer and per planted rule, Chinese then English."""
        lines = [f"样例区县 sample district {self.district} · 规模 scale {self.scale} · 随机种子 seed {self.seed}"]
        lines.append("图层要素数 features per layer:")
        for name, frame in self.layers.items():
            layer = LAYERS[name]
            lines.append(f"  {layer.label_zh:<8} {name:<20} {len(frame):>9,}")
        lines.append(f"预埋隐患 planted failures (ground truth): {len(self.ground_truth):,}")
        counts = self.ground_truth.groupby("rule").size() if len(self.ground_truth) else pd.Series(dtype=int)

        for rule_id, rule in RULES.items():
            lines.append(f"  {rule_id:<18} {int(counts.get(rule_id, 0)):>5}  {rule.title_zh} {rule.title_en}")
        return "\n".join(lines)


def _street_order(streets_m: gpd.GeoDataFrame, core: str) -> list[str]:
    c = streets_m.geometry.centroid
    core_c = c[streets_m["ref"] == core].iloc[0]
    d = c.distance(core_c).to_numpy()
    order = streets_m["ref"].to_numpy()[np.argsort(d, kind="stable")]
    return [str(x) for x in order]


def place_compounds(district_key: str, scale: str, seed: int, streets_m: gpd.GeoDataFrame
                    ) -> tuple[pd.DataFrame, dict[str, district.StreetFrame]]:
    """Positions of the sample's compounds: street offices from the core outwards, each laid out in rows."""
    n = SCALES[scale]
    d = get_district(district_key)
    order = _street_order(streets_m, d.core_street)
    polys = dict(zip(streets_m["ref"].astype(str), streets_m.geometry.values, strict=True))
    frames: dict[str, district.StreetFrame] = {}
    cands = []
    total = 0
    for code in order:
        rng = np.random.default_rng([seed, int(code)])
        frames[code] = district.street_frame(code, polys[code], rng)
        cand = district.layout_street(frames[code], polys[code], rng)
        cands.append(cand)
        total += len(cand)
        if total >= n:
            break
    candidates = pd.concat(cands, ignore_index=True)
    core_poly = polys[d.core_street]
    centre = shapely.get_coordinates(shapely.point_on_surface(core_poly))[0]
    sel = district.select(candidates, frames, [c for c in order if c in frames], n, (centre[0], centre[1]))
    # local -> UTM transform of each compound: origin = its south-west corner, angle = its street's
    ox, oy, ang = [], [], []
    for code, u0, v0 in sel[["street", "u0", "v0"]].itertuples(index=False):
        f = frames[code]
        x, y = f.to_utm(np.array([u0]), np.array([v0]))
        ox.append(float(x[0]))
        oy.append(float(y[0]))
        ang.append(f.angle)
    sel = sel.assign(ox=ox, oy=oy, angle=ang)
    sel["street"] = sel["street"].astype(str)
    seq = sel.groupby("street").cumcount() + 1
    sel["ref"] = sel["street"] + "-" + seq.map(lambda k: f"{k:03d}")
    return sel.reset_index(drop=True), frames


def _templates() -> dict[str, Template]:
    out = {}
    for cls in (0, 1):
        for tpls in templates_for_depth(cls).values():
            for t in tpls:
                out[t.name] = t
    return out


def _building_attributes(world: World, rng: np.random.Generator) -> None:
    """Floors, heights and grades of slabs and towers; some with floors only, a few with neither."""
    b = world.layers["buildings"]
    role = b["role"].to_numpy()
    n = len(b)
    floors = np.where(role == "tower", rng.integers(18, 34, n), rng.integers(5, 8, n)).astype(float)
    grade = np.where(role == "tower", rng.choice(["1", "2"], n), rng.choice(["2", "3"], n)).astype(object)
    height = floors * 3.0
    u = rng.random(n)
    no_height = u < 0.12
    neither = u < 0.03
    height[no_height] = np.nan
    floors[neither] = np.nan
    main = np.isin(role, ["slab", "tower"])
    for col, val in (("floors", floors), ("height_m", height), ("fire_resistance_grade", grade)):
        if col not in b.columns:
            b[col] = None
        cur = b[col].to_numpy(dtype=object)
        cur[main] = val[main]
        b[col] = cur
    b["noncombustible_walls"] = False
    b["firewall"] = False


def _compound_attributes(sel: pd.DataFrame, world: World, rng: np.random.Generator) -> pd.DataFrame:
    kinds = sel["kind"].to_numpy()
    nm = names.compound_names(kinds, rng)
    old = kinds == "old_lowrise"
    b = world.layers["buildings"]
    fl = pd.to_numeric(b["floors"], errors="coerce").fillna(6).to_numpy()
    per = pd.Series(np.where(b["role"].isin(["slab", "tower"]), fl * 4, 0)).groupby(b["ci"].to_numpy()).sum()
    return sel.assign(
        name=nm,
        built_year=np.where(old, rng.integers(1985, 2001, len(sel)), rng.integers(2008, 2023, len(sel))),
        households=per.reindex(range(len(sel))).fillna(0).astype(int).to_numpy(),
        property_company=np.array(names.PROPERTY, dtype=object)[rng.integers(len(names.PROPERTY), size=len(sel))],
        gated=True,
    )


def _street_level(world: World, sel: pd.DataFrame, frames: dict[str, district.StreetFrame],
                  rng: np.random.Generator) -> None:
    """City roads around the compounds and kerbside stalls along them (rows with ci = -1, street frame)."""
    road_rows, stall_rows = [], []
    taken: set[str] = set()
    world.compounds["address"] = pd.Series([None] * len(world.compounds), dtype=object)
    for code in sel["street"].unique():
        mine = sel[sel["street"] == code].reset_index(drop=True)
        roads = district.city_roads(mine)
        ew_keys = sorted(roads.loc[roads["axis"] == "ew", "key"].unique())
        ns_keys = sorted(roads.loc[roads["axis"] == "ns", "key"].unique())
        ew_names = dict(zip(ew_keys, names.road_names(len(ew_keys), "路", rng, taken=taken), strict=True))
        ns_names = dict(zip(ns_keys, names.road_names(len(ns_keys), "街", rng, taken=taken), strict=True))
        # address: the road along the compound's south side, a house number by position
        u_min = mine["u0"].min()
        for ci, u0, v0 in zip(np.flatnonzero(sel["street"].to_numpy() == code), mine["u0"], mine["v0"], strict=True):
            road = ew_names.get(f"ew{round(v0 - district.ROW_STEP / 2, 3):.1f}", "")
            world.compounds.at[ci, "address"] = f"{road}{int((u0 - u_min) // 10) * 2 + 1}号"
        for k, r in enumerate(roads.itertuples(index=False)):
            name = ew_names.get(r.key) or ns_names[r.key]
            road_rows.append({"ci": -1, "street": code, "key": f"{code}-CR{k + 1:04d}",
                              "geometry": shapely.LineString([(r.u0, r.v0), (r.u1, r.v1)]), "group": -1,
                              "role": "city", "name": name, "kind": "city", "width_m": r.width_m})
        # vehicle gates of these compounds in the street frame
        gu, gv = [], []
        for u0, v0, tname in mine[["u0", "v0", "template"]].itertuples(index=False):
            tpl = world.templates[tname]
            ent = tpl.layers["entrances"]
            for g in ent.loc[ent["kind"] == "vehicle", "geometry"]:
                gu.append(u0 + g.x)
                gv.append(v0 + g.y)
        stalls = district.kerb_stalls(mine, pd.DataFrame({"u": gu, "v": gv}))
        for k, s in enumerate(stalls.itertuples(index=False)):
            stall_rows.append({"ci": -1, "street": code, "key": f"{code}-KP{k + 1:05d}",
                               "geometry": shapely.box(s.u0, s.v0, s.u1, s.v1), "group": -1, "role": "kerb",
                               "kind": "stall", "vehicle_type": "car"})
        # observed vehicles: some stalls are occupied (a car drawn inside the stall)
        occupied = stalls[rng.random(len(stalls)) < 0.3]
        for k, s in enumerate(occupied.itertuples(index=False)):
            cu, cv = (s.u0 + s.u1) / 2, (s.v0 + s.v1) / 2
            stall_rows.append({"ci": -1, "street": code, "key": f"{code}-KV{k + 1:05d}",
                               "geometry": shapely.box(cu - 2.4, cv - 0.9, cu + 2.4, cv + 0.9), "group": -1,
                               "role": "kerb_vehicle", "kind": "vehicle", "vehicle_type": "car"})
    world.street_frames = frames
    for layer, rows in (("roads", road_rows), ("parking", stall_rows)):
        frame = world.layers[layer]
        add = pd.DataFrame(rows)
        world.layers[layer] = pd.concat([frame, add], ignore_index=True)
        world._invalidate(layer)


def _multi(layer: str, geoms: np.ndarray) -> np.ndarray:
    lay = LAYERS[layer]
    # a mixed layer stored as Multi types (roads: centre lines and surfaces) promotes both
    kinds = {"MULTIPOLYGON", "MULTILINESTRING"} if lay.geometry == "GEOMETRY" and lay.multi else {lay.geometry}
    out = geoms.copy()
    if "MULTIPOLYGON" in kinds:
        single = shapely.get_type_id(geoms) == 3
        out[single] = shapely.multipolygons(geoms[single][:, None].tolist()) if single.any() else out[single]
    if "MULTILINESTRING" in kinds:
        single = shapely.get_type_id(geoms) == 1
        if single.any():
            out[single] = [shapely.MultiLineString([g]) for g in geoms[single]]
    return out


def layer_columns(name: str) -> list[str]:
    return cols(LAYERS[name])


def _typed(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The layer's declared columns with pandas dtypes matching the field types."""
    layer = LAYERS[name]
    out = {}
    for col in layer_columns(name):
        f = layer.field(col)
        s = frame[col] if col in frame.columns else pd.Series([None] * len(frame), index=frame.index, dtype=object)
        if f.type == "float":
            out[col] = pd.to_numeric(s, errors="coerce").astype(float)
        elif f.type == "int":
            out[col] = pd.to_numeric(s, errors="coerce").round().astype("Int64")
        elif f.type == "bool":
            default = bool(f.default) if f.default is not None else False
            out[col] = s.where(s.notna(), default).astype(bool)
        else:
            out[col] = s.astype(object).where(s.notna(), None)
    return pd.DataFrame(out, index=frame.index)


def finalise(world: World, metric: pyproj.CRS, streets: gpd.GeoDataFrame) -> dict[str, gpd.GeoDataFrame]:
    """Refs, links and EPSG:4490 geometries of every layer (local frame -> UTM -> lon/lat in one coordinate pass).

    The world's layer frames are consumed (released layer by layer, to keep the peak memory of scale l low).
    """
    to_geo = pyproj.Transformer.from_crs(metric, STORAGE_SRID, always_xy=True)
    comp = world.compounds
    crefs = comp["ref"].to_numpy()
    cstreet = comp["street"].to_numpy()
    out: dict[str, gpd.GeoDataFrame] = {}

    def project(geoms: np.ndarray, ox: np.ndarray, oy: np.ndarray, ang: np.ndarray) -> np.ndarray:
        return to_metric(geoms, ox, oy, ang, then=lambda x, y: to_geo.transform(x, y))

    out["streets"] = gpd.GeoDataFrame(_typed("streets", streets), geometry=streets.geometry.values, crs=STORAGE_SRID)
    outline = np.array([world.templates[t].outline for t in comp["template"]], dtype=object)
    cg = project(outline, comp["ox"].to_numpy(), comp["oy"].to_numpy(), comp["angle"].to_numpy())
    cframe = comp.assign(street_code=cstreet, source=SOURCE)
    out["compounds"] = gpd.GeoDataFrame(_typed("compounds", cframe), geometry=_multi("compounds", cg),
                                        crs=STORAGE_SRID)
    for name in TEMPLATE_LAYERS:
        f = world.layers.pop(name).reset_index(drop=True)
        ci = f["ci"].to_numpy().astype(int)
        ox, oy, ang = row_frames(world, f)
        g = project(f.pop("geometry").to_numpy(), ox, oy, ang)
        key = f["key"].astype(str).to_numpy()
        own = ci >= 0
        ref = np.where(own, np.char.add(np.char.add(crefs[np.maximum(ci, 0)].astype(str), "-"), key), key)
        street = f["street"].to_numpy() if "street" in f.columns else np.full(len(f), None, dtype=object)
        f = f.assign(ref=ref.astype(object),
                     compound_ref=np.where(own, crefs[np.maximum(ci, 0)], np.full(len(f), None, dtype=object)),
                     street_code=np.where(own, cstreet[np.maximum(ci, 0)], street).astype(object),
                     source=SOURCE)
        if name == "aerial_areas" and len(f):
            f["building_ref"] = np.char.add(np.char.add(crefs[ci].astype(str), "-"),
                                            f["building_key"].astype(str).to_numpy())
        out[name] = gpd.GeoDataFrame(_typed(name, f), geometry=_multi(name, g), crs=STORAGE_SRID)
        del f, g
    return out


def truth_frame(world: World, layers: dict[str, gpd.GeoDataFrame]) -> pd.DataFrame:
    crefs = world.compounds["ref"].to_numpy()
    rows = []
    for t in world.truths:
        ref = f"{crefs[t.ci]}-{t.key}" if t.ci >= 0 else t.key
        rows.append({"rule": t.rule, "subject_layer": t.layer, "subject_ref": ref,
                     "compound_ref": crefs[t.ci] if t.ci >= 0 else None,
                     "note": f"{t.note_zh} {t.note_en}"})
    frame = pd.DataFrame(rows, columns=list(TRUTH_COLUMNS))
    frame = frame.drop_duplicates(["rule", "subject_layer", "subject_ref"]).sort_values(
        ["rule", "subject_layer", "subject_ref"], ignore_index=True)
    for layer, refs in frame.groupby("subject_layer")["subject_ref"]:
        missing = set(refs) - set(layers[layer]["ref"])
        if missing:
            raise AssertionError(f"ground truth names features that do not exist in {layer}: {sorted(missing)[:5]}")
    return frame


def generate(*, district: str = "yinzhou", scale: str = "s", seed: int = 1) -> Sample:
    """Generate a deterministic synthetic district with planted hazards.

    Parameters
    ----------
    district : {"yinzhou", "changle"}
    scale : {"s", "m", "l"}
        About 40 compounds (one street office), 800 (a district) or 8000 (a city).
    seed : int
        Same seed, same sample (numpy Generator).

    Returns
    -------
    Sample
        Layers in EPSG:4490 and the ground truth of every planted failure.
    """
    if scale not in SCALES:
        raise ValueError(f"未知规模 unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    streets = read_boundaries(district)
    outline_c = shapely.centroid(shapely.union_all(streets.geometry.values))
    metric = local_metric_crs(outline_c.x, outline_c.y)
    streets_m = streets.to_crs(metric)
    sel, frames = place_compounds(district, scale, seed, streets_m)
    timings["place"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    rng = np.random.default_rng([seed, 7])
    templates = _templates()
    world = World.instantiate(sel, templates)
    world.street_frames = frames
    _building_attributes(world, rng)
    world.compounds = _compound_attributes(sel, world, rng)
    _street_level(world, world.compounds, frames, rng)
    timings["instantiate"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    hazards.plant(world, np.random.default_rng([seed, 11]), scale=scale)
    world.commit()
    timings["plant"] = time.perf_counter() - t2
    t3 = time.perf_counter()
    clutter.add_clutter(world, np.random.default_rng([seed, 13]))
    surfaces.draw_as_surfaces(world, np.random.default_rng([seed, 17]))
    timings["clutter"] = time.perf_counter() - t3
    t4 = time.perf_counter()
    layers = finalise(world, metric, streets)
    timings["project"] = time.perf_counter() - t4
    truth = truth_frame(world, layers)
    boxes = np.vstack([f.total_bounds for f in layers.values() if len(f)])
    bounds = (float(boxes[:, 0].min()), float(boxes[:, 1].min()), float(boxes[:, 2].max()), float(boxes[:, 3].max()))
    ordered = {name: layers[name] for name in LAYER_ORDER}
    sample = Sample(district=district, scale=scale, seed=seed, layers=ordered, ground_truth=truth, bounds=bounds,
                    metric_crs=metric, timings=timings)
    timings["total"] = time.perf_counter() - t0
    return sample
