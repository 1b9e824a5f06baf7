"""The command line's schema step: bring the database up to date before a command uses it."""

from __future__ import annotations

from gis import schema_version
from gis.db import owner_engine


def ensure_schema() -> None:
    """Commands that need the database bring the schema up to date first: a database at this build's head, made
    from these migrations, is left as it is without loading Alembic."""
    if schema_version.is_current(owner_engine()):
        return
    from gis import migrate  # noqa: PLC0415 (Alembic: only when there is something to migrate or refuse)

    migrate.upgrade()
