"""What database tests share besides fixtures: the row count of every table."""

from __future__ import annotations

from sqlalchemy import Engine, text

from gis.db import owner_engine
from gis.schema import metadata


def table_counts(engine: Engine) -> dict[str, int]:
    """Row counts of every table (to assert that a failed write changed nothing), read as the owner: the
    application role may not read the attempt counters. (`engine`: the session's, so the database is up.)"""
    with owner_engine().connect() as conn:
        return {t.name: conn.execute(text(f"SELECT count(*) FROM {t.name}")).scalar_one()
                for t in metadata.sorted_tables}
