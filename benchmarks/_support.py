"""What the benchmarks share: a private FIRELANE_HOME, the managed PostGIS opened for the whole district, a bench
admin's token, a free port and the machine's load line (benchmarks run as scripts: `from _support import ...`)."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for the server the benchmark starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def private_home(home: Path | None, *, prefix: str = "firelane-bench-") -> Path:
    """Point FIRELANE_HOME at `home` (kept, reused) or a fresh temporary directory, and drop FIRELANE_DATABASE_URL:
    the benchmark runs its own managed PostGIS. Call it before anything imports gis (its settings follow the env)."""
    path = home.resolve() if home is not None else Path(tempfile.mkdtemp(prefix=prefix))
    path.mkdir(parents=True, exist_ok=True)
    os.environ["FIRELANE_HOME"] = str(path)
    os.environ.pop("FIRELANE_DATABASE_URL", None)
    # gis is imported here, after FIRELANE_HOME is set: settings cached by an earlier import are dropped
    from gis.config import clear_caches

    clear_caches()
    return path


def open_database() -> Any:
    """Start the managed PostGIS, migrate it as the schema owner and enter the system scope (a benchmark loads and
    reads the whole district under row-level security); returns the application role's engine.

    A kept cluster (`--home`) made from other migration files than these (gis.migrate.SchemaDrift) is destroyed
    and made afresh, so the caller finds it empty and loads its sample again."""
    # imported after private_home() set FIRELANE_HOME (see there)
    from gis import migrate, pgcluster, scope
    from gis.db import get_engine, reset_engine

    pgcluster.start()
    reset_engine()
    scope.enter(scope.SYSTEM)
    try:
        migrate.upgrade()
    except migrate.SchemaDrift:
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
    from gis.db import owner_engine  # after private_home() set FIRELANE_HOME (see there)

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
    from gis.db import owner_engine  # after private_home() set FIRELANE_HOME (see there)

    comment = SAMPLE_COMMENT.format(district=district, scale=scale, seed=seed).replace("'", "''")
    with owner_engine().begin() as conn:  # only the owner may comment on its tables
        conn.execute(text(f"COMMENT ON TABLE compounds IS '{comment}'"))


def bench_admin_token(engine: Any, *, username: str = "bench-admin", password: str = "bench-password-1",
                      name: str = "bench", ttl_hours: float | None = None) -> str:
    """A bearer token of an admin made for the benchmark (created on first use, reused with --home)."""
    # imported after private_home() set FIRELANE_HOME (see there)
    from api.auth import issue_token
    from api.users import create_user

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


class ServerCpu:
    """CPU seconds (user + system) the managed PostgreSQL spent while the block runs: its postmaster, every backend
    and parallel worker alive at the end, and those that exited meanwhile (reaped: the postmaster's children's
    times). The server runs on the same cores as the checks, so a run's wall time follows their sum. `seconds` is
    None without a managed cluster (FIRELANE_DATABASE_URL) or when its processes cannot be read."""

    def __init__(self) -> None:
        self.seconds: float | None = None

    @staticmethod
    def _postmaster() -> psutil.Process | None:
        from gis import pgcluster  # after private_home() set FIRELANE_HOME (see there)

        state = pgcluster.load_state()
        if state is None or os.environ.get("FIRELANE_DATABASE_URL"):
            return None
        try:
            return psutil.Process(int(Path(state.datadir, "postmaster.pid").read_text().split()[0]))
        except (OSError, ValueError, psutil.Error):
            return None

    @staticmethod
    def _cpu(postmaster: psutil.Process) -> float:
        for _ in range(20):  # a backend reaped while its siblings are read: read again (counted once, not 0 or 2 times)
            before = postmaster.cpu_times()
            total = 0.0
            for kid in postmaster.children():
                try:
                    k = kid.cpu_times()
                    total += k.user + k.system
                except psutil.Error:  # gone: counted by `after` if it was reaped meanwhile
                    pass
            after = postmaster.cpu_times()
            if (after.children_user, after.children_system) == (before.children_user, before.children_system):
                break
            time.sleep(0.01)
        return float(total + after.user + after.system + after.children_user + after.children_system)

    def __enter__(self) -> ServerCpu:
        self._pm = self._postmaster()
        try:
            self._start = self._cpu(self._pm) if self._pm is not None else None
        except psutil.Error:
            self._start = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pm is not None and self._start is not None:
            try:
                self.seconds = self._cpu(self._pm) - self._start
            except psutil.Error:
                self.seconds = None


class TreeCpu:
    """CPU seconds (user + system) of this process and of every descendant (pool workers, the fork server, Dask
    workers) spent while the block runs: a measure the shared machine's load does not inflate the way it does
    wall time. This process is measured exactly, less the sampling thread's own CPU (`sampler`: a /proc walk per
    sample); descendants are sampled every `interval` seconds (one that exits loses at most its last interval: a
    pool worker is idle by then)."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.own = self.children = self.total = self.sampler = 0.0

    @staticmethod
    def _cpu(proc: psutil.Process) -> float:
        times = proc.cpu_times()
        return float(times.user + times.system)

    def _sample(self) -> None:
        try:
            kids = self._me.children(recursive=True)
        except psutil.Error:
            return
        for kid in kids:
            try:
                self._seen[(kid.pid, kid.create_time())] = self._cpu(kid)
            except psutil.Error:
                pass

    def _run(self) -> None:
        start = time.thread_time()
        while not self._stop.wait(self.interval):
            self._sample()
        self._sample()
        self.sampler = time.thread_time() - start

    def __enter__(self) -> TreeCpu:
        self._me = psutil.Process()
        self._seen: dict[tuple[int, float], float] = {}
        self._sample()
        self._base = dict(self._seen)  # what descendants alive now (a kept fork server) had spent before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-cpu-sampler", daemon=True)
        self._own0 = time.process_time()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        own = time.process_time() - self._own0
        self._stop.set()
        self._thread.join()
        self.own = own - self.sampler
        self.children = sum(v - self._base.get(k, 0.0) for k, v in self._seen.items())
        self.total = self.own + self.children
