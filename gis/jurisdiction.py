"""Jurisdiction enforced by the database itself: SQL for the constraints that keep streets apart."""

from __future__ import annotations

#: Compounds of different streets may touch but not overlap (their interiors may not share any area): otherwise
#: one street's compound would capture features drawn in another's. A deferred constraint trigger checks each
#: inserted or moved compound at commit, when a bulk load has rebuilt the spatial index; an advisory lock
#: serialises concurrent compound writers so two overlapping compounds cannot both commit.
COMPOUND_OVERLAP_SQL = """
CREATE OR REPLACE FUNCTION firelane_compounds_no_overlap() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  mine record;
  hit record;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('firelane.compounds.overlap'));
  SELECT id, ref, street_code, geom INTO mine FROM compounds WHERE id = NEW.id;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  SELECT c.ref, c.street_code INTO hit FROM compounds c
  WHERE c.id <> mine.id AND c.geom && mine.geom AND c.street_code IS DISTINCT FROM mine.street_code
    AND ST_Relate(c.geom, mine.geom, '2********')
  ORDER BY c.id LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'exclusion_violation',
      MESSAGE = format('小区 %s (街道 %s) 与其他街道的小区 %s (街道 %s) 重叠 compound %s of street %s overlaps '
                       'compound %s of street %s', mine.ref, mine.street_code, hit.ref, hit.street_code,
                       mine.ref, mine.street_code, hit.ref, hit.street_code),
      CONSTRAINT = 'compounds_no_overlap';
  END IF;
  RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS compounds_no_overlap ON compounds;
CREATE CONSTRAINT TRIGGER compounds_no_overlap AFTER INSERT OR UPDATE OF geom, street_code ON compounds
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION firelane_compounds_no_overlap();
"""


def jurisdiction_sql() -> str:
    """Everything of this module for a migration (after the tables exist)."""
    return COMPOUND_OVERLAP_SQL


def drop_jurisdiction_sql() -> str:
    return ("DROP TRIGGER IF EXISTS compounds_no_overlap ON compounds;\n"
            "DROP FUNCTION IF EXISTS firelane_compounds_no_overlap();\n")
