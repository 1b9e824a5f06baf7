"""A database outage is a 503, never a 500: every exception an outage can raise, wherever it is raised (a route, a
dependency, a middleware, an exception group, raised while handling another), maps to 503 through the one error
table (api.errors.error_status); then the real faults: backends killed mid-request and mid-commit, the cluster
stopped mid-transaction, every kind of request the soak sends answered 503 while it is down and served again after."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pandas as pd
import psycopg
import psycopg.errors as pge
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from psycopg_pool import PoolClosed, PoolTimeout, TooManyRequests
from sqlalchemy import event, text
from sqlalchemy import exc as sa_exc
from test_api_support import PASSWORD

from api.auth import forget_tokens
from api.errors import ServiceUnavailable, install_handlers
from gis import jobs, pgcluster
from gis.db import get_engine
from gis.pgcluster import ClusterError


def _raised_from(outer: Callable[[], BaseException], inner: BaseException, *, cause: bool = True) -> BaseException:
    """`outer()` raised from `inner` (cause) or while handling it (context)."""
    try:
        try:
            raise inner
        except BaseException as first:
            if cause:
                raise outer() from first
            raise outer()  # noqa: B904 - the context, not the cause, is what this case is about
    except BaseException as second:  # noqa: BLE001
        return second


def _sa(cls: type[sa_exc.DBAPIError], orig: BaseException, **kw) -> sa_exc.DBAPIError:
    return cls("SELECT 1", {}, orig, **kw)


SHUTDOWN = pge.AdminShutdown("terminating connection due to administrator command")
#: Everything an outage raises, as the driver, the pools, SQLAlchemy and the libraries around them raise it.
OUTAGE: dict[str, Callable[[], BaseException]] = {
    "closed unexpectedly": lambda: psycopg.OperationalError("server closed the connection unexpectedly"),
    "admin shutdown (57P01)": lambda: SHUTDOWN,
    "crash shutdown (57P02)": lambda: pge.CrashShutdown("terminating connection because of crash"),
    "starting up (57P03)": lambda: pge.CannotConnectNow("the database system is starting up"),
    "idle in transaction killed (25P03)": lambda: pge.IdleInTransactionSessionTimeout("terminating connection"),
    "read-only after failover (25006)": lambda: pge.ReadOnlySqlTransaction("cannot execute INSERT"),
    "too many connections (53300)": lambda: pge.TooManyConnections("sorry, too many clients already"),
    "no sqlstate: the server never answered": lambda: psycopg.DatabaseError("consuming input failed"),
    "interface: connection closed": lambda: psycopg.InterfaceError("the connection is closed"),
    "read pool timeout": lambda: PoolTimeout("couldn't get a connection after 5.00 sec"),
    "read pool closed": lambda: PoolClosed("the pool 'firelane-read' is already closed"),
    "read pool queue full": lambda: TooManyRequests("the pool 'firelane-read' has already 100 requests waiting"),
    "sqlalchemy operational": lambda: _sa(sa_exc.OperationalError, SHUTDOWN),
    "sqlalchemy interface": lambda: _sa(sa_exc.InterfaceError, psycopg.InterfaceError("closed")),
    "sqlalchemy invalidated mid-commit": lambda: _sa(sa_exc.DBAPIError, psycopg.DatabaseError("lost"),
                                                    connection_invalidated=True),
    "sqlalchemy pending rollback": lambda: sa_exc.PendingRollbackError(
        "Can't reconnect until invalid transaction is rolled back"),
    "sqlalchemy pool exhausted": lambda: sa_exc.TimeoutError("QueuePool limit of size 5 overflow 5 reached"),
    "pandas around sqlalchemy": lambda: _raised_from(lambda: pd.errors.DatabaseError("Execution failed"),
                                                     _sa(sa_exc.OperationalError, SHUTDOWN)),
    "a defect while handling an outage": lambda: _raised_from(lambda: AttributeError("'NoneType' has no 'id'"),
                                                              SHUTDOWN, cause=False),
    "exception group (a task group)": lambda: ExceptionGroup("unhandled errors in a TaskGroup", [SHUTDOWN]),
    "managed cluster not running": lambda: ClusterError("PostgreSQL is not running"),
    "503 raised in a middleware": lambda: ServiceUnavailable("数据库暂不可用 database unavailable"),
}


class _Raise:
    """A pure ASGI middleware that raises the test's exception for paths under /mw/ (as the token lookup or
    the access log could)."""

    def __init__(self, app, make: dict[str, Callable[[], BaseException]]) -> None:
        self.app, self.make = app, make

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/mw/"):
            raise self.make["now"]()
        await self.app(scope, receive, send)


@pytest.fixture
def raising() -> Iterator[tuple[TestClient, dict[str, Callable[[], BaseException]]]]:
    make: dict[str, Callable[[], BaseException]] = {}
    app = FastAPI()
    install_handlers(app)

    @app.get("/route/sync")
    def sync_route() -> None:
        raise make["now"]()

    @app.get("/route/async")
    async def async_route() -> None:
        raise make["now"]()

    app.add_middleware(_Raise, make=make)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, make


@pytest.mark.parametrize("where", ["/route/sync", "/route/async", "/mw/any"])
@pytest.mark.parametrize("name", list(OUTAGE))
def test_every_outage_error_is_a_503_wherever_it_is_raised(raising, name, where):
    client, make = raising
    make["now"] = OUTAGE[name]
    response = client.get(where)
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "ServiceUnavailable"
    assert int(response.headers["Retry-After"]) > 0


@pytest.mark.parametrize("where", ["/route/sync", "/mw/any"])
def test_the_table_still_tells_a_defect_and_a_bad_request_from_an_outage(raising, where):
    client, make = raising
    make["now"] = lambda: RuntimeError("a bug")
    assert client.get(where).status_code == 500
    make["now"] = lambda: pge.UndefinedColumn("column \"nope\" does not exist")  # our SQL is wrong: a defect
    assert client.get(where).status_code == 500
    make["now"] = lambda: _sa(sa_exc.IntegrityError, pge.UniqueViolation("duplicate key"))
    assert client.get(where).status_code == 409
    make["now"] = lambda: pge.QueryCanceled("canceling statement due to statement timeout")
    assert client.get(where).json()["code"] == "Timeout"


# --- real faults on the managed PostGIS ---------------------------------------------------------------------------


def _superuser() -> psycopg.Connection:
    state = pgcluster.load_state()
    assert state is not None
    return psycopg.connect(host="127.0.0.1", port=state.port, user=pgcluster.SUPERUSER, password=state.password,
                           dbname=pgcluster.DATABASE, autocommit=True)


@contextmanager
def _fault_on(pattern: str, fault: Callable[[int], None]) -> Iterator[list[int]]:
    """Run `fault(backend pid)` the first time the app's engine is about to send a statement matching `pattern`
    (at the commit of the connection that sent it, for "COMMIT:pattern"; for "CHECKOUT", the first statement of a connection just handed out, such as the layer
    reader's COPY on the raw driver connection): that statement then meets whatever the fault left."""
    engine = get_engine()
    fired: list[int] = []
    at_commit = pattern.startswith("COMMIT:")
    rx = re.compile(pattern.removeprefix("COMMIT:"), re.I | re.S)
    writers: set[int] = set()  # connections that sent the statement, for a fault at their commit

    def ours() -> bool:  # the request's, not the in-server job worker's (it shares the engine)
        return not fired and not threading.current_thread().name.startswith("firelane-job")

    def before(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        if not ours() or not rx.search(statement):
            return
        if at_commit:
            writers.add(id(conn.connection.dbapi_connection))
            return
        fired.append(conn.connection.dbapi_connection.info.backend_pid)
        fault(fired[0])

    def commit(conn) -> None:  # noqa: ANN001
        if ours() and id(conn.connection.dbapi_connection) in writers:
            fired.append(conn.connection.dbapi_connection.info.backend_pid)
            fault(fired[0])

    def checkout(dbapi_connection, record, proxy) -> None:  # noqa: ANN001
        if ours() and pattern == "CHECKOUT":  # after the pool's ping: the first statement, whatever it is
            fired.append(dbapi_connection.info.backend_pid)
            fault(fired[0])

    listeners = (("before_cursor_execute", before), ("commit", commit), ("checkout", checkout))
    for name, fn in listeners:
        event.listen(engine, name, fn)
    try:
        yield fired
    finally:
        for name, fn in listeners:
            event.remove(engine, name, fn)


def _terminate(pid: int) -> None:
    with _superuser() as su:
        su.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))


