"""What the benchmarks share: a private FIRELANE_HOME, the managed PostGIS opened for the whole district, a bench
admin's token, a free port and the machine's load line (benchmarks run as scripts: `from _support import ...`)."""

from __future__ import annotations

import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import text

from api.auth import issue_token
from api.users import create_user
from gis import migrate, pgcluster, scope
from gis.config import clear_caches
from gis.db import get_engine, owner_engine, reset_engine
from gis.schema_version import SchemaDrift

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for the server the benchmark starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def private_home(home: Path | None, *, prefix: str = "firelane-bench-") -> Path:
    """Point FIRELANE_HOME at `home` (kept, reused) or a fresh temporary directory, and drop FIRELANE_DATABASE_URL:
    the benchmark runs its own managed PostGIS. Call it before anything reads firelane's settings: those
    read before are dropped (gis.config.clear_caches); the database engine is made when first asked for."""
    path = home.resolve() if home is not None else Path(tempfile.mkdtemp(prefix=prefix))
    path.mkdir(parents=True, exist_ok=True)
    os.environ["FIRELANE_HOME"] = str(path)
    os.environ.pop("FIRELANE_DATABASE_URL", None)
    clear_caches()
    return path


def open_database() -> Any:
    """Start the managed PostGIS, migrate it as the schema owner and enter the system scope (a benchmark loads and
    reads the whole district under row-level security); returns the application role's engine.

    A kept cluster (`--home`) made from other migration files than these (gis.schema_version.SchemaDrift) is
    destroyed and made afresh, so the caller finds it empty and loads its sample again."""

    pgcluster.start()
    reset_engine()
    scope.enter(scope.SYSTEM)
    try:
        migrate.upgrade()
    except SchemaDrift:
        print("the kept database was made from other migrations than gis/migrations/versions: rebuilding it",
              flush=True)
        migrate.rebuild_managed()
    return get_engine()


#: What a kept --home's database holds, as the comment on its compounds table: a run asking for another sample (another
#: --scale, or after `bench_checks --big` replaced the data) must not measure the wrong district.
SAMPLE_COMMENT = "firelane benchmark sample: {district} {scale} seed {seed}"

#: The tables a sample fills (emptied before another sample is loaded into a kept database).
SAMPLE_TABLES = ("compounds", "buildings", "fire_lanes", "aerial_areas", "hydrants", "entrances", "roads",
                 "obstructions", "illegal_structures", "parking", "ebike_sites", "streets", "hazards")


def reusable_sample(engine: Any, *, district: str, scale: str, seed: int) -> bool:
    """Whether the database already holds exactly this sample (`mark_sample` named it after loading). A database
    holding anything else is emptied, so the caller loads the sample afresh."""
    wanted = SAMPLE_COMMENT.format(district=district, scale=scale, seed=seed)
    with engine.connect() as conn:
        held = conn.execute(text("SELECT obj_description(to_regclass('compounds'), 'pg_class')")).scalar()
        loaded = conn.execute(text("SELECT EXISTS (SELECT 1 FROM compounds)")).scalar_one()
    if loaded and held == wanted:
        return True
    if loaded:
        print(f"the kept database holds {held or 'data of unknown origin'}, not {wanted}: emptying it", flush=True)
        with owner_engine().begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(SAMPLE_TABLES)} RESTART IDENTITY CASCADE"))
    return False


def mark_sample(*, district: str, scale: str, seed: int) -> None:
    """Name the sample just loaded (see `reusable_sample`)."""
    comment = SAMPLE_COMMENT.format(district=district, scale=scale, seed=seed).replace("'", "''")
    with owner_engine().begin() as conn:  # only the owner may comment on its tables
        conn.execute(text(f"COMMENT ON TABLE compounds IS '{comment}'"))


