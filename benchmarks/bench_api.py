"""Benchmark of the HTTP service against PostgreSQL itself: bbox pages of 100 features and vector tiles.

Loads the m-scale Yinzhou sample (gis.sample.generate, when available) or a synthetic district of ~100k features
into a throwaway managed PostGIS, serves the app with uvicorn (2 workers) on 127.0.0.1, drives it with wrk (or a
bounded httpx load generator when wrk is not installed) at 50 concurrent clients, then answers the same queries
straight from PostgreSQL with psycopg at the same concurrency. Prints requests/s, p50 and p99 for both.

    .venv/bin/python benchmarks/bench_api.py [--seconds 20] [--clients 50] [--workers 2] [--tile-zoom 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BBOX_DEG = 0.012  # a bbox window holding about four compounds (> 100 buildings: full pages of 100)
TARGETS_MS = {"bbox": 100.0, "tile": 50.0}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def synthesise(engine, *, seed: int = 1) -> dict[str, int]:
    """~100k features on a grid near Ningbo: 20 streets, 2,500 compounds, 75k buildings, 20k hydrants, 5k lanes."""
    import geopandas as gpd
    import numpy as np
    import shapely

    from gis.db import transaction
    from gis.store import write_frame

    rng = np.random.default_rng(seed)
    x0, y0, nx, ny, step = 121.40, 29.75, 50, 50, 0.006
    sx, sy = nx * step / 5, ny * step / 4
    street_codes = [f"3302120{i:02d}" for i in range(1, 21)]
    streets = gpd.GeoDataFrame(
        {"ref": street_codes, "name": [f"街道{i}" for i in range(20)]},
        geometry=[shapely.box(x0 + (i % 5) * sx, y0 + (i // 5) * sy, x0 + (i % 5 + 1) * sx, y0 + (i // 5 + 1) * sy)
                  for i in range(20)], crs=4490)
    ix, iy = np.meshgrid(np.arange(nx), np.arange(ny))
    ix, iy = ix.ravel(), iy.ravel()
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
    from sqlalchemy import text

    from gis.layers import LAYERS

    if not synthetic:
        try:
            from gis.sample import generate, load_sample

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


def request_sets(engine, *, n: int, zoom: int, seed: int = 7) -> dict[str, list[str]]:
    """Paths for the bbox-page and tile workloads, centred on random buildings (so each hits data)."""
    from sqlalchemy import text

    with engine.connect() as conn:
        pts = conn.execute(text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM buildings "
            "ORDER BY random() LIMIT :n) s"), {"n": n}).all()
    rng = random.Random(seed)
    bbox, tiles = [], []
    for x, y in pts:
        ox, oy = rng.uniform(0, BBOX_DEG), rng.uniform(0, BBOX_DEG)
        bbox.append(f"/collections/buildings/items?limit=100&bbox={x - ox:.6f},{y - oy:.6f},"
                    f"{x - ox + BBOX_DEG:.6f},{y - oy + BBOX_DEG:.6f}")
        k = 1 << zoom
        tx = int((x + 180) / 360 * k)
        ty = int((1 - math.asinh(math.tan(math.radians(y))) / math.pi) / 2 * k)
        tiles.append(f"/tiles/buildings/{zoom}/{tx}/{ty}.mvt")
    return {"bbox": bbox, "tile": tiles}


# --- load generators --------------------------------------------------------------------------------------------

_WRK_LUA = """
local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
local counter = math.random(#paths)
request = function()
  counter = counter % #paths + 1
  return wrk.format("GET", paths[counter], {["Authorization"] = os.getenv("BENCH_AUTH")})
end
"""


def _ms(value: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", value)
    num, unit = float(m.group(1)), m.group(2)
    return num / 1000 if unit == "us" else num * 1000 if unit == "s" else num


def run_wrk(base: str, paths: list[str], token: str, *, clients: int, seconds: int, workdir: Path) -> dict:
    path_file = workdir / f"paths-{time.monotonic_ns()}.txt"
    path_file.write_text("\n".join(paths) + "\n")
    script = workdir / "bench.lua"
    script.write_text(_WRK_LUA)
    env = {**os.environ, "BENCH_PATHS": str(path_file), "BENCH_AUTH": f"Bearer {token}"}
    out = subprocess.run(["wrk", "-t2", f"-c{clients}", f"-d{seconds}s", "--timeout", "10s", "--latency",
                          "-s", str(script), base], capture_output=True, text=True, env=env, check=True).stdout
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, flags=re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "p50": _ms(lat["50"]),
            "p99": _ms(lat["99"]), "requests": total, "errors": int(non2xx.group(1)) if non2xx else 0,
            "tool": "wrk"}


async def _httpx_load(base: str, paths: list[str], token: str, *, clients: int, total: int) -> dict:
    import httpx

    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[str] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(paths[i % len(paths)])
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, limits=limits,
                                 timeout=30) as client:

        async def worker() -> None:
            nonlocal errors
            while not queue.empty():
                path = queue.get_nowait()
                t0 = time.perf_counter()
                r = await client.get(path)
                latencies.append((time.perf_counter() - t0) * 1000)
                errors += r.status_code >= 300 and r.status_code != 204

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return _summary(latencies, elapsed, errors, "httpx")


def _summary(latencies: list[float], elapsed: float, errors: int, tool: str) -> dict:
    q = statistics.quantiles(latencies, n=100)
    return {"rps": len(latencies) / elapsed, "p50": q[49], "p99": q[98], "requests": len(latencies),
            "errors": errors, "tool": tool}


async def _direct(dsn: str, queries: list[tuple[str, str | None, dict]], *, clients: int, total: int) -> dict:
    """The same SQL straight from PostgreSQL: one psycopg connection per client, a fixed number of requests."""
    import psycopg

    conns = [await psycopg.AsyncConnection.connect(dsn, autocommit=True) for _ in range(clients)]
    latencies: list[float] = []
    queue: asyncio.Queue[tuple[str, str | None, dict]] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(queries[i % len(queries)])

    async def worker(conn) -> None:
        while not queue.empty():
            sql, count_sql, params = queue.get_nowait()
            t0 = time.perf_counter()
            cur = await conn.execute(sql, params)
            row = await cur.fetchone()
            if count_sql is not None and row[1] > params["limit"]:
                await (await conn.execute(count_sql, params)).fetchone()
            latencies.append((time.perf_counter() - t0) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - started
    for c in conns:
        await c.close()
    return _summary(latencies, elapsed, 0, "psycopg")


def _pyformat(sql: str) -> str:
    return re.sub(r"(?<!:):(\w+)", r"%(\1)s", sql)


def direct_queries(paths: dict[str, list[str]]) -> dict[str, list[tuple[str, str | None, dict]]]:
    """The SQL the app runs for each path (same builders), in psycopg's parameter style."""
    from urllib.parse import parse_qsl, urlsplit

    from api.auth import Principal
    from api.features import page_sql, parse_items_query
    from api.tiles import tile_sql
    from gis.layers import LAYERS

    admin = Principal(username="bench", role="admin")
    out: dict[str, list] = {"bbox": [], "tile": []}
    for path in paths["bbox"]:
        q = parse_items_query(LAYERS["buildings"], dict(parse_qsl(urlsplit(path).query)))
        page, count, params = page_sql(LAYERS["buildings"], q, admin)
        out["bbox"].append((_pyformat(page), _pyformat(count), params))
    tsql = _pyformat(tile_sql(LAYERS["buildings"], None))
    for path in paths["tile"]:
        z, x, y = (int(v) for v in re.findall(r"/(\d+)/(\d+)/(\d+)\.mvt", path)[0])
        out["tile"].append((tsql, None, {"z": z, "x": x, "y": y}))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20, help="wrk duration per workload")
    parser.add_argument("--requests", type=int, default=3000, help="requests per workload (httpx, psycopg)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--tile-zoom", type=int, default=16)
    parser.add_argument("--synthetic", action="store_true", help="skip gis.sample: synthetic ~100k features")
    parser.add_argument("--keep", action="store_true", help="keep the throwaway cluster (debugging)")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="firelane-bench-"))
    os.environ["FIRELANE_HOME"] = str(home)
    os.environ.pop("FIRELANE_DATABASE_URL", None)
    from sqlalchemy import text

    from gis import migrate, pgcluster
    from gis.config import clear_caches
    from gis.db import get_engine

    clear_caches()
    server = None
    try:
        state = pgcluster.start()
        engine = get_engine()
        migrate.upgrade(engine=engine)
        t0 = time.perf_counter()
        source, counts = load_data(engine, synthetic=args.synthetic)
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        print(f"loaded {sum(counts.values()):,} features ({source}) in {time.perf_counter() - t0:.0f}s: {counts}",
              flush=True)

        from api.auth import issue_token
        from api.users import create_user

        create_user("bench-admin", "bench-password-1", role="admin")
        with engine.connect() as conn:
            uid = conn.execute(text("SELECT id FROM users WHERE username = 'bench-admin'")).scalar_one()
        token, _ = issue_token(uid, name="bench")
        paths = request_sets(engine, n=2000, zoom=args.tile_zoom)

        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "FIRELANE_HOME": str(home)}
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host", "127.0.0.1",
             "--port", str(port), "--workers", str(args.workers), "--log-level", "warning", "--no-access-log"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import httpx

        for _ in range(300):
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        sample = httpx.get(base + paths["bbox"][0], headers={"Authorization": f"Bearer {token}"}).json()
        print(f"a bbox page returns {sample['numberReturned']} features", flush=True)
        for path in paths["bbox"][:50] + paths["tile"][:50]:  # warm up caches and connections
            httpx.get(base + path, headers={"Authorization": f"Bearer {token}"})

        load_before = " ".join(f"{v:.1f}" for v in os.getloadavg())
        results: dict[str, dict] = {}
        for name in ("bbox", "tile"):  # one client: the app's own cost per request, free of queueing
            results[f"app {name} x1"] = asyncio.run(_httpx_load(base, paths[name], token, clients=1, total=300))
        workdir = Path(tempfile.mkdtemp(prefix="firelane-wrk-"))
        for name in ("bbox", "tile"):
            if shutil.which("wrk"):
                results[f"app {name}"] = run_wrk(base, paths[name], token, clients=args.clients,
                                                 seconds=args.seconds, workdir=workdir)
            else:
                results[f"app {name}"] = asyncio.run(_httpx_load(base, paths[name], token, clients=args.clients,
                                                                 total=args.requests))
        server.terminate()
        server.wait(timeout=30)
        server = None
        dsn = f"host=127.0.0.1 port={state.port} user=firelane password={state.password} dbname=firelane"
        queries = direct_queries(paths)
        for name in ("bbox", "tile"):
            results[f"postgres {name} x1"] = asyncio.run(_direct(dsn, queries[name], clients=1, total=300))
            results[f"postgres {name}"] = asyncio.run(_direct(dsn, queries[name], clients=args.clients,
                                                              total=args.requests))

        print(f"\n{args.clients} concurrent clients (x1: one client, sequential), {args.workers} uvicorn workers; "
              f"server, database and load generator share this machine's cores (load before: {load_before})")
        print(f"{'workload':<20}{'tool':<9}{'requests':>9}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
        for name, r in results.items():
            print(f"{name:<20}{r['tool']:<9}{r['requests']:>9}{r['rps']:>9.0f}{r['p50']:>9.1f}{r['p99']:>9.1f}"
                  f"{r['errors']:>8}")
        for name in ("bbox", "tile"):
            app, pg = results[f"app {name}"], results[f"postgres {name}"]
            verdict = "meets" if app["p99"] < TARGETS_MS[name] else "misses"
            print(f"{name}: app/PostgreSQL throughput ratio {app['rps'] / pg['rps']:.2f}; p99 {app['p99']:.1f} ms "
                  f"{verdict} the {TARGETS_MS[name]:.0f} ms target")
        print(json.dumps(results))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if not args.keep:
            pgcluster.destroy()
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
