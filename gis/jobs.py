"""Persisted jobs: a row created first, claimed by a worker with SKIP LOCKED, progress and result stored, stale ones reaped.

Every long piece of work (a check run, a district's compound files, a report) is a row of `jobs`: created
`queued`, claimed by exactly one worker (``SELECT ... FOR UPDATE SKIP LOCKED``), `running` with a heartbeat and
progress, then `succeeded` with a JSON result or `failed` with an error. Every server process sees the same rows.

Workers: each `firelane serve` process runs one `WorkerLoop` thread (FIRELANE_JOBS_IN_SERVER, default on) and
`firelane worker` runs the same loop in the foreground. The loop only claims and supervises: the job itself runs
in a child process (``python -m gis.jobs run ID``), so CPU-heavy work never holds a server's GIL, and a crashed
job cannot take the server down. The child records its own pid and process start time and beats every
`heartbeat_s`. A job is reaped to `failed` when its heartbeat is older than `stale_s`, or at once when its worker
process on this host is gone (pid dead, or reused by another process: the start time differs). `firelane check`
registers its in-process run the same way (`inline`), so a killed CLI run is reaped too.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import psutil
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Connection, Engine, text

from gis import scope as db_scope
from gis.db import get_engine

log = logging.getLogger("firelane.jobs")

#: Job states, in life-cycle order.
STATUSES: tuple[str, ...] = ("queued", "running", "succeeded", "failed")
ACTIVE: tuple[str, ...] = ("queued", "running")

#: Job kinds → "module:function" of their handler, imported in the worker child only (handlers pull in heavy
#: libraries: geopandas, the rule families, WeasyPrint). A handler takes a JobContext and returns a JSON-able dict.
KINDS: dict[str, str] = {
    "check_run": "gis.jobs:check_run_handler",
    "compound_files": "web.district_files:district_zip_handler",
    "report": "gis.campaign.stage_reports:report_handler",
}


class JobSettings(BaseSettings):
    """Persisted jobs and their workers (FIRELANE_JOBS_*)."""

    model_config = SettingsConfigDict(env_prefix="FIRELANE_JOBS_")
    in_server: bool = True  # each `firelane serve` process also runs a worker loop
    poll_s: float = 0.5
    heartbeat_s: float = 5.0
    stale_s: float = 60.0  # a running job whose heartbeat is older than this is reaped
    shutdown_grace_s: float = 30.0  # a stopping server waits this long for its job in hand, then fails it


@lru_cache
def job_settings() -> JobSettings:
    return JobSettings()


class JobError(Exception):
    """A job request that cannot be served (unknown kind, unknown id)."""


class UnknownJob(JobError):
    """No such job."""


@dataclass
class Job:
    """One row of `jobs`."""

    id: int
    kind: str
    params: dict[str, Any]
    status: str
    progress: float = 0.0
    result: dict[str, Any] | None = None
    error: str | None = None
    created_by: str | None = None
    created_at: Any = None
    started_at: Any = None
    finished_at: Any = None
    heartbeat_at: Any = None
    worker_host: str | None = None
    worker_pid: int | None = None

    def as_dict(self) -> dict[str, Any]:
        def iso(v: Any) -> Any:
            return v.isoformat() if v is not None else None

        return {"id": self.id, "kind": self.kind, "params": self.params, "status": self.status,
                "progress": self.progress, "result": self.result, "error": self.error,
                "created_by": self.created_by, "created_at": iso(self.created_at),
                "started_at": iso(self.started_at), "finished_at": iso(self.finished_at),
                "heartbeat_at": iso(self.heartbeat_at), "worker_host": self.worker_host,
                "worker_pid": self.worker_pid}


_COLUMNS = ("id, kind, params, status, progress, result, error, created_by, created_at, started_at, finished_at, "
            "heartbeat_at, worker_host, worker_pid")


def _job(row: Any) -> Job:
    return Job(**{k: getattr(row, k) for k in _COLUMNS.split(", ")})


def _engine(engine: Engine | None) -> Engine:
    return engine or get_engine()


def _host() -> str:
    return socket.gethostname()[:255]


def _started(pid: int) -> float | None:
    """The process start time of `pid` (None: no such process): tells a live worker from a reused pid."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


