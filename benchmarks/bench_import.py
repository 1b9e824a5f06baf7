"""Benchmark of `firelane import` (read + full validation + COPY write) against plain loads of the same file.

Builds an m-scale-like GeoPackage: the Yinzhou m-scale sample's buildings and obstructions
(gis.sample.generate(district="yinzhou", scale="m", seed=1), when that works) or ~100k synthetic building
polygons in compounds near Ningbo. Streets and compounds go into a throwaway managed PostGIS first (so the
import derives compound/street links as it does in production). Then, in the same run, times:

- ours: `gis.importer.import_file` (reads, validates every row, transforms, COPY-writes through gis.store,
  derives links, audit triggers) into the emptied layer;
- ogr2ogr: `ogr2ogr -f PostgreSQL` of the same file into a scratch table (GDAL's COPY path, GiST index);
- geopandas: `geopandas.read_file` + `GeoDataFrame.to_postgis` into a scratch table (+ GiST index);
- ogr2ogr → layer (extra information, not the target): the plain ogr2ogr COPY load into a staging table, then
  one `INSERT ... SELECT` into the emptied layer table in the same run, so the rows pay the layer's CHECK
  constraints (incl. ST_IsValid), indexes and audit trigger as ours do. GDAL validates nothing and derives no
  links (compound_id stays NULL, so the foreign key is never looked up). A direct `ogr2ogr -append` into the
  layer is not used: GDAL falls back to one INSERT per feature for tables with column defaults (~20x slower).

- server floor (extra information): the rows our import wrote, dumped with COPY TO and replayed into the
  emptied layer with exactly the import's bulk-path statements (lock, drop plain indexes, set-based foreign-key
  check, one COPY per 8,192 rows, index rebuilds) from a ready buffer: what PostgreSQL alone spends on the
  rows, with no reading, validation or encoding in Python. ours can approach it, never beat it.

Prints features/s for each and the ratios (peer time / our time; > 1 means ours is faster than the peer), then
the CPU budget of ours, ogr2ogr and geopandas: client CPU (this process with its threads, or the ogr2ogr
subprocess) and server CPU (every process of the managed cluster, exited backends included), medians of the
runs. CPU seconds move far less than wall time on a shared machine, and with two cores a load cannot finish
in less than half its total CPU.

    .venv/bin/python benchmarks/bench_import.py [--features 100000] [--repeat 3] [--home DIR]
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely
from sqlalchemy import text

from gis import migrate, pgcluster, scope
from gis.config import clear_caches
from gis.db import owner_engine, raw_connection, reset_engine, transaction
from gis.importer import import_file
from gis.sample import generate
from gis.store import _COPY_CHUNK_ROWS, bulk_load, write_frame


def synthesise(n: int, *, seed: int = 1):
    """(streets, compounds, {layer: frame}) with ~n building polygons, 40 per compound, near Ningbo."""
    rng = np.random.default_rng(seed)
    per = 40
    side = int(np.ceil(np.sqrt(n / per)))
    x0, y0, step = 121.40, 29.75, 0.006
    gx, gy = np.meshgrid(np.arange(side), np.arange(side))
    ix, iy = gx.ravel(), gy.ravel()
    codes = [f"3302120{i:02d}" for i in range(1, 5)]
    half = side * step / 2
    streets = gpd.GeoDataFrame({"ref": codes, "name": [f"街道{i}" for i in range(4)]},
                               geometry=[shapely.box(x0 + (i % 2) * half, y0 + (i // 2) * half,
                                                     x0 + (i % 2 + 1) * half, y0 + (i // 2 + 1) * half)
                                         for i in range(4)], crs=4490)
    cx0, cy0, size = x0 + ix * step + 0.0005, y0 + iy * step + 0.0005, step - 0.001
    crefs = np.array([f"C{i:05d}" for i in range(len(ix))])
    compounds = gpd.GeoDataFrame({"ref": crefs, "name": [f"小区{i}" for i in range(len(ix))]},
                                 geometry=shapely.box(cx0, cy0, cx0 + size, cy0 + size), crs=4490)
    k = np.repeat(np.arange(len(ix)), per)[:n]
    j = np.tile(np.arange(per), len(ix))[:n]
    bx = cx0[k] + (j % 8) * (size / 8) + 0.00005
    by = cy0[k] + (j // 8) * (size / 5) + 0.00005
    w = size / 8 - 0.0001 - rng.random(n) * 0.0001
    angle = rng.uniform(-10, 10, n)
    boxes = shapely.box(bx, by, bx + w, by + size / 5 - 0.0002)
    # rotate each footprint a little about its centre: real footprints are not axis-aligned
    coords, owner = shapely.get_coordinates(boxes), np.repeat(np.arange(n), 5)
    cx, cy = (bx + w / 2)[owner], (by + size / 10)[owner]
    t = np.radians(angle)[owner]
    dx, dy = coords[:, 0] - cx, coords[:, 1] - cy
    rotated = np.column_stack([cx + dx * np.cos(t) - dy * np.sin(t), cy + dx * np.sin(t) + dy * np.cos(t)])
    polys = shapely.polygons(shapely.linearrings(rotated, indices=owner))
    buildings = gpd.GeoDataFrame(
        {"ref": [f"B{i:06d}" for i in range(n)], "楼栋名称": [f"{i % per + 1}号楼" for i in k],
         "height_m": np.round(rng.uniform(6, 90, n), 1), "层数": rng.integers(2, 30, n),
         "use": rng.choice(["residential", "commercial", "mixed"], n),
         "耐火等级": rng.choice(["一级", "二级", "2", "3"], n), "物业": rng.choice(["甲物业", "乙物业", ""], n)},
        geometry=polys, crs=4490)
    return streets, compounds, {"buildings": buildings}


def sample_frames():
    """The m-scale Yinzhou sample's streets, compounds, buildings and obstructions, or None if unavailable."""
    try:
        sample = generate(district="yinzhou", scale="m", seed=1)
    except Exception as exc:  # noqa: BLE001 - any failure means: fall back to synthetic data
        print(f"gis.sample unavailable ({type(exc).__name__}: {exc}); using synthetic data")
        return None
    layers = getattr(sample, "layers", None) or {}
    get = (lambda name: layers.get(name)) if isinstance(layers, dict) else (lambda name: getattr(sample, name, None))
    frames = {name: get(name) for name in ("streets", "compounds", "buildings", "obstructions")}
    if frames["buildings"] is None or frames["compounds"] is None:
        print("gis.sample has no buildings/compounds frames; using synthetic data")
        return None
    return frames["streets"], frames["compounds"], {k: frames[k] for k in ("buildings", "obstructions")
                                                    if frames[k] is not None}


