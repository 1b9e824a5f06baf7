"""Benchmark of the map pages in headless Chromium: HTML size, load time and one wheel-zoom step per page.

Sets up the sample district (`firelane demo --no-serve`: the m-scale Yinzhou sample by default, loaded and checked)
in a throwaway managed PostGIS, serves the app with uvicorn on 127.0.0.1 and opens every page the demo prints (and
the traffic, demolition and draw pages) signed in as the demo admin, in Debian's Chromium through Playwright:
- html: the page's HTML as served (uncompressed bytes);
- load: navigation start to the `load` event, and to network idle (the vector tiles of the first view included);
- zoom: one mouse-wheel step over the map's centre until Leaflet's `zoomend` and the next two animation frames.
The peer, measured in the same run and the same browser, is the login page (a page with no map): each page's load
is also printed as a ratio to it. Targets: HTML < 2 MB, load < 2 s, a zoom step < 0.5 s. Each page is loaded
--runs times; the medians are printed.

    .venv/bin/python benchmarks/bench_pages.py [--scale m] [--runs 3] [--home DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import threading
import time
from pathlib import Path

import uvicorn
from _support import free_port, load_line, private_home
from playwright.sync_api import sync_playwright

from api.app import create_app
from api.demo import run_demo
from gis import pgcluster

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TARGETS = {"html_mb": 2.0, "load_s": 2.0, "zoom_s": 0.5}

ZOOM_JS = """() => new Promise(resolve => {
    const map = window.FIRELANE_MAP;
    if (!map) { resolve(null); return; }
    const t0 = performance.now();
    map.once('zoomend', () => requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - t0))));
    const box = map.getContainer().getBoundingClientRect();
    map.getContainer().dispatchEvent(new WheelEvent('wheel', {deltaY: -120, deltaMode: 0, bubbles: true,
        clientX: box.x + box.width / 2, clientY: box.y + box.height / 2}));
})"""


def serve(port: int):
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    return server, thread


def measure(page, url: str) -> dict[str, float | None]:
    t0 = time.perf_counter()
    resp = page.goto(url, wait_until="load", timeout=120_000)
    load = time.perf_counter() - t0
    page.wait_for_load_state("networkidle", timeout=120_000)
    idle = time.perf_counter() - t0
    body = resp.body() if resp is not None else b""
    zoom = page.evaluate(ZOOM_JS)
    return {"status": resp.status if resp else 0, "html_mb": len(body) / 1e6, "load_s": load, "idle_s": idle,
            "zoom_s": zoom / 1000 if zoom is not None else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="m", help="sample district scale (s, m, l)")
    parser.add_argument("--runs", type=int, default=3, help="loads of each page (medians printed)")
    parser.add_argument("--home", type=Path, help="reuse (or create and keep) the cluster under this FIRELANE_HOME")
    args = parser.parse_args()
    home = private_home(args.home, prefix="firelane-bench-pages-")
    server = thread = None
    try:
        t0 = time.perf_counter()
        port = free_port()
        demo = run_demo(scale=args.scale, port=port, serve=False, out=lambda s: None)
        print(f"district ready in {time.perf_counter() - t0:.0f}s: {demo.counts}", flush=True)
        server, thread = serve(port)
        base = demo.base_url
        urls = {"login (peer)": f"{base}/login", **{k: v for k, v in demo.urls.items() if not v.endswith("/login")}}

        load_before = load_line()
        rows: dict[str, list[dict]] = {}
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            r = context.request.post(f"{base}/auth/login", data={"username": demo.username,
                                                                 "password": demo.password})
            assert r.ok, r.text()
            page = context.new_page()
            for _ in range(args.runs):
                for label, url in urls.items():
                    if label.startswith("login"):
                        page.context.clear_cookies()
                    rows.setdefault(label, []).append(measure(page, url))
                    if label.startswith("login"):
                        context.request.post(f"{base}/auth/login", data={"username": demo.username,
                                                                          "password": demo.password})
            browser.close()
        report(rows, urls, load_before, args)
    finally:
        if server is not None and thread is not None:  # serve() returns both
            server.should_exit = True
            thread.join(timeout=15)  # stop serving (and its job worker) before the cluster goes
        if args.home is None:
            pgcluster.destroy()
            shutil.rmtree(home, ignore_errors=True)


def report(rows: dict[str, list[dict]], urls: dict[str, str], load_before: str, args: argparse.Namespace) -> None:
    def med(label: str, key: str) -> float:
        """The median of `key`, which every load measures."""
        return statistics.median(r[key] for r in rows[label])

    def med_measured(label: str, key: str) -> float | None:
        """The median of `key` over the loads that measured it (None if none did)."""
        vals = [r[key] for r in rows[label] if r[key] is not None]
        return statistics.median(vals) if vals else None

    peer = med("login (peer)", "load_s") or 1e-9
    print(f"\nmap pages, sample scale {args.scale}, {args.runs} loads each (medians); load average before "
          f"{load_before}, after {' '.join(f'{v:.1f}' for v in os.getloadavg())} (2 cores shared: noisy)")
    print(f"{'page':<34} {'status':>6} {'HTML MB':>8} {'load s':>7} {'x peer':>7} {'idle s':>7} {'zoom s':>7}  verdict")
    for label in rows:
        html, load, idle = (med(label, k) for k in ("html_mb", "load_s", "idle_s"))
        zoom = med_measured(label, "zoom_s")  # None where the page has no map to zoom
        status = rows[label][-1]["status"]
        ok = html < TARGETS["html_mb"] and load < TARGETS["load_s"] and (
            zoom is None or zoom < TARGETS["zoom_s"])
        print(f"{label[:34]:<34} {status:>6} {html:>8.2f} {load:>7.2f} {load / peer:>7.1f} {idle:>7.2f} "
              f"{'—' if zoom is None else f'{zoom:.2f}':>7}  {'ok' if ok else 'MISSES TARGET'}")
    print(f"targets: HTML < {TARGETS['html_mb']} MB, load < {TARGETS['load_s']} s, zoom step < {TARGETS['zoom_s']} s")


if __name__ == "__main__":
    main()
