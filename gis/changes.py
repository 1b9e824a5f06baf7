"""Change notifications: every write statement on a layer table NOTIFYs `firelane_changes` with the table name."""

from __future__ import annotations

from gis.layers import LAYERS

#: The channel listeners LISTEN on; the payload is the layer table's name.
CHANNEL = "firelane_changes"

#: pg_notify is transactional: delivered on commit, never for a rolled-back write, once per table and
#: transaction however many statements touched it (PostgreSQL folds identical notifications).
NOTIFY_SQL = f"""
CREATE OR REPLACE FUNCTION firelane_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME);
  RETURN NULL;
END $$;
"""


def trigger_name(table: str) -> str:
    return f"{table}_changes"


def trigger_sql(table: str) -> str:
    """One statement-level trigger (inserts incl. COPY, updates, deletes, truncates) on a layer table."""
    return (f"CREATE TRIGGER {trigger_name(table)} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}\n"
            f"  FOR EACH STATEMENT EXECUTE FUNCTION firelane_notify_change();\n")


def all_triggers_sql() -> str:
    """The notify function and one trigger per layer (part of gis.audit.all_triggers_sql, so of migrations)."""
    return NOTIFY_SQL + "".join(trigger_sql(name) for name in LAYERS)


def drop_all_sql() -> str:
    drops = "".join(f"DROP TRIGGER IF EXISTS {trigger_name(t)} ON {t};\n" for t in LAYERS)
    return drops + "DROP FUNCTION IF EXISTS firelane_notify_change();\n"


#: How many layer tables carry their change trigger (a listener trusts notifications only when all do).
INSTALLED_SQL = (
    "SELECT count(*) FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid "
    "WHERE g.tgname = c.relname || '_changes' AND c.relname = ANY(%(tables)s) "
    "AND c.relnamespace = to_regnamespace(current_schema())::oid"
)
