"""Database triggers that keep versions, timestamps and the audit history of every layer write."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, text

from gis import changes
from gis.layers import LAYERS
from gis.schema import ACTING_USER_SQL, TABLES

#: An insert statement of at least this many rows whose ids form one unbroken range (a bulk COPY into a locked
#: table) is logged as ONE audit row: feature_id = the first id, after = {"last_id", "count"}. Smaller or
#: interleaved inserts log one row per feature ({"ref"}). Either way `INSERT_RECORD_SQL` finds who inserted a
#: feature and when; the inserted state itself is version 1 of the row, logged in full by whatever supersedes it.
INSERT_RANGE_MIN_ROWS = 1000

#: Who inserted feature :feature_id of layer :layer, and when: its own insert row or the range row covering it
#: (an index scan backwards on ix_audit_log_layer_feature from the feature's id).
INSERT_RECORD_SQL = """
SELECT changed_by, changed_at, version FROM audit_log
WHERE layer = :layer AND action = 'insert' AND feature_id <= :feature_id
  AND (feature_id = :feature_id OR (after->>'last_id')::bigint >= :feature_id)
ORDER BY feature_id DESC LIMIT 1
"""

#: Updates that change an audited column bump the version and stamp who/when (the trigger's WHEN condition, as
#: the audit log's: a check run seeing a hazard again is no edit, so a form opened before the run still holds the
#: current version); inserts get the same stamps from column defaults (no row trigger on the bulk-insert path).
TOUCH_SQL = f"""
CREATE OR REPLACE FUNCTION firelane_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.version := OLD.version + 1;
  NEW.created_at := OLD.created_at;
  NEW.updated_at := now();
  NEW.updated_by := {ACTING_USER_SQL};
  RETURN NEW;
END $$;
"""


#: Columns whose change alone is no edit, so an update changing nothing else logs no audit row and keeps the row's
#: version and stamps: the touch trigger's stamps, and per table what a check run writes each time it sees a row
#: again (a hazard's sighting: the run is in check_runs, and every state change of the hazard in hazard_events).
#: Without this every re-run of the checks logged each hazard it saw again in full twice (before and after).
UNAUDITED_COLUMNS: dict[str, tuple[str, ...]] = {"*": ("version", "created_at", "updated_at", "updated_by"),
                                                 "hazards": ("last_seen_at", "last_run_id")}


def _changed(table: str, columns: list[str], old: str = "o", new: str = "n") -> str:
    """The condition (on aliases `old`, `new`) that an update changed a column that is audited.

    The geometry is compared with PostGIS's `=` (exact coordinates) written out, not inside IS DISTINCT FROM: a
    trigger's WHEN is restored by pg_dump with an empty search_path, where IS DISTINCT FROM cannot name the
    operator's schema and finds no unique `=` for geometry."""
    skip = set(UNAUDITED_COLUMNS["*"]) | set(UNAUDITED_COLUMNS.get(table, ()))
    kept = [c for c in columns if c not in skip]
    return (f"ROW({', '.join(f'{old}.{c}' for c in kept)}) IS DISTINCT FROM "
            f"ROW({', '.join(f'{new}.{c}' for c in kept)}) "
            f"OR ({old}.geom IS NULL) <> ({new}.geom IS NULL) OR ({old}.geom = {new}.geom) IS FALSE")


def _row_json(alias: str, columns: list[str], *, with_geom: bool) -> str:
    """JSON of a row's attribute columns, built from an explicit column list.

    `to_jsonb(row) - 'geom'` would first turn every geometry into GeoJSON and then drop it: on a 100k-row import
    that alone costs seconds. Updates and deletes log the whole row (geometry as EWKT); an insert logs who, when
    and the ref only: the inserted state is version 1 of the row itself, and the first update or the delete
    that supersedes it logs it in full as `before`, so the history stays complete at a fraction of the cost.
    """
    cols = ", ".join(f"{alias}.{c}" for c in columns)
    geom = f", ST_AsEWKT({alias}.geom) AS geom" if with_geom else ""
    return f"(SELECT to_jsonb(r) FROM (SELECT {cols}{geom}) r)"


def _columns(table: str) -> list[str]:
    return [c.name for c in TABLES[table].c if c.name != "geom"]


def _owners(table: str, cols: list[str]) -> tuple[str, str]:
    """The expressions (on alias `{a}`) of a row's street and compound: whose history an audit row is."""
    street = "{a}.ref" if table == "streets" else ("{a}.street_code" if "street_code" in cols else "NULL")
    compound = "{a}.ref" if table == "compounds" else ("{a}.compound_ref" if "compound_ref" in cols else "NULL")
    return street, compound


def _owner_arrays(table: str, cols: list[str], *aliases: str) -> str:
    """`street_codes, compound_refs` of one audit row for the row(s) `aliases` (old and new of an update)."""
    out = []
    for expr in _owners(table, cols):
        first = expr.format(a=aliases[0])
        rest = [f"nullif({expr.format(a=a)}, {first})" for a in aliases[1:]]
        out.append(f"array_remove(ARRAY[{', '.join([first, *rest])}]::text[], NULL)")
    return ", ".join(out)