def _managed_cluster(parent: str | None = None):
    if parent:
        Path(parent).mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="firelane-bench-import-", dir=parent))
    os.environ["FIRELANE_HOME"] = str(home)
    os.environ.pop("FIRELANE_DATABASE_URL", None)

    clear_caches()
    pgcluster.start()
    reset_engine()
    scope.enter(scope.SYSTEM)  # the whole district, explicitly (row-level security)
    engine = owner_engine()  # the peers stage into tables of their own: the schema owner's (the app role has no DDL)
    migrate.upgrade(engine=engine)
    return home, engine


def _ogr_dsn(engine) -> str:
    u = engine.url
    return f"PG:host={u.host} port={u.port} dbname={u.database} user={u.username} password={u.password or ''}"


def _start() -> float:
    """A timed step's start: the collector first brought to the same state, so no step pays for another's."""
    gc.collect()
    return time.perf_counter()


def _postmaster() -> int | None:
    """The managed cluster's postmaster pid (first line of postmaster.pid), None if it cannot be read."""
    state = pgcluster.load_state()
    try:
        return int(Path(state.datadir, "postmaster.pid").read_text().split()[0]) if state else None
    except (OSError, ValueError, IndexError):
        return None


def _server_cpu(postmaster: int | None) -> float:
    """CPU seconds the whole cluster has used so far: its live processes, plus the exited backends (the CPU of
    reaped children, which the kernel adds to the postmaster's cutime/cstime). NaN where /proc cannot tell."""
    if postmaster is None:
        return float("nan")
    tick = os.sysconf("SC_CLK_TCK")

    def stat(pid: int | str) -> list[str] | None:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None  # exited meanwhile: its CPU is in the postmaster's cutime by now

    own = stat(postmaster)
    if own is None:
        return float("nan")
    total = sum(int(v) for v in own[11:15])  # utime, stime, cutime, cstime
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (f := stat(entry.name)) is not None and f[1] == str(postmaster):
            total += int(f[11]) + int(f[12])
    return total / tick


