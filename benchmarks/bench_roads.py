"""Benchmark of roads drawn as surfaces: a sample district's roads as centre lines vs every road as its surface.

Run (pure checks, no database):

    .venv/bin/python benchmarks/bench_roads.py --scale s --kinds city

Draws every road of the chosen kinds as its carriageway polygon (centre line buffered by half its width, flat
ends, width dropped, as a CAD survey delivers it), checks the district both ways and prints: the time of each full
check, the ratio surfaces / centre lines (the peer, measured in the same run), the time spent deriving the centre
lines alone (gis.checks.roads.as_drawn over the district once, as build_contexts does per CRS zone) and whether
the findings (rule, subject, verdict) are the same.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import shapely

from gis import sample
from gis.checks import roads as rd
from gis.checks.runner import run_on_frames


def as_surfaces(layers: dict, kinds: tuple[str, ...], metric) -> tuple[dict, int]:
    """The layers with every road of `kinds` that has a width drawn as its surface (in the storage CRS), and how
    many roads were drawn so."""
    roads = layers["roads"].to_crs(metric)
    g = np.asarray(roads.geometry.values, dtype=object)
    w = roads["width_m"].to_numpy(dtype=float)
    pick = np.isin(roads["kind"].to_numpy(), kinds) & (w > 0) & ~rd.polygonal(g)
    g = g.copy()
    g[pick] = shapely.buffer(g[pick], w[pick] / 2.0, cap_style="flat", join_style="mitre")
    out = roads.set_geometry(g, crs=metric)
    out.loc[pick, "width_m"] = np.nan
    return {**layers, "roads": out.to_crs(layers["roads"].crs)}, int(pick.sum())


def keys(found) -> set[tuple[str, str, str]]:
    return set(zip(found["rule"], found["subject_ref"], found["verdict"], strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--district", default="yinzhou")
    ap.add_argument("--scale", default="s")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--kinds", default="city", help="road kinds drawn as surfaces (comma-separated)")
    args = ap.parse_args()
    s = sample.generate(district=args.district, scale=args.scale, seed=args.seed)
    drawn, n = as_surfaces(s.layers, tuple(args.kinds.split(",")), s.metric_crs)
    t0 = time.perf_counter()
    lines = run_on_frames(s.layers, profile="cn-gb")
    t_lines = time.perf_counter() - t0
    t0 = time.perf_counter()
    surfaces = run_on_frames(drawn, profile="cn-gb")
    t_surfaces = time.perf_counter() - t0
    t0 = time.perf_counter()
    rd.as_drawn(drawn["roads"].to_crs(s.metric_crs))
    t_derive = time.perf_counter() - t0
    a, b = keys(lines), keys(surfaces)
    print(f"{args.district} {args.scale} seed {args.seed}: {n} roads ({args.kinds}) drawn as surfaces, "
          f"{len(drawn['roads'])} roads in all")
    print(f"full check, centre lines  {t_lines:8.2f} s  ({len(lines)} findings)")
    print(f"full check, surfaces      {t_surfaces:8.2f} s  ({len(surfaces)} findings)  x{t_surfaces / t_lines:.2f}")
    print(f"centre lines derived once {t_derive:8.2f} s  ({t_derive / max(n, 1) * 1000:.1f} ms a surface)")
    print(f"same findings: {a == b}" + ("" if a == b else f"; only with lines {sorted(a - b)[:10]}, "
                                                        f"only with surfaces {sorted(b - a)[:10]}"))


if __name__ == "__main__":
    main()
