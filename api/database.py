"""The app's database engine: gis.db's process-wide engine (URL resolved once, so a stopped database gives 503)."""

from __future__ import annotations

from gis.db import get_engine as db_engine
from gis.db import reset_engine as forget_engine

__all__ = ["db_engine", "forget_engine"]