@pytest.fixture
def requests(api, headers, district) -> dict[str, Callable[[], object]]:
    """One request of every kind the soak sends (and the sign-in paths), as the admin."""
    auth = headers["admin"]
    x, y = 121.5030, 29.8035
    hazard = district.id("hazards", "k-a")
    counter = iter(range(1, 10_000))
    square = [[[x, y], [x + 2e-5, y], [x + 2e-5, y + 2e-5], [x, y + 2e-5], [x, y]]]
    department = api.get("/hazards/departments", headers=auth).json()["departments"][0]["id"]

    def create():
        return api.post("/collections/obstructions/items", headers=auth, json={
            "type": "Feature", "geometry": {"type": "Polygon", "coordinates": square},
            "properties": {"ref": f"outage-{next(counter)}", "kind": "stacked_goods"}})

    def update():
        return api.patch(f"/collections/buildings/items/{district.id('buildings', 'BA-0')}", json={
            "properties": {"name": f"outage-{next(counter)}"}},
            headers={**auth, "If-Match": "*", "Content-Type": "application/merge-patch+json"})

    def fresh_token():  # a token the app has not cached: the lookup goes to the database

        forget_tokens()
        return api.get("/collections/hydrants/items", headers=auth)

    return {
        "read": lambda: api.get("/collections/buildings/items?bbox=121.50,29.80,121.52,29.81", headers=auth),
        "item": lambda: api.get(f"/collections/hydrants/items/{district.id('hydrants', 'HA-1')}", headers=auth),
        "tile": lambda: api.get("/tiles/buildings/12/3430/1692.mvt", headers=auth),
        "page": lambda: api.get(f"/map/streets/{'330212001'}", headers=auth),
        "page in a browser": lambda: api.get(f"/map/streets/{'330212001'}", headers={**auth, "Accept": "text/html"}),
        "create": create,
        "update": update,
        "hazard": lambda: api.post(f"/hazards/{hazard}/assign", headers=auth,  # (re-)assignment: repeatable
                                   json={"department": department, "unit": "维保单位", "note": "outage"}),
        "token": fresh_token,
        "login": lambda: api.post("/auth/login", json={"username": "admin", "password": PASSWORD}),
    }



