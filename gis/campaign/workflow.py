"""The rectification workflow over the ledger: move, assign, fix on the spot, list, count, history (one transaction each).

Every state change goes through `gis.campaign.lifecycle.check_transition` and writes one hazard_events row. The
caller's jurisdiction arrives as a SQL predicate on alias `t` (built by the API's one scoped query path); a hazard
outside it is indistinguishable from one that does not exist.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, text

from gis.campaign import lifecycle as lc
from gis.campaign.actors import Actor
from gis.campaign.deadlines import (
    DAYS_OVERDUE_SQL,
    DUE_SOON_SQL,
    OVERDUE_SQL,
    default_deadline,
    due_soon_days,
    family_of,
    local_today,
)
from gis.campaign.departments import DEPARTMENTS
from gis.checks.catalog import RULES
from gis.scope import streets_filter

#: A caller's jurisdiction: (SQL predicate on alias t or None for everywhere, its parameters).
Scope = tuple[str | None, Mapping[str, Any]]
EVERYWHERE: Scope = (None, {})

MAX_PAGE = 1000


def _where(scope: Scope, *clauses: str | None) -> tuple[str, dict[str, Any]]:
    parts = [c for c in (scope[0], *clauses) if c]
    return (" WHERE " + " AND ".join(f"({p})" for p in parts)) if parts else "", dict(scope[1])


_HAZARD_COLUMNS = ("t.id, t.ref, t.key, t.rule, t.clause, t.verdict, t.strength, t.severity, t.status, "
                   "t.subject_layer, t.subject_ref, t.other_refs, t.measured, t.required_value, t.unit, "
                   "t.message_zh, t.message_en, t.department, t.responsible_unit, t.person, t.deadline, "
                   "t.assigned_at, t.rectified_at, t.verified_at, t.closed_at, t.first_seen_at, t.last_seen_at, "
                   "t.compound_ref, t.street_code, t.version, t.updated_at, t.updated_by")


def _iso(v: Any) -> Any:
    return v.isoformat() if isinstance(v, date) else v


def hazard_doc(row: Any, role: str | None = None) -> dict[str, Any]:
    """A hazard row as a JSON-ready dict: its fields, the state's labels, family, overdue and the steps allowed
    next (to `role`, when given)."""
    doc = {k: _iso(v) for k, v in row._mapping.items() if k not in ("lon", "lat")}
    doc["status_zh"], doc["status_en"] = lc.label(row.status, "zh"), lc.label(row.status, "en")
    doc["family"] = family_of(row.rule)
    doc["next"] = list(lc.allowed_next(row.status, role)) if row.status else []
    if "lon" in row._mapping:
        doc["lonlat"] = [row.lon, row.lat] if row.lon is not None else None
    return doc


def _lock(conn: Connection, hazard_id: int, scope: Scope) -> Any:
    where, params = _where(scope, "t.id = :hid")
    row = conn.execute(text(f"SELECT {_HAZARD_COLUMNS} FROM hazards t{where} FOR UPDATE OF t"),
                       {**params, "hid": hazard_id}).first()
    if row is None:
        raise lc.HazardNotFound(f"没有隐患 no hazard {hazard_id}", field="id")
    return row


def _check_photos(conn: Connection, hazard_id: int, photos: Sequence[int]) -> None:
    """Photo ids must name photos of this hazard, once the photos table (gis.campaign.photos) exists."""
    if not photos or conn.execute(text("SELECT to_regclass('photos')")).scalar() is None:
        return
    found = set(conn.execute(text("SELECT id FROM photos WHERE id = ANY(:ids) AND hazard_id = :h"),
                             {"ids": list(photos), "h": hazard_id}).scalars())
    missing = [p for p in photos if p not in found]
    if missing:
        raise lc.InvalidField(f"照片不属于该隐患 no photo {missing[0]} of hazard {hazard_id}", field="photos")


def _claimed_by(conn: Connection, hazard_id: int) -> str | None:
    """Who made the latest rectification claim of a hazard."""
    return conn.execute(text("SELECT by FROM hazard_events WHERE hazard_id = :h AND to_state = 'rectified' "
                             "ORDER BY id DESC LIMIT 1"), {"h": hazard_id}).scalar()


def _apply(conn: Connection, row: Any, target: str, change: lc.Change, actor: Actor) -> dict[str, Any]:
    """Write the state change and its event (the transition was checked)."""
    sets = ["status = :to"]
    if target == "assigned":
        sets += ["department = :dept", "responsible_unit = :unit", "person = :person", "deadline = :deadline",
                 "assigned_at = now()"]
    elif target == "rectified":
        sets.append("rectified_at = now()")
    elif target == "verified":
        sets.append("verified_at = now()")
    elif target in ("closed", "dismissed"):
        sets.append("closed_at = now()")
    elif target == "reopened":
        sets += ["closed_at = NULL", "verified_at = NULL", "rectified_at = NULL"]
    params = {"to": target, "dept": change.department, "unit": change.unit, "person": change.person,
              "deadline": change.deadline, "hid": row.id, "v": row.version}
    updated = conn.execute(text(f"UPDATE hazards SET {', '.join(sets)} WHERE id = :hid AND version = :v "
                                "RETURNING version"), params).scalar()
    if updated is None:  # cannot happen under FOR UPDATE; kept as the optimistic guard's last line
        raise lc.StaleVersion(row.id, row.status, row.version)
    event = conn.execute(text(
        "INSERT INTO hazard_events (hazard_id, by, from_state, to_state, note, department, unit, person, deadline, "
        "photos, evidence) VALUES (:hid, :by, :frm, :to, :note, :dept, :unit, :person, :deadline, "
        "CAST(:photos AS bigint[]), :evidence) RETURNING id, at"),
        {**params, "by": actor.username, "frm": row.status, "note": change.note, "photos": list(change.photos),
         "evidence": change.evidence}).one()
    return {"id": row.id, "status": target, "status_zh": lc.label(target), "version": updated,
            "event": {"id": event.id, "at": event.at.isoformat(), "by": actor.username, "from": row.status,
                      "to": target, "note": change.note, "photos": list(change.photos),
                      "evidence": change.evidence, "department": change.department, "unit": change.unit,
                      "person": change.person,
                      "deadline": change.deadline.isoformat() if change.deadline is not None else None}}


def transition(conn: Connection, hazard_id: int, target: str, *, actor: Actor, change: lc.Change | None = None,
               scope: Scope = EVERYWHERE, expected_version: int | None = None, today: date | None = None,
               departments: Mapping[str, str] = DEPARTMENTS) -> dict[str, Any]:
    """Move hazard `hazard_id` to `target` as `actor`, in `conn`'s transaction; returns the hazard's new state and
    the event written.

    An assignment without a deadline gets the profile's default for the hazard's rule, department and severity.
    `expected_version` (the version the caller saw): a hazard changed since is refused with StaleVersion (so of
    two people moving the same hazard at once exactly one wins).

    Raises
    ------
    HazardNotFound, StaleVersion, TransitionRefused, RoleRefused, InvalidField
    """
    change = change or lc.Change()
    today = today or local_today()
    row = _lock(conn, hazard_id, scope)
    if expected_version is not None and row.version != expected_version:
        raise lc.StaleVersion(row.id, row.status, row.version)
    if target == "assigned" and change.deadline is None and change.department in departments:
        change = lc.Change(**{**change.__dict__, "deadline": default_deadline(
            rule=row.rule, strength=row.strength, severity=row.severity, department=change.department,
            today=today)})
    change = lc.check_transition(row.status, target, role=actor.role, change=change, today=today,
                                 departments=departments, hazard_department=row.department)
    if target == "verified" and _claimed_by(conn, row.id) == actor.username:
        raise lc.RoleRefused(f"不能复核自己的整改 {actor.username} claimed this rectification and may not verify it",
                             field="by")
    if target == "verified" and change.evidence is None:
        change = lc.Change(**{**change.__dict__, "evidence": lc.Evidence.REINSPECTION.value})
    _check_photos(conn, row.id, change.photos)
    return _apply(conn, row, target, change, actor)


def assign(conn: Connection, hazard_id: int, *, actor: Actor, department: str, unit: str, person: str | None = None,
           deadline: date | None = None, note: str | None = None, scope: Scope = EVERYWHERE,
           expected_version: int | None = None, today: date | None = None) -> dict[str, Any]:
    """交办: assign a hazard to a department and responsible unit (person optional, deadline defaulted)."""
    return transition(conn, hazard_id, "assigned", actor=actor, scope=scope, expected_version=expected_version,
                      today=today, change=lc.Change(note=note, department=department, unit=unit, person=person,
                                                    deadline=deadline))


def fix_on_the_spot(conn: Connection, hazard_id: int, *, actor: Actor, before: Sequence[int], after: Sequence[int],
                    note: str | None = None, scope: Scope = EVERYWHERE,
                    expected_version: int | None = None) -> dict[str, Any]:
    """边查边改: a hazard that still needs work is found fixed during the visit: one step to `rectified`, carrying
    the before and after photos (evidence `fixed_on_spot`); a re-check or another person verifies it."""
    row = _lock(conn, hazard_id, scope)
    if expected_version is not None and row.version != expected_version:
        raise lc.StaleVersion(row.id, row.status, row.version)
    if row.status not in lc.NEEDS_WORK:
        raise lc.TransitionRefused(row.status or "cannot_judge", "rectified", lc.allowed_next(row.status))
    if actor.role not in lc.FIX_ON_SPOT:
        raise lc.RoleRefused(f"角色 {actor.role} 不能边查边改 role {actor.role!r} may not record a fix on the spot",
                             field="to")
    if not before:
        raise lc.InvalidField("边查边改需要整改前照片 a fix on the spot requires before-photos", field="before")
    if not after:
        raise lc.InvalidField("边查边改需要整改后照片 a fix on the spot requires after-photos", field="after")
    change = lc.normalise(lc.Change(note=note, photos=(*before, *after), evidence=lc.Evidence.FIXED_ON_SPOT.value))
    _check_photos(conn, row.id, change.photos)
    return _apply(conn, row, "rectified", change, actor)


# --- reading -------------------------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class HazardFilter:
    """Filters of a hazard list (all optional; several statuses allowed)."""

    status: Sequence[str] = ()
    department: str | None = None
    street: str | None = None
    compound: str | None = None
    overdue: bool | None = None
    family: str | None = None
    rule: str | None = None
    severity_min: float | None = None
    unit: str | None = None
    ids: Sequence[int] = field(default_factory=tuple)


def _filters(f: HazardFilter, today: date) -> tuple[list[str], dict[str, Any]]:
    where = ["t.status IS NOT NULL"]
    params: dict[str, Any] = {"today": today}
    if f.status:
        bad = [s for s in f.status if s not in lc.STATES]
        if bad:
            raise lc.InvalidField(f"未知状态 unknown status {bad[0]!r}; states: {', '.join(lc.STATES)}",
                                  field="status")
        where.append("t.status = ANY(:f_status)")
        params["f_status"] = list(f.status)
    if f.department:
        where.append("t.department = :f_dept")
        params["f_dept"] = f.department
    if f.unit:
        where.append("t.responsible_unit = :f_unit")
        params["f_unit"] = f.unit
    if f.street:
        in_street, binds = streets_filter("hazards", [f.street], key="f")
        where.append(in_street)
        params.update(binds)
    if f.compound:
        where.append("t.compound_ref = :f_compound")
        params["f_compound"] = f.compound
    if f.overdue is not None:
        where.append(OVERDUE_SQL if f.overdue else f"NOT {OVERDUE_SQL}")
    if f.family:
        if f.family == "manual":
            where.append("t.rule LIKE 'MANUAL-%'")
        else:
            rules = [r.id for r in RULES.values() if r.family == f.family]
            if not rules:
                families = sorted({r.family for r in RULES.values()} | {"manual"})
                raise lc.InvalidField(f"未知规则类别 unknown rule family {f.family!r}; families: "
                                      f"{', '.join(families)}", field="family")
            where.append("t.rule = ANY(:f_rules)")
            params["f_rules"] = rules
    if f.rule:
        where.append("t.rule = :f_rule")
        params["f_rule"] = f.rule
    if f.severity_min is not None:
        where.append("t.severity >= :f_sev")
        params["f_sev"] = f.severity_min
    if f.ids:
        where.append("t.id = ANY(:f_ids)")
        params["f_ids"] = list(f.ids)
    return where, params


LIST_SQL_ORDER = "ORDER BY (t.deadline IS NULL), t.deadline, t.severity DESC NULLS LAST, t.id"


def _quote(v: str) -> str:
    return "'" + v.replace("'", "''") + "'"


@lru_cache(maxsize=32)
def _derived_sql(role: str | None) -> str:
    """SQL expressions (alias t) for what hazard_doc adds in Python: labels, family, the next steps of `role`; built
    from gis.campaign.lifecycle and the rule catalogue, so the JSON can be made by PostgreSQL (tipg style)."""
    zh = " ".join(f"WHEN {_quote(s)} THEN {_quote(lc.label(s, 'zh'))}" for s in lc.STATES)
    en = " ".join(f"WHEN {_quote(s)} THEN {_quote(lc.label(s, 'en'))}" for s in lc.STATES)
    fam = " ".join(f"WHEN {_quote(r.id)} THEN {_quote(r.family)}" for r in RULES.values())
    nxt = " ".join(f"WHEN {_quote(s)} THEN CAST({_quote(json.dumps(list(lc.allowed_next(s, role))))} AS json)"
                   for s in lc.STATES)
    return (f"CASE t.status {zh} ELSE {_quote(lc.label(None, 'zh'))} END AS status_zh, "
            f"CASE t.status {en} ELSE {_quote(lc.label(None, 'en'))} END AS status_en, "
            f"CASE WHEN t.rule LIKE 'MANUAL-%' THEN 'manual' ELSE CASE t.rule {fam} ELSE 'other' END END AS family, "
            f"CASE t.status {nxt} ELSE CAST('[]' AS json) END AS next")


def list_sql(f: HazardFilter, *, scope: Scope = EVERYWHERE, today: date | None = None, limit: int = 100,
             offset: int = 0, role: str | None = None) -> tuple[str, dict[str, Any]]:
    """The SQL (and parameters) of a page of the work list as one JSON array built by PostgreSQL, plus the row
    count: one statement, also what the benchmark times alone."""
    where, params = _filters(f, today or local_today())
    clause, scope_params = _where(scope, *where)
    sql = (f"SELECT CAST(coalesce(json_agg(d), CAST('[]' AS json)) AS text) AS doc, count(*) AS n FROM ("
           f"SELECT {_HAZARD_COLUMNS}, {_derived_sql(role)}, {OVERDUE_SQL} AS overdue, "
           f"{DAYS_OVERDUE_SQL} AS days_overdue, "
           f"json_build_array(round(CAST(ST_X(p.pt) AS numeric), 7), round(CAST(ST_Y(p.pt) AS numeric), 7)) "
           f"AS lonlat FROM hazards t CROSS JOIN LATERAL (SELECT ST_PointOnSurface(t.geom) AS pt) p{clause} "
           f"{LIST_SQL_ORDER} LIMIT :limit OFFSET :offset) d")
    return sql, {**params, **scope_params, "limit": max(1, min(int(limit), MAX_PAGE)), "offset": max(0, int(offset))}


def list_json(conn: Connection, f: HazardFilter, *, scope: Scope = EVERYWHERE, today: date | None = None,
              limit: int = 100, offset: int = 0, role: str | None = None) -> tuple[str, int]:
    """A page of the work list as JSON text made by PostgreSQL (no per-row Python) and its number of rows."""
    sql, params = list_sql(f, scope=scope, today=today, limit=limit, offset=offset, role=role)
    row = conn.execute(text(sql), params).one()  # JSON as text: no parsing here, it goes out as it is
    return row.doc, int(row.n)


def list_hazards(conn: Connection, f: HazardFilter, *, scope: Scope = EVERYWHERE, today: date | None = None,
                 limit: int = 100, offset: int = 0, role: str | None = None) -> list[dict[str, Any]]:
    """A page of hazards in the life cycle (data gaps excluded), soonest deadline first, then most severe."""
    doc, _ = list_json(conn, f, scope=scope, today=today, limit=limit, offset=offset, role=role)
    return json.loads(doc)


def count_sql(f: HazardFilter, *, scope: Scope = EVERYWHERE, today: date | None = None) -> tuple[str, dict[str, Any]]:
    """The SQL (and parameters) counting every hazard a work list's filters match (numberMatched)."""
    where, params = _filters(f, today or local_today())
    clause, scope_params = _where(scope, *where)
    return f"SELECT count(*) FROM hazards t{clause}", {**params, **scope_params}


