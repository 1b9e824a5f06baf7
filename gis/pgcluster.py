"""The managed local PostgreSQL + PostGIS cluster under FIRELANE_HOME (initdb, own port, start/stop/status)."""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

from gis.config import home_settings
from gis.jurisdiction import jurisdiction_sql

SUPERUSER = "firelane"
#: Owns the schema (tables, functions, policies): runs migrations (`firelane init`) and backups. No superuser,
#: no role creation, no RLS bypass: its reads go through the same policies (tables FORCE row-level security).
OWNER = "firelane_owner"
#: What the API, pages, checks and the CLI's data commands connect as: reads and writes rows, nothing more.
APP = "firelane_app"
DATABASE = "firelane"
SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "100",
    "work_mem": "'64MB'",
    "maintenance_work_mem": "'256MB'",
    "max_wal_size": "'2GB'",
    "jit": "off",
    "timezone": "'UTC'",
    "logging_collector": "off",
}


def memory_settings(total_bytes: int | None = None) -> dict[str, str]:
    """The server's cache sized to the machine (`total_bytes`, default its physical memory): shared_buffers a
    quarter of it, PostgreSQL's own starting advice, between 128 MB and 8 GB; effective_cache_size (a planner hint,
    no allocation) three quarters. A fixed size small enough for any machine holds a small district's layers but not
    a city's, whose every read then copies its pages in from the OS cache again."""
    if total_bytes is None:
        total_bytes = min(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), _cgroup_limit())
    mb = total_bytes // 2**20
    return {"shared_buffers": f"'{min(max(mb // 4, 128), 8192)}MB'",
            "effective_cache_size": f"'{max(mb * 3 // 4, 512)}MB'"}


def _cgroup_limit() -> int:
    """The memory limit of this process's control group (a container's), or no limit (cgroup v2, then v1)."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            return int(Path(path).read_text().strip())
        except (OSError, ValueError):  # absent, or "max"
            continue
    return 2**62


class ClusterError(RuntimeError):
    """The managed PostGIS could not be created, started or reached."""


@dataclass
class ClusterState:
    """What firelane remembers about its managed cluster (FIRELANE_HOME/cluster.json, mode 600)."""

    datadir: str
    port: int
    password: str
    bindir: str
    owner_password: str = ""
    app_password: str = ""

    def _url(self, user: str, password: str) -> str:
        return f"postgresql+psycopg://{user}:{quote(password)}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def url(self) -> str:
        """The application role's URL (least privilege)."""
        return self._url(APP, self.app_password)

    @property
    def owner_url(self) -> str:
        """The schema owner's URL (migrations, backups)."""
        return self._url(OWNER, self.owner_password)

    @property
    def superuser_url(self) -> str:
        """The cluster superuser's URL (creating roles, the database and extensions; nothing else uses it)."""
        return self._url(SUPERUSER, self.password)


