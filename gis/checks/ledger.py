"""The hazards ledger: findings written idempotently by finding key, followed from open to passed_recheck."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, Engine, text

from gis.layers import STORAGE_SRID, get_layer
from gis.store import derive_links

#: Statuses of hazards that are still unresolved: a recheck that no longer finds them closes them.
UNRESOLVED: tuple[str, ...] = ("open", "assigned", "rectifying", "rectified")

_STAGE = "_ledger_stage"
_STAGE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("key", "text"), ("rule", "text"), ("clause", "text"), ("verdict", "text"), ("strength", "text"),
    ("severity", "double precision"), ("subject_layer", "text"), ("subject_ref", "text"), ("other_refs", "jsonb"),
    ("measured", "double precision"), ("required_value", "double precision"), ("unit", "text"),
    ("message_zh", "text"), ("message_en", "text"), ("department", "text"), ("compound_ref", "varchar(200)"),
    ("compound_id", "bigint"), ("street_code", "varchar(12)"), ("geom", "geometry"),
)
_COPIED = [c for c, _ in _STAGE_COLUMNS if c not in ("compound_id", "street_code")]
_UPDATED = ("verdict", "clause", "strength", "severity", "subject_layer", "subject_ref", "other_refs", "measured",
            "required_value", "unit", "message_zh", "message_en", "department")


@dataclass
class LedgerResult:
    """What one run did to the ledger."""

    inserted: int = 0
    updated: int = 0
    reopened: int = 0
    closed: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _value(v: object) -> object:
    if v is None:
        return None
    if isinstance(v, float) and np.isnan(v):
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v


def _stage_rows(findings: gpd.GeoDataFrame) -> list[list[object]]:
    """Rows for COPY: findings' columns mapped to the hazards table, geometry as EWKB in the storage CRS."""
    frame = findings
    if frame.crs is not None and len(frame):
        frame = frame.to_crs(STORAGE_SRID)
    geoms = np.asarray(frame.geometry.values, dtype=object)
    ok = ~shapely.is_missing(geoms)
    ok[ok] = ~shapely.is_empty(geoms[ok])
    fixed = geoms.copy()
    fixed[ok] = shapely.make_valid(geoms[ok])
    ewkb = np.full(len(geoms), None, dtype=object)
    if ok.any():
        ewkb[ok] = shapely.to_wkb(shapely.set_srid(fixed[ok], STORAGE_SRID), hex=True, include_srid=True)
    cols = {
        "key": frame["key"], "rule": frame["rule"], "clause": frame["clause"], "verdict": frame["verdict"],
        "strength": frame["strength"], "severity": frame["severity"], "subject_layer": frame["subject_layer"],
        "subject_ref": frame["subject_ref"],
        "other_refs": frame["other_refs"].map(lambda v: json.dumps(list(v) if v is not None else [],
                                                                   ensure_ascii=False)),
        "measured": frame["measured"], "required_value": frame["required"], "unit": frame["unit"],
        "message_zh": frame["message"], "message_en": frame["message_en"], "department": frame["department"],
        "compound_ref": frame["compound_ref"],
    }
    values = [pd.Series(cols[c]).astype(object).tolist() for c in _COPIED[:-1]]
    return [[_value(v[i]) for v in values] + [ewkb[i]] for i in range(len(frame))]


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
        The check_runs row (first_run_id / last_run_id).
    compounds : sequence of str
        The compounds the run checked: their unresolved hazards of `rules` that no longer fail are closed.
    rules : sequence of str
        The rules the run checked.
    include_pass : bool
        Also store ``pass`` findings (status passed_recheck).
    user : str, optional
        Recorded in the audit log.

    Returns
    -------
    LedgerResult
        new keys → inserted (status open); keys still failing → updated (last_seen, status unchanged, but a
        passed_recheck hazard is reopened); unresolved hazards of the scope no longer found → closed
        (status passed_recheck, never deleted).
    """
    if isinstance(engine, Engine):
        with engine.begin() as conn:
            return record(findings, engine=conn, run_id=run_id, compounds=compounds, rules=rules,
                          include_pass=include_pass, user=user)
    conn = engine
    if user:
        conn.execute(text("SELECT set_config('firelane.user', :u, true)"), {"u": user})
    keep = findings if include_pass else findings[findings["verdict"] != "pass"]
    if len(keep):
        keep = keep.sort_values("severity", ascending=False, na_position="last").drop_duplicates("key")
    conn.execute(text(f"DROP TABLE IF EXISTS {_STAGE}"))
    conn.execute(text(f"CREATE TEMP TABLE {_STAGE} ({', '.join(f'{c} {t}' for c, t in _STAGE_COLUMNS)}) "
                      "ON COMMIT DROP"))
    if len(keep):
        raw = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(f"COPY {_STAGE} ({', '.join(_COPIED)}) FROM STDIN") as copy:
            for row in _stage_rows(keep):
                copy.write_row(row)
    derive_links(conn, get_layer("hazards"), table=_STAGE)
    conn.execute(text(f"CREATE INDEX ON {_STAGE} (key)"))
    conn.execute(text(f"ANALYZE {_STAGE}"))
    unresolved = ", ".join(f"'{s}'" for s in UNRESOLVED)
    sets = ", ".join(f"{c} = s.{c}" for c in _UPDATED)
    geom_fallback = "(SELECT ST_PointOnSurface(c.geom) FROM compounds c WHERE c.ref = s.compound_ref LIMIT 1)"
    updated = conn.execute(text(f"""
        WITH old AS (
            SELECT h.id, h.status FROM hazards h JOIN {_STAGE} s ON s.key = h.key FOR UPDATE OF h
        )
        UPDATE hazards h SET {sets},
            geom = COALESCE(s.geom, h.geom),
            last_seen_at = now(), last_run_id = :run,
            status = CASE
                WHEN s.verdict <> 'pass' AND old.status = 'passed_recheck' THEN 'open'
                WHEN s.verdict = 'pass' AND old.status IN ({unresolved}) THEN 'passed_recheck'
                ELSE old.status END,
            closed_at = CASE
                WHEN s.verdict <> 'pass' AND old.status = 'passed_recheck' THEN NULL
                WHEN s.verdict = 'pass' AND old.status IN ({unresolved}) THEN now()
                ELSE h.closed_at END
        FROM {_STAGE} s, old
        WHERE h.key = s.key AND h.id = old.id
        RETURNING old.status, s.verdict
    """), {"run": run_id}).all()
    reopened = sum(1 for status, verdict in updated if status == "passed_recheck" and verdict != "pass")
    inserted = conn.execute(text(f"""
        INSERT INTO hazards (ref, key, rule, clause, verdict, strength, severity, status, subject_layer, subject_ref,
                             other_refs, measured, required_value, unit, message_zh, message_en, department,
                             compound_ref, compound_id, street_code, first_seen_at, last_seen_at, first_run_id,
                             last_run_id, closed_at, geom)
        SELECT left(s.key, 200), s.key, s.rule, s.clause, s.verdict, s.strength, s.severity,
               CASE WHEN s.verdict = 'pass' THEN 'passed_recheck' ELSE 'open' END,
               s.subject_layer, s.subject_ref, s.other_refs, s.measured, s.required_value, s.unit, s.message_zh,
               s.message_en, s.department, s.compound_ref, s.compound_id, s.street_code, now(), now(), :run, :run,
               CASE WHEN s.verdict = 'pass' THEN now() END,
               COALESCE(s.geom, {geom_fallback}, ST_SetSRID(ST_MakePoint(0, 0), {STORAGE_SRID}))
        FROM {_STAGE} s
        WHERE NOT EXISTS (SELECT 1 FROM hazards h WHERE h.key = s.key)
        ORDER BY s.compound_ref, s.key
    """), {"run": run_id}).rowcount
    closed = 0
    if compounds and rules:
        closed = conn.execute(text(f"""
            UPDATE hazards h SET status = 'passed_recheck', closed_at = now(), last_run_id = :run
            WHERE h.status IN ({unresolved})
              AND h.rule = ANY(:rules) AND h.compound_ref = ANY(:compounds)
              AND NOT EXISTS (SELECT 1 FROM {_STAGE} s WHERE s.key = h.key)
        """), {"run": run_id, "rules": list(rules), "compounds": [str(c) for c in compounds]}).rowcount
    conn.execute(text(f"DROP TABLE {_STAGE}"))
    return LedgerResult(inserted=inserted, updated=len(updated), reopened=reopened, closed=closed)