def count_hazards(conn: Connection, f: HazardFilter, *, scope: Scope = EVERYWHERE, today: date | None = None) -> int:
    sql, params = count_sql(f, scope=scope, today=today)
    return int(conn.execute(text(sql), params).scalar_one())


def events(conn: Connection, hazard_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The events of hazards, oldest first: {hazard_id, at, by, from, to, note, department, unit, person, deadline,
    photos, evidence, run_id}."""
    rows = conn.execute(text(
        "SELECT id, hazard_id, at, by, from_state, to_state, note, department, unit, person, deadline, photos, "
        "evidence, run_id FROM hazard_events WHERE hazard_id = ANY(:ids) ORDER BY hazard_id, id"),
        {"ids": list(hazard_ids)}).all()
    return [{"id": r.id, "hazard_id": r.hazard_id, "at": r.at.isoformat(), "by": r.by, "from": r.from_state,
             "to": r.to_state, "from_zh": lc.label(r.from_state) if r.from_state else None,
             "to_zh": lc.label(r.to_state), "note": r.note, "department": r.department, "unit": r.unit,
             "person": r.person, "deadline": _iso(r.deadline), "photos": list(r.photos or ()),
             "evidence": r.evidence, "run_id": r.run_id} for r in rows]


def show(conn: Connection, hazard_id: int, *, scope: Scope = EVERYWHERE, today: date | None = None,
         role: str | None = None) -> dict[str, Any]:
    """One hazard with its events and the steps `role` may take next (HazardNotFound outside the scope)."""
    where, params = _where(scope, "t.id = :hid")
    sql = (f"SELECT {_HAZARD_COLUMNS}, {OVERDUE_SQL} AS overdue, {DAYS_OVERDUE_SQL} AS days_overdue, "
           f"ST_X(ST_PointOnSurface(t.geom)) AS lon, ST_Y(ST_PointOnSurface(t.geom)) AS lat FROM hazards t{where}")
    row = conn.execute(text(sql), {**params, "hid": hazard_id, "today": today or local_today()}).first()
    if row is None:
        raise lc.HazardNotFound(f"没有隐患 no hazard {hazard_id}", field="id")
    doc = hazard_doc(row, role)
    doc["other_refs"] = row.other_refs if not isinstance(row.other_refs, str) else json.loads(row.other_refs)
    doc["events"] = events(conn, [hazard_id])
    return doc


def workload(conn: Connection, *, by: str, scope: Scope = EVERYWHERE, today: date | None = None,
             street: str | None = None) -> list[dict[str, Any]]:
    """Per department (by="department") or street (by="street"): open (needs work), overdue, due this week,
    awaiting verification, and resolved counts. Data gaps are not hazards and are never counted."""
    column = {"department": "t.department", "street": "t.street_code", "unit": "t.responsible_unit"}[by]
    work, done = lc.sql_list(lc.NEEDS_WORK), lc.sql_list(lc.RESOLVED)
    in_street, binds = streets_filter("hazards", [street], key="w") if street else (None, {})
    clause, params = _where(scope, "t.status IS NOT NULL", in_street)
    params.update(binds)
    rows = conn.execute(text(f"""
        SELECT {column} AS name,
               count(*) FILTER (WHERE t.status IN {work}) AS open,
               count(*) FILTER (WHERE {OVERDUE_SQL}) AS overdue,
               count(*) FILTER (WHERE {DUE_SOON_SQL}) AS due_soon,
               count(*) FILTER (WHERE t.status = 'rectified') AS awaiting_verification,
               count(*) FILTER (WHERE t.status IN {done}) AS resolved
        FROM hazards t{clause} GROUP BY 1 ORDER BY 3 DESC, 2 DESC, 1
    """), {**params, "today": today or local_today(), "soon": due_soon_days()}).all()
    return [dict(r._mapping) for r in rows]


def data_gaps(conn: Connection, *, scope: Scope = EVERYWHERE, compound: str | None = None, limit: int = 100,
              offset: int = 0) -> list[dict[str, Any]]:
    """The "complete the data" queue: cannot_judge findings (which datum is missing, on which feature)."""
    clause, params = _where(scope, "t.status IS NULL", "t.verdict = 'cannot_judge'",
                            "t.compound_ref = :g_compound" if compound else None)
    rows = conn.execute(text(
        f"SELECT t.id, t.rule, t.subject_layer, t.subject_ref, t.other_refs, t.compound_ref, t.street_code, "
        f"t.message_zh, t.message_en, t.last_seen_at FROM hazards t{clause} "
        f"ORDER BY t.compound_ref, t.subject_layer, t.subject_ref, t.rule LIMIT :limit OFFSET :offset"),
        {**params, "g_compound": compound, "limit": max(1, min(limit, MAX_PAGE)), "offset": max(0, offset)}).all()
    return [{k: _iso(v) for k, v in r._mapping.items()} for r in rows]