def find_bindir() -> Path:
    """The bin folder of the newest installed PostgreSQL that has the PostGIS extension."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True)
    for bindir in candidates:
        version = bindir.parent.name
        if Path(f"/usr/share/postgresql/{version}/extension/postgis.control").exists() and (bindir / "initdb").exists():
            return bindir
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        if out and (Path(out) / "initdb").exists():
            return Path(out)
    raise ClusterError(
        "找不到带 PostGIS 的 PostgreSQL no PostgreSQL with PostGIS found: install the Debian packages "
        "'postgresql postgresql-15-postgis-3' (scripts/setup.sh does this) or set FIRELANE_DATABASE_URL"
    )


def _is_root() -> bool:
    return os.geteuid() == 0


def _run_as() -> list[str]:
    """Command prefix: PostgreSQL refuses to run as root, so root runs it as the `postgres` system user."""
    if not _is_root():
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise ClusterError("以 root 运行需要 postgres 系统用户 running as root needs the 'postgres' system user") from None
    return ["runuser", "-u", "postgres", "--"]


def home() -> Path:
    path = Path(home_settings().home).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _state_file() -> Path:
    return home() / "cluster.json"


def _default_datadir() -> Path:
    if _is_root():
        # the postgres user cannot enter /root; keep the cluster where it can, keyed by FIRELANE_HOME
        key = hashlib.sha1(str(home()).encode()).hexdigest()[:12]
        return Path("/var/lib/firelane") / f"pg-{key}"
    return home() / "pg"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_state() -> ClusterState | None:
    path = _state_file()
    if not path.exists():
        return None
    return ClusterState(**json.loads(path.read_text()))


def _save_state(state: ClusterState) -> None:
    path = _state_file()
    path.write_text(json.dumps(asdict(state), indent=2))
    path.chmod(0o600)


def _run(cmd: list[str], *, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise ClusterError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def _initdb() -> ClusterState:
    bindir = find_bindir()
    datadir = _default_datadir()
    if datadir.exists() and any(datadir.iterdir()):
        shutil.rmtree(datadir)  # a half-made cluster from an interrupted init: start over
    datadir.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(24)
    pwfile = datadir.parent / f".{datadir.name}.pw"
    pwfile.write_text(password + "\n")
    if _is_root():
        shutil.chown(datadir.parent, "postgres", "postgres")
        shutil.chown(datadir, "postgres", "postgres")
        shutil.chown(pwfile, "postgres", "postgres")
    datadir.chmod(0o700)
    pwfile.chmod(0o600)
    try:
        _run(_run_as() + [str(bindir / "initdb"), "-D", str(datadir), "-U", SUPERUSER, "-E", "UTF8",
                          "--locale=C.UTF-8", "--auth=scram-sha-256", f"--pwfile={pwfile}"])
    finally:
        pwfile.unlink(missing_ok=True)
    port = _free_port()
    settings = {**SERVER_SETTINGS, **memory_settings()}
    conf = "\n# firelane managed cluster\n" + "".join(f"{k} = {v}\n" for k, v in settings.items())
    conf += f"port = {port}\nunix_socket_directories = '{datadir}'\n"
    with open(datadir / "postgresql.conf", "a") as fh:
        fh.write(conf)
    state = ClusterState(datadir=str(datadir), port=port, password=password, bindir=str(bindir))
    _save_state(state)
    return state


def status() -> str:
    """'running', 'stopped' or 'absent' (never initialised)."""
    state = load_state()
    if state is None or not Path(state.datadir, "PG_VERSION").exists():
        return "absent"
    proc = _run(_run_as() + [str(Path(state.bindir) / "pg_ctl"), "-D", state.datadir, "status"], check=False)
    return "running" if proc.returncode == 0 else "stopped"


def data_location() -> str | None:
    """Where the managed cluster keeps its data, said plainly (None when FIRELANE_DATABASE_URL is used or absent)."""
    state = load_state()
    if state is None:
        return None
    inside = Path(state.datadir).resolve().is_relative_to(home())
    note = "" if inside else (" — 在 FIRELANE_HOME 之外 (root 以 postgres 用户运行 PostgreSQL), 请用 firelane backup 备份 "
                              "outside FIRELANE_HOME (as root PostgreSQL runs as the postgres user): back it up with "
                              "`firelane backup`")
    return f"数据目录 data directory: {state.datadir}{note}"


def start() -> ClusterState:
    """Create (first use) and start the managed cluster; make the database and the PostGIS extension."""
    state = load_state()
    if state is None or not Path(state.datadir, "PG_VERSION").exists():
        state = _initdb()
    if not state.owner_password or not state.app_password:  # a cluster made before the roles existed
        state.owner_password = state.owner_password or secrets.token_urlsafe(24)
        state.app_password = state.app_password or secrets.token_urlsafe(24)
        _save_state(state)
    if status() != "running":
        log = Path(state.datadir) / "server.log"
        _run(_run_as() + [str(Path(state.bindir) / "pg_ctl"), "-D", state.datadir, "-l", str(log), "-w",
                          "-t", "60", "start"])
    _ensure_database(state)
    return state


def stop() -> None:
    state = load_state()
    if state is None or status() != "running":
        return
    _run(_run_as() + [str(Path(state.bindir) / "pg_ctl"), "-D", state.datadir, "-m", "fast", "-w", "stop"])


def destroy() -> None:
    """Stop the cluster and delete its data (tests' throwaway clusters)."""
    state = load_state()
    stop()
    if state is not None:
        shutil.rmtree(state.datadir, ignore_errors=True)
        _state_file().unlink(missing_ok=True)


def _ensure_database(state: ClusterState) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            conn = psycopg.connect(host="127.0.0.1", port=state.port, user=SUPERUSER, password=state.password,
                                   dbname="postgres", autocommit=True, connect_timeout=5)
            break
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise ClusterError(f"托管数据库无法连接 managed PostGIS not reachable: {exc}") from exc
            time.sleep(0.3)
    # every start checks; only what is missing is made (concurrent starts must not rewrite the catalogue)
    with conn:
        for role, password in ((OWNER, state.owner_password), (APP, state.app_password)):
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS "
                                     "NOREPLICATION PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
        owner = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
                             (DATABASE,)).fetchone()
        if owner is None:
            conn.execute(f"CREATE DATABASE {DATABASE} OWNER {OWNER}")
        elif owner[0] != OWNER:
            conn.execute(f"ALTER DATABASE {DATABASE} OWNER TO {OWNER}")
    with psycopg.connect(host="127.0.0.1", port=state.port, user=SUPERUSER, password=state.password,
                         dbname=DATABASE, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        schema_owner = conn.execute("SELECT pg_get_userbyid(nspowner) FROM pg_namespace "
                                    "WHERE nspname = 'public'").fetchone()
        if schema_owner is None or schema_owner[0] != OWNER:
            for statement in roles_sql(OWNER, APP):
                conn.execute(statement)
        adopt_tables(conn, OWNER)


#: The schema's own objects (not PostGIS's: extension members stay the extension's) owned by `%(old)s`.
_OWNED_SQL = """
SELECT kind, name FROM (
  SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
              ELSE 'TABLE' END AS kind, format('%%I.%%I', n.nspname, c.relname) AS name, c.oid, c.relowner AS owner,
         'pg_class'::regclass AS catalog
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'S', 'v', 'm')
    AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
             AND d.objid = c.oid AND d.deptype IN ('a', 'i')))  -- a table sequence follows its table
  UNION ALL
  SELECT 'FUNCTION', p.oid::regprocedure::text, p.oid, p.proowner, 'pg_proc'::regclass
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public' AND p.prokind = 'f'
) o
WHERE pg_get_userbyid(o.owner) = %(old)s
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = o.catalog AND d.objid = o.oid AND d.deptype = 'e')
ORDER BY kind DESC, name
"""


def owned_by(conn: Any, old: str) -> list[tuple[str, str]]:
    """(kind, qualified name) of the schema's objects `old` owns (PostGIS's own objects left out)."""
    return [(k, n) for k, n in conn.execute(_OWNED_SQL, {"old": old}).fetchall()]


def adopt_statements(objects: list[tuple[str, str]], owner: str) -> list[str]:
    return [f"ALTER {kind} {name} OWNER TO {owner}" for kind, name in objects]


def adopt_tables(conn: Any, owner: str, old: str = SUPERUSER) -> list[tuple[str, str]]:
    """Upgrade a cluster made before the owner/application split, whose tables the superuser created and owns:
    give every object of the schema to `owner`, then, as `owner`, grant the application role its rows and (re)make
    the jurisdiction's policies and triggers (gis.jurisdiction, idempotent). Nothing to do (the usual case): one
    catalogue query. Returns what was given over."""
    objects = owned_by(conn, old)
    if not objects:
        return []
    with conn.transaction():
        for statement in adopt_statements(objects, owner):
            conn.execute(statement)
        conn.execute(f"SET LOCAL ROLE {owner}")  # default privileges and policies are the owner's, as migrations make
        conn.execute("SELECT set_config('firelane.scope', 'all', true)")
        conn.execute(jurisdiction_sql())
    return objects


def roles_sql(owner: str, app: str) -> list[str]:
    """What a superuser runs once in the database so that `owner` can own the schema and `app` only use it: the
    public schema for the owner, USAGE for the app (no CREATE in any schema; temporary tables only), and PostGIS's
    bounding-box operators marked LEAKPROOF so the planner may still use spatial indexes under row-level
    security (they compare boxes and raise no data-dependent errors)."""
    boxes = ("geometry_overlaps(geometry, geometry)", "geometry_contains(geometry, geometry)",
             "geometry_within(geometry, geometry)")
    return [
        f"ALTER SCHEMA public OWNER TO {owner}",
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
        f"GRANT USAGE ON SCHEMA public TO {app}",
        f"REVOKE TEMPORARY ON DATABASE {DATABASE} FROM PUBLIC",
        f"GRANT CONNECT, TEMPORARY ON DATABASE {DATABASE} TO {owner}, {app}",  # session-private staging tables
        *(f"ALTER FUNCTION {f} LEAKPROOF" for f in boxes),
    ]


def url(*, start_if_needed: bool = True, owner: bool = False) -> str:
    """The SQLAlchemy URL of the managed cluster (the application role's, or with `owner` the schema owner's),
    starting it first when asked."""
    state = start() if start_if_needed else load_state()
    if state is None:
        raise ClusterError("托管数据库尚未创建 the managed PostGIS does not exist yet: run 'firelane db start'")
    return state.owner_url if owner else state.url
