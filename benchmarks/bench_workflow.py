"""Benchmark of the rectification workflow: work lists and the hazards API against PostgreSQL alone.

Loads the Yinzhou sample (gis.sample, default scale m) into a throwaway managed PostGIS (or reuses one with --home),
runs the checks into the ledger, then gives every hazard a synthetic history: about 10 events each (assigned,
rectifying, rectified, reopened, ...), one event in 10 carrying a photo id, and a spread of states, departments,
units and deadlines (past and future). Serves the app with uvicorn (one worker) on 127.0.0.1 and drives it with one
client after an unmeasured warm-up. The client is the standard library's http.client on one keep-alive connection:
it sends each request and reads its whole body, nothing more, so what it times is the API's work plus the loopback,
as the psycopg floor's time is PostgreSQL's work plus the same loopback (httpx, used before, spent about 0.6-0.9 ms
of its own Python per request on top: the client's cost, not the API's). The rows:
- street page: GET /map/streets/{code} (the street office's page with its work panel), per street;
- street work list: GET /hazards/worklist?street=S&status=<needs work>&limit=100 (what the panel loads);
- department list: GET /hazards/worklist?department=D&limit=100 and GET /hazards/workload?by=department;
- API page of 100 with filters: a mix of status / department / street / overdue / family / severity filters;
- postgres: the very SQL the API page runs (gis.campaign.workflow.list_sql: the page's JSON is built by PostgreSQL),
  prepared, from one psycopg connection (the floor: what PostgreSQL alone needs for the same page, result fetched),
  timed in turns with the API page request by request (the machine is shared: both sides see the same load);
- http floor: GET /healthz on the same connection (the HTTP round trip, the middleware stack, no database);
- server's own time of the API page: duration_ms of its access-log lines (the server's stderr, kept in FIRELANE_HOME).
Prints p50/p99 latency (client-measured: server time plus the loopback), body sizes (raw and gzip), the API/PostgreSQL
ratio and the verdict against the targets (pages < 300 ms and < 1 MB; API within 2x of PostgreSQL alone).

    .venv/bin/python benchmarks/bench_workflow.py [--scale m] [--requests 200] [--home DIR]
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import psycopg
from _support import (
    ROOT,
    bench_admin_token,
    free_port,
    load_line,
    mark_sample,
    open_database,
    private_home,
    reusable_sample,
)
from sqlalchemy import text
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

from gis import pgcluster, scope
from gis.campaign import lifecycle as lc
from gis.campaign import workflow as wf
from gis.campaign.departments import DEPARTMENTS
from gis.checks.runner import run_checks
from gis.db import database_url
from gis.sample import generate, load_sample

TARGET_PAGE_MS = 300.0
TARGET_PAGE_BYTES = 1_000_000
TARGET_RATIO = 2.0
EVENTS_PER_HAZARD = 10


def synthetic_history(engine, *, seed: int = 1) -> dict[str, int]:
    """States, assignments and deadlines spread over the ledger, and ~10 events per hazard (set-based SQL)."""
    states = list(lc.STATES)
    depts = list(DEPARTMENTS)
    cycle = ["assigned", "rectifying", "rectified", "reopened", "assigned", "rectifying", "rectified", "verified",
             "closed"]
    with engine.begin() as conn:
        conn.execute(text("SELECT setseed(:s)"), {"s": (seed % 100) / 100})
        conn.execute(text("""
            UPDATE hazards SET
                status = (CAST(:states AS text[]))[1 + (id % 8)],
                department = (CAST(:depts AS text[]))[1 + ((id / 8) % CAST(:nd AS int))],
                responsible_unit = '物业公司' || (id % 97), person = '责任人' || (id % 13),
                deadline = CURRENT_DATE + CAST((id % 121) - 60 AS int),
                assigned_at = now() - interval '30 days'
            WHERE status IS NOT NULL
        """), {"states": states, "depts": depts, "nd": len(depts)})
        n = conn.execute(text(f"""
            INSERT INTO hazard_events (hazard_id, at, by, from_state, to_state, note, department, unit, deadline,
                                       photos, evidence)
            SELECT h.id, now() - make_interval(days => {EVENTS_PER_HAZARD} - g), 'bench',
                   CASE WHEN g = 1 THEN 'open' ELSE (CAST(:cycle AS text[]))[g - 1] END,
                   (CAST(:cycle AS text[]))[g], '第' || g || '步 step ' || g, h.department, h.responsible_unit,
                   h.deadline,
                   CASE WHEN (h.id + g) % 10 = 0 THEN ARRAY[h.id * 10 + g] ELSE '{{}}'::bigint[] END,
                   CASE WHEN g = 8 THEN 'reinspection' END
            FROM hazards h CROSS JOIN generate_series(1, {EVENTS_PER_HAZARD - 1}) g
            WHERE h.status IS NOT NULL
        """), {"cycle": cycle}).rowcount
        conn.execute(text("ANALYZE hazards"))
        conn.execute(text("ANALYZE hazard_events"))
        counts = dict(conn.execute(text(
            "SELECT (SELECT count(*) FROM hazards WHERE status IS NOT NULL) AS hazards, "
            "(SELECT count(*) FROM hazard_events) AS events, "
            "(SELECT count(*) FROM hazard_events WHERE cardinality(photos) > 0) AS with_photo")).one()._mapping)
    return {**counts, "inserted": n}


def prepare(args: argparse.Namespace) -> tuple[str, dict]:
    """Cluster, district, checks into the ledger, the synthetic history, a bench admin token."""
    engine = open_database()
    reused = reusable_sample(engine, district="yinzhou", scale=args.scale, seed=1)
    with engine.connect() as conn:
        hazards = conn.execute(text("SELECT count(*) FROM hazards")).scalar_one()
        events = conn.execute(text("SELECT count(*) FROM hazard_events")).scalar_one()
    if not (reused and hazards):
        t = time.perf_counter()
        if not reused:
            load_sample(generate(district="yinzhou", scale=args.scale, seed=1), engine=engine)
            mark_sample(district="yinzhou", scale=args.scale, seed=1)
        print(f"loaded the yinzhou {args.scale} sample in {time.perf_counter() - t:.0f} s", flush=True)
        t = time.perf_counter()
        result = run_checks(engine=engine, workers=args.check_workers, user="bench")
        print(f"checked into the ledger in {time.perf_counter() - t:.0f} s: {result.ledger}", flush=True)
    if events < EVENTS_PER_HAZARD:
        print(f"history: {synthetic_history(engine)}", flush=True)
    token = bench_admin_token(engine)
    with engine.connect() as conn:
        facts = {
            "streets": conn.execute(text("SELECT street_code, count(*) FROM hazards WHERE status IS NOT NULL AND "
                                         "street_code IS NOT NULL GROUP BY 1 ORDER BY 2 DESC")).all(),
            "departments": conn.execute(text("SELECT DISTINCT department FROM hazards WHERE department IS NOT NULL"
                                             )).scalars().all(),
            "hazards": conn.execute(text("SELECT count(*) FROM hazards WHERE status IS NOT NULL")).scalar_one(),
            "events": conn.execute(text("SELECT count(*) FROM hazard_events")).scalar_one(),
        }
    engine.dispose()
    return token, facts


def filter_mix(facts: dict, n: int, seed: int = 7) -> list[dict]:
    """n filter sets for the API page of 100: the combinations a work list uses."""
    rng = random.Random(seed)
    streets = [s for s, _ in facts["streets"]]
    work = sorted(lc.NEEDS_WORK)
    kinds = [
        lambda: {"street": rng.choice(streets), "status": work},
        lambda: {"department": rng.choice(facts["departments"])},
        lambda: {"department": rng.choice(facts["departments"]), "overdue": True},
        lambda: {"street": rng.choice(streets), "family": rng.choice(["lanes", "aerial", "hydrants", "parking"])},
        lambda: {"status": [rng.choice(list(lc.STATES))], "severity_min": rng.choice([1.0, 3.0, 5.0])},
    ]
    return [kinds[i % len(kinds)]() for i in range(n)]


def _query(f: dict) -> str:
    params = [(k, str(v).lower() if isinstance(v, bool) else v) for k, v in f.items() if k != "status"]
    params += [("status", s) for s in f.get("status", [])]
    return urlencode([*params, ("limit", 100)])


def _stats(ms: list[float]) -> dict[str, float]:
    ms = sorted(ms)
    return {"p50": statistics.median(ms), "p99": ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))],
            "n": len(ms)}


class Client:
    """One keep-alive HTTP/1.1 connection (http.client) with fixed headers: GET sends the request and reads the
    whole body, and does nothing else per request (no cookie jar, URL model or event hooks to pay for)."""

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.conn = http.client.HTTPConnection(host, port, timeout=60)
        self.headers = headers

    def get(self, path: str) -> bytes:
        try:
            self.conn.request("GET", path, headers=self.headers)
            r = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # the server closed the idle connection (uvicorn's keep-alive timeout, 5 s): a new one, once
            self.conn.close()
            self.conn.request("GET", path, headers=self.headers)
            r = self.conn.getresponse()
        body = r.read()
        if r.status != 200:
            raise SystemExit(f"GET {path}: {r.status} {body[:300]!r}")
        return body

    def close(self) -> None:
        self.conn.close()


def time_http(client: Client, paths: list[str], *, warmup: int = 10) -> tuple[dict[str, float], int, int]:
    """p50/p99 of GETs of `paths` (one client, keep-alive) and the largest body raw and gzipped."""
    for p in paths[:warmup]:
        client.get(p)
    ms, bodies = [], []
    for p in paths:
        t = time.perf_counter()
        body = client.get(p)
        ms.append((time.perf_counter() - t) * 1000)
        bodies.append(body)
    largest = max(bodies, key=len)
    return _stats(ms), len(largest), len(gzip.compress(largest, 5))


def server_ms(log: Path, path: str, n: int) -> dict[str, float]:
    """p50/p99 of the server's own time (access log duration_ms) of the last `n` requests to `path`."""
    ms = []
    for line in log.read_text(encoding="utf-8").splitlines():
        if line.startswith("{") and f'"path": "{path}"' in line:
            ms.append(json.loads(line)["duration_ms"])
    return _stats(ms[-n:])