class _Cpu:
    """Wall time, client CPU (this process, all threads, plus reaped subprocesses such as ogr2ogr) and cluster
    CPU of one timed step: a CPU budget is steadier than wall time on a shared machine."""

    def __init__(self, postmaster: int | None):
        self.postmaster = postmaster
        self.client = self.server = self.wall = 0.0

    def __enter__(self) -> _Cpu:
        wall = _start()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        self._start = (wall, time.process_time() + children.ru_utime + children.ru_stime,
                       _server_cpu(self.postmaster))
        return self

    def __exit__(self, *exc) -> None:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall, client, server = self._start
        self.wall = time.perf_counter() - wall
        self.client = time.process_time() + children.ru_utime + children.ru_stime - client
        self.server = _server_cpu(self.postmaster) - server


def server_floor(engine, name: str) -> float:
    """Seconds PostgreSQL alone takes to bulk-load the rows `name` now holds, replayed as the import sends them.

    Dumps the written columns (all but the defaulted id/version/timestamps) with COPY TO, empties the layer and
    times the import's bulk path (`gis.store.bulk_load` around one COPY per 8,192 rows, into a temporary staging
    table and one INSERT ... SELECT when the layer is under row-level security) fed from that buffer. The layer ends with the same rows it had.
    """
    with engine.connect() as conn:
        cols = conn.execute(text(
            "SELECT attname FROM pg_attribute WHERE attrelid = CAST(:t AS regclass) AND attnum > 0 "
            "AND NOT attisdropped AND attname NOT IN ('id', 'version', 'created_at', 'updated_at') ORDER BY attnum"),
            {"t": name}).scalars().all()
        raw = raw_connection(conn)
        with raw.cursor() as cur, cur.copy(f"COPY (SELECT {', '.join(cols)} FROM {name} ORDER BY id) TO STDOUT") as cp:
            lines = b"".join(bytes(b) for b in cp).splitlines(keepends=True)
        conn.rollback()
    chunks = [b"".join(lines[i:i + _COPY_CHUNK_ROWS]) for i in range(0, len(lines), _COPY_CHUNK_ROWS)]
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {name}, audit_log"))
    started = _start()
    with transaction(engine=engine, user="bench") as conn:
        conn.execute(text(f"LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE"))
        raw = raw_connection(conn)
        # as the import does: under row-level security (no COPY FROM) through a temporary staging table
        secured = conn.execute(text("SELECT row_security_active(CAST(:t AS regclass))"), {"t": name}).scalar_one()
        target = f"firelane_stage_{name}" if secured else name
        if secured:
            raw.execute(f"CREATE TEMP TABLE {target} ON COMMIT DROP AS SELECT {', '.join(cols)} FROM {name} "
                        "WITH NO DATA")
        with bulk_load(conn, raw, name):
            for chunk in chunks:
                with raw.cursor() as cur, cur.copy(f"COPY {target} ({', '.join(cols)}) FROM STDIN") as cp:
                    cp.write(chunk)
            if secured:
                raw.execute(f"INSERT INTO {name} ({', '.join(cols)}) SELECT {', '.join(cols)} FROM {target}")
    return time.perf_counter() - started


