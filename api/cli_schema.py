"""The command line's schema step: bring the database up to date before a command uses it."""

from __future__ import annotations

from gis import migrate


def ensure_schema() -> None:
    """Commands that need the database bring the schema up to date first (cheap when it already is)."""
    migrate.upgrade()
