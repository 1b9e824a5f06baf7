"""Change notifications: every write statement on a layer table, and every change to a user or a token, NOTIFYs
`firelane_changes` with the table name."""

from __future__ import annotations

from gis.layers import LAYERS
from gis.signin_tables import ADMIN_TABLES

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


#: Every table with a change trigger: the layers (what tiles are built from) and the sign-in tables (what a
#: cached token lookup is built from).
WATCHED = (*LAYERS, *ADMIN_TABLES)

#: A layer changes with any write; a token lookup only when a user or token row is updated or deleted (a new token
#: or a new user leaves every cached lookup right, and a sign-in issues a token).
_EVENTS = {name: "INSERT OR UPDATE OR DELETE OR TRUNCATE" for name in LAYERS} | {
    name: "UPDATE OR DELETE OR TRUNCATE" for name in ADMIN_TABLES}


def trigger_sql(table: str) -> str:
    """One statement-level trigger on a watched table (COPY counts as inserts)."""
    return (f"CREATE TRIGGER {trigger_name(table)} AFTER {_EVENTS[table]} ON {table}\n"
            f"  FOR EACH STATEMENT EXECUTE FUNCTION firelane_notify_change();\n")


def all_triggers_sql() -> str:
    """The notify function and one trigger per watched table (part of gis.audit.all_triggers_sql, so of
    migrations)."""
    return NOTIFY_SQL + "".join(trigger_sql(name) for name in WATCHED)


def drop_all_sql() -> str:
    drops = "".join(f"DROP TRIGGER IF EXISTS {trigger_name(t)} ON {t};\n" for t in WATCHED)
    return drops + "DROP FUNCTION IF EXISTS firelane_notify_change();\n"


#: How many of the watched tables carry their change trigger (a listener trusts notifications only when all do).
INSTALLED_SQL = (
    "SELECT count(*) FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid "
    "WHERE g.tgname = c.relname || '_changes' AND c.relname = ANY(%(tables)s) "
    "AND c.relnamespace = to_regnamespace(current_schema())::oid"
)