# --- creating and reading ---------------------------------------------------------------------------------------


def submit(kind: str, params: dict[str, Any] | None = None, *, user: str | None = None,
           conn: Connection | None = None, engine: Engine | None = None) -> int:
    """Create a queued job and return its id (inside `conn`'s transaction when given: created with what it is for)."""
    if kind not in KINDS:
        raise JobError(f"未知任务类型 unknown job kind {kind!r}; kinds: {', '.join(KINDS)}")
    sql = text("INSERT INTO jobs (kind, params, created_by) VALUES (:k, CAST(:p AS jsonb), :u) RETURNING id")
    args = {"k": kind, "p": json.dumps(params or {}, ensure_ascii=False, default=str), "u": user}
    if conn is not None:
        job_id = conn.execute(sql, args).scalar_one()
        conn.execute(text("SELECT pg_notify('firelane_jobs', :id)"), {"id": str(job_id)})
        return int(job_id)
    with _engine(engine).begin() as c:
        return submit(kind, params, user=user, conn=c)


def get(job_id: int, *, engine: Engine | None = None) -> Job:
    with _engine(engine).connect() as conn:
        row = conn.execute(text(f"SELECT {_COLUMNS} FROM jobs WHERE id = :id"), {"id": job_id}).first()
    if row is None:
        raise UnknownJob(f"没有任务 no job {job_id}")
    return _job(row)


def recent(*, engine: Engine | None = None, kind: str | None = None, user: str | None = None,
           limit: int = 100) -> list[Job]:
    where: list[str] = ["true"]
    params: dict[str, Any] = {"lim": limit}
    if kind:
        where.append("kind = :kind")
        params["kind"] = kind
    if user:
        where.append("created_by = :user")
        params["user"] = user
    with _engine(engine).connect() as conn:
        rows = conn.execute(text(f"SELECT {_COLUMNS} FROM jobs WHERE {' AND '.join(where)} "
                                 "ORDER BY id DESC LIMIT :lim"), params).all()
    return [_job(r) for r in rows]


# --- claiming, running, finishing -------------------------------------------------------------------------------


def claim(*, engine: Engine | None = None, kinds: tuple[str, ...] | None = None) -> Job | None:
    """Claim the oldest queued job (FOR UPDATE SKIP LOCKED: two workers never get the same one), or None."""
    kind_sql = " AND kind = ANY(:kinds)" if kinds else ""
    with db_scope.scoped(db_scope.SYSTEM), _engine(engine).begin() as conn:  # a worker serves everyone's jobs
        row = conn.execute(text(
            "UPDATE jobs SET status = 'running', started_at = now(), heartbeat_at = now(), worker_host = :host, "
            "worker_pid = :pid, worker_started = :ps WHERE id = (SELECT id FROM jobs WHERE status = 'queued'"
            f"{kind_sql} ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING {_COLUMNS}"),
            {"host": _host(), "pid": os.getpid(), "ps": _started(os.getpid()), "kinds": list(kinds or ())}).first()
    return _job(row) if row is not None else None


def _adopt(job_id: int, *, engine: Engine) -> bool:
    """The child process takes over a claimed job: its own pid and start time; False if it is no longer running."""
    with engine.begin() as conn:
        return conn.execute(text(
            "UPDATE jobs SET worker_pid = :pid, worker_started = :ps, worker_host = :host, heartbeat_at = now() "
            "WHERE id = :id AND status = 'running'"),
            {"pid": os.getpid(), "ps": _started(os.getpid()), "host": _host(), "id": job_id}).rowcount == 1


def beat(job_id: int, *, engine: Engine, progress: float | None = None) -> None:
    # the heartbeat thread starts with no scope of its own (row-level security): the queue is the system's
    with db_scope.scoped(db_scope.SYSTEM), engine.begin() as conn:
        conn.execute(text(
            "UPDATE jobs SET heartbeat_at = now(), progress = coalesce(:p, progress) "
            "WHERE id = :id AND status = 'running'"),
            {"p": None if progress is None else min(max(float(progress), 0.0), 1.0), "id": job_id})


