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
    wall time.

    Exact, with no sampling: a descendant that exits is reaped by its parent in the tree (a pool worker by the fork
    server, a Dask worker by this process), which adds its CPU to the parent's children's times. So the block's
    CPU is, at its end less at its start, the own and children's times of this process and of every descendant
    then alive, less what the descendants alive at the start but reaped since had spent before it."""

    def __init__(self) -> None:
        self.own = self.children = self.total = 0.0

    def _snapshot(self) -> tuple[dict[tuple[int, float], float], float]:
        """(own CPU of each live descendant, CPU of every reaped one: the children's times of this process and of
        the live descendants), read again while a reap moves CPU between the two (counted once, not 0 or 2 times)."""
        for _ in range(20):
            before = self._me.cpu_times()
            alive: dict[tuple[int, float], float] = {}
            reaped = 0.0
            for kid in self._me.children(recursive=True):
                try:
                    t = kid.cpu_times()
                    alive[(kid.pid, kid.create_time())] = float(t.user + t.system)
                    reaped += float(t.children_user + t.children_system)
                except psutil.Error:  # gone: its parent's children's times hold it once it is reaped
                    pass
            after = self._me.cpu_times()
            if (after.children_user, after.children_system) == (before.children_user, before.children_system):
                break
            time.sleep(0.01)
        return alive, reaped + float(after.children_user + after.children_system)

    def __enter__(self) -> TreeCpu:
        self._me = psutil.Process()
        self._base, self._reaped0 = self._snapshot()
        self._own0 = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.own = time.process_time() - self._own0
        alive, reaped = self._snapshot()
        gone_before = sum(v for k, v in self._base.items() if k not in alive)  # spent before the block, reaped since
        self.children = (sum(v - self._base.get(k, 0.0) for k, v in alive.items())
                         + reaped - self._reaped0 - gone_before)
        self.total = self.own + self.children
