"""Street-office (街道/乡镇) boundaries for the sample districts: a Voronoi partition of township centroids."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from gis.coords import FloatOrArray, gcj02_to_wgs84, local_metric_crs

#: Boundary data shipped with the project (derived files + README with provenance and licence).
BOUNDARY_DIR = Path(__file__).resolve().parents[2] / "data" / "boundaries"
#: Third-party inputs (Vonng/adcode, CC BY 4.0; modood/Administrative-divisions-of-China, WTFPL).
SOURCE_DIR = Path("/work/shared/data/boundaries")

#: Spacing (m) of the candidate grid used to place centroids that no source row provides.
FILL_GRID_M = 250.0
#: A 街道 without a source centroid is placed within this distance (m) of the known 街道 centroids' hull.
URBAN_REACH_M = 3000.0
#: Coordinates of the shipped files are snapped to this grid (degrees, about 1 cm).
GRID_DEG = 1e-7


@dataclass(frozen=True, kw_only=True)
class District:
    """A sample district: its 2023 code (township list), its code in the adcode files and its names."""

    key: str
    code: str
    adcode_code: str
    name: str
    name_en: str
    #: the street office the `s` scale fills (an urban 街道 with room for about 40 compounds)
    core_street: str

    @property
    def boundary_file(self) -> Path:
        return BOUNDARY_DIR / f"streets_{self.key}.geojson"


DISTRICTS: dict[str, District] = {
    "yinzhou": District(key="yinzhou", code="330212", adcode_code="330212", name="鄞州区", name_en="Yinzhou",
                        core_street="330212006"),
    # Changle became a district in 2017: 350182 (county-level city) -> 350112; the adcode files keep 350182.
    "changle": District(key="changle", code="350112", adcode_code="350182", name="长乐区", name_en="Changle",
                        core_street="350112001"),
}

_ADCODE_COLUMNS = ("code", "parent", "name", "level", "rank", "adcode", "post_code", "area_code", "ur_code",
                   "municipality", "virtual", "dummy", "longitude", "latitude", "center", "province", "city",
                   "county", "town", "village")
_SUFFIXES = ("街道", "镇", "乡")


def get_district(key: str) -> District:
    try:
        return DISTRICTS[key]
    except KeyError:
        raise ValueError(f"未知的样例区县 unknown sample district {key!r}; choose {', '.join(DISTRICTS)}") from None


def name_stem(name: str) -> str:
    """A township name without its 街道/镇/乡 suffix (文武砂镇 and 文武砂街道 are the same place)."""
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def read_townships(district: District, *, source_dir: Path = SOURCE_DIR) -> pd.DataFrame:
    """The 2023 township-level units (code, name) of a district, in code order."""
    with open(source_dir / "streets_2023_330212_350112.csv", encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["areaCode"] == district.code]
    frame = pd.DataFrame({"code": [r["code"] for r in rows], "name": [r["name"] for r in rows]})
    return frame.sort_values("code", ignore_index=True)


def read_adcode(district: District, *, source_dir: Path = SOURCE_DIR) -> pd.DataFrame:
    """The adcode rows (towns and villages) of a district with their GCJ-02 centroids (NaN where missing)."""
    frame = pd.read_csv(source_dir / f"data_adcode_{district.adcode_code}.csv", header=None,
                        names=list(_ADCODE_COLUMNS), dtype={"code": str, "parent": str}, keep_default_na=True)
    return frame[frame["level"].isin(["town", "village"])].reset_index(drop=True)


def read_outline(district: District, *, source_dir: Path = SOURCE_DIR) -> shapely.Geometry:
    """The district outline (GeoJSON geometry in GCJ-02) converted to WGS84/CGCS2000 lon/lat."""
    geom = shapely.from_geojson(json.dumps(json.loads((source_dir / f"data_fences_{district.adcode_code}.json")
                                                      .read_text(encoding="utf-8"))))
    geom = shapely.transform(geom, lambda xy: np.column_stack(gcj02_to_wgs84(xy[:, 0], xy[:, 1])))
    return shapely.make_valid(geom)


def township_centroids(district: District, outline_m: shapely.Geometry,
                       to_metric: Callable[[FloatOrArray, FloatOrArray], tuple[Any, Any]], *,
                       source_dir: Path = SOURCE_DIR) -> pd.DataFrame:
    """One metric centroid per 2023 township, with the rule that produced it.

    Rules, first that applies (names are matched by stem, so 文武砂镇 in 2016 is 文武砂街道 in 2023):
    ``adcode_town``: the town row's own centroid; ``adcode_villages``: the mean centroid of the town's villages
    and communities; ``adcode_community``: the centroid of a 2016 community whose name starts with the stem
    (聚贤社区 -> 聚贤街道); ``farthest_point``: units with none of these (e.g. the former Jiangdong streets,
    merged into Yinzhou in 2016 and absent from the adcode file) are placed one by one, in code order, at the
    point of a 250 m grid inside the outline farthest from every centroid placed so far; for a 街道 (urban
    sub-district) the grid is limited to within 3 km of the convex hull of the 街道 centroids the sources give.
    Centroids outside the outline are moved to the nearest point of the outline (``+snapped``).
    """
    towns = read_townships(district, source_dir=source_dir)
    ad = read_adcode(district, source_dir=source_dir)
    ad_town = ad[ad["level"] == "town"].assign(stem=lambda f: f["name"].map(name_stem))
    ad_vill = ad[(ad["level"] == "village") & ad["longitude"].notna()]
    xs, ys, rules = np.full(len(towns), np.nan), np.full(len(towns), np.nan), [""] * len(towns)
    for i, name in enumerate(towns["name"]):
        stem = name_stem(name)
        match = ad_town[ad_town["stem"] == stem]
        lon = lat = np.nan
        if len(match) and match["longitude"].notna().iloc[0]:
            lon, lat, rules[i] = match["longitude"].iloc[0], match["latitude"].iloc[0], "adcode_town"
        elif len(match):
            kids = ad_vill[ad_vill["parent"] == match["code"].iloc[0]]
            if len(kids):
                lon, lat, rules[i] = kids["longitude"].mean(), kids["latitude"].mean(), "adcode_villages"
        if np.isnan(lon):
            comm = ad_vill[ad_vill["name"].str.startswith(stem)]
            if len(comm):
                lon, lat, rules[i] = comm["longitude"].iloc[0], comm["latitude"].iloc[0], "adcode_community"
        if not np.isnan(lon):
            wlon, wlat = gcj02_to_wgs84(lon, lat)
            xs[i], ys[i] = to_metric(wlon, wlat)
    # farthest-point placement for the rest, on a deterministic grid inside the outline
    minx, miny, maxx, maxy = outline_m.bounds
    gx, gy = np.meshgrid(np.arange(minx, maxx, FILL_GRID_M), np.arange(miny, maxy, FILL_GRID_M))
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    grid = grid[shapely.contains_xy(outline_m, grid[:, 0], grid[:, 1])]
    is_street = towns["name"].str.endswith("街道").to_numpy()
    known_streets = ~np.isnan(xs) & is_street
    urban = shapely.convex_hull(shapely.multipoints(np.column_stack([xs, ys])[known_streets])).buffer(URBAN_REACH_M)
    urban_grid = grid[shapely.contains_xy(urban, grid[:, 0], grid[:, 1])]
    for i in np.flatnonzero(np.isnan(xs)).tolist():
        known = np.column_stack([xs, ys])[~np.isnan(xs)]
        cand = urban_grid if is_street[i] and len(urban_grid) else grid
        d = np.sqrt(((cand[:, None, :] - known[None, :, :]) ** 2).sum(axis=2)).min(axis=1)
        xs[i], ys[i] = cand[int(np.argmax(d))]
        rules[i] = "farthest_point"
    pts = shapely.points(xs, ys)
    outside = ~shapely.contains(outline_m, pts)
    for i in np.flatnonzero(outside).tolist():
        near = shapely.shortest_line(pts[i], outline_m)
        xs[i], ys[i] = shapely.get_coordinates(near)[1]
        rules[i] += "+snapped"
    return towns.assign(x=xs, y=ys, centroid_rule=rules)


def derive_boundaries(district_key: str, *, source_dir: Path = SOURCE_DIR) -> gpd.GeoDataFrame:
    """Street-office polygons of a district: Voronoi cells of the township centroids clipped to the outline.

    Parameters
    ----------
    district_key : {"yinzhou", "changle"}
    source_dir : Path
        Folder with the third-party inputs (see data/boundaries/README.md).

    Returns
    -------
    GeoDataFrame
        One MultiPolygon per 2023 township (ref = 9-digit code, name, district_code, district_name,
        centroid_rule, source) in EPSG:4490, coordinates snapped to 1e-7 degrees.
    """
    district = get_district(district_key)
    outline = read_outline(district, source_dir=source_dir)
    cx, cy = shapely.centroid(outline).x, shapely.centroid(outline).y
    metric = local_metric_crs(cx, cy)
    outline_m = gpd.GeoSeries([outline], crs=4490).to_crs(metric).iloc[0]

    fwd = Transformer.from_crs(4490, metric, always_xy=True)
    towns = township_centroids(district, outline_m, fwd.transform, source_dir=source_dir)
    pts = shapely.multipoints(np.column_stack([towns["x"], towns["y"]]))
    cells = shapely.get_parts(shapely.voronoi_polygons(pts, extend_to=outline_m.buffer(1000.0), ordered=True))
    clipped = shapely.intersection(cells, outline_m)
    polys = np.array([shapely.multipolygons(shapely.get_parts(g)[shapely.get_type_id(shapely.get_parts(g)) == 3])
                      for g in clipped], dtype=object)
    frame = gpd.GeoDataFrame(
        {
            "ref": towns["code"],
            "name": towns["name"],
            "district_code": district.code,
            "district_name": district.name,
            "centroid_rule": towns["centroid_rule"],
            "source": "derived: Voronoi of township centroids (Vonng/adcode CC BY 4.0; modood 2023 list WTFPL)",
        },
        geometry=gpd.GeoSeries(polys, crs=metric),
    ).to_crs(4490)
    snapped = shapely.set_precision(frame.geometry.values, GRID_DEG)
    frame = frame.set_geometry(gpd.GeoSeries([shapely.multipolygons(shapely.get_parts(g)) for g in snapped],
                                             crs=4490, index=frame.index))
    return frame


def write_boundaries(district_key: str, *, out_dir: Path = BOUNDARY_DIR, source_dir: Path = SOURCE_DIR) -> Path:
    """Derive and write data/boundaries/streets_<district>.geojson (the shipped, commit-ready file)."""
    frame = derive_boundaries(district_key, source_dir=source_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"streets_{district_key}.geojson"
    frame.to_file(path, driver="GeoJSON", engine="pyogrio", COORDINATE_PRECISION=7, RFC7946="YES")
    return path


def read_boundaries(district_key: str) -> gpd.GeoDataFrame:
    """The shipped street-office polygons of a district (EPSG:4490), in code order."""
    district = get_district(district_key)
    frame = gpd.read_file(district.boundary_file, engine="pyogrio")
    frame = frame.set_crs(4490, allow_override=True)
    frame["ref"] = frame["ref"].astype(str)
    frame["geometry"] = [shapely.multipolygons(shapely.get_parts(g)) for g in frame.geometry.values]
    return frame.sort_values("ref", ignore_index=True)


def district_outline(district_key: str) -> shapely.Geometry:
    """The district outline in EPSG:4490 (from the shipped street polygons, so it needs no third-party file)."""
    return shapely.union_all(read_boundaries(district_key).geometry.values)


if __name__ == "__main__":  # python -m gis.sample.boundaries: regenerate the shipped files
    for key in DISTRICTS:
        print(write_boundaries(key))
