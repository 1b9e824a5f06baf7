"""Shared fixtures: a throwaway managed PostGIS per test session (tipg-style), cleaned between tests."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from desktop_support import LiveServer, live_server, load_desktop_district
from fastapi.testclient import TestClient
from playwright.sync_api import sync_playwright
from server_support import served
from sqlalchemy import text
from test_api_support import ROLE_USERS, District, load_district, make_user
from web_support import build_app, load_dataset, make_users

from api.app import create_app
from api.auth import forget_tokens, login_limiter
from api.features import forget_extents
from gis import migrate, pgcluster, scope
from gis.config import clear_caches
from gis.db import get_engine, owner_engine, reset_engine
from gis.schema import metadata

ROOT = Path(__file__).resolve().parents[1]
#: Debian's Chromium, started with no background traffic (the machine has no network beyond loopback)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session")
def firelane_home() -> Iterator[Path]:
    """A private FIRELANE_HOME for the whole test session (nothing of the user's is touched)."""
    path = Path(tempfile.mkdtemp(prefix="firelane-test-"))
    old = {k: os.environ.get(k) for k in ("FIRELANE_HOME", "FIRELANE_DATABASE_URL")}
    os.environ["FIRELANE_HOME"] = str(path)
    os.environ.pop("FIRELANE_DATABASE_URL", None)

    clear_caches()
    yield path
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    clear_caches()
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def engine(firelane_home: Path):
    """The real managed PostGIS, created fresh for this session, with the schema migrated to head."""
    pgcluster.start()
    reset_engine()
    scope.enter(scope.SYSTEM)  # tests read and write the whole district (the app role under row-level security)
    migrate.upgrade(engine=owner_engine())
    eng = get_engine()
    yield eng
    eng.dispose()
    reset_engine()
    pgcluster.destroy()


@pytest.fixture
def db(engine):
    """A clean database for one test: every layer, the ledger, runs, users and the audit log emptied."""
    names = ", ".join(t.name for t in metadata.sorted_tables)
    with owner_engine().begin() as conn:  # TRUNCATE is the owner's: the application role may only DELETE
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    return engine


@pytest.fixture
def truncate(db):
    """Empty the named tables mid-test, as the owner (the application role may not TRUNCATE, and the ledger's
    events are append-only for DELETE)."""
    def empty(*tables: str) -> None:
        with owner_engine().begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))

    return empty


@pytest.fixture
def api(db) -> Iterator:
    """A TestClient on a fresh app (server errors come back as 500 responses, not exceptions)."""
    forget_tokens()
    forget_extents()
    login_limiter.clear()
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def headers(db) -> dict[str, dict[str, str]]:
    """Authorization headers per role key of ROLE_USERS (street_a/street_b are street offices of A and B)."""
    return {key: make_user(db, key, role, streets) for key, (role, streets) in ROLE_USERS.items()}


@pytest.fixture
def district(db) -> District:
    """The small two-street district of test_api_support.load_district, loaded; ids by layer and ref."""
    return load_district(db)


@pytest.fixture
def desktop_district(db) -> District:
    """desktop_support's district: every kind of value a desktop client must carry over."""
    return load_desktop_district(db)


@pytest.fixture
def live(db) -> Iterator[LiveServer]:
    """The real app under uvicorn on loopback (a thread of this process), counting the requests it answers."""
    with live_server() as server:
        yield server


@pytest.fixture
def site(db) -> Iterator[str]:
    """The app served for real (tests/server_support.py) over web_support's hand-made district and users."""
    load_dataset(db)
    make_users()
    forget_tokens()
    login_limiter.clear()
    with served(build_app()) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def eventually() -> Callable[..., bool]:
    """`eventually(predicate, seconds=5.0)`: whether `predicate()` holds within `seconds`, polled every 20 ms
    (what a commit in another process needs to reach this one's change feed)."""
    def until(predicate: Callable[[], bool], seconds: float = 5.0) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return False

    return until
