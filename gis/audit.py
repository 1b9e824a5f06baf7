"""Database triggers that keep versions, timestamps and the audit history of every layer write."""

from __future__ import annotations

from gis.layers import LAYERS

#: The acting user is passed per transaction with `SET LOCAL firelane.user = '...'` (see gis.db.acting_as).
FUNCTIONS_SQL = r"""
CREATE OR REPLACE FUNCTION firelane_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    NEW.version := OLD.version + 1;
    NEW.created_at := OLD.created_at;
  END IF;
  NEW.updated_at := now();
  NEW.updated_by := coalesce(nullif(current_setting('firelane.user', true), ''), NEW.updated_by, current_user);
  RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION firelane_audit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE who text := coalesce(nullif(current_setting('firelane.user', true), ''), current_user);
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO audit_log (layer, feature_id, action, version, changed_by, after)
      SELECT TG_TABLE_NAME, n.id, 'insert', n.version, who, to_jsonb(n) - 'geom' FROM new_rows n;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO audit_log (layer, feature_id, action, version, changed_by, before, after)
      SELECT TG_TABLE_NAME, n.id, 'update', n.version, who,
             (to_jsonb(o) - 'geom') || jsonb_build_object('geom', ST_AsEWKT(o.geom)),
             (to_jsonb(n) - 'geom') || jsonb_build_object('geom', ST_AsEWKT(n.geom))
      FROM new_rows n JOIN old_rows o ON o.id = n.id;
  ELSE
    INSERT INTO audit_log (layer, feature_id, action, version, changed_by, before)
      SELECT TG_TABLE_NAME, o.id, 'delete', o.version, who,
             (to_jsonb(o) - 'geom') || jsonb_build_object('geom', ST_AsEWKT(o.geom))
      FROM old_rows o;
  END IF;
  RETURN NULL;
END $$;
"""


def trigger_sql(table: str) -> str:
    """The triggers of one layer table (row-level touch, statement-level audit with transition tables)."""
    return f"""
CREATE TRIGGER {table}_touch BEFORE INSERT OR UPDATE ON {table}
  FOR EACH ROW EXECUTE FUNCTION firelane_touch();
CREATE TRIGGER {table}_audit_ins AFTER INSERT ON {table}
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION firelane_audit();
CREATE TRIGGER {table}_audit_upd AFTER UPDATE ON {table}
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION firelane_audit();
CREATE TRIGGER {table}_audit_del AFTER DELETE ON {table}
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION firelane_audit();
"""


def all_triggers_sql() -> str:
    return FUNCTIONS_SQL + "".join(trigger_sql(name) for name in LAYERS)


def drop_all_sql() -> str:
    drops = "".join(
        f"DROP TRIGGER IF EXISTS {t}_{k} ON {t};\n" for t in LAYERS for k in ("touch", "audit_ins", "audit_upd", "audit_del")
    )
    return drops + "DROP FUNCTION IF EXISTS firelane_audit();\nDROP FUNCTION IF EXISTS firelane_touch();\n"
