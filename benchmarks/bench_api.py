"""Benchmark of the HTTP service against PostgreSQL itself: bbox pages of 100 features and vector tiles.

Loads the m-scale Yinzhou sample (gis.sample.generate, when available) or a synthetic district of ~100k features
into a throwaway managed PostGIS (or reuses one with --home), serves the app with uvicorn on 127.0.0.1 and drives it
with wrk: one client (x1, the cost of a request free of queueing) and 50 concurrent clients, each run after an
unmeasured warm-up at the same concurrency. The same 2000 random bboxes / tiles are cycled by every run:
- app bbox, app tile: the tile cache off (every tile built by PostGIS: the cold-cache figure);
- app tile cached: the tile cache on, the same 2000 tiles (after the warm-up every one is cached: all hits);
- app tile zipf cached: the tile cache on, a realistic map-client mix: 20,000 requests drawn with Zipf(1)
  popularity over every tile of zooms 13-17 covering the district's buildings, so the hit rate (from the X-Cache
  header, per worker caches) is whatever the mix gives, misses at low zoom included;
- postgres bbox, postgres tile: the app's own SQL for the same requests straight from PostgreSQL, driven by pgbench
  (C, closed loop, prepared statements, same concurrency; each transaction also reads its request's parameters from
  a table by primary key). Transactions started during the warm-up are left out. postgres tile zipf builds every
  request of the Zipf mix (PostgreSQL has no tile cache: the app's cache is what that row compares).
Prints requests/s, p50 and p99 for all, the app/PostgreSQL throughput ratio and the verdict against the targets
(p99 < 100 ms for a bbox page of 100 features, < 50 ms for a tile, at 50 clients).

    .venv/bin/python benchmarks/bench_api.py [--seconds 15] [--warmup 8] [--clients 50] [--workers 2] [--home DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import geopandas as gpd
import httpx
import numpy as np
import shapely
from _support import ROOT, bench_admin_token, free_port, load_line, open_database, private_home
from sqlalchemy import text

from api.auth import Principal
from api.database import read_connection
from api.demo import WORKER_HEALTHCHECK_S
from api.features import page_sql, parse_items_query
from api.tiles import tile_sql
from gis import pgcluster
from gis.config import api_settings
from gis.db import owner_engine, transaction
from gis.layers import LAYERS
from gis.pgcluster import find_bindir
from gis.sample import generate, load_sample
from gis.store import write_frame

BBOX_DEG = 0.012  # a bbox window holding about four compounds (> 100 buildings: full pages of 100)
TARGETS_MS = {"bbox": 100.0, "tile": 50.0}
ZIPF_ZOOMS = range(13, 18)  # a district map: overview to street level
ZIPF_REQUESTS = 20_000
LABELS = {"bbox": "bbox", "tile": "tile", "zipf": "tile zipf"}


def synthesise(engine, *, seed: int = 1) -> dict[str, int]:
    """~100k features on a grid near Ningbo: 20 streets, 2,500 compounds, 75k buildings, 20k hydrants, 5k lanes."""
    rng = np.random.default_rng(seed)
    x0, y0, nx, ny, step = 121.40, 29.75, 50, 50, 0.006
    sx, sy = nx * step / 5, ny * step / 4
    street_codes = [f"3302120{i:02d}" for i in range(1, 21)]
    streets = gpd.GeoDataFrame(
        {"ref": street_codes, "name": [f"街道{i}" for i in range(20)]},
        geometry=[shapely.box(x0 + (i % 5) * sx, y0 + (i // 5) * sy, x0 + (i % 5 + 1) * sx, y0 + (i // 5 + 1) * sy)
                  for i in range(20)], crs=4490)
    gx, gy = np.meshgrid(np.arange(nx), np.arange(ny))
    ix, iy = gx.ravel(), gy.ravel()
    cx0, cy0 = x0 + ix * step + 0.0005, y0 + iy * step + 0.0005
    size = step - 0.001
    crefs = np.array([f"C{i:05d}" for i in range(len(ix))])
    cstreet = np.array(street_codes)[(np.minimum(ix * step // sx, 4) + 5 * np.minimum(iy * step // sy, 3)).astype(int)]
    compounds = gpd.GeoDataFrame({"ref": crefs, "name": crefs, "street_code": cstreet},
                                 geometry=shapely.box(cx0, cy0, cx0 + size, cy0 + size), crs=4490)
    per = 30
    k = np.repeat(np.arange(len(ix)), per)
    j = np.tile(np.arange(per), len(ix))
    bx = cx0[k] + (j % 6) * (size / 6) + 0.0001
    by = cy0[k] + (j // 6) * (size / 5) + 0.0001
    w = size / 6 - 0.0002 - rng.random(len(k)) * 0.0002
    buildings = gpd.GeoDataFrame(
        {"ref": [f"B{i:06d}" for i in range(len(k))], "compound_ref": crefs[k], "street_code": cstreet[k],
         "height_m": np.round(rng.uniform(6, 90, len(k)), 1), "floors": rng.integers(2, 30, len(k)),
         "use": rng.choice(["residential", "commercial", "mixed"], len(k)), "name": [f"{i % 30 + 1}号楼" for i in k]},
        geometry=shapely.box(bx, by, bx + w, by + size / 5 - 0.0003), crs=4490)
    kh = np.repeat(np.arange(len(ix)), 8)
    hydrants = gpd.GeoDataFrame(
        {"ref": [f"H{i:06d}" for i in range(len(kh))], "compound_ref": crefs[kh], "street_code": cstreet[kh]},
        geometry=shapely.points(cx0[kh] + rng.random(len(kh)) * size, cy0[kh] + rng.random(len(kh)) * size), crs=4490)
    kl = np.repeat(np.arange(len(ix)), 2)
    ly = cy0[kl] + np.tile([0.3, 0.7], len(ix)) * size
    lanes = gpd.GeoDataFrame(
        {"ref": [f"L{i:05d}" for i in range(len(kl))], "compound_ref": crefs[kl], "street_code": cstreet[kl],
         "kind": "through", "design_width_m": 4.0},
        geometry=shapely.box(cx0[kl], ly, cx0[kl] + size, ly + 0.00004), crs=4490)
    counts = {}
    with transaction(engine=engine, user="bench") as conn:
        for name, frame in (("streets", streets), ("compounds", compounds), ("buildings", buildings),
                            ("hydrants", hydrants), ("fire_lanes", lanes)):
            counts[name] = write_frame(conn, name, frame).inserted
    return counts


def load_data(engine, *, synthetic: bool = False) -> tuple[str, dict[str, int]]:
    """The m-scale Yinzhou sample when gis.sample can make and load it, else the synthetic district."""
    if not synthetic:
        try:
            load_sample(generate(district="yinzhou", scale="m", seed=1))
            with engine.connect() as conn:
                counts = {n: conn.execute(text(f"SELECT count(*) FROM {n}")).scalar_one() for n in LAYERS}
            return "gis.sample yinzhou m seed 1", counts
        except Exception as exc:  # noqa: BLE001 - report and fall back: the benchmark is about the API
            print(f"sample district unavailable ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
                  f"using the synthetic district", flush=True)
            with engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {', '.join(LAYERS)} RESTART IDENTITY CASCADE"))
    return "synthetic grid", synthesise(engine)


def _tile_xy(lon: float, lat: float, zoom: int) -> tuple[int, int]:
    k = 1 << zoom
    return (min(k - 1, int((lon + 180) / 360 * k)),
            min(k - 1, int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * k)))


def zipf_tiles(bounds: tuple[float, float, float, float], *, zooms: range, n: int, s: float = 1.0,
               seed: int = 11) -> tuple[list[str], int]:
    """`n` tile requests over every tile of `zooms` covering `bounds`, drawn independently with Zipf(`s`)
    popularity over a random ranking of the tiles (a few tiles very often, most rarely, as map clients ask);
    returns the paths and the number of distinct tiles they can hit."""
    tiles = []
    for z in zooms:
        (x0, y1), (x1, y0) = _tile_xy(bounds[0], bounds[1], z), _tile_xy(bounds[2], bounds[3], z)
        tiles += [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
    rng = random.Random(seed)
    rng.shuffle(tiles)
    weights = [1 / rank ** s for rank in range(1, len(tiles) + 1)]
    return [f"/tiles/buildings/{z}/{x}/{y}.mvt" for z, x, y in rng.choices(tiles, weights, k=n)], len(tiles)


def request_sets(engine, *, n: int, zoom: int, seed: int = 7) -> dict[str, list[str]]:
    """Paths for the bbox-page and tile workloads, centred on random buildings (so each hits data), and the
    Zipf-distributed tile mix over zooms 13-17 of the buildings' extent."""
    with engine.connect() as conn:
        pts = conn.execute(text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM buildings "
            "ORDER BY md5(ref), id LIMIT :n) s"), {"n": n}).all()
        bounds = conn.execute(text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e FROM buildings) s"
        )).one()
    rng = random.Random(seed)
    bbox, tiles = [], []
    for x, y in pts:
        ox, oy = rng.uniform(0, BBOX_DEG), rng.uniform(0, BBOX_DEG)
        bbox.append(f"/collections/buildings/items?limit=100&bbox={x - ox:.6f},{y - oy:.6f},"
                    f"{x - ox + BBOX_DEG:.6f},{y - oy + BBOX_DEG:.6f}")
        tx, ty = _tile_xy(x, y, zoom)
        tiles.append(f"/tiles/buildings/{zoom}/{tx}/{ty}.mvt")
    zipf, distinct = zipf_tiles(tuple(bounds), zooms=ZIPF_ZOOMS, n=ZIPF_REQUESTS)
    print(f"tile mix: {len(zipf):,} requests, Zipf(1) over the {distinct:,} tiles of zooms "
          f"{ZIPF_ZOOMS.start}-{ZIPF_ZOOMS.stop - 1} covering the buildings ({len(set(zipf)):,} distinct drawn)",
          flush=True)
    return {"bbox": bbox, "tile": tiles, "zipf": zipf}


