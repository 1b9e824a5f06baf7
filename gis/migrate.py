"""Schema migrations: run Alembic programmatically against the configured database (`firelane init`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect

from gis.db import get_engine, owner_engine

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def upgrade(*, engine: Engine | None = None, revision: str = "head") -> str:
    """Bring the schema to `revision` as the schema owner; returns the revision now in force."""
    engine = engine or owner_engine()
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return current(engine=engine)


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