def trigger_sql(table: str) -> str:
    """The triggers of one layer table: row-level touch on update, statement-level audit with transition tables.
    Every audit row carries the street(s) and compound(s) of what it records, for row-level security."""
    cols = _columns(table)
    fn = f"firelane_audit_{table}"
    street, compound = (e.format(a="n") for e in _owners(table, cols))
    in_range = ", ".join("'{}'::text[]" if e == "NULL" else
                         f"coalesce(array_agg(DISTINCT {e}::text) FILTER (WHERE {e} IS NOT NULL), '{{}}'::text[])"
                         for e in (street, compound))
    return f"""
CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE who text := {ACTING_USER_SQL};
  inserted bigint; first_id bigint; last_id bigint; v_min integer; v_max integer;
BEGIN
  IF TG_OP = 'INSERT' THEN
    SELECT count(*), min(n.id), max(n.id), min(n.version), max(n.version)
      INTO inserted, first_id, last_id, v_min, v_max FROM new_rows n;
    IF inserted >= {INSERT_RANGE_MIN_ROWS} AND last_id - first_id + 1 = inserted AND v_min = v_max THEN
      -- exactly the ids first_id..last_id (distinct ids, as many as the range holds): one row says it all
      INSERT INTO audit_log (layer, feature_id, action, version, changed_by, after, street_codes, compound_refs)
        SELECT '{table}', first_id, 'insert', v_min, who,
               jsonb_build_object('last_id', last_id, 'count', inserted), {in_range} FROM new_rows n;
    ELSE
      INSERT INTO audit_log (layer, feature_id, action, version, changed_by, after, street_codes, compound_refs)
        SELECT '{table}', n.id, 'insert', n.version, who, jsonb_build_object('ref', n.ref),
               {_owner_arrays(table, cols, "n")} FROM new_rows n;
    END IF;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO audit_log (layer, feature_id, action, version, changed_by, before, after, street_codes,
                           compound_refs)
      SELECT '{table}', n.id, 'update', n.version, who,
             {_row_json('o', cols, with_geom=True)}, {_row_json('n', cols, with_geom=True)},
             {_owner_arrays(table, cols, "n", "o")}
      FROM new_rows n JOIN old_rows o ON o.id = n.id
      WHERE {_changed(table, cols)};
  ELSE
    INSERT INTO audit_log (layer, feature_id, action, version, changed_by, before, street_codes, compound_refs)
      SELECT '{table}', o.id, 'delete', o.version, who, {_row_json('o', cols, with_geom=True)},
             {_owner_arrays(table, cols, "o")} FROM old_rows o;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER {table}_touch BEFORE UPDATE ON {table}
  FOR EACH ROW WHEN ({_changed(table, cols, "OLD", "NEW")}) EXECUTE FUNCTION firelane_touch();
CREATE TRIGGER {table}_audit_ins AFTER INSERT ON {table}
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {fn}();
CREATE TRIGGER {table}_audit_upd AFTER UPDATE ON {table}
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {fn}();
CREATE TRIGGER {table}_audit_del AFTER DELETE ON {table}
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {fn}();
"""


#: The audit log's row images compressed with lz4 where the server has it (PostgreSQL 14+ built with lz4, as Debian's
#: is): an update's before and after take the row past TOAST's threshold, and pglz, the default, compresses them
#: at several times lz4's CPU for about the same size.
AUDIT_STORAGE_SQL = """
DO $$ BEGIN
  IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)) THEN
    ALTER TABLE audit_log ALTER COLUMN before SET COMPRESSION lz4, ALTER COLUMN after SET COMPRESSION lz4;
  END IF;
END $$;
"""


def all_triggers_sql() -> str:
    """The touch and audit triggers of every layer, the audit log's storage, the change notifications."""
    return (TOUCH_SQL + "".join(trigger_sql(name) for name in LAYERS) + AUDIT_STORAGE_SQL
            + changes.all_triggers_sql())


def drop_all_sql() -> str:
    drops = "".join(
        f"DROP TRIGGER IF EXISTS {t}_{k} ON {t};\nDROP FUNCTION IF EXISTS firelane_audit_{t}();\n" if k == "audit_del"
        else f"DROP TRIGGER IF EXISTS {t}_{k} ON {t};\n"
        for t in LAYERS for k in ("touch", "audit_ins", "audit_upd", "audit_del")
    )
    return drops + "DROP FUNCTION IF EXISTS firelane_touch();\n" + changes.drop_all_sql()


def insert_record(conn: Connection, layer: str, feature_id: int) -> tuple[str, dt.datetime, int] | None:
    """(who, when, version) of the insert of one feature: its own audit row or the bulk range row covering it."""
    row = conn.execute(text(INSERT_RECORD_SQL), {"layer": layer, "feature_id": feature_id}).first()
    return None if row is None else (row[0], row[1], row[2])