def bench_admin_token(engine: Any, *, username: str = "bench-admin", password: str = "bench-password-1",
                      name: str = "bench", ttl_hours: float | None = None) -> str:
    """A bearer token of an admin made for the benchmark (created on first use, reused with --home)."""

    sql = text("SELECT id FROM users WHERE username = :u")
    with engine.connect() as conn:
        uid = conn.execute(sql, {"u": username}).scalar()
    if uid is None:
        create_user(username, password, role="admin")
        with engine.connect() as conn:
            uid = conn.execute(sql, {"u": username}).scalar_one()
    token, _ = issue_token(uid, name=name, ttl_hours=ttl_hours)
    return token


def load_line() -> str:
    """The 1, 5 and 15 minute load averages, printed beside every measurement (the machine is shared)."""
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def tree_cpu(root: psutil.Process, *, with_root: bool = True) -> float:
    """CPU seconds (user + system) the process tree under `root` has spent, exited processes included: a process
    that exits is reaped by its parent in the tree (a backend by the postmaster, a pool worker by the fork server),
    which adds its CPU to the parent's children's times. So the sum of every live process's own and children's
    times (the root's own only `with_root`) only grows, and its difference over a block is the block's CPU. Read
    until two reads in a row see the same processes (one that exits is counted once, not 0 or 2 times)."""
    last: tuple[frozenset[tuple[int, float]], float, float] | None = None
    for _ in range(20):
        now = _tree_times(root, with_root=with_root)
        if last is not None and now[:2] == last[:2]:  # nothing exited, was reaped or started between the reads
            return now[2]
        if last is not None:
            time.sleep(0.01)
        last = now
    assert last is not None
    return last[2]


def _tree_times(root: psutil.Process, *, with_root: bool) -> tuple[frozenset[tuple[int, float]], float, float]:
    """(the live descendants, the root's children's times, the tree's CPU as `tree_cpu` counts it), read once."""
    times = root.cpu_times()
    reaped = float(times.children_user + times.children_system)
    total = reaped + (float(times.user + times.system) if with_root else 0.0)
    seen = set()
    for kid in root.children(recursive=True):
        try:
            t = kid.cpu_times()
            seen.add((kid.pid, kid.create_time()))
        except psutil.Error:  # gone between the listing and the read: the next read finds it reaped
            continue
        total += float(t.user + t.system + t.children_user + t.children_system)
    return frozenset(seen), reaped, total


class ServerCpu:
    """CPU seconds (user + system) the managed PostgreSQL spent while the block runs: its postmaster, every backend
    and parallel worker alive at the end, and those that exited meanwhile (reaped: the postmaster's children's
    times). The server runs on the same cores as the checks, so a run's wall time follows their sum. `seconds` is
    None without a managed cluster (FIRELANE_DATABASE_URL) or when its processes cannot be read."""

    def __init__(self) -> None:
        self.seconds: float | None = None

    @staticmethod
    def _postmaster() -> psutil.Process | None:
        state = pgcluster.load_state()
        if state is None or os.environ.get("FIRELANE_DATABASE_URL"):
            return None
        try:
            return psutil.Process(int(Path(state.datadir, "postmaster.pid").read_text().split()[0]))
        except (OSError, ValueError, psutil.Error):
            return None

    def __enter__(self) -> ServerCpu:
        self._pm = self._postmaster()
        try:
            self._start = tree_cpu(self._pm) if self._pm is not None else None
        except psutil.Error:
            self._start = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pm is not None and self._start is not None:
            try:
                self.seconds = tree_cpu(self._pm) - self._start
            except psutil.Error:
                self.seconds = None


class TreeCpu:
    """CPU seconds (user + system) of this process and of every descendant (pool workers, the fork server, Dask
    workers) spent while the block runs (`tree_cpu`, exited descendants included): a measure the shared
    machine's load does not inflate the way it does wall time."""

    def __init__(self) -> None:
        self.own = self.children = self.total = 0.0

    def __enter__(self) -> TreeCpu:
        self._me = psutil.Process()
        self._children0 = tree_cpu(self._me, with_root=False)
        self._own0 = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.own = time.process_time() - self._own0
        self.children = tree_cpu(self._me, with_root=False) - self._children0
        self.total = self.own + self.children