def succeed(job_id: int, result: dict[str, Any], *, engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text(
            "UPDATE jobs SET status = 'succeeded', progress = 1, finished_at = now(), heartbeat_at = now(), "
            "result = CAST(:r AS jsonb) WHERE id = :id AND status = 'running'"),
            {"r": json.dumps(result, ensure_ascii=False, default=str), "id": job_id})


#: What a failed or reaped job of a kind leaves behind besides its own row (its check_runs record).
_ON_FAILED: dict[str, str] = {
    "check_run": "UPDATE check_runs SET status = 'failed', finished_at = now(), error = :e "
                 "WHERE job_id = ANY(:ids) AND status IN ('queued', 'running')",
}


def _fail(conn: Connection, ids: list[int], error: str) -> list[int]:
    rows = conn.execute(text(
        "UPDATE jobs SET status = 'failed', finished_at = now(), error = :e "
        "WHERE id = ANY(:ids) AND status IN ('queued', 'running') RETURNING id, kind"),
        {"e": error[:4000], "ids": ids}).all()
    for kind in {r.kind for r in rows}:
        if kind in _ON_FAILED:
            conn.execute(text(_ON_FAILED[kind]), {"e": error[:4000], "ids": [r.id for r in rows if r.kind == kind]})
    return [r.id for r in rows]


def fail(job_id: int, error: str, *, engine: Engine | None = None) -> None:
    with db_scope.scoped(db_scope.SYSTEM), _engine(engine).begin() as conn:  # its run row too, whoever fails it
        _fail(conn, [job_id], error)


def reap(*, engine: Engine | None = None, stale_s: float | None = None) -> list[int]:
    """Fail running jobs whose worker is gone: heartbeat older than `stale_s` (any host), or a worker process on
    this host that no longer exists (or whose pid now belongs to another process). Returns the reaped ids."""
    eng = _engine(engine)
    stale = job_settings().stale_s if stale_s is None else stale_s
    # housekeeping on behalf of everyone, whoever's request triggers it: a run row outside the caller's scope
    # (row-level security) must be failed with its job, not left running
    with db_scope.scoped(db_scope.SYSTEM), eng.begin() as conn:
        rows = conn.execute(text(
            "SELECT id, worker_pid, worker_started, worker_host, heartbeat_at < now() - make_interval(secs => :s) "
            "AS stale FROM jobs WHERE status = 'running' FOR UPDATE SKIP LOCKED"), {"s": stale}).all()
        dead, gone = [], []
        for r in rows:
            if r.stale:
                dead.append(r.id)
            elif r.worker_host == _host() and r.worker_pid is not None:
                started = _started(r.worker_pid)
                if started is None or (r.worker_started is not None and abs(started - r.worker_started) > 1.0):
                    gone.append(r.id)
        reaped = []
        if dead:
            reaped += _fail(conn, dead, f"任务心跳超时 worker stopped beating for over {stale:.0f} s; reaped")
        if gone:
            reaped += _fail(conn, gone, "任务进程已退出 the worker process is gone (killed?); reaped")
    for job_id in reaped:
        log.warning("reaped job %s", job_id)
    return reaped


@dataclass
class JobContext:
    """What a handler gets: the job, the engine and a progress reporter (which also beats)."""

    job: Job
    engine: Engine
    _last: float = field(default=0.0, repr=False)

    @property
    def params(self) -> dict[str, Any]:
        return self.job.params

    @property
    def user(self) -> str | None:
        return self.job.created_by

    def progress(self, fraction: float) -> None:
        now = time.monotonic()
        if now - self._last >= 0.5 or fraction >= 1.0:  # at most two progress writes a second
            self._last = now
            beat(self.job.id, engine=self.engine, progress=fraction)


def _handler(kind: str) -> Callable[[JobContext], dict[str, Any]]:
    if kind not in KINDS:
        raise JobError(f"未知任务类型 unknown job kind {kind!r}")
    module, _, name = KINDS[kind].partition(":")
    return getattr(importlib.import_module(module), name)


