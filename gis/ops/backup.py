"""`firelane backup` / `firelane restore`: pg_dump of the database plus the files under FIRELANE_HOME (photos and
other stores), in one tar with a manifest (versions, row counts per table, sha256 of every member)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from fnmatch import fnmatch
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from gis import pgcluster
from gis.config import home_settings
from gis.db import owner_engine
from gis.jurisdiction import privileges_sql
from gis.schema import metadata

__all__ = ["BACKUP_FORMAT", "BackupError", "Manifest", "backup", "home_files", "restore", "table_counts"]

BACKUP_FORMAT = "firelane-backup/1"
DUMP_MEMBER = "database.dump"
MANIFEST_MEMBER = "manifest.json"
FILES_PREFIX = "home/"
#: What under FIRELANE_HOME is not backed up as files: the managed cluster's own data (dumped instead), its state
#: (port, password: the restoring machine keeps its own), logs and temporary or earlier backup files.
EXCLUDED = ("pg", "pg/*", "cluster.json", "*.log", "backups", "backups/*", "tmp", "tmp/*", "*.tmp")


class BackupError(RuntimeError):
    """A backup or restore that cannot be made or trusted (messages are "中文 English")."""


@dataclass
class Manifest:
    """What a backup holds: versions, the database's row counts per table, and each member's sha256 and size."""

    format: str
    created_at: str
    firelane_version: str
    server_version: str
    postgis_version: str | None
    pg_dump_version: str
    alembic_revision: str | None
    database: str
    counts: dict[str, int]
    files: dict[str, dict[str, int | str]] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(self.__dict__, ensure_ascii=False, indent=1, sort_keys=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def table_counts(engine: Engine) -> dict[str, int]:
    """Row counts of every firelane table (gis.schema), as the manifest records them."""
    with engine.connect() as conn:
        present = set(conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"))
                      .scalars())
        return {t.name: conn.execute(text(f'SELECT count(*) FROM "{t.name}"')).scalar_one()
                for t in metadata.sorted_tables if t.name in present}


def _server(engine: Engine) -> tuple[str, int, str | None, str | None]:
    with engine.connect() as conn:
        ver = conn.execute(text("SHOW server_version")).scalar_one()
        num = int(conn.execute(text("SHOW server_version_num")).scalar_one())
        postgis = conn.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'postgis'")).scalar()
        try:
            rev = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except Exception:  # noqa: BLE001 - a database never migrated has no alembic_version
            rev = None
    return ver, num // 10000, postgis, rev


def client_tool(name: str, major: int) -> Path:
    """pg_dump / pg_restore of the server's major version (a newer one works too); the managed cluster's own."""
    state = pgcluster.load_state()
    candidates = [Path(f"/usr/lib/postgresql/{major}/bin/{name}")]
    if state is not None:
        candidates.append(Path(state.bindir) / name)
    candidates += sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
                         key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
                         reverse=True)
    for c in candidates:
        if c.exists() and (not c.parent.parent.name.isdigit() or int(c.parent.parent.name) >= major):
            return c
    found = shutil.which(name)
    if found:
        return Path(found)
    raise BackupError(f"找不到 {name} {major} no {name} for PostgreSQL {major}: install postgresql-client-{major}")


def _libpq(engine: Engine) -> tuple[list[str], dict[str, str]]:
    """Connection arguments for pg_dump/pg_restore, the password in the environment (never on a command line)."""
    url = make_url(engine.url.render_as_string(hide_password=False))
    # the owner works under the tables' forced row-level security too: it says, explicitly, that it sees all rows
    env = {**os.environ, "PGOPTIONS": "-c firelane.scope=all -c firelane.role=system"}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    args = ["-h", url.host or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username or "postgres",
            "-d", url.database or "postgres"]
    return args, env


def _run(cmd: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise BackupError(f"{Path(cmd[0]).name} 失败 failed ({proc.returncode}): "
                          f"{(proc.stderr or proc.stdout).strip()[-2000:]}")
    return proc.stdout


def home_files(home: Path) -> list[Path]:
    """Files under FIRELANE_HOME that a backup carries (photos and other stores), relative, sorted."""
    out = []
    for path in sorted(home.rglob("*")):
        rel = path.relative_to(home).as_posix()
        if path.is_file() and not path.is_symlink() and not any(fnmatch(rel, pat) for pat in EXCLUDED):
            out.append(Path(rel))
    return out


def backup(out: str | Path, *, engine: Engine | None = None, home: Path | None = None) -> Manifest:
    """Write a backup tar to `out`: pg_dump -Fc of the database, the FIRELANE_HOME files, and manifest.json."""
    engine = engine or owner_engine()  # the schema owner dumps and restores (the app role has no DDL)
    home = Path(home or home_settings().home).expanduser().resolve()
    out = Path(out)
    server_version, major, postgis, revision = _server(engine)
    pg_dump = client_tool("pg_dump", major)
    args, env = _libpq(engine)
    tool_version = _run([str(pg_dump), "--version"], env).strip()
    with tempfile.TemporaryDirectory(prefix="firelane-backup-") as tmp:
        dump = Path(tmp) / DUMP_MEMBER
        # counts first, dump in one snapshot after: a write in between shows up as a count mismatch on restore
        counts = table_counts(engine)
        _run([str(pg_dump), *args, "-Fc", "--no-owner", "--no-privileges", "--enable-row-security", "-f",
              str(dump)], env)
        manifest = Manifest(format=BACKUP_FORMAT, created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                            firelane_version=_firelane_version(), server_version=server_version,
                            postgis_version=postgis, pg_dump_version=tool_version, alembic_revision=revision,
                            database=make_url(str(engine.url)).database or "", counts=counts)
        partial = out.with_name(out.name + ".partial")
        out.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(partial, "w") as tar:
            manifest.files[DUMP_MEMBER] = {"sha256": _sha256(dump), "bytes": dump.stat().st_size}
            tar.add(dump, DUMP_MEMBER)
            for rel in home_files(home):
                src = home / rel
                name = FILES_PREFIX + rel.as_posix()
                manifest.files[name] = {"sha256": _sha256(src), "bytes": src.stat().st_size}
                tar.add(src, name)
            data = manifest.to_json().encode("utf-8")
            info = tarfile.TarInfo(MANIFEST_MEMBER)
            info.size = len(data)
            info.mtime = int(dt.datetime.now().timestamp())
            tar.addfile(info, io.BytesIO(data))
        partial.replace(out)  # a backup file exists only once it is complete
    return manifest


def _firelane_version() -> str:
    try:
        return version("firelane")
    except PackageNotFoundError:
        return "unknown"


def read_manifest(path: Path) -> Manifest:
    try:
        with tarfile.open(path, "r") as tar:
            member = tar.extractfile(MANIFEST_MEMBER)
            if member is None:
                raise KeyError(MANIFEST_MEMBER)
            data = json.loads(member.read().decode("utf-8"))
    except (tarfile.TarError, KeyError, ValueError, OSError) as exc:
        raise BackupError(f"不是 firelane 备份 not a firelane backup ({path}): {exc}") from exc
    if data.get("format") != BACKUP_FORMAT:
        raise BackupError(f"备份格式不支持 unsupported backup format {data.get('format')!r}")
    return Manifest(**data)


def verify(path: Path, extract_to: Path) -> Manifest:
    """Extract every member into `extract_to`, checking its sha256 and size against the manifest (and that no
    member is missing or unlisted). Raises BackupError naming the first member that does not match."""
    manifest = read_manifest(path)
    seen: set[str] = set()
    with tarfile.open(path, "r") as tar:
        for member in tar:
            if member.name == MANIFEST_MEMBER:
                continue
            expected = manifest.files.get(member.name)
            if expected is None:
                raise BackupError(f"备份含未登记的文件 the backup holds an unlisted member: {member.name}")
            tar.extract(member, extract_to, filter="data")  # no absolute paths, links out or devices
            got = _sha256(extract_to / member.name)
            if got != expected["sha256"]:
                raise BackupError(f"校验和不符, 备份已损坏 checksum mismatch (corrupt backup): {member.name}")
            seen.add(member.name)
    missing = set(manifest.files) - seen
    if missing:
        raise BackupError(f"备份缺少文件 the backup lacks: {', '.join(sorted(missing)[:5])}")
    return manifest


def restore(path: str | Path, *, engine: Engine | None = None, home: Path | None = None) -> Manifest:
    """Verify a backup's checksums, restore its database dump (replacing what the database holds) and its files
    into FIRELANE_HOME, then check the row counts per table against the manifest."""
    path = Path(path)
    engine = engine or owner_engine()  # the schema owner dumps and restores (the app role has no DDL)
    home = Path(home or home_settings().home).expanduser().resolve()
    with tempfile.TemporaryDirectory(prefix="firelane-restore-") as tmp:
        manifest = verify(path, Path(tmp))
        _, major, _, _ = _server(engine)
        pg_restore = client_tool("pg_restore", major)
        args, env = _libpq(engine)
        engine.dispose()  # no pooled session of ours holds locks on what is dropped
        dump = str(Path(tmp) / DUMP_MEMBER)
        # the schema owner restores what it owns: the PostGIS extension (and its spatial_ref_sys) belongs to the
        # database's superuser, exists already and is left alone
        listing = [line for line in _run([str(pg_restore), "-l", dump], env).splitlines()
                   if " EXTENSION " not in line and "spatial_ref_sys" not in line]
        toc = Path(tmp) / "restore.list"
        toc.write_text("\n".join(listing) + "\n")
        _run([str(pg_restore), *args, "--clean", "--if-exists", "--no-owner", "--no-privileges",
              "--single-transaction", "--exit-on-error", "-L", str(toc), dump], env)
        with engine.begin() as conn:  # a dump carries no privileges: the app role's grants again
            conn.exec_driver_sql(privileges_sql())
        files = Path(tmp) / FILES_PREFIX
        if files.exists():
            for src in sorted(files.rglob("*")):
                if src.is_file():
                    dst = home / src.relative_to(files)
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, dst)
    counts = table_counts(engine)
    wrong = {t: (n, counts.get(t)) for t, n in manifest.counts.items() if counts.get(t) != n}
    if wrong:
        raise BackupError("恢复后行数不符 row counts differ after restore: "
                          + ", ".join(f"{t} {a} → {b}" for t, (a, b) in wrong.items()))
    return manifest
