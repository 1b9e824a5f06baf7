"""The hazards ledger writer: findings written idempotently by finding key; re-checks drive the life cycle.

Set-based throughout (a staging table, one UPDATE, one INSERT, one UPDATE for what the run no longer finds), and
every state change writes its hazard_events row in the same statement (INSERT ... SELECT from RETURNING).
"""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
from sqlalchemy import Connection, Engine, text

from gis.campaign import lifecycle as lc
from gis.checks.ledger import COPIED, STAGE_COLUMNS, UPDATED, LedgerResult, kept, stage_rows
from gis.db import raw_connection
from gis.layers import STORAGE_SRID, get_layer
from gis.store import derive_links

_STAGE = "_ledger_stage"
_NEW = "_ledger_new"


def record(
    findings: gpd.GeoDataFrame,
    *,
    engine: Engine | Connection,
    run_id: int | None,
    compounds: Sequence[str],
    rules: Sequence[str],
    include_pass: bool = False,
    user: str | None = None,
) -> LedgerResult:
    """Write a run's findings to the hazards ledger, in one transaction, in bulk.

    Parameters
    ----------
    findings : GeoDataFrame
        The run's findings (FINDING_COLUMNS + geometry, any CRS).
    engine : Engine or Connection
        A Connection's open transaction is used as it is; an Engine gets one transaction.
    run_id : int or None
        The check_runs row (first_run_id / last_run_id, and hazard_events.run_id).
    compounds : sequence of str
        The compounds the run checked: their hazards of `rules` that the run no longer finds are verified.
    rules : sequence of str
        The rules the run checked.
    include_pass : bool
        Also store ``pass`` findings (outside the life cycle: no state, like data gaps).
    user : str, optional
        Recorded in the audit log and as the events' `by`.

    Returns
    -------
    LedgerResult
        new ``fail`` keys → inserted as ``open`` (event evidence ``found``); new ``cannot_judge`` keys → inserted as
        data gaps (no state: the "complete the data" queue, never counted as open); keys found again → updated
        (last seen), and a hazard claimed fixed (rectified, verified, closed) that still fails is ``reopened``
        (``recheck_failed``); an unresolved hazard found passing or no longer found → ``verified``
        (``passed_recheck``, never deleted); a data gap no longer found is resolved (its row removed: it never
        entered the life cycle and has no history); a gap that now fails enters the cycle as ``open``.
    """
    if isinstance(engine, Engine):
        with engine.begin() as conn:
            return record(findings, engine=conn, run_id=run_id, compounds=compounds, rules=rules,
                          include_pass=include_pass, user=user)
    conn = engine
    if user:
        conn.execute(text("SELECT set_config('firelane.user', :u, true)"), {"u": user})
    keep = kept(findings, include_pass=include_pass)
    conn.execute(text(f"DROP TABLE IF EXISTS {_STAGE}, {_NEW}"))
    conn.execute(text(f"CREATE TEMP TABLE {_STAGE} ({', '.join(f'{c} {t}' for c, t in STAGE_COLUMNS)}) "
                      "ON COMMIT DROP"))
    if len(keep):
        raw = raw_connection(conn)
        with raw.cursor() as cur, cur.copy(f"COPY {_STAGE} ({', '.join(COPIED)}) FROM STDIN") as copy:
            for row in stage_rows(keep):
                copy.write_row(row)
    # no ANALYZE: every statement below finds a staged key's hazard through the key index, one probe per row
    conn.execute(text(f"CREATE INDEX ON {_STAGE} (key)"))
    reopen, verify = lc.sql_list(lc.REOPEN_ON_RECHECK), lc.sql_list(lc.VERIFY_ON_RECHECK)
    # an assigned hazard keeps the department it was assigned to; the run's routing fills it until then
    sets = ", ".join(f"{c} = s.{c}" if c != "department" else
                     "department = CASE WHEN h.assigned_at IS NULL THEN s.department ELSE h.department END"
                     for c in UPDATED if c != "verdict")
    geom_fallback = "(SELECT ST_PointOnSurface(c.geom) FROM compounds c WHERE c.ref = s.compound_ref LIMIT 1)"
    new_state = f"""CASE
                WHEN s.verdict = 'fail' AND old.status IS NULL THEN 'open'
                WHEN s.verdict = 'fail' AND old.status IN {reopen} THEN 'reopened'
                WHEN s.verdict = 'pass' AND old.status IN {verify} THEN 'verified'
                ELSE old.status END"""
    counts = conn.execute(text(f"""
        WITH old AS (
            SELECT h.id, h.status, h.verdict FROM hazards h WHERE h.key = ANY(ARRAY(SELECT key FROM {_STAGE}))
            FOR UPDATE OF h
        ), upd AS (
            UPDATE hazards h SET {sets},
                verdict = CASE WHEN s.verdict = 'cannot_judge' AND old.status IS NOT NULL THEN old.verdict
                               ELSE s.verdict END,
                geom = COALESCE(s.geom, h.geom),
                last_seen_at = now(), last_run_id = :run,
                status = {new_state},
                verified_at = CASE WHEN s.verdict = 'pass' AND old.status IN {verify} THEN now()
                                   WHEN s.verdict = 'fail' AND old.status IN {reopen} THEN NULL
                                   ELSE h.verified_at END,
                rectified_at = CASE WHEN s.verdict = 'fail' AND old.status IN {reopen} THEN NULL
                                    ELSE h.rectified_at END,
                closed_at = CASE WHEN s.verdict = 'fail' AND old.status IN {reopen} THEN NULL ELSE h.closed_at END
            FROM {_STAGE} s, old
            WHERE h.key = s.key AND h.id = old.id
            RETURNING h.id, old.status AS from_state, h.status AS to_state
        ), ev AS (
            INSERT INTO hazard_events (hazard_id, from_state, to_state, evidence, run_id, note)
            SELECT id, from_state, to_state,
                   CASE to_state WHEN 'reopened' THEN 'recheck_failed' WHEN 'verified' THEN 'passed_recheck'
                                 ELSE 'found' END,
                   :run,
                   CASE to_state WHEN 'reopened' THEN '复查仍不合格 the re-check still finds it'
                                 WHEN 'verified' THEN '复查合格 the re-check finds it passing' END
            FROM upd WHERE from_state IS DISTINCT FROM to_state
            RETURNING to_state
        )
        SELECT (SELECT count(*) FROM upd) AS updated,
               (SELECT count(*) FROM ev WHERE to_state = 'reopened') AS reopened,
               (SELECT count(*) FROM ev WHERE to_state = 'verified') AS verified
    """), {"run": run_id}).one()
    # the keys the ledger does not hold yet: only they need their compound and street links
    conn.execute(text(f"""
        CREATE TEMP TABLE {_NEW} ON COMMIT DROP AS
        SELECT s.* FROM {_STAGE} s
        LEFT JOIN LATERAL (SELECT true AS held FROM hazards h WHERE h.key = s.key LIMIT 1) h ON true
        WHERE h.held IS NULL
    """))
    derive_links(conn, get_layer("hazards"), table=_NEW)
    inserted = conn.execute(text(f"""
        WITH ins AS (
            INSERT INTO hazards (ref, key, rule, clause, verdict, strength, severity, status, subject_layer,
                                 subject_ref, other_refs, measured, required_value, unit, message_zh, message_en,
                                 department, compound_ref, compound_id, street_code, first_seen_at, last_seen_at,
                                 first_run_id, last_run_id, geom)
            SELECT left(s.key, 200), s.key, s.rule, s.clause, s.verdict, s.strength, s.severity,
                   CASE WHEN s.verdict = 'fail' THEN 'open' END,
                   s.subject_layer, s.subject_ref, s.other_refs, s.measured, s.required_value, s.unit, s.message_zh,
                   s.message_en, s.department, s.compound_ref, s.compound_id, s.street_code, now(), now(), :run,
                   :run, COALESCE(s.geom, {geom_fallback}, ST_SetSRID(ST_MakePoint(0, 0), {STORAGE_SRID}))
            FROM {_NEW} s
            ORDER BY s.compound_ref, s.key
            RETURNING id, status, verdict
        ), ev AS (
            INSERT INTO hazard_events (hazard_id, from_state, to_state, evidence, run_id)
            SELECT id, NULL, 'open', 'found', :run FROM ins WHERE status = 'open'
            ORDER BY id
        )
        SELECT count(*), count(*) FILTER (WHERE verdict = 'cannot_judge') FROM ins
    """), {"run": run_id}).one()
    verified = gaps_resolved = 0
    if compounds and rules:
        scope = {"run": run_id, "rules": list(rules), "compounds": [str(c) for c in compounds]}
        verified = conn.execute(text(f"""
            WITH upd AS (
                UPDATE hazards h SET status = 'verified', verified_at = now(), last_run_id = :run
                FROM (SELECT id, status FROM hazards c WHERE status IN {verify} AND rule = ANY(:rules)
                      AND compound_ref = ANY(:compounds)
                      -- only what the run no longer finds is locked: the rest was updated above
                      AND NOT EXISTS (SELECT 1 FROM {_STAGE} s WHERE s.key = c.key) FOR UPDATE) old
                WHERE h.id = old.id
                RETURNING h.id, old.status AS from_state
            )
            INSERT INTO hazard_events (hazard_id, from_state, to_state, evidence, run_id, note)
            SELECT id, from_state, 'verified', 'passed_recheck', :run, '复查未再发现 the re-check no longer finds it'
            FROM upd ORDER BY id
        """), scope).rowcount
        gaps_resolved = conn.execute(text(f"""
            DELETE FROM hazards h
            WHERE h.status IS NULL AND h.verdict = 'cannot_judge' AND h.rule = ANY(:rules)
              AND h.compound_ref = ANY(:compounds)
              AND NOT EXISTS (SELECT 1 FROM {_STAGE} s WHERE s.key = h.key AND s.verdict = 'cannot_judge')
              AND NOT EXISTS (SELECT 1 FROM hazard_events e WHERE e.hazard_id = h.id)
        """), scope).rowcount
    conn.execute(text(f"DROP TABLE {_STAGE}, {_NEW}"))
    return LedgerResult(inserted=inserted[0], updated=counts.updated, reopened=counts.reopened,
                        verified=verified + counts.verified, gaps=inserted[1], gaps_resolved=gaps_resolved)