def _best(times: list[float]) -> float:
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=100_000, help="synthetic building count")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--synthetic", action="store_true", help="skip gis.sample even if it works")
    parser.add_argument("--home", help="parent dir of the throwaway FIRELANE_HOME and files (default: system temp)")
    args = parser.parse_args()

    frames = None if args.synthetic else sample_frames()
    source = "gis.sample yinzhou m seed=1"
    if frames is None:
        frames, source = synthesise(args.features), f"synthetic ({args.features} buildings)"
    streets, compounds, layers = frames
    home, engine = _managed_cluster(args.home)
    work = Path(tempfile.mkdtemp(prefix="firelane-bench-files-", dir=args.home))
    try:
        with transaction(engine=engine, user="bench") as conn:
            if streets is not None:
                write_frame(conn, "streets", streets[[c for c in ("ref", "name") if c in streets.columns]
                                                    + [streets.geometry.name]].to_crs(4490))
            write_frame(conn, "compounds", compounds[[c for c in ("ref", "name") if c in compounds.columns]
                                                     + [compounds.geometry.name]].to_crs(4490))
        print(f"data: {source}; GDAL {pyogrio.__gdal_version_string__}, PostgreSQL via {engine.url.host}:"
              f"{engine.url.port}")
        rows, budgets = [], []
        postmaster = _postmaster()
        for name, frame in layers.items():
            path = work / f"{name}.gpkg"
            frame = frame.drop(columns=[c for c in ("id", "compound_id", "version", "created_at", "updated_at",
                                                    "updated_by", "extra", "compound_ref", "street_code")
                                        if c in frame.columns])
            pyogrio.write_dataframe(frame.to_crs(4490), path, layer=name)
            n = len(frame)
            ours, ogr, gpdt, ogr_layer, dry, phases, floor = [], [], [], [], [], [], []
            cpu: dict[str, list[tuple[float, float]]] = {"ours": [], "ogr2ogr": [], "geopandas": []}
            for _ in range(args.repeat):
                t = _start()
                import_file(path, layer=name, dry_run=True, engine=engine)
                dry.append(time.perf_counter() - t)

                with engine.begin() as conn:  # every load starts from an empty layer, like ogr2ogr -overwrite
                    conn.execute(text(f"TRUNCATE {name}, audit_log"))
                with _Cpu(postmaster) as step:
                    report = import_file(path, layer=name, user="bench", engine=engine)
                ours.append(step.wall)
                cpu["ours"].append((step.client, step.server))
                phases.append(report.timings)
                assert report.inserted == n, report.summary()
                with engine.connect() as conn:
                    linked = conn.execute(text(f"SELECT count(*) FILTER (WHERE compound_id IS NOT NULL), count(*) "
                                               f"FROM {name}")).one()
                assert linked[1] == n, linked
                floor.append(server_floor(engine, name))

                with _Cpu(postmaster) as step:
                    subprocess.run(["ogr2ogr", "-f", "PostgreSQL", _ogr_dsn(engine), str(path), name,
                                    "-nln", f"scratch_ogr_{name}", "-overwrite", "-lco", "GEOMETRY_NAME=geom",
                                    "--config", "PG_USE_COPY", "YES"], check=True, capture_output=True)
                ogr.append(step.wall)
                cpu["ogr2ogr"].append((step.client, step.server))

                with _Cpu(postmaster) as step:
                    gdf = gpd.read_file(path, engine="pyogrio", use_arrow=True)
                    gdf.to_postgis(f"scratch_gpd_{name}", engine, if_exists="replace", index=False)
                    with engine.begin() as conn:
                        conn.execute(text(f"CREATE INDEX ON scratch_gpd_{name} USING gist (geometry)"))
                gpdt.append(step.wall)
                cpu["geopandas"].append((step.client, step.server))

                with engine.begin() as conn:
                    conn.execute(text(f"TRUNCATE {name}, audit_log"))
                t = _start()
                subprocess.run(["ogr2ogr", "-f", "PostgreSQL", _ogr_dsn(engine), str(path), name,
                                "-nln", f"scratch_stage_{name}", "-overwrite", "-nlt", "PROMOTE_TO_MULTI",
                                "-lco", "GEOMETRY_NAME=geom",
                                "-lco", "SPATIAL_INDEX=NONE", "--config", "PG_USE_COPY", "YES"],
                               check=True, capture_output=True)
                with engine.begin() as conn:
                    staged = conn.execute(text(  # the staged columns the layer has, cast to the layer's types
                        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                        "JOIN information_schema.columns s ON s.table_name = :stage AND s.column_name = a.attname "
                        "WHERE a.attrelid = CAST(:layer AS regclass) AND a.attnum > 0 AND a.attname <> 'id'"),
                        {"stage": f"scratch_stage_{name}", "layer": name}).all()
                    conn.execute(text(f"INSERT INTO {name} ({', '.join(c for c, _ in staged)}) SELECT "
                                      f"{', '.join(f'CAST({c} AS {t})' for c, t in staged)} FROM scratch_stage_{name}"))
                ogr_layer.append(time.perf_counter() - t)
            with engine.connect() as conn:
                for table in (f"scratch_ogr_{name}", f"scratch_gpd_{name}", name):
                    assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == n
            rows.append((name, n, _best(ours), _best(ogr), _best(gpdt), linked[0], statistics.median(ours), _best(dry),
                         _best(ogr_layer), _best(floor)))
            budgets.append((name, {peer: (statistics.median(c for c, _ in v), statistics.median(s for _, s in v))
                                   for peer, v in cpu.items()}))
            fastest = phases[ours.index(_best(ours))]
            print(f"{name}: ours by phase (fastest run): " + ", ".join(f"{k} {v:.2f} s" for k, v in fastest.items()))
        print(f"\n{'layer':<14}{'features':>9}  {'ours f/s':>10}  {'ogr2ogr f/s':>11}  {'geopandas f/s':>13}"
              f"  {'ours/ogr2ogr':>12}  {'ours/geopandas':>14}  {'ogr2ogr→layer f/s':>17}  {'ours/ogr2ogr→layer':>18}")
        for name, n, ours_s, ogr_s, gpd_s, _linked, _median, _dry, ogr_l, _floor in rows:
            print(f"{name:<14}{n:>9}  {n / ours_s:>10.0f}  {n / ogr_s:>11.0f}  {n / gpd_s:>13.0f}"
                  f"  {ogr_s / ours_s:>12.2f}  {gpd_s / ours_s:>14.2f}  {n / ogr_l:>17.0f}  {ogr_l / ours_s:>18.2f}")
        print("\nbest of", args.repeat, "runs each; ours includes validation, CRS handling, link derivation "
              "(compound_id/street_code), constraints, foreign key and audit rows; ratios > 1 mean ours is faster. "
              "The target is ours/ogr2ogr >= 1 (plain loads); ogr2ogr→layer is GDAL into the constrained layer "
              "table, for information.")
        for name, n, ours_s, ogr_s, gpd_s, linked, median, dry_s, ogr_l, floor_s in rows:
            print(f"{name}: ours {ours_s:.2f} s (median {median:.2f} s; read + validation alone, --dry-run: "
                  f"{dry_s:.2f} s = {n / dry_s:.0f} f/s), ogr2ogr {ogr_s:.2f} s, geopandas {gpd_s:.2f} s, "
                  f"ogr2ogr→layer {ogr_l:.2f} s; {linked}/{n} linked to a compound")
            print(f"{name}: server floor (PostgreSQL alone, the same rows replayed through the bulk path, no Python "
                  f"work) {floor_s:.2f} s = {n / floor_s:.0f} f/s: floor/ogr2ogr time {floor_s / ogr_s:.2f}, "
                  f"ours/floor time {ours_s / floor_s:.2f}")
        print("\nCPU budgets (median of the runs): client = this process or ogr2ogr; server = every process of the "
              "cluster (backends, WAL writer, checkpointer...)")
        for name, budget in budgets:
            print(f"{name}: " + "; ".join(f"{peer} client {c:.2f} s + server {s:.2f} s = {c + s:.2f} s"
                                          for peer, (c, s) in budget.items())
                  + f"; server CPU ours/ogr2ogr {budget['ours'][1] / budget['ogr2ogr'][1]:.2f}")
    finally:
        engine.dispose()
        reset_engine()
        pgcluster.destroy()
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
