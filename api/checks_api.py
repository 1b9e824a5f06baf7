"""Check runs in the background (POST /checks/runs → 202) and the hazards ledger (GeoJSON, transitions)."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import text

from api.auth import (
    CHECK_ROLES,
    DISMISS_ROLES,
    HAZARD_STATES,
    TRANSITIONS,
    CurrentUser,
    Principal,
    require_role,
)
from api.database import db_engine
from api.errors import BadRequest, Conflict, Forbidden, NotFound
from api.features import parse_items_query, scope_sql
from api.ogc import check_format, items_parameters, items_response
from api.tilecache import changed
from gis import scope as gis_scope
from gis.config import CheckSettings
from gis.db import transaction
from gis.layers import LAYERS

log = logging.getLogger("firelane.api")
router = APIRouter(tags=["checks and hazards ledger"])


# --- check runs -------------------------------------------------------------------------------------------------


class RunRequest(BaseModel):
    scope: Literal["street", "compound", "all"] = "all"
    street: str | None = Field(default=None, max_length=12)
    compound: str | None = Field(default=None, max_length=200)
    profile: str | None = Field(default=None, max_length=60, pattern=r"^[\w.\-]+$")


class _Jobs:
    """The background check runs of this process (one at a time: checks use the machine's cores)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active: threading.Thread | None = None
        self.claimed: set[int] = set()


jobs = _Jobs()
_RUN_COLUMNS = ("id, status, progress, started_at, finished_at, duration_s, profile, profile_version, scope, "
                "counts, started_by, error")


def _run_doc(row: Any) -> dict[str, Any]:
    return {
        "id": row.id, "status": row.status, "progress": row.progress,
        "started_at": row.started_at.isoformat() if row.started_at else None,
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
        "duration_s": row.duration_s, "profile": row.profile, "profile_version": row.profile_version,
        "scope": row.scope, "counts": row.counts, "started_by": row.started_by, "error": row.error,
    }


def _authorise_scope(principal: Principal, body: RunRequest) -> dict[str, str]:
    require_role(principal, CHECK_ROLES, "运行检查 start check runs")
    if body.scope == "street" and not body.street:
        raise BadRequest("scope=street 需要 street needs a street code")
    if body.scope == "compound" and not body.compound:
        raise BadRequest("scope=compound 需要 compound needs a compound ref")
    scope = {"street": body.street} if body.scope == "street" else (
        {"compound": body.compound} if body.scope == "compound" else {})
    if principal.scoped:
        if body.scope == "all":
            raise Forbidden("街道办只能检查本辖区 a street office may only check its own streets")
        if body.scope == "street" and body.street not in principal.street_codes:
            raise NotFound(f"没有街道 no street {body.street!r}")
        if body.scope == "compound":
            with db_engine().connect() as conn:
                code = conn.execute(text("SELECT street_code FROM compounds WHERE ref = :r"),
                                    {"r": body.compound}).scalar()
            if code not in principal.street_codes:
                raise NotFound(f"没有小区 no compound {body.compound!r}")
    return scope


def _record_failure(user: str, scope: dict[str, str], profile: str, error: str) -> int:
    with db_engine().begin() as conn:
        return conn.execute(text(
            "INSERT INTO check_runs (status, profile, profile_version, scope, started_by, finished_at, error, "
            "duration_s) VALUES ('failed', :p, '', CAST(:s AS jsonb), :u, now(), :e, 0) RETURNING id"),
            {"p": profile, "s": json.dumps(scope), "u": user, "e": error[:4000]}).scalar_one()


@router.post("/checks/runs", status_code=202, summary="Start a check run in the background (202 + run id)")
def start_run(body: RunRequest, principal: CurrentUser) -> JSONResponse:
    scope = _authorise_scope(principal, body)
    profile = body.profile or CheckSettings().profile
    try:
        from gis.checks.runner import run_checks
    except ImportError as exc:
        run_id = _record_failure(principal.username, scope, profile, f"检查引擎不可用 checks unavailable: {exc}")
        return JSONResponse({"id": run_id, "status": "failed"}, status_code=202,
                            headers={"Location": f"/checks/runs/{run_id}"})
    with jobs.lock:
        if jobs.active is not None and jobs.active.is_alive():
            raise Conflict("已有检查在运行 a check run is already in progress; try again when it finishes")
        with db_engine().connect() as conn:
            before = conn.execute(text("SELECT coalesce(max(id), 0) FROM check_runs")).scalar_one()
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                gis_scope.enter(gis_scope.SYSTEM)  # the runner reads and writes the whole district's data
                result = run_checks(**scope, profile=profile, ledger=True, user=principal.username)
                outcome["run_id"] = result.run_id
            except BaseException as exc:  # noqa: BLE001 - recorded on the run, never lost
                outcome["error"] = repr(exc)
                log.exception("check run failed")

        thread = threading.Thread(target=work, name="firelane-check-run", daemon=True)
        jobs.active = thread
        thread.start()
        run_id = _wait_for_row(before, principal.username, scope, thread, outcome)
    if run_id is None:
        run_id = _record_failure(principal.username, scope, profile,
                                 outcome.get("error", "检查未能启动 the run did not start"))
    return JSONResponse({"id": run_id, "status": "running" if thread.is_alive() else "finished"},
                        status_code=202, headers={"Location": f"/checks/runs/{run_id}"})


def _wait_for_row(before: int, user: str, scope: dict[str, str], thread: threading.Thread,
                  outcome: dict[str, Any], timeout: float = 30.0) -> int | None:
    """The check_runs row the runner created for this job (it inserts one as its first step)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "run_id" in outcome:
            run_id = outcome["run_id"]
            jobs.claimed.add(run_id)
            return run_id
        with db_engine().connect() as conn:
            ids = conn.execute(text(
                "SELECT id FROM check_runs WHERE id > :b AND started_by = :u AND scope @> CAST(:s AS jsonb) "
                "ORDER BY id"), {"b": before, "u": user, "s": json.dumps(scope)}).scalars().all()
        for run_id in ids:
            if run_id not in jobs.claimed:
                jobs.claimed.add(run_id)
                return run_id
        if not thread.is_alive():
            return outcome.get("run_id")
        time.sleep(0.05)
    return None


def _runs_scope(principal: Principal) -> tuple[str, dict[str, Any]]:
    if not principal.scoped:
        return "", {}
    return (" WHERE (scope->>'street' = ANY(:streets) OR scope->>'compound' IN "
            "(SELECT ref FROM compounds WHERE street_code = ANY(:streets)))"), {"streets": list(principal.street_codes)}


@router.get("/checks/runs", summary="Recent check runs")
def list_runs(principal: CurrentUser) -> dict[str, Any]:
    where, params = _runs_scope(principal)
    with db_engine().connect() as conn:
        rows = conn.execute(text(f"SELECT {_RUN_COLUMNS} FROM check_runs{where} ORDER BY id DESC LIMIT 100"),
                            params).all()
    return {"runs": [_run_doc(r) for r in rows]}


@router.get("/checks/runs/{run_id}", summary="One check run: status, progress, counts")
def get_run(run_id: Annotated[int, Path(ge=1, le=2**62)], principal: CurrentUser) -> dict[str, Any]:
    where, params = _runs_scope(principal)
    clause = (where + " AND" if where else " WHERE") + " id = :id"
    with db_engine().connect() as conn:
        row = conn.execute(text(f"SELECT {_RUN_COLUMNS} FROM check_runs{clause}"), {**params, "id": run_id}).first()
    if row is None:
        raise NotFound(f"没有检查批次 no check run {run_id}")
    return _run_doc(row)


# --- hazards ledger ---------------------------------------------------------------------------------------------

HAZARD_FILTERS = ("street", "department", "severity_min")


@router.get("/hazards", summary="The hazards ledger as GeoJSON (filters: rule, verdict, status, street, "
                                "department, severity_min and any hazards property)",
            openapi_extra={"parameters": [
                *items_parameters(),
                {"name": "rule", "in": "query", "required": False, "schema": {"type": "string"}},
                {"name": "verdict", "in": "query", "required": False,
                 "schema": {"type": "string", "enum": ["fail", "pass", "cannot_judge"]}},
                {"name": "status", "in": "query", "required": False,
                 "schema": {"type": "string", "enum": list(HAZARD_STATES)}},
                {"name": "street", "in": "query", "required": False, "schema": {"type": "string"}},
                {"name": "department", "in": "query", "required": False, "schema": {"type": "string"}},
                {"name": "severity_min", "in": "query", "required": False, "schema": {"type": "number"}},
            ]})
async def hazards(request: Request, principal: CurrentUser) -> Response:
    layer = LAYERS["hazards"]
    html = check_format(request)
    query = request.query_params
    q = parse_items_query(layer, query, extra_params=HAZARD_FILTERS)
    if query.get("street"):
        q.where.append("t.street_code = :h_street")
        q.params["h_street"] = query["street"]
    if query.get("department"):
        q.where.append("strpos(t.department, :h_dept) > 0")
        q.params["h_dept"] = query["department"].replace("\x00", "")
    if query.get("severity_min"):
        try:
            q.params["h_sev"] = float(query["severity_min"])
        except ValueError:
            raise BadRequest("severity_min 应为数字 severity_min must be a number") from None
        if q.params["h_sev"] != q.params["h_sev"]:
            raise BadRequest("severity_min 应为数字 severity_min must be a number")
        q.where.append("t.severity >= :h_sev")
    return await items_response(request, layer, q, principal, html=html)


class TransitionRequest(BaseModel):
    to: Literal["assigned", "rectifying", "rectified", "verified", "dismissed"]
    note: str | None = Field(default=None, max_length=2000)


@router.post("/hazards/{hazard_id}/transition", summary="Move a hazard along its life cycle (audited)")
def transition(hazard_id: Annotated[int, Path(ge=1, le=2**62)], body: TransitionRequest,
               principal: CurrentUser) -> dict[str, Any]:
    layer = LAYERS["hazards"]
    scope, params = scope_sql(layer, principal)
    with transaction(user=principal.username, engine=db_engine()) as conn:
        row = conn.execute(text(
            "SELECT t.id, t.status, t.version FROM hazards t WHERE t.id = :id" + (f" AND {scope}" if scope else "")
            + " FOR UPDATE"), {**params, "id": hazard_id}).first()
        if row is None:
            raise NotFound(f"没有隐患 no hazard {hazard_id}")
        current = row.status or "open"
        if body.to == "dismissed":
            require_role(principal, DISMISS_ROLES, "销号/驳回隐患 dismiss hazards")
            if current == "dismissed":
                raise Conflict("隐患已驳回 hazard is already dismissed")
        else:
            roles = TRANSITIONS.get((current, body.to))
            if roles is None:
                allowed = [to for (frm, to) in TRANSITIONS if frm == current] + ["dismissed"]
                raise Conflict(f"不允许的状态变化 transition {current} → {body.to} not allowed; "
                               f"from {current}: {', '.join(allowed)}")
            require_role(principal, roles, f"将隐患改为 {body.to} move hazards to {body.to}")
        entry = {"from": current, "to": body.to, "by": principal.username, "note": body.note}
        updated = conn.execute(text(
            "UPDATE hazards SET status = :to, "
            "closed_at = CASE WHEN :to IN ('verified', 'dismissed') THEN now() ELSE closed_at END, "
            "extra = jsonb_set(extra, '{transitions}', coalesce(extra->'transitions', '[]'::jsonb) || "
            "jsonb_build_array(CAST(:entry AS jsonb) || jsonb_build_object('at', now()))) "
            "WHERE id = :id RETURNING id, status, version, closed_at"),
            {"to": body.to, "entry": json.dumps(entry, ensure_ascii=False), "id": hazard_id}).one()
    changed("hazards")
    return {"id": updated.id, "status": updated.status, "version": updated.version,
            "closed_at": updated.closed_at.isoformat() if updated.closed_at else None, "transition": entry}