# --- load generators --------------------------------------------------------------------------------------------

_WRK_LUA = """
local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) counter = math.random(#paths); hits = 0; misses = 0 end
function request()
  counter = counter % #paths + 1
  return wrk.format("GET", paths[counter], {["Authorization"] = os.getenv("BENCH_AUTH")})
end
function response(status, headers, body)
  local c = headers["x-cache"] or headers["X-Cache"]
  if c == "hit" then hits = hits + 1 elseif c == "miss" then misses = misses + 1 end
end
function done(summary, latency, requests)
  local h, m = 0, 0
  for _, t in ipairs(threads) do h = h + t:get("hits"); m = m + t:get("misses") end
  io.write(string.format("cache: %d %d\\n", h, m))
end
"""


def _ms(value: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", value)
    if m is None:
        raise ValueError(f"not a wrk duration: {value!r}")
    num, unit = float(m.group(1)), m.group(2)
    return num / 1000 if unit == "us" else num * 1000 if unit == "s" else num


def _wrk_line(pattern: str, out: str) -> re.Match[str]:
    """The match of `pattern` in wrk's output; an error naming it if wrk printed no such line."""
    m = re.search(pattern, out)
    if m is None:
        raise ValueError(f"no {pattern!r} in wrk's output:\n{out}")
    return m


def run_wrk(base: str, paths: list[str], token: str, *, clients: int, seconds: int, workdir: Path,
            warmup: int) -> dict:
    """wrk (closed loop, `clients` connections) over `paths` in order from a random start; a discarded warm-up
    run first at the same concurrency (connections, pools and backends warm). Cache hit rate from X-Cache."""
    path_file = workdir / f"paths-{time.monotonic_ns()}.txt"
    path_file.write_text("\n".join(paths) + "\n")
    script = workdir / "bench.lua"
    script.write_text(_WRK_LUA)
    env = {**os.environ, "BENCH_PATHS": str(path_file), "BENCH_AUTH": f"Bearer {token}"}
    threads = str(min(2, clients))
    out = ""
    for duration in (warmup, seconds):
        if duration <= 0:
            continue
        out = subprocess.run(["wrk", f"-t{threads}", f"-c{clients}", f"-d{duration}s", "--timeout", "10s",
                              "--latency", "-s", str(script), base], capture_output=True, text=True, env=env,
                             check=True).stdout
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, flags=re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    total = int(_wrk_line(r"(\d+) requests in", out).group(1))
    hits, misses = (int(v) for v in _wrk_line(r"cache: (\d+) (\d+)", out).groups())
    return {"rps": float(_wrk_line(r"Requests/sec:\s+([\d.]+)", out).group(1)), "p50": _ms(lat["50"]),
            "p99": _ms(lat["99"]), "requests": total, "errors": int(non2xx.group(1)) if non2xx else 0,
            "tool": "wrk", "hit_rate": hits / (hits + misses) if hits + misses else None}


def _summary(latencies: list[float], elapsed: float, errors: int, tool: str) -> dict:
    q = statistics.quantiles(latencies, n=100)
    return {"rps": len(latencies) / elapsed, "p50": q[49], "p99": q[98], "requests": len(latencies),
            "errors": errors, "tool": tool, "hit_rate": None}


def _pgbench_sql(sql: str) -> str:
    """The app's SQL (SQLAlchemy :name binds) as one pgbench line (:name variables, same names)."""
    return " ".join(sql.split())


def _zxy(path: str) -> tuple[int, int, int]:
    z, x, y = (int(v) for v in re.findall(r"/(\d+)/(\d+)/(\d+)\.mvt", path)[0])
    return z, x, y


def pgbench_scripts(paths: dict[str, list[str]], workdir: Path) -> tuple[dict[str, list[tuple]], dict[str, Path]]:
    """The rows of the bench_requests table (one per bbox/tile path) and of bench_tiles (the Zipf mix, one per
    request), and one pgbench script per workload: pick a random request, read its parameters (\\gset, a
    primary-key lookup), run the app's own SQL for it."""
    admin = Principal(username="bench", role="admin")
    rows, page = [], None
    for i, (bbox_path, tile_path) in enumerate(zip(paths["bbox"], paths["tile"], strict=True), start=1):
        q = parse_items_query(LAYERS["buildings"], dict(parse_qsl(urlsplit(bbox_path).query)))
        page, _, params = page_sql(LAYERS["buildings"], q, admin)
        z, x, y = _zxy(tile_path)
        rows.append((i, params["b0x0"], params["b0y0"], params["b0x1"], params["b0y1"], z, x, y))
    assert page is not None, "no bbox paths: the page SQL is the first path's"
    if api_settings().count_cap > 0:
        print("note: FIRELANE_API_COUNT_CAP > 0: the app also runs a capped count per page with a next page; "
              "the PostgreSQL peer runs the page query only", flush=True)
    n, tile = len(rows), _pgbench_sql(tile_sql(LAYERS["buildings"], None))
    zipf = [(i, *_zxy(path)) for i, path in enumerate(paths["zipf"], start=1)]
    scripts = {
        "bbox": (f"\\set i random(1, {n})\n\\set limit 100\n\\set limit_plus 101\n\\set offset 0\n"
                 "SELECT b0x0, b0y0, b0x1, b0y1 FROM bench_requests WHERE i = :i \\gset\n"
                 f"{_pgbench_sql(page)};\n"),
        "tile": (f"\\set i random(1, {n})\nSELECT z, x, y FROM bench_requests WHERE i = :i \\gset\n"
                 f"{tile};\n"),
        "zipf": f"\\set i random(1, {len(zipf)})\nSELECT z, x, y FROM bench_tiles WHERE i = :i \\gset\n{tile};\n",
    }
    files = {}
    for name, body in scripts.items():
        files[name] = workdir / f"{name}.pgbench"
        files[name].write_text(body)
    return {"requests": rows, "tiles": zipf}, files


def load_requests(engine, rows: dict[str, list[tuple]]) -> None:
    """The benchmark's requests as tables, so pgbench clients draw the same bboxes and tiles as wrk."""
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS bench_requests"))
        conn.execute(text("CREATE TABLE bench_requests (i int PRIMARY KEY, b0x0 float8, b0y0 float8, "
                          "b0x1 float8, b0y1 float8, z int, x int, y int)"))
        conn.execute(text("INSERT INTO bench_requests VALUES (:i, :b0x0, :b0y0, :b0x1, :b0y1, :z, :x, :y)"),
                     [dict(zip(("i", "b0x0", "b0y0", "b0x1", "b0y1", "z", "x", "y"), r, strict=True))
                      for r in rows["requests"]])
        conn.execute(text("DROP TABLE IF EXISTS bench_tiles"))
        conn.execute(text("CREATE TABLE bench_tiles (i int PRIMARY KEY, z int, x int, y int)"))
        conn.execute(text("INSERT INTO bench_tiles VALUES (:i, :z, :x, :y)"),
                     [dict(zip(("i", "z", "x", "y"), r, strict=True)) for r in rows["tiles"]])
        conn.execute(text("ANALYZE bench_requests, bench_tiles"))


def run_pgbench(state, script: Path, *, clients: int, seconds: int, workdir: Path, warmup: int) -> dict:
    """pgbench (C, closed loop, prepared statements like psycopg's auto-prepare) with the app's SQL; transactions
    started in the first `warmup` seconds are left out of the figures (every new backend first loads PostGIS and
    PROJ, ~0.2 s of CPU each: 50 of them take seconds on 2 cores; the app's pool keeps its backends)."""
    prefix = workdir / f"pgb-{time.monotonic_ns()}"
    env = {**os.environ, "PGPASSWORD": state.password}
    started = time.time()
    subprocess.run([str(find_bindir() / "pgbench"), "-n", "-M", "prepared", "-c", str(clients),
                    "-j", str(min(2, clients)), "-T", str(seconds + warmup), "-f", str(script), "--log",
                    f"--log-prefix={prefix}", "-h", "127.0.0.1", "-p", str(state.port), "-U", "firelane",
                    "firelane"], capture_output=True, text=True, env=env, check=True, cwd=workdir)
    latencies, ends = [], []
    for log in workdir.glob(prefix.name + ".*"):
        for line in log.read_text().splitlines():
            parts = line.split()
            end = int(parts[4]) + int(parts[5]) / 1e6
            if end - int(parts[2]) / 1e6 >= started + warmup:  # started after the warm-up
                latencies.append(int(parts[2]) / 1000)
                ends.append(end)
    return _summary(latencies, max(ends) - (started + warmup), 0, "pgbench")


def start_server(base_env: dict[str, str], *, port: int, workers: int, log: Path | None = None,
                 **settings: str) -> subprocess.Popen:
    """uvicorn serving the app on 127.0.0.1:`port` (FIRELANE_* `settings` on top of the environment), once ready;
    its warnings and errors go to `log` (else nowhere). Workers get as long to answer health pings as under
    `firelane serve` (api.demo.WORKER_HEALTHCHECK_S)."""
    out = log.open("ab") if log else subprocess.DEVNULL
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log",
         "--timeout-worker-healthcheck", str(WORKER_HEALTHCHECK_S)],
        cwd=ROOT, env={**base_env, **settings}, stdout=out, stderr=out)
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.terminate()
    raise RuntimeError("the app did not become ready")


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    server.wait(timeout=30)