class PostgresFloor:
    """The API page's own SQL straight from PostgreSQL: one psycopg connection under the API client's scope (an
    admin: all streets), each filter set's statement prepared, rows fetched."""

    def __init__(self, filters: list[dict]) -> None:
        dialect = PGDialect_psycopg()
        self.statements = []
        for f in filters:
            flt = wf.HazardFilter(status=tuple(f.get("status", ())), street=f.get("street"),
                                  department=f.get("department"), overdue=f.get("overdue"), family=f.get("family"),
                                  severity_min=f.get("severity_min"))
            sql, params = wf.list_sql(flt, limit=100, role="admin")  # the bench client is an admin
            self.statements.append((str(text(sql).compile(dialect=dialect)), params))  # binds as %(name)s
        self.conn = psycopg.connect(database_url().replace("postgresql+psycopg://", "postgresql://"))
        scope.apply(self.conn, scope.unscoped("admin"))  # the bench client's scope: without it RLS returns no rows

    def run(self, i: int) -> int:
        """Run filter set `i`'s page; the number of hazards it fetched."""
        sql, params = self.statements[i]
        rows = self.conn.execute(sql, params, prepare=True).fetchall()
        return rows[0][1]

    def ids(self, i: int) -> list[int]:
        """The hazard ids of filter set `i`'s page, in order (untimed: to check the API returned the same rows)."""
        sql, params = self.statements[i]
        row = self.conn.execute(sql, params, prepare=True).fetchone()
        assert row is not None, "the page's SQL returns exactly one row (its JSON document)"
        (doc,) = row[:1]
        return [h["id"] for h in json.loads(doc)]

    def close(self) -> None:
        self.conn.close()