@contextmanager
def _heartbeat(job_id: int, *, engine: Engine) -> Iterator[None]:
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(job_settings().heartbeat_s):
            try:
                beat(job_id, engine=engine)
            except Exception:  # noqa: BLE001 - a missed beat is retried; the database may be restarting
                log.warning("heartbeat of job %s failed", job_id, exc_info=True)

    thread = threading.Thread(target=loop, name=f"firelane-job-{job_id}-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def execute(job_id: int, *, engine: Engine | None = None) -> Job:
    """Run a claimed job in this process (the worker child): adopt it, beat, store the result or the error.

    Jobs are the system's own work (a check run reads and writes the whole district): they run unscoped,
    explicitly (row-level security, gis.scope); the job's user is recorded, its authorisation was checked when
    it was submitted."""
    with db_scope.scoped(db_scope.SYSTEM):
        return _execute(job_id, engine=engine)


def _execute(job_id: int, *, engine: Engine | None = None) -> Job:
    eng = _engine(engine)
    if not _adopt(job_id, engine=eng):
        return get(job_id, engine=eng)
    job = get(job_id, engine=eng)
    try:
        with _heartbeat(job_id, engine=eng):
            result = _handler(job.kind)(JobContext(job=job, engine=eng))
    except BaseException as exc:  # noqa: BLE001 - recorded on the job, never lost
        log.exception("job %s (%s) failed", job_id, job.kind)
        fail(job_id, f"{type(exc).__name__}: {exc}", engine=eng)
        if not isinstance(exc, Exception):
            raise
    else:
        succeed(job_id, result or {}, engine=eng)
    return get(job_id, engine=eng)


@contextmanager
def inline(kind: str, params: dict[str, Any] | None = None, *, user: str | None = None,
           engine: Engine | None = None, setup: Callable[[Connection, int], None] | None = None,
           ) -> Iterator[JobContext]:
    """A job run by this process itself (`firelane check`): created running with this pid, beating while the
    body runs, succeeded with ``ctx.job.result`` or failed with the exception. `setup(conn, job_id)` runs in the
    creating transaction (e.g. to create the check_runs row the job drives). A killed process is reaped."""
    eng = _engine(engine)
    with eng.begin() as conn:
        job_id = conn.execute(text(
            "INSERT INTO jobs (kind, params, created_by, status, started_at, heartbeat_at, worker_host, "
            "worker_pid, worker_started) VALUES (:k, CAST(:p AS jsonb), :u, 'running', now(), now(), :host, :pid, "
            ":ps) RETURNING id"),
            {"k": kind, "p": json.dumps(params or {}, ensure_ascii=False, default=str), "u": user,
             "host": _host(), "pid": os.getpid(), "ps": _started(os.getpid())}).scalar_one()
        if setup is not None:
            setup(conn, job_id)
    ctx = JobContext(job=get(job_id, engine=eng), engine=eng)
    try:
        with _heartbeat(job_id, engine=eng):
            yield ctx
    except BaseException as exc:
        fail(job_id, f"{type(exc).__name__}: {exc}", engine=eng)
        raise
    succeed(job_id, ctx.job.result or {}, engine=eng)


# --- the worker loop --------------------------------------------------------------------------------------------


class WorkerLoop:
    """Claims queued jobs one at a time and runs each in a child process; reaps stale jobs on every turn."""

    def __init__(self, *, engine: Engine | None = None, kinds: tuple[str, ...] | None = None) -> None:
        self.engine = engine
        self.kinds = kinds
        self.stop = threading.Event()
        self.child: subprocess.Popen[bytes] | None = None
        self.current: int | None = None
        self.thread: threading.Thread | None = None

    def turn(self) -> bool:
        """Reap, then claim and run one job to its end; False when there was nothing to do."""
        with db_scope.scoped(db_scope.SYSTEM):  # the queue is everyone's (row-level security)
            return self._turn()

    def _turn(self) -> bool:
        eng = _engine(self.engine)
        reap(engine=eng)
        job = claim(engine=eng, kinds=self.kinds)
        if job is None:
            return False
        self.current = job.id
        try:
            self.child = subprocess.Popen([sys.executable, "-m", "gis.jobs", "run", str(job.id)],
                                          stdin=subprocess.DEVNULL)
            code = self.child.wait()
        except BaseException as exc:
            fail(job.id, f"任务进程未能启动 could not start the job process: {exc!r}", engine=eng)
            raise
        finally:
            self.child = None
            self.current = None
        if code != 0:
            fail(job.id, f"任务进程异常退出 the job process exited with code {code}", engine=eng)
        return True

    def run(self) -> None:
        """Until stopped: turn, sleeping `poll_s` when idle or after an error (the database may be down)."""
        while not self.stop.is_set():
            try:
                busy = self.turn()
            except Exception:  # noqa: BLE001 - the loop outlives a database outage
                log.warning("job worker turn failed", exc_info=True)
                busy = False
            if not busy:
                self.stop.wait(job_settings().poll_s)

    def start(self) -> WorkerLoop:
        self.thread = threading.Thread(target=self.run, name="firelane-jobs", daemon=True)
        self.thread.start()
        return self

    def shutdown(self, *, grace_s: float | None = None) -> None:
        """Stop claiming; give the job in hand `grace_s` to finish, then terminate it (and fail it)."""
        self.stop.set()
        child, current = self.child, self.current
        grace = job_settings().shutdown_grace_s if grace_s is None else grace_s
        if child is not None:
            try:
                child.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                child.terminate()
                try:
                    child.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    child.kill()
                if current is not None:
                    fail(current, "服务停止 the server stopped before the job finished", engine=self.engine)
        if self.thread is not None:
            self.thread.join(timeout=grace + 10)


# --- the check-run kind -----------------------------------------------------------------------------------------


def start_check_run(scope: dict[str, str], *, profile: str, user: str | None,
                    engine: Engine | None = None) -> tuple[int, int]:
    """Queue a check run: its check_runs record (status queued) and its job, in one transaction. Returns
    (run id, job id): distinct per request by construction, whatever process serves it."""
    with _engine(engine).begin() as conn:
        job_id = submit("check_run", {"scope": scope, "profile": profile}, user=user, conn=conn)
        run_id = _check_run_row(conn, job_id, scope=scope, profile=profile, user=user, status="queued")
        conn.execute(text("UPDATE jobs SET params = params || jsonb_build_object('run_id', :r) WHERE id = :j"),
                     {"r": run_id, "j": job_id})
    return run_id, job_id


def _check_run_row(conn: Connection, job_id: int, *, scope: dict[str, str], profile: str, user: str | None,
                   status: str) -> int:
    return int(conn.execute(text(
        "INSERT INTO check_runs (status, profile, profile_version, scope, started_by, job_id) "
        "VALUES (:st, :p, '', CAST(:s AS jsonb), :u, :j) RETURNING id"),
        {"st": status, "p": profile, "s": json.dumps(scope, ensure_ascii=False), "u": user, "j": job_id}
    ).scalar_one())


@contextmanager
def inline_check_run(scope: dict[str, str], *, profile: str, user: str | None,
                     engine: Engine | None = None) -> Iterator[tuple[JobContext, int]]:
    """A check run this process runs itself (`firelane check`), registered as a job so a kill is reaped."""
    run: dict[str, int] = {}

    def setup(conn: Connection, job_id: int) -> None:
        run["id"] = _check_run_row(conn, job_id, scope=scope, profile=profile, user=user, status="running")

    with inline("check_run", {"scope": scope, "profile": profile}, user=user, engine=engine, setup=setup) as ctx:
        yield ctx, run["id"]


def check_run_handler(ctx: JobContext) -> dict[str, Any]:
    """Run the checks of a queued check run and update the ledger (the run's check_runs row records it)."""
    from gis.checks.runner import run_checks  # noqa: PLC0415 (geopandas, every rule family: the child only)

    params = ctx.params
    scope = params.get("scope") or {}
    result = run_checks(street=scope.get("street"), compound=scope.get("compound"), profile=params["profile"],
                        ledger=True, user=ctx.user, engine=ctx.engine, run_id=params["run_id"])
    return {"run_id": result.run_id, "failures": result.failures, "compounds": len(result.compounds),
            "duration_s": round(result.duration_s, 3)}


def main(argv: list[str] | None = None) -> int:
    """``python -m gis.jobs run ID``: the worker child (one job)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "run" or not args[1].isdigit():
        print("usage: python -m gis.jobs run JOB_ID", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    job = execute(int(args[1]))
    return 0 if job.status in ("succeeded", "failed") else 1


if __name__ == "__main__":
    sys.exit(main())
