"""Schema migrations: run Alembic programmatically against the configured database (`firelane init`)."""

from __future__ import annotations

import ast
import hashlib
import importlib
from pathlib import Path

import psycopg
import sqlalchemy.exc
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, inspect, text

from gis import pgcluster
from gis.db import get_engine, owner_engine, raw_connection, reset_engine

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


class NotTheOwner(RuntimeError):
    """The migration role does not own the schema's tables (a database made before the owner/application role
    split): what a superuser must run is in the message."""


class SchemaDrift(RuntimeError):
    """The database is at this build's revision but was made from other migration files: 0001 is regenerated
    until the schema is released, so a database made by an earlier development build lacks what this one adds
    (columns, functions, indexes) while Alembic believes it is up to date."""


def fingerprint() -> str:
    """sha256 of the migration files and of the SQL they take from this package (`generated_sql`): what a database
    made by this build records beside its revision."""
    digest = hashlib.sha256()
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        for name, sql in generated_sql(path):
            digest.update(name.encode() + b"\0" + sql.encode() + b"\0")
    return digest.hexdigest()


def generated_sql(path: Path) -> list[tuple[str, str]]:
    """The SQL a migration file runs that this package writes: what each name it imports from `gis` returns (the
    trigger, function and policy builders, which take no arguments). A change there changes the schema a new
    database gets as surely as an edit of the file does."""
    out = []
    for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "gis":
            module = importlib.import_module(node.module)
            for alias in node.names:
                out.append((f"{node.module}.{alias.name}", getattr(module, alias.name)()))
    return out


#: The built-from record: a comment on Alembic's own table, so it travels in pg_dump backups with the revision.
STAMP_PREFIX = "firelane migrations sha256:"


def _stamp(conn: Connection) -> str | None:
    """The fingerprint the database was made with, or None (no schema yet, or made before stamps existed)."""
    comment = conn.execute(text("SELECT obj_description(to_regclass('alembic_version'), 'pg_class')")).scalar()
    if comment is None or not comment.startswith(STAMP_PREFIX):
        return None
    return str(comment[len(STAMP_PREFIX):])


def check_drift(conn: Connection, ours: str | None = None) -> None:
    """Raise SchemaDrift when the database already has a schema made from other migration files than these
    (`ours`: their fingerprint, when the caller has it already)."""
    if conn.execute(text("SELECT to_regclass('alembic_version')")).scalar() is None:
        return  # a new database: nothing made yet
    ours = ours or fingerprint()
    theirs = _stamp(conn)
    if theirs != ours:
        db = conn.execute(text("SELECT current_database()")).scalar()
        raise SchemaDrift(
            f"数据库 {db} 由另一开发版本的迁移文件建立 (记录 {(theirs or '无')[:12]}, 本版本 {ours[:12]}), 结构与本版本不符: "
            f"请先 `firelane backup -o 备份.tar`, 再换用新的数据库 (托管数据库: `firelane demo` 会自动备份并重建; "
            f"或新的 FIRELANE_HOME) | database {db} was made from other migration files "
            f"(recorded {(theirs or 'none')[:12]}, this build {ours[:12]}): schema revision 0001 is regenerated until "
            f"the schema is released, so it lacks what this build adds. Back it up (`firelane backup -o FILE`), then "
            f"use a new database (the managed one: `firelane demo` backs it up and rebuilds it; or a new FIRELANE_HOME)")


def upgrade(*, engine: Engine | None = None, revision: str = "head") -> str:
    """Bring the schema to `revision` as the schema owner; returns the revision now in force.

    Refuses (SchemaDrift) a database made from other migration files than this build's."""
    engine = engine or owner_engine()
    cfg = alembic_config()
    ours = fingerprint()
    try:
        with engine.begin() as conn:
            check_drift(conn, ours)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            if _stamp(conn) != ours:  # only a database just made: one at head may be read by a non-owner
                conn.execute(text(f"COMMENT ON TABLE alembic_version IS '{STAMP_PREFIX}{ours}'"))
    except sqlalchemy.exc.ProgrammingError as exc:
        if isinstance(exc.orig, psycopg.errors.InsufficientPrivilege):
            raise NotTheOwner(_not_the_owner(engine)) from exc
        raise
    return current(engine=engine)


def rebuild_managed() -> str:
    """Destroy the managed cluster and make it afresh at this build's head (after a SchemaDrift: a database made
    from other migration files, whose data the caller has kept or does not need); returns the revision."""
    pgcluster.destroy()
    reset_engine()
    pgcluster.start()
    return upgrade()


def _not_the_owner(engine: Engine) -> str:
    """What to run when the tables belong to another role than the one migrating (an external database; the
    managed cluster adopts its old tables itself: gis.pgcluster.adopt_tables)."""
    with engine.connect() as conn:
        me, db = conn.execute(text("SELECT current_user, current_database()")).one()
        old = conn.execute(text("SELECT tableowner FROM pg_tables WHERE schemaname = 'public' AND tableowner <> "
                                "current_user ORDER BY tablename = 'alembic_version' DESC LIMIT 1")).scalar()
        objects = pgcluster.owned_by(raw_connection(conn), old) if old else []
    statements = "; ".join(pgcluster.adopt_statements(objects[:3], me)) + ("; ..." if len(objects) > 3 else "")
    return (f"数据库结构属于 {old}, 不属于迁移角色 {me} (建于角色分离之前) the schema of database {db} belongs to "
            f"{old}, not to the migration role {me} (made before the owner/application role split): as a superuser "
            f"create the roles as docker/initdb/20-firelane-roles.sh does, give the schema to {me} "
            f"(REASSIGN OWNED BY {old} TO {me}; or when {old} is the bootstrap superuser, per object: {statements}), "
            f"then run `firelane init` again")


def current(*, engine: Engine | None = None) -> str:
    engine = engine or get_engine()
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return "none"
        row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
    return row[0] if row else "none"


def revision(message: str, *, engine: Engine | None = None) -> None:
    """Autogenerate a new migration from the layer declarations (developers, after changing a layer)."""
    engine = engine or owner_engine()
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.revision(cfg, message=message, autogenerate=True)
