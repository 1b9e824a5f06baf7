"""Jurisdiction enforced by the database itself: no overlapping compounds of different streets, the application
role's grants, and row-level security by street (or compound) on every layer, the ledger and its events."""

from __future__ import annotations

from gis.layers import LAYERS
from gis.schema import metadata
from gis.signin_tables import drop_signin_sql, signin_privileges_sql, signin_sql

#: The privilege-carrying role the application works as (the managed cluster's login role of that name, or, on
#: an external database, a role the application's login is or is a member of). The migration grants it
#: SELECT/INSERT/UPDATE/DELETE on the tables (the audit log: SELECT/INSERT only, history is not rewritten) and
#: USAGE/SELECT on the sequences, nothing else.
APP_ROLE = "firelane_app"

#: How each row-secured table is scoped, one line per table (the one list: the policies below and the application
#: filters of gis.scope.filter_sql are both made from it):
#: "street"       its own street_code (and compound_ref for compound-bound roles; `compounds`: its ref),
#: "street_ref"   the streets layer (its ref; compound-bound roles see the streets of their compounds),
#: "campaign"     a campaign: its `jurisdiction` (street codes; empty: every street) meets the caller's streets,
#: "run"          a check run: its `scope` names a street or compound of the caller, or none (the whole district),
#: "job"          a job: the street or compound of its check run (`params.scope`), or its report's street(s)
#:                (`params.street`, `params.streets`: all of them the caller's)
#: "audit"        an audit row: its feature's street(s) (`street_codes`) or compound(s) (`compound_refs`), before
#:                and after (gis.audit's triggers fill them)
#: "of:T:C"       through the foreign key C into table T (what the caller may see of T).
#: The sign-in tables (users, api_tokens, login_attempts, complaint_hits) are admin paths' only: gis.signin_tables.
SCOPED_TABLES: dict[str, str] = {
    **{name: ("street_ref" if name == "streets" else "street") for name in LAYERS},
    "hazard_events": "of:hazards:hazard_id",
    "photos": "street",
    "complaints": "street",
    "checklist_items": "street",
    "campaigns": "campaign",
    "campaign_stages": "of:campaigns:campaign_id",
    "campaign_inspections": "street",
    "spot_draws": "of:campaigns:campaign_id",
    "spot_checks": "street",
    "spot_check_items": "of:spot_checks:check_id",
    "check_runs": "run",
    "jobs": "job",
    "audit_log": "audit",
}

_SCOPE = "(SELECT current_setting('firelane.scope', true))"
_LIST = "string_to_array((SELECT current_setting('firelane.{}', true)), ',')"


def parent_of(how: str) -> tuple[str, str] | None:
    """(parent table, foreign key column) of an "of:T:C" kind, else None."""
    if not how.startswith("of:"):
        return None
    _, parent, column = how.split(":")
    return parent, column


def _visible(table: str, how: str) -> str:
    """The policy expression of `table` (scope settings read once per statement, as initplans)."""
    everything = f"{_SCOPE} = 'all'"
    streets = _LIST.format("streets")
    compounds = ("ARRAY(SELECT jsonb_array_elements_text(nullif(current_setting('firelane.compounds', true), "
                 "'')::jsonb))")
    if how == "street_ref":
        return (f"{everything} OR ({_SCOPE} = 'streets' AND ref = ANY ({streets})) "
                f"OR ({_SCOPE} = 'compounds' AND ref IN (SELECT street_code FROM compounds))")
    parent = parent_of(how)
    if parent is not None:  # unscoped first: a statement inserting parents and children sees neither yet
        return f"{everything} OR EXISTS (SELECT 1 FROM {parent[0]} p WHERE p.id = {table}.{parent[1]})"
    if how == "campaign":  # compound-bound roles: the streets of their compounds (compounds are filtered too)
        return (f"{everything} OR ({_SCOPE} IN ('streets', 'compounds') AND (jurisdiction = '[]'::jsonb "
                f"OR ({_SCOPE} = 'streets' AND jurisdiction ?| {streets}) "
                f"OR ({_SCOPE} = 'compounds' AND jurisdiction ?| ARRAY(SELECT street_code FROM compounds "
                f"WHERE street_code IS NOT NULL))))")
    if how == "run":
        return (f"{everything} OR ({_SCOPE} IN ('streets', 'compounds') AND (NOT (scope ? 'street' OR "
                f"scope ? 'compound') OR scope->>'compound' IN (SELECT ref FROM compounds) "
                f"OR ({_SCOPE} = 'streets' AND scope->>'street' = ANY ({streets})) "
                f"OR ({_SCOPE} = 'compounds' AND scope->>'street' IN (SELECT street_code FROM compounds))))")
    if how == "audit":
        return (f"{everything} OR ({_SCOPE} = 'streets' AND street_codes && {streets}) "
                f"OR ({_SCOPE} = 'compounds' AND compound_refs && {compounds})")
    if how == "job":
        return (f"{everything} OR ({_SCOPE} IN ('streets', 'compounds') AND ("
                f"params->'scope'->>'compound' IN (SELECT ref FROM compounds) "
                f"OR ({_SCOPE} = 'streets' AND (params->'scope'->>'street' = ANY ({streets}) "
                f"OR params->>'street' = ANY ({streets}) OR (jsonb_typeof(params->'streets') = 'array' "
                f"AND params->'streets' <> '[]'::jsonb AND params->'streets' <@ to_jsonb({streets}))))))")
    by_compound = "ref" if table == "compounds" else "compound_ref"
    columns = metadata.tables[table].c if table in metadata.tables else ()
    compound_clause = (f" OR ({_SCOPE} = 'compounds' AND {by_compound} = ANY ({compounds}))"
                       if table == "compounds" or "compound_ref" in columns else "")
    return f"{everything} OR ({_SCOPE} = 'streets' AND street_code = ANY ({streets})){compound_clause}"


