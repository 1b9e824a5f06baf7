"""Operability: health and readiness, JSON request logs, gzip, clean 503s across a PostgreSQL restart."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import socket
import subprocess
import sys
import time

import httpx
import mapbox_vector_tile
import psutil
import pytest
from sqlalchemy import text

from api.aio import WARM_SQL, ReadPool
from api.auth import token_hash
from api.errors import ServiceUnavailable
from api.logging import JsonFormatter
from gis import pgcluster
from gis.db import libpq_conninfo

pytestmark = pytest.mark.db


def test_healthz_and_readyz(api):
    assert api.get("/healthz").json()["status"] == "ok"
    ready = api.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"


def test_every_request_is_logged_as_one_json_line_with_the_user(api, headers, district):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("firelane.access")
    logger.addHandler(handler)
    try:
        api.get("/collections/buildings/items?limit=2", headers=headers["viewer"])
        api.get("/collections/nope", headers=headers["viewer"])
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(r["method"], r["path"], r["status"], r["user"]) for r in lines] == [
        ("GET", "/collections/buildings/items", 200, "viewer"), ("GET", "/collections/nope", 404, "viewer")]
    assert all(isinstance(r["duration_ms"], float) and r["duration_ms"] >= 0 for r in lines)


def test_large_responses_are_gzipped(api, headers, district):
    response = api.get("/collections/buildings/items?limit=100", headers={**headers["viewer"],
                                                                          "Accept-Encoding": "gzip"})
    assert response.headers.get("content-encoding") == "gzip"
    assert response.json()["numberReturned"] == 6


def test_a_postgresql_restart_gives_clean_503s_then_recovers_without_restarting_the_app(api, headers, district):
    url = "/collections/buildings/items"
    assert api.get(url, headers=headers["viewer"]).status_code == 200
    pgcluster.stop()
    try:
        down = api.get(url, headers=headers["viewer"])
        assert down.status_code == 503
        assert down.json()["code"] == "ServiceUnavailable" and "database" in down.json()["description"]
        assert api.get("/readyz").status_code == 503
        assert api.get("/healthz").status_code == 200
    finally:
        pgcluster.start()
    # a loaded machine may take a while to connect and warm the new backends: until then only clean 503s
    back = _until_not_503(lambda: api.get(url, headers=headers["viewer"]))
    assert back.status_code == 200 and back.json()["numberReturned"] == 6
    assert _until_not_503(lambda: api.get("/readyz")).status_code == 200


def _until_not_503(request, timeout_s: float = 60.0):
    """The first answer of `request` (repeated) that is not a 503 ServiceUnavailable, within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = request()
        if response.status_code != 503 or time.monotonic() > deadline:
            return response
        assert response.json().get("code") == "ServiceUnavailable", response.text
        time.sleep(0.2)


def test_pooled_connections_killed_while_idle_are_replaced_without_an_error(api, headers, district, db):
    url = "/collections/buildings/items?bbox=121.50,29.80,121.52,29.81"
    assert api.get(url, headers=headers["viewer"]).status_code == 200  # the pool now holds a connection
    with db.connect() as conn:  # a failover or an idle-session timeout drops the app's backends
        killed = conn.execute(text(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )).scalar_one()
    assert killed >= 1
    again = api.get(url, headers=headers["viewer"])
    assert again.status_code == 200 and again.json()["numberReturned"] == 6
    assert api.get("/tiles/buildings/12/3430/1692.mvt", headers=headers["viewer"]).status_code == 200


def _serve(port: int, workers: int, **settings: str):
    """`firelane serve` as a user starts it (with extra environment `settings`), on `port`, once it answers /readyz."""
    server = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--workers",
                               str(workers)], env=os.environ | settings, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.kill()
    raise AssertionError("firelane serve did not become ready")