def prepare(args: argparse.Namespace, home: Path, workdir: Path):
    """Start the cluster, load the district (unless already there), a bench admin token, the request sets."""
    engine = open_database()
    state = pgcluster.load_state()  # the running cluster's port and password, for pgbench
    t0 = time.perf_counter()
    with engine.connect() as conn:
        loaded = conn.execute(text("SELECT count(*) FROM buildings")).scalar_one()
    if loaded:
        print(f"reusing the district under {home} ({loaded:,} buildings)", flush=True)
    else:
        source, counts = load_data(engine, synthetic=args.synthetic)
        with owner_engine().begin() as conn:  # only the owner may ANALYZE its tables
            conn.execute(text("ANALYZE"))
        print(f"loaded {sum(counts.values()):,} features ({source}) in {time.perf_counter() - t0:.0f}s: "
              f"{counts}", flush=True)
    token = bench_admin_token(engine)
    paths = request_sets(engine, n=args.requests, zoom=args.tile_zoom)
    with read_connection():  # learns, as the app does, which CRSs need no ST_Transform: the peer runs the same SQL
        pass
    rows, scripts = pgbench_scripts(paths, workdir)
    load_requests(owner_engine(), rows)  # the bench's own tables: the owner's (the app role has no DDL)
    engine.dispose()
    return state, token, paths, scripts


