"""Login protection: counters shared by every worker (PostgreSQL), X-Forwarded-For only from configured proxies,
and a cap on concurrent password hashing."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from test_api_support import PASSWORD, make_user

from api import auth
from api.app import create_app
from api.loginguard import login_limiter
from gis.config import clear_caches, server_settings
from gis.db import owner_engine

pytestmark = pytest.mark.db


@pytest.fixture
def settings_env(monkeypatch):
    """Set FIRELANE_* variables for one test (settings re-read), restored afterwards."""
    def setenv(**values: str) -> None:
        for k, v in values.items():
            monkeypatch.setenv(k, v)
        clear_caches()

    yield setenv
    monkeypatch.undo()
    clear_caches()


def _app_client(client=("testclient", 50000)) -> TestClient:
    return TestClient(create_app(), raise_server_exceptions=False, client=client)


def _login(client: TestClient, username: str, password: str = "nope-nope", **headers: str) -> int:
    return client.post("/auth/login", json={"username": username, "password": password}, headers=headers).status_code


def test_the_limit_holds_across_two_workers_sharing_the_database(db):
    make_user(db, "dave", "viewer")
    limit = server_settings().login_attempts_per_minute
    with _app_client() as one, _app_client() as two:
        codes = [_login(one if i % 2 else two, "dave") for i in range(limit)]
        assert codes == [401] * limit
        assert _login(one, "dave") == 429 and _login(two, "dave", PASSWORD) == 429
    with owner_engine().connect() as conn:  # the application role may not read the attempts
        assert conn.execute(text("SELECT count(*) FROM login_attempts WHERE key = 'user:dave'")).scalar() == limit + 2


def test_rotating_x_forwarded_for_does_not_defeat_the_limiter(db):
    make_user(db, "dave", "viewer")
    limit = server_settings().login_attempts_per_minute
    with _app_client(client=("127.0.0.1", 40000)) as client:
        codes = [_login(client, "dave", **{"X-Forwarded-For": f"203.0.113.{i}"}) for i in range(limit + 1)]
        assert codes == [401] * limit + [429]
        assert _login(client, "dave", PASSWORD, **{"X-Forwarded-For": "198.51.100.7"}) == 429
    with owner_engine().connect() as conn:  # counted on the real peer, not on the forged header
        keys = set(conn.execute(text("SELECT key FROM login_attempts")).scalars())
    assert keys == {"user:dave", "addr:127.0.0.1"}


def test_a_spray_of_random_names_is_limited_per_address_even_through_a_trusted_proxy(db, settings_env):
    settings_env(FIRELANE_SERVER_TRUSTED_PROXIES="10.0.0.0/8", FIRELANE_SERVER_LOGIN_ATTEMPTS_PER_ADDRESS="5")
    with _app_client(client=("10.0.0.1", 40000)) as proxy:
        # the client forges entries to the left; the proxy appends the address it saw: that one is counted
        codes = [_login(proxy, f"u-{uuid.uuid4().hex[:8]}", **{"X-Forwarded-For": f"198.51.100.{i}, 203.0.113.9"})
                 for i in range(6)]
        assert codes == [401] * 5 + [429]
        assert _login(proxy, "someone", **{"X-Forwarded-For": "203.0.113.10"}) == 401  # another client behind it
    with _app_client(client=("192.0.2.50", 40000)) as direct:  # not a proxy: its header is ignored
        assert _login(direct, "x", **{"X-Forwarded-For": "203.0.113.9"}) == 401
    with owner_engine().connect() as conn:
        counts: dict[str, int] = dict(conn.execute(text(
            "SELECT key, count(*) FROM login_attempts WHERE key LIKE 'addr:%' GROUP BY key")).all())
    assert counts == {"addr:203.0.113.9": 6, "addr:203.0.113.10": 1, "addr:192.0.2.50": 1}


def test_old_windows_are_purged(db):
    with owner_engine().begin() as conn:
        conn.execute(text("INSERT INTO login_attempts (key, at) VALUES ('user:old', now() - interval '1 hour'), "
                          "('user:new', now())"))
    assert login_limiter.purge() == 1


def test_password_hashing_is_capped_per_process(db, settings_env, monkeypatch):
    """A random-name spray queues for a few hashing slots (64 MiB each) instead of hashing all at once."""
    settings_env(FIRELANE_LIMIT_CONCURRENT_HASHES="2", FIRELANE_SERVER_LOGIN_ATTEMPTS_PER_ADDRESS="1000")
    running = {"now": 0, "max": 0}
    lock = threading.Lock()
    real = auth.verify_password

    def counted(*args, **kwargs):
        with lock:
            running["now"] += 1
            running["max"] = max(running["max"], running["now"])
        try:
            time.sleep(0.02)
            return real(*args, **kwargs)
        finally:
            with lock:
                running["now"] -= 1

    monkeypatch.setattr(auth, "verify_password", counted)
    with _app_client() as client, ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(lambda i: _login(client, f"spray-{i}"), range(48)))
    assert set(codes) <= {401, 503} and codes.count(401) >= 2
    assert running["max"] == 2
    settings_env(FIRELANE_LIMIT_CONCURRENT_HASHES="1", FIRELANE_LIMIT_HASH_WAIT_S="0.001")
    with _app_client() as client, ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda i: client.post("/auth/login", json={"username": f"s{i}", "password": "x"}),
                                  range(16)))
    busy = [r for r in responses if r.status_code == 503]
    assert busy and all(r.headers["Retry-After"] == "1" for r in busy)
    assert running["max"] == 2
