"""hazard_events: the append-only history of every hazard (the database refuses UPDATE and DELETE of its rows)."""

from __future__ import annotations

#: Trigger that makes hazard_events append-only for every role, owner included (TRUNCATE stays possible for a
#: full reset or restore, which is an owner's operation on the whole table, not an edit of history).
APPEND_ONLY_SQL = """
CREATE OR REPLACE FUNCTION firelane_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'hazard_events is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
DROP TRIGGER IF EXISTS hazard_events_append_only ON hazard_events;
CREATE TRIGGER hazard_events_append_only BEFORE UPDATE OR DELETE ON hazard_events
  FOR EACH ROW EXECUTE FUNCTION firelane_events_append_only();
"""

DROP_SQL = """
DROP TRIGGER IF EXISTS hazard_events_append_only ON hazard_events;
DROP FUNCTION IF EXISTS firelane_events_append_only();
"""


def events_sql() -> str:
    """SQL the initial migration runs after creating the tables (injected by scripts/regen-migration.sh)."""
    return APPEND_ONLY_SQL


def drop_events_sql() -> str:
    return DROP_SQL