def report(args: argparse.Namespace, results: dict[str, dict], load_before: str) -> None:
    print(f"\n{args.clients} concurrent clients (x1: one client), {args.workers} uvicorn workers, "
          f"{args.requests} distinct bboxes/tiles cycled, {args.seconds} s per run after a warm-up ({args.warmup} s, x1: 2 s); "
          f"server, database and load generators share this machine's {os.cpu_count()} cores "
          f"(load before: {load_before})")
    print(f"{'workload':<22}{'tool':<9}{'requests':>9}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
          f"{'cache hits':>12}")
    for name, r in results.items():
        hits = "" if r["hit_rate"] is None else f"{r['hit_rate']:.0%}"
        print(f"{name:<22}{r['tool']:<9}{r['requests']:>9}{r['rps']:>9.0f}{r['p50']:>9.1f}{r['p99']:>9.1f}"
              f"{r['errors']:>8}{hits:>12}")
    for name, peer in (("bbox", "bbox"), ("tile", "tile"), ("tile cached", "tile"),
                       ("tile zipf cached", "tile zipf")):
        app, pg = results.get(f"app {name}"), results.get(f"postgres {peer}")
        if app is None or pg is None:
            continue
        target = TARGETS_MS[name.split()[0]]
        verdict = "meets" if app["p99"] < target else "misses"
        print(f"{name}: app/PostgreSQL throughput ratio {app['rps'] / pg['rps']:.2f}; p99 {app['p99']:.1f} ms "
              f"{verdict} the {target:.0f} ms target")
    print(json.dumps(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15, help="measured seconds per run (after the warm-up)")
    parser.add_argument("--requests", type=int, default=2000, help="distinct bboxes / tiles, cycled by every run")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--tile-zoom", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=8, help="unmeasured seconds before each concurrent run")
    parser.add_argument("--only", choices=("app", "postgres"), help="run one side only (profiling)")
    parser.add_argument("--synthetic", action="store_true", help="skip gis.sample: synthetic ~100k features")
    parser.add_argument("--keep", action="store_true", help="keep the throwaway cluster (debugging)")
    parser.add_argument("--home", type=Path, help="reuse (or create and keep) the cluster under this FIRELANE_HOME: "
                                                  "the district is loaded only when its tables are empty")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed (apt-get install wrk)")

    home = private_home(args.home)
    keep = args.keep or args.home is not None
    server = None
    workdir = Path(tempfile.mkdtemp(prefix="firelane-wrk-"))
    try:
        state, token, paths, scripts = prepare(args, home, workdir)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        base_env = {**os.environ, "FIRELANE_HOME": str(home)}
        load_before = load_line()
        results: dict[str, dict] = {}

        def warmup(clients: int) -> int:
            return 2 if clients == 1 else args.warmup

        def app_runs(label: str, names: tuple[str, ...]) -> None:
            sample = httpx.get(base + paths["bbox"][0], headers={"Authorization": f"Bearer {token}"}).json()
            print(f"a bbox page returns {sample['numberReturned']} features", flush=True)
            for name in names:
                for clients in (1, args.clients) if name != "zipf" else (args.clients,):
                    key = f"app {LABELS[name]}{label}" + (" x1" if clients == 1 else "")
                    results[key] = run_wrk(base, paths[name], token, clients=clients, seconds=args.seconds,
                                           workdir=workdir, warmup=warmup(clients))
                    print(f"  {key}: {results[key]}", flush=True)

        if args.only != "postgres":
            # the tile cache off first: every tile built by PostGIS (the cold-cache figure), then on
            server = start_server(base_env, port=port, workers=args.workers, FIRELANE_API_TILE_CACHE_MB="0")
            app_runs("", ("bbox", "tile"))
            stop_server(server)
            server = start_server(base_env, port=port, workers=args.workers)
            app_runs(" cached", ("tile", "zipf"))
            stop_server(server)
            server = None
        if args.only != "app":
            for name in ("bbox", "tile", "zipf"):
                for clients in (1, args.clients):
                    if name == "zipf" and clients == 1:
                        continue
                    key = f"postgres {LABELS[name]}" + (" x1" if clients == 1 else "")
                    results[key] = run_pgbench(state, scripts[name], clients=clients, seconds=args.seconds,
                                               workdir=workdir, warmup=warmup(clients))
                    print(f"  {key}: {results[key]}", flush=True)
        report(args, results, load_before)
    finally:
        if server is not None:
            stop_server(server)
        shutil.rmtree(workdir, ignore_errors=True)
        if not keep:
            pgcluster.destroy()
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