def time_api_and_postgres(client: Client, paths: list[str], floor: PostgresFloor, *, warmup: int = 10
                          ) -> tuple[tuple[dict[str, float], int, int], dict[str, float]]:
    """The API page of each filter set and the same page straight from PostgreSQL, timed in turns (API first on
    even requests, PostgreSQL first on odd ones), so that both sides see the same load on a shared machine."""
    for i in range(min(warmup, len(paths))):
        client.get(paths[i])
        floor.run(i)
    api_ms, pg_ms, bodies, rows = [], [], [], []
    for i, path in enumerate(paths):
        for side in ("api", "pg") if i % 2 == 0 else ("pg", "api"):
            t = time.perf_counter()
            if side == "api":
                bodies.append(client.get(path))
                api_ms.append((time.perf_counter() - t) * 1000)
            else:
                rows.append(floor.run(i))
                pg_ms.append((time.perf_counter() - t) * 1000)
    fetched = sum(rows)
    if not fetched:
        raise SystemExit("the PostgreSQL floor fetched no hazards: its scope is not the API client's")
    for i, (body, n) in enumerate(zip(bodies, rows, strict=True)):  # checked untimed: the same rows both sides
        if [h["id"] for h in json.loads(body)["hazards"]] != floor.ids(i):
            raise SystemExit(f"GET {paths[i]} returned other hazards than the same SQL in PostgreSQL ({n} there)")
    largest = max(bodies, key=len)
    return (_stats(api_ms), len(largest), len(gzip.compress(largest, 5))), {**_stats(pg_ms),
                                                                          "rows": fetched / len(pg_ms)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=("s", "m", "l"), default="m")
    parser.add_argument("--requests", type=int, default=200, help="measured requests per kind")
    parser.add_argument("--check-workers", type=int, default=2)
    parser.add_argument("--home", type=Path, help="reuse (or create and keep) the cluster under this FIRELANE_HOME")
    args = parser.parse_args()
    home = private_home(args.home, prefix="firelane-bench-workflow-")
    server = None
    try:
        token, facts = prepare(args)
        print(f"ledger: {facts['hazards']:,} hazards in the cycle, {facts['events']:,} events", flush=True)
        port = free_port()
        env = {**os.environ, "FIRELANE_DATABASE_URL": database_url()}
        server_log = home / "bench_workflow_server.log"  # the server's JSON access log: its own time per request
        with server_log.open("w") as err:
            server = subprocess.Popen([sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host",
                                       "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"],
                                      cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
        headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "identity"}
        for _ in range(600):
            probe = Client("127.0.0.1", port, {})
            try:
                probe.get("/healthz")
                break
            except OSError:
                if server.poll() is not None:
                    raise SystemExit(f"the server exited ({server.returncode})") from None
                time.sleep(0.1)
            finally:
                probe.close()
        else:
            raise SystemExit("the server did not start")
        client = Client("127.0.0.1", port, headers)
        try:
            n = args.requests
            streets = [s for s, _ in facts["streets"]]
            rng = random.Random(3)
            filters = filter_mix(facts, n)

            work = "&".join(f"status={s}" for s in sorted(lc.NEEDS_WORK))
            rows = {
                "street page": time_http(client, [f"/map/streets/{rng.choice(streets)}"
                                                  for _ in range(max(20, n // 10))], warmup=3),
                "street work list": time_http(client, [f"/hazards/worklist?street={rng.choice(streets)}&{work}"
                                                       f"&limit=100" for _ in range(n)]),
                "department list": time_http(client, [
                    "/hazards/worklist?" + urlencode({"department": rng.choice(facts["departments"]), "limit": 100})
                    for _ in range(n)]),
                "department counts": time_http(client, ["/hazards/workload?by=department"] * max(20, n // 5)),
            }
            floor = PostgresFloor(filters)
            try:
                rows["API page of 100"], pg = time_api_and_postgres(
                    client, [f"/hazards/worklist?{_query(f)}" for f in filters], floor)
            finally:
                floor.close()
            own = server_ms(server_log, "/hazards/worklist", n)
            http_floor = time_http(client, ["/healthz"] * n)[0]
        finally:
            client.close()
        print(f"\nbench_workflow: yinzhou {args.scale}, {facts['hazards']:,} hazards, {facts['events']:,} events, "
              f"one client (http.client, keep-alive), load average {load_line()} on {os.cpu_count()} cores")
        print(f"{'':20} {'p50 ms':>8} {'p99 ms':>8} {'max body':>10} {'gzip':>9}")
        for name, (st, raw, gz) in rows.items():
            print(f"{name:20} {st['p50']:8.1f} {st['p99']:8.1f} {raw:10,} {gz:9,}")
        print(f"{'postgres (same SQL)':20} {pg['p50']:8.1f} {pg['p99']:8.1f}   ({pg['rows']:.0f} hazards a page)")
        print(f"{'  API page, server':20} {own['p50']:8.1f} {own['p99']:8.1f}   (its own time: access log)")
        print(f"{'  http floor':20} {http_floor['p50']:8.1f} {http_floor['p99']:8.1f}   (GET /healthz: loopback, middleware)")
        api = rows["API page of 100"][0]
        ratio50, ratio99 = api["p50"] / pg["p50"], api["p99"] / pg["p99"]
        print(f"\nAPI / PostgreSQL: p50 {ratio50:.2f}x, p99 {ratio99:.2f}x (target <= {TARGET_RATIO}x)")
        for group, names in (("work lists", ("street work list", "department list", "department counts")),
                             ("street page", ("street page",))):
            worst_ms = max(rows[k][0]["p99"] for k in names)
            worst_bytes = max(rows[k][1] for k in names)
            print(f"{group}: worst p99 {worst_ms:.0f} ms (target < {TARGET_PAGE_MS:.0f}), largest body "
                  f"{worst_bytes:,} B (target < {TARGET_PAGE_BYTES:,}) -> "
                  + ("met" if worst_ms < TARGET_PAGE_MS and worst_bytes < TARGET_PAGE_BYTES else "NOT met"))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=20)
        if args.home is None:
            pgcluster.destroy()
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
