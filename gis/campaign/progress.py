"""Campaign progress per street office against the current stage, counted from the ledger and its events in SQL.

Definitions (one place; forms, reports and pages read these numbers):
- surveyed: a compound covered by a finished check run since the campaign started (whole district, its street or
  itself), or with any inspection recorded in the campaign;
- self-inspected / inspected: a property company's self-inspection (自查自纠) / a street-led inspection or
  re-inspection (检查/复查) recorded in the campaign (campaign_inspections);
- found: hazards that fail (a check or a manual report), not dismissed as false positives;
- fixed on the spot (边查边改): found hazards with a `fixed_on_spot` event; registered (登记): found minus those;
- rectified: reported rectified and not reopened since (rectified, verified, closed); verified: verified or closed;
- overdue: past the deadline and still needing work (gis.campaign.deadlines.OVERDUE_SQL).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Connection, Engine, text

from gis.campaign import lifecycle as lc
from gis.campaign.campaigns import Campaign, campaign_streets, get_campaign
from gis.campaign.deadlines import OVERDUE_SQL, local_today
from gis.campaign.focus import FOCUS_ITEMS, OTHER, focus_case_sql
from gis.db import get_engine
from gis.scope import streets_filter

COUNTS: tuple[str, ...] = ("compounds", "surveyed", "self_inspected", "inspected", "found", "fixed_on_spot",
                           "registered", "rectified", "verified", "open", "overdue", "photos", "spot_checks",
                           "spot_checked", "spot_failed")
LABELS: dict[str, tuple[str, str]] = {
    "compounds": ("小区数", "Compounds"), "surveyed": ("已排查", "Surveyed"),
    "self_inspected": ("已自查", "Self-inspected"), "inspected": ("已检查", "Inspected"),
    "found": ("发现隐患", "Hazards found"), "fixed_on_spot": ("当场整改", "Fixed on the spot"),
    "registered": ("登记隐患", "Registered"), "rectified": ("已整改", "Rectified"),
    "verified": ("已复核", "Verified"), "open": ("待整改", "Still open"), "overdue": ("逾期", "Overdue"),
    "photos": ("照片", "Photos"), "spot_checks": ("抽查数", "Spot checks"),
    "spot_checked": ("已抽查", "Spot-checked"), "spot_failed": ("抽查不合格", "Spot checks failed"),
}
_DONE = lc.sql_list(lc.RECTIFIED_OR_LATER)
_VERIFIED = lc.sql_list(lc.VERIFIED_OR_LATER)
_WORK = lc.sql_list(lc.NEEDS_WORK)
#: A hazard (alias t) the campaign counts as found (发现隐患): failing in the ledger, not dismissed as a false
#: positive. The progress counts, the stage reports and the forms all count these.
FOUND_SQL = f"t.verdict = 'fail' AND t.status IS NOT NULL AND t.status <> '{lc.State.DISMISSED.value}'"

#: A stage is measured by one ratio: (numerator, denominator) of the counts above.
STAGE_MEASURES: dict[str, tuple[str, str]] = {
    "self_inspection": ("self_inspected", "compounds"),
    "survey": ("surveyed", "compounds"),
    "pilot": ("rectified", "registered"),
    "rectification": ("rectified", "registered"),
    "spot_checks": ("spot_checked", "spot_checks"),
    "consolidation": ("verified", "found"),
    "major_hazards": ("verified", "found"),
}


def stage_measure(code: str | None) -> tuple[str, str] | None:
    if code is None:
        return None
    if code in STAGE_MEASURES:
        return STAGE_MEASURES[code]
    return next((m for k, m in STAGE_MEASURES.items() if code.startswith(k)), None)


def street_counts(conn: Connection, campaign: Campaign, streets: Sequence[str], *,
                  today: date) -> dict[str, dict[str, Any]]:
    """The counts of `streets` (codes): {code: {count: n, ..., "by_focus": {item: found}}}."""
    in_compounds, p = streets_filter("compounds", streets, alias="cc")
    in_hazards, _ = streets_filter("hazards", streets)
    in_checks, _ = streets_filter("spot_checks", streets, alias="s")
    p |= {"cid": campaign.id, "start": campaign.starts_on, "today": today}
    out: dict[str, dict[str, Any]] = {s: dict.fromkeys(COUNTS, 0) | {"by_focus": {}} for s in streets}
    for r in conn.execute(text(
        f"WITH c AS (SELECT cc.ref, cc.street_code FROM compounds cc WHERE {in_compounds}), "
        "runs AS (SELECT scope FROM check_runs WHERE status = 'done' AND finished_at >= CAST(:start AS date)), "
        "ins AS (SELECT compound_ref, kind FROM campaign_inspections WHERE campaign_id = :cid) "
        "SELECT c.street_code, count(*) AS compounds, "
        "count(*) FILTER (WHERE EXISTS (SELECT 1 FROM runs r WHERE NOT (r.scope ? 'street' OR r.scope ? 'compound') "
        "  OR r.scope->>'street' = c.street_code OR r.scope->>'compound' = c.ref) "
        "  OR EXISTS (SELECT 1 FROM ins WHERE ins.compound_ref = c.ref)) AS surveyed, "
        "count(*) FILTER (WHERE EXISTS (SELECT 1 FROM ins WHERE ins.compound_ref = c.ref AND ins.kind = 'self')) "
        "  AS self_inspected, "
        "count(*) FILTER (WHERE EXISTS (SELECT 1 FROM ins WHERE ins.compound_ref = c.ref "
        "  AND ins.kind IN ('inspection', 'recheck'))) AS inspected "
        "FROM c GROUP BY c.street_code"), p):
        out[r.street_code].update(compounds=r.compounds, surveyed=r.surveyed, self_inspected=r.self_inspected,
                                  inspected=r.inspected)
    for r in conn.execute(text(
        f"SELECT t.street_code, {focus_case_sql()} AS focus, count(*) AS found, "
        "count(*) FILTER (WHERE fos.hit) AS fixed_on_spot, "
        f"count(*) FILTER (WHERE t.status IN {_DONE}) AS rectified, "
        f"count(*) FILTER (WHERE t.status IN {_VERIFIED}) AS verified, "
        f"count(*) FILTER (WHERE t.status IN {_WORK}) AS open, "
        f"count(*) FILTER (WHERE {OVERDUE_SQL}) AS overdue "
        "FROM hazards t LEFT JOIN LATERAL (SELECT true AS hit FROM hazard_events e WHERE e.hazard_id = t.id "
        "  AND e.evidence = 'fixed_on_spot' LIMIT 1) fos ON true "
        f"WHERE {in_hazards} AND {FOUND_SQL} GROUP BY 1, 2"), p):
        row = out[r.street_code]
        for k in ("found", "fixed_on_spot", "rectified", "verified", "open", "overdue"):
            row[k] += getattr(r, k)
        row["by_focus"][r.focus] = row["by_focus"].get(r.focus, 0) + r.found
    for r in conn.execute(text(
        "SELECT t.street_code, count(DISTINCT p.photo) AS photos FROM hazards t "
        "JOIN hazard_events e ON e.hazard_id = t.id CROSS JOIN LATERAL unnest(e.photos) AS p(photo) "
        f"WHERE {in_hazards} GROUP BY 1"), p):
        out[r.street_code]["photos"] = r.photos
    for r in conn.execute(text(
        "SELECT s.street_code, count(*) AS n, count(*) FILTER (WHERE s.status <> 'pending') AS checked, "
        "count(*) FILTER (WHERE s.status = 'failed') AS failed FROM spot_checks s "
        f"WHERE s.campaign_id = :cid AND {in_checks} GROUP BY 1"), p):
        out[r.street_code].update(spot_checks=r.n, spot_checked=r.checked, spot_failed=r.failed)
    for row in out.values():
        row["registered"] = row["found"] - row["fixed_on_spot"]
        row["by_focus"] = {code: row["by_focus"].get(code, 0) for code in [f.code for f in FOCUS_ITEMS] + [OTHER[0]]}
    return out


def _ratio(row: dict[str, Any], measure: tuple[str, str] | None) -> float | None:
    if measure is None:
        return None
    num, den = row[measure[0]], row[measure[1]]
    return round(num / den, 4) if den else None


def progress(campaign_id: int, *, today: date | None = None, streets: Sequence[str] | None = None,
             engine: Engine | None = None) -> dict[str, Any]:
    """Progress of every street of the campaign (or `streets`, a subset) and the district total.

    Returns the campaign (with current stage and what is due next), one row per street with the counts above
    and the current stage's measure (e.g. self-inspected / compounds during 自查自纠), and the total row."""
    today = today or local_today()
    with (engine or get_engine()).connect() as conn:
        campaign = get_campaign(campaign_id, conn=conn)
        rows = campaign_streets(conn, campaign, only=streets)
        counts = street_counts(conn, campaign, [r.ref for r in rows], today=today)
    stage = campaign.stage_on(today)
    measure = stage_measure(stage.code if stage else None)
    out_rows = []
    total: dict[str, Any] = dict.fromkeys(COUNTS, 0) | {"by_focus": {}}
    pilots = {p.get("code") for p in campaign.pilot_streets}
    for r in rows:
        c = counts[r.ref]
        out_rows.append({"street": r.ref, "name": r.name, "pilot": r.ref in pilots, **c,
                         "stage_done": _ratio(c, measure)})
        for k in COUNTS:
            total[k] += c[k]
        for k, v in c["by_focus"].items():
            total["by_focus"][k] = total["by_focus"].get(k, 0) + v
    total["stage_done"] = _ratio(total, measure)
    return {"campaign": campaign.as_dict(today=today),
            "stage_measure": {"numerator": measure[0], "denominator": measure[1]} if measure else None,
            "streets": out_rows, "total": total}


def required_spot_checks(compounds: int, rate: float) -> int:
    """At least `rate` of a street's candidates, rounded up, at least one (none when there are none)."""
    return 0 if compounds == 0 else max(1, math.ceil(compounds * rate - 1e-9))
