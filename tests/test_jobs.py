"""Persisted jobs: one claim per job across workers, distinct check runs under several server processes, and
jobs whose worker died reaped to failed (with the check run they drive)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from test_api_support import STREET_A, STREET_B, load_district, make_user

from gis import jobs

pytestmark = pytest.mark.db
ROOT = Path(__file__).resolve().parents[1]


def _status(engine, job_id: int) -> tuple[str, str | None]:
    with engine.connect() as conn:
        row = conn.execute(text("SELECT status, error FROM jobs WHERE id = :id"), {"id": job_id}).one()
    return row.status, row.error


def test_two_workers_never_claim_the_same_job(db):
    ids = [jobs.submit("check_run", {"n": i}, user="t", engine=db) for i in range(6)]
    claimed: list[int] = []
    barrier = threading.Barrier(3)

    def worker() -> None:
        barrier.wait()
        while (job := jobs.claim(engine=db)) is not None:
            claimed.append(job.id)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == ids  # every job once, none twice
    assert {_status(db, i)[0] for i in ids} == {"running"}


def test_a_killed_process_holding_a_job_is_reaped_with_its_check_run(db):
    # a real process registers a check run the way `firelane check` does, then is killed mid-run
    code = ("import time; from gis import jobs, scope\n"
            "scope.enter(scope.SYSTEM)\n"  # as the command line does (row-level security)
            "with jobs.inline_check_run({'street': 'X'}, profile='cn-gb', user='cli') as (job, run_id):\n"
            "    print(job.job.id, run_id, flush=True)\n"
            "    time.sleep(120)\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert child.stdout is not None  # stdout=PIPE
        job_id, run_id = (int(v) for v in child.stdout.readline().split())
        assert _status(db, job_id)[0] == "running"
        assert jobs.reap(engine=db) == []  # alive and beating: left alone
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    assert jobs.reap(engine=db) == [job_id]
    status, error = _status(db, job_id)
    assert status == "failed" and error is not None and "reaped" in error
    with db.connect() as conn:
        run = conn.execute(text("SELECT status, error FROM check_runs WHERE id = :id"), {"id": run_id}).one()
    assert run.status == "failed" and "reaped" in run.error


def test_a_job_whose_heartbeat_stopped_is_reaped_on_any_host(db):
    job_id = jobs.submit("check_run", {}, engine=db)
    with db.begin() as conn:
        conn.execute(text("UPDATE jobs SET status = 'running', worker_host = 'elsewhere', worker_pid = 1, "
                          "heartbeat_at = now() - interval '10 minutes' WHERE id = :id"), {"id": job_id})
    assert jobs.reap(engine=db, stale_s=60) == [job_id]
    assert _status(db, job_id)[0] == "failed"


def test_a_job_on_a_reused_pid_is_reaped(db):
    # the pid is alive (this test process) but started at another time: not the worker that claimed the job
    job_id = jobs.submit("check_run", {}, engine=db)
    with db.begin() as conn:
        conn.execute(text("UPDATE jobs SET status = 'running', worker_host = :h, worker_pid = :p, "
                          "worker_started = 1.0, heartbeat_at = now() WHERE id = :id"),
                     {"h": socket.gethostname(), "p": os.getpid(), "id": job_id})
    assert jobs.reap(engine=db) == [job_id]


def test_unknown_job_kinds_are_refused(db):
    with pytest.raises(jobs.JobError, match="unknown job kind"):
        jobs.submit("mine-bitcoin", {}, engine=db)


def test_a_worker_loop_runs_a_queued_check_run_in_a_child_process(db):
    load_district(db)
    run_id, job_id = jobs.start_check_run({"street": STREET_A}, profile="cn-gb", user="planner", engine=db)
    assert jobs.WorkerLoop(engine=db).turn() is True
    job = jobs.get(job_id, engine=db)
    assert job.status == "succeeded", job.error
    assert job.result is not None and job.result["run_id"] == run_id and job.worker_pid != os.getpid()
    with db.connect() as conn:
        run = conn.execute(text("SELECT status, job_id, started_by FROM check_runs WHERE id = :id"),
                           {"id": run_id}).one()
    assert (run.status, run.job_id, run.started_by) == ("done", job_id, "planner")
    assert jobs.WorkerLoop(engine=db).turn() is False  # nothing left


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_concurrent_run_requests_to_two_server_processes_get_two_runs_both_reported(db):
    load_district(db)
    h = make_user(db, "planner", "planner")
    port = _free_port()
    env = {**os.environ, "FIRELANE_DATABASE_URL": db.url.render_as_string(hide_password=False)}
    server = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--workers", "2"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        answers: list[httpx.Response] = []
        barrier = threading.Barrier(2)

        def post(street: str) -> None:
            with httpx.Client(base_url=base, headers=h, timeout=30) as client:
                barrier.wait()
                answers.append(client.post("/checks/runs", json={"scope": "street", "street": street}))

        threads = [threading.Thread(target=post, args=(s,)) for s in (STREET_A, STREET_B)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [r.status_code for r in answers] == [202, 202], [r.text for r in answers]
        run_ids = {r.json()["id"] for r in answers}
        assert len(run_ids) == 2
        deadline = time.monotonic() + 180
        docs: dict[int, dict] = {}
        while time.monotonic() < deadline:
            docs = {i: httpx.get(f"{base}/checks/runs/{i}", headers=h, timeout=10).json() for i in run_ids}
            if all(d["status"] not in ("queued", "running") for d in docs.values()):
                break
            time.sleep(0.3)
        assert {d["status"] for d in docs.values()} == {"done"}, docs
        assert {d["scope"]["street"] for d in docs.values()} == {STREET_A, STREET_B}
        listed = {r["id"] for r in httpx.get(f"{base}/checks/runs", headers=h, timeout=10).json()["runs"]}
        assert run_ids <= listed
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