def row_security_sql() -> str:
    """Policies for every table of SCOPED_TABLES that exists: FORCE'd (the owner is filtered too), one policy for
    reads and writes (USING and WITH CHECK: a row may be neither seen nor written outside the scope)."""
    out = []
    for table, how in SCOPED_TABLES.items():
        if table not in metadata.tables:  # a table of a part not installed
            continue
        expr = _visible(table, how).replace("'", "''")
        out.append(f"""
DO $$ BEGIN
  IF to_regclass('{table}') IS NOT NULL THEN
    EXECUTE 'ALTER TABLE {table} ENABLE ROW LEVEL SECURITY';
    EXECUTE 'ALTER TABLE {table} FORCE ROW LEVEL SECURITY';
    EXECUTE 'DROP POLICY IF EXISTS firelane_scope ON {table}';
    EXECUTE 'CREATE POLICY firelane_scope ON {table} USING ({expr}) WITH CHECK ({expr})';
  END IF;
END $$;""")
    return "\n".join(out) + "\n"


GRANTS_SQL = f"""
DO $$ BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
    EXECUTE 'GRANT USAGE ON SCHEMA public TO {APP_ROLE}';
    EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE}';
    EXECUTE 'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}';
    EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APP_ROLE}';
    EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {APP_ROLE}';
    EXECUTE 'REVOKE UPDATE, DELETE ON TABLE audit_log FROM {APP_ROLE}';
    EXECUTE 'REVOKE ALL ON TABLE alembic_version FROM {APP_ROLE}';
    EXECUTE 'GRANT SELECT ON TABLE alembic_version TO {APP_ROLE}';
  END IF;
END $$;
"""

#: Compounds of different streets may touch but not overlap (their interiors may not share any area): otherwise
#: one street's compound would capture features drawn in another's. A deferred constraint trigger checks each
#: inserted or moved compound at commit, when a bulk load has rebuilt the spatial index; an advisory lock
#: serialises concurrent compound writers so two overlapping compounds cannot both commit. The check sees every
#: compound (`firelane.scope` is widened for the check and restored after it), whatever the writer may see.
COMPOUND_OVERLAP_SQL = """
CREATE OR REPLACE FUNCTION firelane_compounds_no_overlap() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  hit record;
  overlapping boolean;
  caller text := coalesce(current_setting('firelane.scope', true), '');
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('firelane.compounds.overlap'));
  PERFORM set_config('firelane.scope', 'all', true);
  SELECT c.ref, c.street_code, n.ref AS mine_ref, n.street_code AS mine_street INTO hit
  FROM compounds n JOIN compounds c ON c.id <> n.id AND c.geom && n.geom
    AND c.street_code IS DISTINCT FROM n.street_code AND ST_Relate(c.geom, n.geom, '2********')
  WHERE n.id = NEW.id
  ORDER BY c.id LIMIT 1;
  overlapping := FOUND;
  PERFORM set_config('firelane.scope', caller, true);
  IF overlapping THEN
    RAISE EXCEPTION USING ERRCODE = 'exclusion_violation',
      MESSAGE = format('小区 %s (街道 %s) 与其他街道的小区 %s (街道 %s) 重叠 compound %s of street %s overlaps '
                       'compound %s of street %s', hit.mine_ref, hit.mine_street, hit.ref, hit.street_code,
                       hit.mine_ref, hit.mine_street, hit.ref, hit.street_code),
      CONSTRAINT = 'compounds_no_overlap';
  END IF;
  RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS compounds_no_overlap ON compounds;
CREATE CONSTRAINT TRIGGER compounds_no_overlap AFTER INSERT OR UPDATE OF geom, street_code ON compounds
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION firelane_compounds_no_overlap();
"""


def privileges_sql() -> str:
    """The application role's privileges (a restore, whose dump carries none, runs them again)."""
    return GRANTS_SQL + signin_privileges_sql(APP_ROLE)


def jurisdiction_sql() -> str:
    """Everything of this module for a migration (after the tables exist)."""
    return COMPOUND_OVERLAP_SQL + row_security_sql() + GRANTS_SQL + signin_sql(APP_ROLE)


def drop_jurisdiction_sql() -> str:
    drops = "".join(f"DROP POLICY IF EXISTS firelane_scope ON {t};\n" for t in SCOPED_TABLES if t in metadata.tables)
    return (drops + drop_signin_sql() + "DROP TRIGGER IF EXISTS compounds_no_overlap ON compounds;\n"
            "DROP FUNCTION IF EXISTS firelane_compounds_no_overlap();\n")
