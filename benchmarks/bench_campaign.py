"""Benchmark of the campaign's documents on a sample district: all forms, every compound's PDF, the district summary.

Run (scale m = 800 compounds; the PDFs take minutes on 2 cores):

    .venv/bin/python benchmarks/bench_campaign.py --scale m --workers 2
    .venv/bin/python benchmarks/bench_campaign.py --scale m --limit 80     # a slice of the PDFs, extrapolated

Sets up a throwaway managed PostGIS (or reuses `--home DIR`), loads the sample, runs the checks (the ledger the
documents read), creates a Changle campaign for the current year and spot-check draw, then times:

- forms: 附件1–4 for the whole district (all streets' 附件2), in `--workers` processes and in one, vs the peer:
  the hazards layer exported as one XLSX (gis.exporter, the same openpyxl writer family) — ratios printed;
- compound PDFs: every compound (or `--limit N`, extrapolated to all) in a `--workers` process pool, vs the floor:
  WeasyPrint rendering one minimal CJK page N times in one process (what a PDF costs before any content);
- the district summary PDF.

Each line also gives CPU seconds (this process and its ended children, the database server's not counted) and the
load average: on a machine shared with other work, wall time mostly measures the others' load, so the CPU line
estimates the wall time on idle cores (CPU / workers) and the ratio to the floor page in CPU.

Peak memory is the largest sum of RSS over this process and all its children, sampled every 0.1 s.
Targets: forms < 10 s; every compound PDF < 5 min on 2 cores with peak memory < 2 GB.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import psutil
from _support import mark_sample, open_database, private_home, reusable_sample
from sqlalchemy import text

from gis import pgcluster, scope
from gis.campaign import campaigns as cp
from gis.campaign import forms, stage_reports
from gis.checks.runner import run_checks
from gis.exporter import export_layer
from gis.sample import generate, load_sample
from web import district_files
from web.documents import html_to_pdf, render

TARGET_FORMS_S = 10.0
TARGET_PDFS_S = 300.0
TARGET_PEAK_GB = 2.0


class PeakRss:
    """The largest total RSS of this process and its descendants, sampled in a thread."""

    def __init__(self, interval: float = 0.1) -> None:
        self.proc = psutil.Process()
        self.interval = interval
        self.peak = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def sample(self) -> int:
        total = 0
        for p in [self.proc, *self.proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        return total

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            self.peak = max(self.peak, self.sample())

    def __enter__(self) -> PeakRss:
        self.peak = self.sample()
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join()


def cpu_s() -> float:
    """CPU seconds (user + system) of this process and of its children that have ended (pool workers once their
    pool is shut down); the database server's are not counted. On a machine shared with other work this is the
    steadier measure: wall time there mostly measures the others' load."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def floor_pdf(n: int, out: Path) -> float:
    """Seconds for WeasyPrint to render a minimal one-page CJK document n times (the floor of any PDF)."""
    html = ("<!DOCTYPE html><html><head><meta charset='utf-8'>" + render("documents/_style.html")
            + "</head><body><h1>一小区一档</h1><p>小区名称 测试</p></body></html>")
    t = time.perf_counter()
    for i in range(n):
        html_to_pdf(html, out / f"floor-{i}.pdf")
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    if isinstance(sys.stdout, io.TextIOWrapper):  # not when a caller replaced stdout
        sys.stdout.reconfigure(line_buffering=True)  # progress lines show as they come when the output is a file
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="m")
    ap.add_argument("--district", default="changle")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="render only this many compound PDFs and extrapolate")
    ap.add_argument("--home", type=Path, default=None, help="FIRELANE_HOME to use and keep (reuses a loaded sample)")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    args.keep = args.keep or args.home is not None
    home = private_home(args.home)

    out = Path(tempfile.mkdtemp(prefix="firelane-bench-out-"))
    try:
        engine = open_database()
        if not reusable_sample(engine, district=args.district, scale=args.scale, seed=args.seed):
            t = time.perf_counter()
            load_sample(generate(district=args.district, scale=args.scale, seed=args.seed), engine=engine)
            mark_sample(district=args.district, scale=args.scale, seed=args.seed)
            print(f"sample {args.district} scale {args.scale}: loaded in {time.perf_counter() - t:.1f} s")
            t = time.perf_counter()
            result = run_checks(engine=engine, workers=args.workers, user="bench")
            print(f"checks: {result.failures} failures in {time.perf_counter() - t:.1f} s (ledger written)")
        else:
            print(f"reusing the sample in {home}")
        with engine.connect() as conn:
            n_compounds = conn.execute(text("SELECT count(*) FROM compounds")).scalar_one()
            n_hazards = conn.execute(text("SELECT count(*) FROM hazards")).scalar_one()
        year = time.localtime().tm_year
        cid = cp.create_campaign(preset_key="changle-2022", year=year, user="bench", engine=engine)
        print(f"{n_compounds} compounds, {n_hazards} hazards; campaign {cid}; workers {args.workers}")
        print("(measured on a shared machine under load: numbers are noisy; compare the ratios)")

        with PeakRss() as mem_forms:
            t, c = time.perf_counter(), cpu_s()
            files = forms.write_forms(cid, out / "forms", engine=engine, workers=args.workers)
            forms_s = time.perf_counter() - t
        forms_cpu = cpu_s() - c
        t, c = time.perf_counter(), cpu_s()
        forms.write_forms(cid, out / "forms-serial", engine=engine, workers=1)
        serial_s, serial_cpu = time.perf_counter() - t, cpu_s() - c
        t = time.perf_counter()
        export_layer("hazards", fmt="xlsx", path=out / "hazards.xlsx")
        peer_s = time.perf_counter() - t
        print(f"forms 附件1–4 ({len(files)} files, {args.workers} processes): {forms_s:.2f} s  "
              f"in 1 process: {serial_s:.2f} s  peer (hazards XLSX export, 1 process): {peer_s:.2f} s  "
              f"ratio {forms_s / peer_s:.2f} (1 process: {serial_s / peer_s:.2f})  peak {mem_forms.peak / 2**30:.2f} GB"
              f"  target < {TARGET_FORMS_S:.0f} s: {'met' if forms_s < TARGET_FORMS_S else 'NOT met'}")
        print(f"  forms CPU: {forms_cpu:.1f} s in {args.workers} processes (idle {args.workers} cores ≈ "
              f"{forms_cpu / args.workers:.1f} s wall), {serial_cpu:.1f} s in 1 process; load average "
              f"{os.getloadavg()[0]:.1f}")

        with engine.connect() as conn:
            refs = district_files.compound_refs(conn, cid)
        n = min(args.limit or len(refs), len(refs))
        floor_n = min(20, n)
        c = time.process_time()
        floor_s = floor_pdf(floor_n, out) / floor_n
        floor_cpu = (time.process_time() - c) / floor_n
        with PeakRss() as mem_pdf:
            t, c = time.perf_counter(), cpu_s()
            if n == len(refs):
                res = district_files.district_zip(cid, out / "files.zip", workers=args.workers, engine=engine)
            else:
                part = refs[:n]
                chunks = [part[i:i + 10] for i in range(0, n, 10)]
                (out / "pdfs").mkdir()
                ctx = multiprocessing.get_context("spawn")
                with ProcessPoolExecutor(max_workers=args.workers, mp_context=ctx) as pool:
                    done = [f for fs in pool.map(district_files._render_chunk, chunks,
                                                 [str(out / "pdfs")] * len(chunks), [scope.current()] * len(chunks))
                            for f in fs]
                res = {"files": len(done)}
            pdf_s = time.perf_counter() - t
        per_cpu = (cpu_s() - c) / max(res["files"], 1)
        per = pdf_s / max(res["files"], 1)
        total = per * len(refs)
        print(f"compound PDFs: {res['files']} in {pdf_s:.1f} s ({per:.2f} s each with {args.workers} workers; "
              f"all {len(refs)} {'measured' if n == len(refs) else 'extrapolated'}: {total:.0f} s)  "
              f"floor (bare CJK page, 1 process): {floor_s:.2f} s/page  ratio per PDF vs floor×workers: "
              f"{per * args.workers / floor_s:.1f}  peak {mem_pdf.peak / 2**30:.2f} GB  "
              f"targets < {TARGET_PDFS_S:.0f} s: {'met' if total < TARGET_PDFS_S else 'NOT met'}, "
              f"< {TARGET_PEAK_GB:.0f} GB: {'met' if mem_pdf.peak / 2**30 < TARGET_PEAK_GB else 'NOT met'}")
        idle = per_cpu * len(refs) / args.workers
        print(f"  PDFs CPU: {per_cpu:.2f} s per PDF (workers' start-up included)  floor page {floor_cpu:.2f} s  "
              f"ratio {per_cpu / floor_cpu:.1f}; all {len(refs)} on {args.workers} idle cores ≈ {idle:.0f} s "
              f"(target {TARGET_PDFS_S:.0f} s: {'met' if idle < TARGET_PDFS_S else 'NOT met'} on that estimate); "
              f"load average {os.getloadavg()[0]:.1f}")

        with PeakRss() as mem_sum:
            t = time.perf_counter()
            stage_reports.write_report(cid, out / "summary.pdf", kind="summary", engine=engine)
            sum_s = time.perf_counter() - t
        print(f"district summary PDF: {sum_s:.2f} s  ratio vs floor page {sum_s / floor_s:.1f}  "
              f"peak {mem_sum.peak / 2**30:.2f} GB")
    finally:
        shutil.rmtree(out, ignore_errors=True)
        if not args.keep:
            try:
                pgcluster.destroy()
            finally:
                shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
