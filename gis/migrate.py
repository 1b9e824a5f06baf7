"""Schema migrations: run Alembic programmatically against the configured database (`firelane init`)."""

from __future__ import annotations

import psycopg
import sqlalchemy.exc
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect, text

from gis import pgcluster
from gis.db import get_engine, owner_engine, raw_connection, reset_engine
from gis.schema_version import (
    MIGRATIONS,
    STAMP_PREFIX,
    NotTheOwner,
    SchemaDrift,
    check_drift,
    fingerprint,
    stamp,
)


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


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
            if stamp(conn) != ours:  # only a database just made: one at head may be read by a non-owner
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


__all__ = ["NotTheOwner", "SchemaDrift", "alembic_config", "current", "rebuild_managed", "revision", "upgrade"]