@pytest.mark.db
@pytest.mark.parametrize(("kind", "statement"), [
    ("create", r"INSERT INTO obstructions"),
    ("update", r"UPDATE buildings"),
    ("hazard", r"UPDATE hazards"),
    ("hazard", r"INSERT INTO hazard_events"),
    ("page", "CHECKOUT"),  # the street page's first read: a COPY on the driver's connection
    ("page", r"FROM hazards t WHERE"),
    ("update", "COMMIT:UPDATE buildings"),
    ("create", "COMMIT:INSERT INTO obstructions"),
    ("hazard", "COMMIT:UPDATE hazards"),
])
def test_a_backend_killed_mid_request_or_mid_commit_is_a_503_and_the_next_request_is_served(
        requests, kind, statement, db):
    before = _count(db, text("SELECT count(*) FROM obstructions"))
    with _fault_on(statement, _terminate) as fired:
        response = requests[kind]()
    assert fired, f"no statement matched {statement!r}"
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "ServiceUnavailable"
    if kind == "create":  # refused, so not written: nothing half-done survives the killed transaction
        assert _count(db, text("SELECT count(*) FROM obstructions")) == before
    again = requests[kind]()
    assert again.status_code < 300, again.text


def _count(engine, sql) -> int:
    with engine.connect() as conn:
        return conn.execute(sql).scalar_one()


@pytest.mark.db
def test_the_cluster_stopped_mid_transaction_gives_503s_for_every_kind_then_every_kind_is_served(requests):
    for kind, request in requests.items():  # warm: pools open, tokens cached
        assert request().status_code < 300, kind
    stopped = threading.Event()

    def stop(pid: int) -> None:
        pgcluster.stop()  # fast mode: the transaction in flight is killed with the server
        stopped.set()

    try:
        with _fault_on(r"UPDATE buildings", stop):
            response = requests["update"]()
        assert stopped.is_set()
        assert response.status_code == 503, response.text
        down = {kind: request() for kind, request in requests.items()}
        assert {kind: r.status_code for kind, r in down.items()} == dict.fromkeys(requests, 503), {
            kind: r.text[:200] for kind, r in down.items() if r.status_code != 503}
        assert all(r.json()["code"] == "ServiceUnavailable" for k, r in down.items() if k != "page in a browser")
        assert "text/html" in down["page in a browser"].headers["content-type"]  # the map pages' error page
    finally:
        pgcluster.start()
    deadline = time.monotonic() + 60
    pending = dict(requests)
    while pending and time.monotonic() < deadline:
        for kind in list(pending):
            status = pending[kind]().status_code
            assert status < 300 or status == 503, (kind, status)
            if status < 300:
                del pending[kind]
        time.sleep(0.1)
    assert not pending, f"not served again within 60 s: {sorted(pending)}"


@pytest.mark.db
def test_the_job_worker_loop_outlives_an_outage_and_runs_the_queued_job_after_it(db, district, monkeypatch):
    """A worker turn while the cluster is down fails (logged), the loop goes on, and once the database is back
    the job queued before the outage is claimed and run."""
    monkeypatch.setattr(jobs.job_settings(), "poll_s", 0.2)
    run_id, job_id = jobs.start_check_run({"street": "330212001"}, profile="cn-gb", user="planner", engine=db)
    loop = jobs.WorkerLoop(engine=db)
    pgcluster.stop()
    try:
        with pytest.raises(sa_exc.OperationalError):  # what the loop catches
            loop.turn()
        loop.start()
        time.sleep(1.0)  # a few failed turns
        assert loop.thread is not None and loop.thread.is_alive()
    finally:
        pgcluster.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if jobs.get(job_id, engine=db).status == "succeeded":
                    break
            except sa_exc.OperationalError:  # the test's own pool reconnecting
                pass
            time.sleep(0.3)
        assert jobs.get(job_id, engine=db).status == "succeeded"
        result = jobs.get(job_id, engine=db).result
        assert result is not None and result["run_id"] == run_id
    finally:
        loop.stop.set()
        loop.thread.join(timeout=30)