def test_serve_workers_each_answer_and_each_tile_cache_sees_a_write(headers, district, db):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = _serve(port, workers=2)
    url = f"http://127.0.0.1:{port}/tiles/buildings/12/3430/1692.mvt"

    def refs() -> list[set[str]]:  # a new connection per request: the kernel spreads them over the workers
        out = []
        for _ in range(12):
            body = httpx.get(url, headers=headers["admin"]).content
            out.append({f.get("properties", {}).get("ref") for f in mapbox_vector_tile.decode(body)["buildings"]
                        ["features"]})
        return out

    try:
        workers = [p for p in psutil.Process(server.pid).children(recursive=True) if "spawn" in " ".join(p.cmdline())]
        assert len(workers) == 2
        assert all("BB-0" in r for r in refs())  # every worker has built (and cached) the tile
        with db.begin() as conn:  # a write outside the app: every worker must learn of it from its change feed
            conn.execute(text("DELETE FROM buildings WHERE ref = 'BB-0'"))
        deadline = time.monotonic() + 10
        while any("BB-0" in r for r in refs()):
            assert time.monotonic() < deadline, "a worker kept serving a stale tile"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_serve_workers_each_refuse_a_token_at_once_when_it_is_revoked(headers, db):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # a token lookup is kept for ten minutes: only the change feed can end it
    server = _serve(port, workers=2, FIRELANE_AUTH_TOKEN_CACHE_S="600")
    url = f"http://127.0.0.1:{port}/auth/me"
    token = headers["viewer"]["Authorization"].split()[1]

    def answers() -> list[int]:  # a new connection per request: the kernel spreads them over the workers
        return [httpx.get(url, headers=headers["viewer"]).status_code for _ in range(16)]

    try:
        assert answers() == [200] * 16  # every worker has looked the token up (and cached it, its feed being live)
        with db.begin() as conn:  # revoked outside the workers (as `firelane user` or psql would)
            conn.execute(text("SELECT firelane_revoke_token(:h)"), {"h": token_hash(token)})
        revoked = time.monotonic()
        while answers() != [401] * 16:
            assert time.monotonic() - revoked < 10, "a worker kept accepting a revoked token"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_read_pool_connections_are_warmed_before_they_serve(engine, caplog):
    """A new backend's first tile sets up PostGIS and PROJ (~100 ms): the pool pays that, not a request."""
    with engine.connect() as conn:
        opened = conn.execute(text("SELECT clock_timestamp()")).scalar_one()

    async def idle_pool_backends() -> list[tuple[str, str]]:
        pool = ReadPool(libpq_conninfo(engine), size=2, timeout_s=10, statement_timeout_ms=30_000)
        await pool.open(wait=True)  # two connections made and configured, none used by a read yet
        try:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.execute(text(
                    "SELECT state, query FROM pg_stat_activity WHERE datname = current_database() "
                    "AND backend_start >= :opened AND pid <> pg_backend_pid()"), {"opened": opened}).all()]
        finally:
            await pool.close()

    with caplog.at_level(logging.WARNING, logger="firelane.api"):
        backends = asyncio.run(idle_pool_backends())
    assert backends == [("idle", WARM_SQL)] * 2  # each one's last (only) statement is the warm-up, and it is done
    assert not [r for r in caplog.records if "warm-up" in r.getMessage()]
    with engine.connect() as conn:  # and the warm-up is a valid statement that builds a tile
        assert conn.execute(text(WARM_SQL)).scalar_one() > 0


def test_a_read_pool_whose_database_refuses_connections_answers_503_without_waiting_out_its_timeout():
    """A read waits for a connection only while one may come: the first failed connection attempt ends the wait
    (a clean 503 naming the database), not the pool's timeout; a killed backend, by contrast, is replaced and
    waited for (test above)."""
    with socket.socket() as s:  # a port nothing listens on: every connection attempt is refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def read() -> tuple[ServiceUnavailable, float]:
        pool = ReadPool(f"postgresql://firelane@127.0.0.1:{port}/firelane", size=2, timeout_s=60,
                        statement_timeout_ms=30_000)
        started = time.monotonic()
        try:
            with pytest.raises(ServiceUnavailable) as refused:
                await pool.fetchone("SELECT 1", {})
            return refused.value, time.monotonic() - started
        finally:
            await pool.close()

    refused, waited = asyncio.run(read())
    assert "database" in refused.description and refused.headers == {"Retry-After": "5"}
    assert waited < 30, waited  # half the pool's timeout: the refusal ended the wait
