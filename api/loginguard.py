"""Login protection: the client address (proxies trusted only when configured), attempt counters in PostgreSQL
shared by every worker (per account and per address), and a cap on concurrent password hashing per process."""

from __future__ import annotations

import ipaddress
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import text
from starlette.requests import Request

from api.database import db_engine
from api.errors import ServiceUnavailable, TooManyRequests
from gis.config import auth_settings, limit_settings, server_settings
from gis.db import owner_engine

__all__ = ["LoginLimiter", "client_address", "hashing_slot", "login_limiter", "trusted_proxies"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _parse_proxies(spec: str) -> tuple[_Network, ...]:
    return tuple(ipaddress.ip_network(p.strip(), strict=False) for p in spec.split(",") if p.strip())


def trusted_proxies() -> tuple[_Network, ...]:
    """FIRELANE_SERVER_TRUSTED_PROXIES: addresses/networks whose X-Forwarded-For is believed (none by default)."""
    return _parse_proxies(server_settings().trusted_proxies)


def _is_trusted(address: str, proxies: tuple[_Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in proxies)


def client_address(request: Request) -> str:
    """The address a login is counted against: the peer, or, when the peer is a trusted proxy, the right-most
    X-Forwarded-For entry that is not itself a trusted proxy (entries further left are the client's to forge)."""
    peer = request.client.host if request.client else "unknown"
    proxies = trusted_proxies()
    if not proxies or not _is_trusted(peer, proxies):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",") if h.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, proxies):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage from the client side of the proxy: count it on the proxy
    return peer


class LoginLimiter:
    """Sliding-window attempt counts in the `login_attempts` table (one row per attempt and key): `user:<name>`
    (login_attempts_per_minute) and `addr:<address>` (login_attempts_per_address) within login_window_s. Every
    worker process and every app instance counts in the same table."""

    def hit(self, username: str, address: str) -> None:
        """Record an attempt for the account and the address; 429 with Retry-After when either is over its limit."""
        window = max(1.0, auth_settings().login_window_s)
        limits = {f"user:{username.lower()[:100]}": server_settings().login_attempts_per_minute,
                  f"addr:{address[:100]}": server_settings().login_attempts_per_address}
        # the application role may not read the attempts (gis.signin_tables): the owner's function records these
        # and answers their counts; old attempts are purged now and then, by whichever worker
        with db_engine().begin() as conn:
            rows = conn.execute(text(
                "SELECT key, attempts, retry FROM firelane_login_hit(CAST(:keys AS text[]), :w, :purge)"),
                {"w": window, "keys": list(limits), "purge": random.random() < 0.02}).all()
        for row in rows:
            if row.attempts > limits[row.key]:
                raise TooManyRequests("登录尝试过多, 请稍后再试 too many login attempts, try again later",
                                      headers={"Retry-After": str(max(1, int(float(row.retry or 0)) + 1))})

    def reset(self, username: str) -> None:
        """Forget an account's failures after a successful login (the address's count stays: a spray from one
        address cannot be reset by logging in to an account of its own)."""
        with db_engine().begin() as conn:
            conn.execute(text("SELECT firelane_login_reset(:k)"), {"k": f"user:{username.lower()[:100]}"})

    def purge(self) -> int:
        """Delete attempts older than the window; returns the rows deleted."""
        window = max(1.0, auth_settings().login_window_s)
        with db_engine().begin() as conn:
            return int(conn.execute(text("SELECT firelane_login_purge(:w)"), {"w": window}).scalar_one())

    def clear(self) -> None:
        """Forget every counter (tests, or an administrator after an incident): the owner's, not the
        application's (which could otherwise lift every limit at once)."""
        with owner_engine().begin() as conn:
            conn.execute(text("DELETE FROM login_attempts"))


login_limiter = LoginLimiter()

_slots: threading.BoundedSemaphore | None = None
_slots_size = 0
_slots_lock = threading.Lock()


def _semaphore() -> threading.BoundedSemaphore:
    global _slots, _slots_size
    size = max(1, limit_settings().concurrent_hashes)
    with _slots_lock:
        if _slots is None or _slots_size != size:
            _slots, _slots_size = threading.BoundedSemaphore(size), size
        return _slots


@contextmanager
def hashing_slot() -> Iterator[None]:
    """One of FIRELANE_LIMIT_CONCURRENT_HASHES argon2 slots of this process (each hash takes 64 MiB): waits up to
    hash_wait_s, then 503 with Retry-After, so a password spray queues instead of exhausting memory."""
    slots = _semaphore()
    if not slots.acquire(timeout=limit_settings().hash_wait_s):
        raise ServiceUnavailable("登录繁忙, 请稍后再试 too many logins at once, try again shortly",
                                 headers={"Retry-After": "1"})
    try:
        yield
    finally:
        slots.release()
